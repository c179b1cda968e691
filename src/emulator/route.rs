//! Routing: maps a request's method and path to what the emulator does with it. Pure.
//!
//! API paths (`/api/...`) are read by the API's own path parser (`mcapi::route::parse_path`,
//! the one the gateway uses); the methods and `Allow` values are the emulator's. `/_emulator/...`
//! holds the inspection endpoints. Paths match exactly (no trailing slash, no
//! percent-decoding); the query string is not part of the path.

use http::Method;
use mcapi::route::{parse_path, ApiPath};

/// `Allow` of the three POST endpoints.
pub const ALLOW_POST: &str = "OPTIONS, POST";
/// `Allow` of the schema endpoint.
pub const ALLOW_SCHEMA: &str = "GET, OPTIONS";
/// `Allow` of `/_emulator/sessions`.
pub const ALLOW_INSPECT_LIST: &str = "DELETE, GET";
/// `Allow` of the other inspection endpoints.
pub const ALLOW_INSPECT: &str = "GET";

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `POST /api/v1/sessions`.
    CreateSession,
    /// `POST /api/v1/sessions/{sid}/events`.
    PostEvent(&'a str),
    /// `POST /api/v1/downloaded`.
    Download,
    /// `GET /api/v1/schemas/{eventType}`.
    Schema(&'a str),
    /// `OPTIONS` on an API path (CORS preflight).
    Preflight,
    /// `GET /_emulator/sessions`.
    ListSessions,
    /// `DELETE /_emulator/sessions`.
    ClearSessions,
    /// `GET /_emulator/sessions/{sid}`.
    ShowSession(&'a str),
    /// `GET /_emulator/requests`.
    CountRequests,
    /// A known path with another method; the value is the `Allow` header.
    MethodNotAllowed(&'static str),
    NotFound,
}

/// Whether `path` is an API path: counted as an API request and subject to the response delay.
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/")
}

impl<'a> Route<'a> {
    pub fn parse(method: &Method, path: &'a str) -> Route<'a> {
        if let Some(api_path) = parse_path(path) {
            return api(method, api_path);
        }
        if let Some(rest) = path.strip_prefix("/_emulator/") {
            return inspection(method, rest);
        }
        Route::NotFound
    }
}

fn segments(rest: &str) -> Vec<&str> {
    rest.split('/').collect()
}

fn api<'a>(method: &Method, path: ApiPath<'a>) -> Route<'a> {
    let post = |route: Route<'a>| match *method {
        Method::POST => route,
        Method::OPTIONS => Route::Preflight,
        _ => Route::MethodNotAllowed(ALLOW_POST),
    };
    match path {
        ApiPath::Sessions => post(Route::CreateSession),
        ApiPath::Events { sid } if !sid.is_empty() && !sid.contains('/') => {
            post(Route::PostEvent(sid))
        }
        ApiPath::Downloaded => post(Route::Download),
        ApiPath::Schema { event_type } if !event_type.is_empty() && !event_type.contains('/') => {
            match *method {
                Method::GET => Route::Schema(event_type),
                Method::OPTIONS => Route::Preflight,
                _ => Route::MethodNotAllowed(ALLOW_SCHEMA),
            }
        }
        _ => Route::NotFound,
    }
}

fn inspection<'a>(method: &Method, rest: &'a str) -> Route<'a> {
    match (segments(rest).as_slice(), method) {
        (["sessions"], &Method::GET) => Route::ListSessions,
        (["sessions"], &Method::DELETE) => Route::ClearSessions,
        (["sessions"], _) => Route::MethodNotAllowed(ALLOW_INSPECT_LIST),
        (["sessions", sid], &Method::GET) if !sid.is_empty() => Route::ShowSession(sid),
        (["sessions", sid], _) if !sid.is_empty() => Route::MethodNotAllowed(ALLOW_INSPECT),
        (["requests"], &Method::GET) => Route::CountRequests,
        (["requests"], _) => Route::MethodNotAllowed(ALLOW_INSPECT),
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r<'a>(method: Method, path: &'a str) -> Route<'a> {
        Route::parse(&method, path)
    }

    #[test]
    fn api_routes() {
        assert_eq!(r(Method::POST, "/api/v1/sessions"), Route::CreateSession);
        assert_eq!(
            r(Method::POST, "/api/v1/sessions/abc/events"),
            Route::PostEvent("abc")
        );
        assert_eq!(r(Method::POST, "/api/v1/downloaded"), Route::Download);
        assert_eq!(
            r(Method::GET, "/api/v1/schemas/ping"),
            Route::Schema("ping")
        );
    }

    #[test]
    fn preflights_and_wrong_methods() {
        for path in [
            "/api/v1/sessions",
            "/api/v1/sessions/abc/events",
            "/api/v1/downloaded",
            "/api/v1/schemas/ping",
        ] {
            assert_eq!(r(Method::OPTIONS, path), Route::Preflight, "{path}");
        }
        assert_eq!(
            r(Method::PUT, "/api/v1/sessions"),
            Route::MethodNotAllowed(ALLOW_POST)
        );
        assert_eq!(
            r(Method::GET, "/api/v1/sessions/abc/events"),
            Route::MethodNotAllowed(ALLOW_POST)
        );
        assert_eq!(
            r(Method::POST, "/api/v1/schemas/ping"),
            Route::MethodNotAllowed(ALLOW_SCHEMA)
        );
    }

    #[test]
    fn unknown_paths() {
        for path in [
            "/",
            "/api/v1/sessions/",
            "/api/v1/sessions/abc",
            "/api/v1/sessions//events",
            "/api/v1/sessions/abc/events/",
            "/api/v2/sessions",
            "/api/v1/schemas/",
            "/_emulator/sessions/",
            "/_emulator/nope",
        ] {
            assert_eq!(r(Method::POST, path), Route::NotFound, "{path}");
        }
    }

    #[test]
    fn inspection_routes() {
        assert_eq!(r(Method::GET, "/_emulator/sessions"), Route::ListSessions);
        assert_eq!(
            r(Method::DELETE, "/_emulator/sessions"),
            Route::ClearSessions
        );
        assert_eq!(
            r(Method::GET, "/_emulator/sessions/abc"),
            Route::ShowSession("abc")
        );
        assert_eq!(r(Method::GET, "/_emulator/requests"), Route::CountRequests);
        assert_eq!(
            r(Method::POST, "/_emulator/requests"),
            Route::MethodNotAllowed(ALLOW_INSPECT)
        );
    }

    #[test]
    fn api_path_detection() {
        assert!(is_api_path("/api/v1/sessions"));
        assert!(is_api_path("/api/v9/whatever"));
        assert!(!is_api_path("/_emulator/requests"));
        assert!(!is_api_path("/apix"));
    }
}
