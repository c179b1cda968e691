//! Routing: which API route a request line names, and what the gateway does with it.
//!
//! Pure. Routes are labelled by template (never by raw path) in metrics and logs.

use http::Method;

use crate::config::{SidFormat, Strictness};
use crate::mcapi::Endpoint;

/// The API routes, by template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// The path has the events shape but the sid is not well formed.
    MalformedSid,
}

/// Routes a request. The sid of an events path is checked here only for its characters
/// (`[A-Za-z0-9._~-]`, at most 300); its format is checked once the owning upstream is known.
pub fn dispatch(method: &Method, path: &str) -> (Route, Action) {
    let route = match path.strip_prefix("/api/v1/") {
        Some("sessions") => Route::Sessions,
        Some("downloaded") => Route::Downloaded,
        Some(rest) => {
            if let Some(sid) = rest
                .strip_prefix("sessions/")
                .and_then(|r| r.strip_suffix("/events"))
            {
                if !is_outward_sid(sid) {
                    return (Route::Events, Action::MalformedSid);
                }
                Route::Events
            } else if let Some(event_type) = rest.strip_prefix("schemas/") {
                if !is_event_type_segment(event_type) {
                    return (Route::Unknown, Action::NotFound);
                }
                Route::Schemas
            } else {
                return (Route::Unknown, Action::NotFound);
            }
        }
        None => return (Route::Unknown, Action::NotFound),
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

/// The sid of an events path (call only after [`dispatch`] accepted it).
pub fn sid_of(path: &str) -> Option<&str> {
    path.strip_prefix("/api/v1/sessions/")?
        .strip_suffix("/events")
}

/// Strict: 64 lowercase hex characters (every sid the backend has been seen to mint).
/// Lenient: 1 to 256 characters of `[A-Za-z0-9._~-]`.
pub fn is_well_formed_sid(sid: &str, format: SidFormat) -> bool {
    match format {
        SidFormat::Strict => {
            sid.len() == 64 && sid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        }
        SidFormat::Lenient => sid_of_chars(sid, 256),
    }
}

/// The sid segment as clients send it: the upstream's sid, possibly with an affinity token.
fn is_outward_sid(sid: &str) -> bool {
    sid_of_chars(sid, 300)
}

/// 1 to `max` characters of `[A-Za-z0-9._~-]`, and not `.` or `..` (dot segments, which an
/// upstream normalising its paths would resolve: `/api/v1/sessions/../events`).
fn sid_of_chars(sid: &str, max: usize) -> bool {
    (1..=max).contains(&sid.len())
        && sid != "."
        && sid != ".."
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

fn is_event_type_segment(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether a request's `Content-Type` is accepted for a JSON body.
///
/// Lenient (default): no content type, `application/json` (any parameters, also `+json`
/// suffixes), and the types older browser SDKs send for a string body (`text/plain`,
/// `application/x-www-form-urlencoded`); the body must still parse as JSON.
/// Strict: `application/json` with any parameters.
pub fn content_type_accepted(value: Option<&[u8]>, policy: Strictness) -> bool {
    let Some(value) = value else {
        return policy == Strictness::Lenient;
    };
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let is = |t: &str| essence.eq_ignore_ascii_case(t);
    match policy {
        Strictness::Strict => is("application/json"),
        Strictness::Lenient => {
            is("application/json")
                || is("text/plain")
                || is("application/x-www-form-urlencoded")
                || structured_json(essence.as_bytes())
        }
    }
}

/// `application/<subtype>+json` (compared as bytes: the value may hold any UTF-8).
fn structured_json(essence: &[u8]) -> bool {
    const TYPE: &[u8] = b"application/";
    const SUFFIX: &[u8] = b"+json";
    essence.len() >= TYPE.len() + SUFFIX.len()
        && essence[..TYPE.len()].eq_ignore_ascii_case(TYPE)
        && essence[essence.len() - SUFFIX.len()..].eq_ignore_ascii_case(SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "5d41402abc4b2a76b9719d911017c592aa6cd1b2e3f40567890abcdef0123456";

    #[test]
    fn routes_and_methods() {
        let events = format!("/api/v1/sessions/{SID}/events");
        let no_events = format!("/api/v1/sessions/{SID}");
        let cases: Vec<(Method, &str, Route, Action)> = vec![
            (
                Method::POST,
                "/api/v1/sessions",
                Route::Sessions,
                Action::ForwardBody(Endpoint::Sessions),
            ),
            (
                Method::POST,
                &events,
                Route::Events,
                Action::ForwardBody(Endpoint::Events),
            ),
            (
                Method::POST,
                "/api/v1/downloaded",
                Route::Downloaded,
                Action::ForwardBody(Endpoint::Downloaded),
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
    }

    #[test]
    fn sid_formats() {
        assert!(is_well_formed_sid(SID, SidFormat::Strict));
        assert!(!is_well_formed_sid(&SID.to_uppercase(), SidFormat::Strict));
        assert!(!is_well_formed_sid(&SID[1..], SidFormat::Strict));
        assert!(!is_well_formed_sid("..", SidFormat::Lenient));
        assert!(!is_well_formed_sid(".", SidFormat::Lenient));
        assert!(is_well_formed_sid("...", SidFormat::Lenient));
        assert!(is_well_formed_sid(
            "1482236761294786918253",
            SidFormat::Lenient
        ));
        assert!(is_well_formed_sid("a.b_c~d-E", SidFormat::Lenient));
        assert!(!is_well_formed_sid("a/b", SidFormat::Lenient));
        assert!(!is_well_formed_sid("", SidFormat::Lenient));
        assert_eq!(sid_of(&format!("/api/v1/sessions/{SID}/events")), Some(SID));
    }

    #[test]
    fn content_types() {
        use Strictness::*;
        let ok = |v: Option<&str>, p| content_type_accepted(v.map(str::as_bytes), p);
        assert!(ok(None, Lenient));
        assert!(ok(Some("application/json"), Lenient));
        assert!(ok(Some("Application/JSON; charset=UTF-8"), Strict));
        assert!(ok(Some("text/plain;charset=UTF-8"), Lenient));
        assert!(ok(Some("application/x-www-form-urlencoded"), Lenient));
        assert!(ok(Some("application/vnd.api+json"), Lenient));
        assert!(!ok(Some("application/xml"), Lenient));
        assert!(!ok(Some("multipart/form-data; boundary=x"), Lenient));
        assert!(!ok(Some("text/plain"), Strict));
        assert!(!ok(None, Strict));
        // Multi-byte characters where the `+json` suffix would start: refused, no panic.
        assert!(!ok(Some("aaaaa\u{e9}1234"), Lenient));
        assert!(!ok(Some("application/\u{e9}json"), Lenient));
        assert!(ok(Some("application/\u{e9}+json"), Lenient));
    }
}
