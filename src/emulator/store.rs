//! The emulator's memory of sessions: which sids exist, whether each is open, closed or expired,
//! and what each received. Pure: time is passed in (monotonic milliseconds), no I/O.
//!
//! One `std::sync::Mutex` guards the map; every operation holds it briefly and never across an
//! await. Memory is bounded by [`Limits`]:
//! - at most `max_sessions` sessions: creating one more evicts the oldest (an evicted sid then
//!   answers 404, like a sid the backend never saw);
//! - at most `max_events_per_session` recorded events (and as many header records) per session:
//!   later events are still accepted (204) but only counted in `dropped_events`;
//! - at most `max_stored_bytes` of recorded bodies and headers in all: the oldest sessions are
//!   evicted to make room; when the receiving session is itself the oldest, the event is counted as
//!   dropped instead.

use super::headers::RequestHeaders;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// The bounds of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_sessions: usize,
    pub max_events_per_session: usize,
    pub max_stored_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions: 100_000,
            max_events_per_session: 10_000,
            max_stored_bytes: 256 * 1024 * 1024,
        }
    }
}

/// The lifecycle state of a session, as shown by the inspection endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Open,
    /// Closed by `sessionEnd`, or created closed (a downloaded batch).
    Closed,
    /// Open, but idle for longer than the idle timeout.
    Expired,
}

/// Why an event was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The sid was never created (or was evicted): 404.
    Unknown,
    /// The sid is known but closed or expired: 410.
    Gone(State),
}

/// A copy of one session for inspection.
#[derive(Clone, Debug)]
pub struct SessionView {
    pub sid: String,
    pub state: State,
    /// The received event objects, as JSON text, in order.
    pub events: Vec<String>,
    /// One record per accepted request, in order.
    pub headers: Vec<RequestHeaders>,
    pub dropped_events: u64,
}

/// What one accepted request brings to a session.
pub struct Delivery {
    /// The event objects of the body, as JSON text, in order.
    pub events: Vec<String>,
    pub headers: RequestHeaders,
    /// Whether the session is closed once these events are recorded (`sessionEnd`).
    pub closes: bool,
}

struct Session {
    closed: bool,
    last_activity_ms: u64,
    events: Vec<String>,
    headers: Vec<RequestHeaders>,
    dropped_events: u64,
    bytes: usize,
}

impl Session {
    fn state(&self, now_ms: u64, idle_timeout_ms: u64) -> State {
        if self.closed {
            State::Closed
        } else if now_ms.saturating_sub(self.last_activity_ms) > idle_timeout_ms {
            State::Expired
        } else {
            State::Open
        }
    }
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Session>,
    /// Sids in creation order; exactly the keys of `sessions`.
    order: VecDeque<String>,
    bytes: usize,
}

impl Inner {
    /// Evicts the oldest session; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        let Some(sid) = self.order.pop_front() else {
            return false;
        };
        if let Some(s) = self.sessions.remove(&sid) {
            self.bytes = self.bytes.saturating_sub(s.bytes);
        }
        true
    }

    /// Evicts the oldest sessions, never `keep`, until `incoming` more bytes fit the budget.
    fn make_room(&mut self, keep: Option<&str>, incoming: usize, budget: usize) -> bool {
        while self.bytes.saturating_add(incoming) > budget {
            match self.order.front() {
                Some(front) if Some(front.as_str()) != keep => {
                    self.evict_oldest();
                }
                _ => return false,
            }
        }
        true
    }

    /// Appends a delivery to the session `sid` (which must exist), within the limits.
    fn record(&mut self, sid: &str, delivery: Delivery, limits: &Limits) {
        let Delivery {
            events, headers, ..
        } = delivery;
        let header_bytes = headers.byte_size();
        let fits = self.make_room(Some(sid), header_bytes, limits.max_stored_bytes);
        if let Some(s) = self.sessions.get_mut(sid) {
            if fits && s.headers.len() < limits.max_events_per_session {
                s.headers.push(headers);
                s.bytes += header_bytes;
                self.bytes += header_bytes;
            }
        }
        for event in events {
            let len = event.len();
            let fits = self.make_room(Some(sid), len, limits.max_stored_bytes);
            let Some(s) = self.sessions.get_mut(sid) else {
                return;
            };
            if fits && s.events.len() < limits.max_events_per_session {
                s.events.push(event);
                s.bytes += len;
                self.bytes += len;
            } else {
                s.dropped_events += 1;
            }
        }
    }
}

/// The session store.
pub struct Store {
    inner: Mutex<Inner>,
    idle_timeout_ms: u64,
    limits: Limits,
}

impl Store {
    pub fn new(idle_timeout_ms: u64, limits: Limits) -> Store {
        Store {
            inner: Mutex::new(Inner::default()),
            idle_timeout_ms,
            limits,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while the lock is held; if something ever did, the data is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a session holding `delivery` (closed when `delivery.closes`) under the first sid
    /// `mint` returns that is not taken (at most 8 tries); returns that sid.
    pub fn create(
        &self,
        mut mint: impl FnMut() -> String,
        delivery: Delivery,
        now_ms: u64,
    ) -> Option<String> {
        let mut inner = self.lock();
        let sid = (0..8)
            .map(|_| mint())
            .find(|sid| !inner.sessions.contains_key(sid))?;
        while inner.sessions.len() >= self.limits.max_sessions.max(1) && inner.evict_oldest() {}
        inner.sessions.insert(
            sid.clone(),
            Session {
                closed: delivery.closes,
                last_activity_ms: now_ms,
                events: Vec::new(),
                headers: Vec::new(),
                dropped_events: 0,
                bytes: 0,
            },
        );
        inner.order.push_back(sid.clone());
        inner.record(&sid, delivery, &self.limits);
        Some(sid)
    }

    /// Records `delivery` on the open session `sid`, closing it when `delivery.closes`.
    pub fn append(&self, sid: &str, delivery: Delivery, now_ms: u64) -> Result<(), Refusal> {
        let mut inner = self.lock();
        let session = inner.sessions.get_mut(sid).ok_or(Refusal::Unknown)?;
        match session.state(now_ms, self.idle_timeout_ms) {
            State::Open => {}
            gone => return Err(Refusal::Gone(gone)),
        }
        session.last_activity_ms = now_ms;
        session.closed = delivery.closes;
        inner.record(sid, delivery, &self.limits);
        Ok(())
    }

    /// The state of `sid`, or `None` when unknown.
    pub fn state(&self, sid: &str, now_ms: u64) -> Option<State> {
        let inner = self.lock();
        let s = inner.sessions.get(sid)?;
        Some(s.state(now_ms, self.idle_timeout_ms))
    }

    /// A copy of session `sid`, or `None` when unknown.
    pub fn view(&self, sid: &str, now_ms: u64) -> Option<SessionView> {
        let inner = self.lock();
        let s = inner.sessions.get(sid)?;
        Some(SessionView {
            sid: sid.to_owned(),
            state: s.state(now_ms, self.idle_timeout_ms),
            events: s.events.clone(),
            headers: s.headers.clone(),
            dropped_events: s.dropped_events,
        })
    }

    /// Every known sid, in creation order.
    pub fn sids(&self) -> Vec<String> {
        self.lock().order.iter().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every session.
    pub fn clear(&self) {
        *self.lock() = Inner::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: u64 = 600_000;

    fn delivery(events: &[&str], closes: bool) -> Delivery {
        Delivery {
            events: events.iter().map(|e| e.to_string()).collect(),
            headers: RequestHeaders::default(),
            closes,
        }
    }

    /// A "minter" that always returns `sid`.
    fn fixed(sid: &str) -> impl FnMut() -> String + '_ {
        move || sid.to_owned()
    }

    fn store(limits: Limits) -> Store {
        Store::new(IDLE, limits)
    }

    #[test]
    fn open_then_closed_by_session_end_then_gone() {
        let s = store(Limits::default());
        assert!(s
            .create(fixed("a"), delivery(&["{\"n\":0}"], false), 0)
            .is_some());
        assert_eq!(s.state("a", 1), Some(State::Open));
        assert_eq!(s.append("a", delivery(&["{\"n\":1}"], false), 1), Ok(()));
        assert_eq!(s.append("a", delivery(&["{\"n\":2}"], true), 2), Ok(()));
        assert_eq!(s.state("a", 3), Some(State::Closed));
        assert_eq!(
            s.append("a", delivery(&["{}"], false), 3),
            Err(Refusal::Gone(State::Closed))
        );
        let v = s.view("a", 4).unwrap();
        assert_eq!(v.events, ["{\"n\":0}", "{\"n\":1}", "{\"n\":2}"]);
        assert_eq!(v.headers.len(), 3);
    }

    #[test]
    fn idle_sessions_expire_and_activity_keeps_them_open() {
        let s = store(Limits::default());
        assert!(s
            .create(fixed("a"), delivery(&["{}"], false), 1_000)
            .is_some());
        assert_eq!(
            s.append("a", delivery(&["{}"], false), 1_000 + IDLE),
            Ok(())
        );
        assert_eq!(s.state("a", 1_000 + 2 * IDLE), Some(State::Open));
        assert_eq!(s.state("a", 1_001 + 2 * IDLE), Some(State::Expired));
        assert_eq!(
            s.append("a", delivery(&["{}"], false), 1_001 + 2 * IDLE),
            Err(Refusal::Gone(State::Expired))
        );
    }

    #[test]
    fn unknown_sids_are_refused_and_invisible() {
        let s = store(Limits::default());
        assert_eq!(
            s.append("nope", delivery(&["{}"], false), 0),
            Err(Refusal::Unknown)
        );
        assert!(s.view("nope", 0).is_none());
        assert!(s.state("nope", 0).is_none());
    }

    #[test]
    fn batches_are_created_closed_and_duplicates_are_refused() {
        let s = store(Limits::default());
        assert!(s
            .create(fixed("b"), delivery(&["{\"i\":0}", "{\"i\":1}"], true), 0)
            .is_some());
        assert_eq!(s.state("b", 0), Some(State::Closed));
        assert!(s.create(fixed("b"), delivery(&["{}"], false), 0).is_none());
        let mut sids = ["b", "c"].into_iter().map(str::to_owned);
        let minted = s.create(
            move || sids.next().unwrap_or_default(),
            delivery(&[], false),
            0,
        );
        assert_eq!(minted.as_deref(), Some("c"));
        assert_eq!(s.view("b", 0).unwrap().events.len(), 2);
    }

    #[test]
    fn session_cap_evicts_the_oldest() {
        let s = store(Limits {
            max_sessions: 2,
            ..Limits::default()
        });
        for sid in ["a", "b", "c"] {
            assert!(s.create(fixed(sid), delivery(&["{}"], false), 0).is_some());
        }
        assert_eq!(s.sids(), ["b", "c"]);
        assert_eq!(s.len(), 2);
        assert_eq!(
            s.append("a", delivery(&["{}"], false), 0),
            Err(Refusal::Unknown)
        );
    }

    #[test]
    fn event_cap_counts_dropped_events_but_still_accepts() {
        let s = store(Limits {
            max_events_per_session: 2,
            ..Limits::default()
        });
        assert!(s.create(fixed("a"), delivery(&["{}"], false), 0).is_some());
        for _ in 0..3 {
            assert_eq!(s.append("a", delivery(&["{}"], false), 0), Ok(()));
        }
        let v = s.view("a", 0).unwrap();
        assert_eq!(v.events.len(), 2);
        assert_eq!(v.headers.len(), 2);
        assert_eq!(v.dropped_events, 2);
    }

    #[test]
    fn byte_budget_evicts_older_sessions_then_drops() {
        let s = store(Limits {
            max_stored_bytes: 10,
            ..Limits::default()
        });
        assert!(s
            .create(fixed("a"), delivery(&["aaaaaa"], false), 0)
            .is_some());
        assert!(s
            .create(fixed("b"), delivery(&["bbbbbb"], false), 0)
            .is_some());
        assert_eq!(s.sids(), ["b"]);
        // "b" is now the oldest: it is never evicted for itself, the event is dropped.
        assert_eq!(s.append("b", delivery(&["cccccc"], false), 0), Ok(()));
        let v = s.view("b", 0).unwrap();
        assert_eq!(v.events, ["bbbbbb"]);
        assert_eq!(v.dropped_events, 1);
    }

    #[test]
    fn clear_forgets_everything() {
        let s = store(Limits::default());
        assert!(s.create(fixed("a"), delivery(&["{}"], false), 0).is_some());
        s.clear();
        assert!(s.is_empty());
        assert!(s.sids().is_empty());
        assert!(s.create(fixed("a"), delivery(&["{}"], false), 0).is_some());
    }
}
