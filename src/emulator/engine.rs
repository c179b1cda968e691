//! The emulator's behaviour, free of pingora: given a routed request (method, path, selected
//! headers, whole body) and the time, it validates, remembers and answers like the collection
//! backend (§1.5, §5.1, §6). The pingora glue (`app`) only reads bodies and writes replies.
//!
//! Choices where the real backend is undocumented:
//! - the body is validated before the sid is looked up (an invalid body to an unknown sid is 400);
//! - the deprecated array form on `/api/v1/sessions` and `/api/v1/downloaded` both answer 201 with
//!   a `Location` naming the batch's session, recorded closed (one event per array element), so
//!   tests can inspect it; the real backend documents no `Location` for `/downloaded`;
//! - only `sessionEnd` closes a session (`sessionComplete` keeps it open, §3.3.8); the
//!   30-minute "no playhead movement" rule of §5.2 is not emulated, only the idle timeout.

use super::body::{events_of, Events};
use super::headers::RequestHeaders;
use super::reply::Reply;
use super::route::{is_api_path, Route};
use super::schema::schema_for;
use super::sid::SidMinter;
use super::store::{Delivery, Limits, Refusal, SessionView, State, Store};
use http::{HeaderValue, Method, StatusCode};
use mcapi::{self, Endpoint, Policies};
use serde::Serialize;
use serde_json::value::RawValue;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The time a request is handled at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds (any origin): session idleness.
    pub mono_ms: u64,
    /// Milliseconds since the Unix epoch: the validator's `now`.
    pub epoch_ms: u64,
}

/// One request, with its body already read in full.
pub struct Request<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub headers: RequestHeaders,
    pub body: &'a [u8],
}

/// How the engine is set up.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    pub idle_timeout: Duration,
    /// Prepended to `/api/v1/sessions/<sid>` in `Location` (no trailing `/`).
    pub location_prefix: Option<String>,
    pub policies: Policies,
    pub limits: Limits,
}

/// The emulated backend: sessions, sid minting, request count.
pub struct Emulator {
    store: Store,
    minter: SidMinter,
    requests: AtomicU64,
    policies: Policies,
    location_prefix: String,
}

#[derive(Serialize)]
struct SessionJson<'a> {
    sid: &'a str,
    state: State,
    events: Vec<Box<RawValue>>,
    headers: &'a [RequestHeaders],
    dropped_events: u64,
}

impl Emulator {
    pub fn new(settings: EngineSettings) -> Emulator {
        let idle_ms = u64::try_from(settings.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let prefix = settings
            .location_prefix
            .map(|p| p.trim_end_matches('/').to_owned())
            .unwrap_or_default();
        let prefix = if HeaderValue::from_str(&prefix).is_ok() {
            prefix
        } else {
            log::warn!("emulator: location_prefix {prefix:?} is not a valid header value; ignored");
            String::new()
        };
        Emulator {
            store: Store::new(idle_ms, settings.limits),
            minter: SidMinter::new(),
            requests: AtomicU64::new(0),
            policies: settings.policies,
            location_prefix: prefix,
        }
    }

    /// Routes a request and counts it when it is an API request. Call once per request, before
    /// [`Emulator::handle`] or before answering it some other way (e.g. 413).
    pub fn route<'a>(&self, method: &Method, path: &'a str) -> Route<'a> {
        if is_api_path(path) {
            self.requests.fetch_add(1, Ordering::Relaxed);
        }
        Route::parse(method, path)
    }

    /// The number of API requests received since start (or the last clear).
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Answers a request routed by [`Emulator::route`].
    pub fn handle(&self, route: Route<'_>, req: Request<'_>, now: Now) -> Reply {
        match route {
            Route::CreateSession => self.create(Endpoint::Sessions, req, now),
            Route::Download => self.create(Endpoint::Downloaded, req, now),
            Route::PostEvent(sid) => self.post_event(sid, req, now),
            Route::Schema(t) => match schema_for(t, &self.policies) {
                Some(body) => Reply::json_bytes(StatusCode::OK, body),
                None => Reply::not_found("Unknown event type."),
            },
            Route::Preflight => Reply::no_content(),
            Route::ListSessions => Reply::json(
                StatusCode::OK,
                &serde_json::json!({ "sessions": self.store.sids() }),
            ),
            Route::ClearSessions => {
                self.store.clear();
                self.requests.store(0, Ordering::Relaxed);
                Reply::no_content()
            }
            Route::ShowSession(sid) => match self.store.view(sid, now.mono_ms) {
                Some(view) => Reply::json(StatusCode::OK, &session_json(&view)),
                None => Reply::not_found("Session not found."),
            },
            Route::CountRequests => Reply::json(
                StatusCode::OK,
                &serde_json::json!({ "count": self.request_count() }),
            ),
            Route::MethodNotAllowed(allow) => Reply::method_not_allowed(allow),
            Route::NotFound => Reply::not_found("Not found."),
        }
    }

    /// Validates a body for `endpoint`; the events, or the 400 to answer.
    fn accept(&self, endpoint: Endpoint, body: &[u8], now: Now) -> Result<Events, Reply> {
        let checked = mcapi::check(endpoint, body, &self.policies, now.epoch_ms);
        if !checked.is_valid() {
            return Err(Reply::invalid(checked.errors()));
        }
        events_of(&checked, body).ok_or_else(|| Reply::invalid(checked.errors()))
    }

    fn create(&self, endpoint: Endpoint, req: Request<'_>, now: Now) -> Reply {
        let events = match self.accept(endpoint, req.body, now) {
            Ok(events) => events,
            Err(reply) => return reply,
        };
        // A batch (downloaded content) is a whole, finished session.
        let closes = events.batch || events.ends_session();
        let delivery = Delivery {
            events: events.into_texts(),
            headers: req.headers,
            closes,
        };
        let created = self
            .store
            .create(|| self.minter.mint(), delivery, now.mono_ms);
        let location = created.and_then(|sid| {
            HeaderValue::try_from(format!("{}/api/v1/sessions/{sid}", self.location_prefix)).ok()
        });
        match location {
            Some(location) => Reply::created(location),
            None => Reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Could not create a session.",
            ),
        }
    }

    fn post_event(&self, sid: &str, req: Request<'_>, now: Now) -> Reply {
        let events = match self.accept(Endpoint::Events, req.body, now) {
            Ok(events) => events,
            Err(reply) => return reply,
        };
        let delivery = Delivery {
            closes: events.ends_session(),
            events: events.into_texts(),
            headers: req.headers,
        };
        match self.store.append(sid, delivery, now.mono_ms) {
            Ok(()) => Reply::no_content(),
            Err(Refusal::Unknown) => Reply::not_found("Session not found."),
            Err(Refusal::Gone(State::Expired)) => {
                Reply::error(StatusCode::GONE, "Session has expired.")
            }
            Err(Refusal::Gone(_)) => Reply::error(StatusCode::GONE, "Session is closed."),
        }
    }
}

fn session_json(view: &SessionView) -> SessionJson<'_> {
    let events = view
        .events
        .iter()
        .filter_map(|text| {
            RawValue::from_string(text.clone())
                .or_else(|_| serde_json::value::to_raw_value(text))
                .ok()
        })
        .collect();
    SessionJson {
        sid: &view.sid,
        state: view.state,
        events,
        headers: &view.headers,
        dropped_events: view.dropped_events,
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
