//! The API's routes (§1.2): which route a request line names, and what a gateway does with it.
//!
//! [`parse_path`] reads an API path alone (the gateway and the emulator both use it);
//! [`dispatch`] adds the method and the gateway's checks of the path's segments. Routes are
//! labelled by template (never by raw path) in metrics and logs.

use http::Method;

use crate::{sid, Endpoint};

/// An API path, with its variable segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiPath<'a> {
    /// `/api/v1/sessions`
    Sessions,
    /// `/api/v1/sessions/{sid}/events` (the segment unchecked: it may even hold a `/`)
    Events { sid: &'a str },
    /// `/api/v1/downloaded`
    Downloaded,
    /// `/api/v1/schemas/{eventType}` (the segment unchecked)
    Schema { event_type: &'a str },
}

/// The API path `path` names, if any. Paths match exactly: no trailing slash, no
/// percent-decoding; the query is not part of `path`.
pub fn parse_path(path: &str) -> Option<ApiPath<'_>> {
    match path.strip_prefix("/api/v1/")? {
        "sessions" => Some(ApiPath::Sessions),
        "downloaded" => Some(ApiPath::Downloaded),
        rest => {
            if let Some(sid) = rest
                .strip_prefix("sessions/")
                .and_then(|r| r.strip_suffix("/events"))
            {
                Some(ApiPath::Events { sid })
            } else {
                rest.strip_prefix("schemas/")
                    .map(|event_type| ApiPath::Schema { event_type })
            }
        }
    }
}

/// The API routes, by template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    Sessions,
    Events,
    Downloaded,
    Schemas,
    /// Any path the API does not define.
    Unknown,
}

impl Route {
    pub const ALL: [Route; 5] = [
        Route::Sessions,
        Route::Events,
        Route::Downloaded,
        Route::Schemas,
        Route::Unknown,
    ];

    /// The label used in metrics and the access log.
    pub fn template(self) -> &'static str {
        match self {
            Route::Sessions => "/api/v1/sessions",
            Route::Events => "/api/v1/sessions/{sid}/events",
            Route::Downloaded => "/api/v1/downloaded",
            Route::Schemas => "/api/v1/schemas/{eventType}",
            Route::Unknown => "other",
        }
    }

    /// The position of this route in [`Route::ALL`] (for per-route arrays).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The value of `Allow` for a 405 on this route.
    pub fn allow(self) -> &'static str {
        match self {
            Route::Schemas => "GET, HEAD, OPTIONS",
            _ => "POST, OPTIONS",
        }
    }

    /// The body endpoint of a POST route.
    pub fn endpoint(self) -> Option<Endpoint> {
        match self {
            Route::Sessions => Some(Endpoint::Sessions),
            Route::Events => Some(Endpoint::Events),
            Route::Downloaded => Some(Endpoint::Downloaded),
            Route::Schemas | Route::Unknown => None,
        }
    }
}

/// What to do with a request, decided from its method and path alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read, check and forward the body (POST on a body route).
    ForwardBody(Endpoint),
    /// Forward without a body (GET/HEAD on the schemas route).
    ForwardBodiless,
    /// Answer a CORS preflight here.
    Preflight,
    MethodNotAllowed,
    NotFound,
    /// The path has the events shape but the sid's characters cannot be a sid.
    MalformedSid,
}

/// Routes a request. The sid of an events path is checked here only for its characters
/// ([`sid::is_outward`]); its format is checked once the owning upstream is known.
pub fn dispatch(method: &Method, path: &str) -> (Route, Action) {
    let route = match parse_path(path) {
        Some(ApiPath::Sessions) => Route::Sessions,
        Some(ApiPath::Downloaded) => Route::Downloaded,
        Some(ApiPath::Events { sid }) => {
            if !sid::is_outward(sid) {
                return (Route::Events, Action::MalformedSid);
            }
            Route::Events
        }
        Some(ApiPath::Schema { event_type }) if is_event_type_segment(event_type) => Route::Schemas,
        Some(ApiPath::Schema { .. }) | None => return (Route::Unknown, Action::NotFound),
    };
    let action = match (*method == Method::OPTIONS, route.endpoint()) {
        (true, _) => Action::Preflight,
        (false, Some(endpoint)) if *method == Method::POST => Action::ForwardBody(endpoint),
        (false, None) if *method == Method::GET || *method == Method::HEAD => {
            Action::ForwardBodiless
        }
        _ => Action::MethodNotAllowed,
    };
    (route, action)
}

/// The sid segment of an events path.
pub fn sid_of(path: &str) -> Option<&str> {
    match parse_path(path)? {
        ApiPath::Events { sid } => Some(sid),
        _ => None,
    }
}

fn is_event_type_segment(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "5d41402abc4b2a76b9719d911017c592aa6cd1b2e3f40567890abcdef0123456";

    #[test]
    fn routes_and_methods() {
        let events = format!("/api/v1/sessions/{SID}/events");
        let no_events = format!("/api/v1/sessions/{SID}");
        let post = |e| Action::ForwardBody(e);
        let cases: Vec<(Method, &str, Route, Action)> = vec![
            (
                Method::POST,
                "/api/v1/sessions",
                Route::Sessions,
                post(Endpoint::Sessions),
            ),
            (Method::POST, &events, Route::Events, post(Endpoint::Events)),
            (
                Method::POST,
                "/api/v1/downloaded",
                Route::Downloaded,
                post(Endpoint::Downloaded),
            ),
            (
                Method::GET,
                "/api/v1/schemas/ping",
                Route::Schemas,
                Action::ForwardBodiless,
            ),
            (
                Method::OPTIONS,
                "/api/v1/sessions",
                Route::Sessions,
                Action::Preflight,
            ),
            (Method::OPTIONS, &events, Route::Events, Action::Preflight),
            (
                Method::PUT,
                &events,
                Route::Events,
                Action::MethodNotAllowed,
            ),
            (
                Method::GET,
                &events,
                Route::Events,
                Action::MethodNotAllowed,
            ),
            (
                Method::POST,
                "/api/v1/schemas/ping",
                Route::Schemas,
                Action::MethodNotAllowed,
            ),
            (
                Method::POST,
                "/api/v1/sessions/",
                Route::Unknown,
                Action::NotFound,
            ),
            (
                Method::POST,
                "/api/v2/sessions",
                Route::Unknown,
                Action::NotFound,
            ),
            (Method::GET, "/", Route::Unknown, Action::NotFound),
            (
                Method::POST,
                "/api/v1/sessions/a%2Fb/events",
                Route::Events,
                Action::MalformedSid,
            ),
            (
                Method::POST,
                "/api/v1/sessions/a/b/events",
                Route::Events,
                Action::MalformedSid,
            ),
            (Method::POST, &no_events, Route::Unknown, Action::NotFound),
            (
                Method::GET,
                "/api/v1/schemas/../x",
                Route::Unknown,
                Action::NotFound,
            ),
        ];
        for (method, path, route, action) in cases {
            assert_eq!(dispatch(&method, path), (route, action), "{method} {path}");
        }
        assert_eq!(sid_of(&events), Some(SID));
        assert_eq!(sid_of("/api/v1/sessions"), None);
    }

    #[test]
    fn templates_are_indexed_in_order() {
        for (i, r) in Route::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
