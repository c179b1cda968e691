//! Unit tests of [`super::Emulator`]: whole requests through routing, validation, the store and
//! the reply, with an injected clock.

use super::*;
use crate::emulator::sid::is_sid;

const SESSION_START: &str = include_str!("../../tests/fixtures/session-start.json");
const PING: &str = include_str!("../../tests/fixtures/ping.json");
const SESSION_END: &str =
    r#"{"playerTime":{"playhead":13,"ts":1509045337653},"eventType":"sessionEnd"}"#;

fn emulator(prefix: Option<&str>) -> Emulator {
    Emulator::new(EngineSettings {
        idle_timeout: Duration::from_secs(600),
        location_prefix: prefix.map(str::to_owned),
        policies: Policies::default(),
        limits: Limits::default(),
    })
}

fn at(mono_ms: u64) -> Now {
    Now {
        mono_ms,
        epoch_ms: 1_509_045_400_000,
    }
}

fn call(e: &Emulator, method: Method, path: &str, body: &str, mono_ms: u64) -> Reply {
    let route = e.route(&method, path);
    let headers = RequestHeaders {
        host: Some("emulator.test".to_owned()),
        ..RequestHeaders::default()
    };
    let req = Request {
        method: &method,
        path,
        headers,
        body: body.as_bytes(),
    };
    e.handle(route, req, at(mono_ms))
}

fn post(e: &Emulator, path: &str, body: &str, mono_ms: u64) -> Reply {
    call(e, Method::POST, path, body, mono_ms)
}

fn get_json(e: &Emulator, path: &str) -> serde_json::Value {
    let r = call(e, Method::GET, path, "", 0);
    assert_eq!(r.status, StatusCode::OK, "{path}");
    serde_json::from_slice(&r.body).unwrap_or_default()
}

fn location(r: &Reply) -> String {
    r.header("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Starts a session and returns its sid.
fn start(e: &Emulator, mono_ms: u64) -> String {
    let r = post(e, "/api/v1/sessions", SESSION_START, mono_ms);
    assert_eq!(r.status, StatusCode::CREATED);
    location(&r)
        .strip_prefix("/api/v1/sessions/")
        .unwrap_or_default()
        .to_owned()
}

fn events_path(sid: &str) -> String {
    format!("/api/v1/sessions/{sid}/events")
}

fn json_body(r: &Reply) -> serde_json::Value {
    assert_eq!(
        r.header("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    serde_json::from_slice(&r.body).unwrap_or_default()
}

fn batch(downloaded_flag: bool) -> String {
    let mut start: serde_json::Value = serde_json::from_str(SESSION_START).unwrap_or_default();
    if downloaded_flag {
        start["params"]["media.downloaded"] = true.into();
    }
    let play = r#"{"playerTime":{"playhead":0,"ts":1509045325153},"eventType":"play"}"#;
    let end = r#"{"playerTime":{"playhead":10,"ts":1509045335153},"eventType":"sessionEnd"}"#;
    format!("[{start},{play},{end}]")
}

#[test]
fn session_start_gets_201_with_a_fresh_relative_location_and_cors() {
    let e = emulator(None);
    let r = post(&e, "/api/v1/sessions", SESSION_START, 0);
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.body.is_empty());
    let loc = location(&r);
    let sid = loc.strip_prefix("/api/v1/sessions/").unwrap_or_default();
    assert!(is_sid(sid), "{loc}");
    for (k, v) in super::super::reply::CORS {
        assert_eq!(r.header(k).map(|h| h.as_bytes()), Some(v.as_bytes()), "{k}");
    }
    assert_ne!(start(&e, 0), sid);
}

#[test]
fn location_prefix_makes_it_absolute() {
    let e = emulator(Some("https://elsewhere.example/"));
    let r = post(&e, "/api/v1/sessions", SESSION_START, 0);
    let loc = location(&r);
    let sid = loc
        .strip_prefix("https://elsewhere.example/api/v1/sessions/")
        .unwrap_or_default();
    assert!(is_sid(sid), "{loc}");
}

#[test]
fn events_are_accepted_and_recorded_in_order() {
    let e = emulator(None);
    let sid = start(&e, 0);
    let r = post(&e, &events_path(&sid), PING, 10);
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    let v = get_json(&e, &format!("/_emulator/sessions/{sid}"));
    assert_eq!(v["sid"], sid.as_str());
    assert_eq!(v["state"], "open");
    assert_eq!(v["events"][0]["eventType"], "sessionStart");
    assert_eq!(
        v["events"][1],
        serde_json::from_str::<serde_json::Value>(PING).unwrap_or_default()
    );
    assert_eq!(
        v["headers"][1],
        serde_json::json!({"host": "emulator.test"})
    );
}

#[test]
fn unknown_sid_is_404() {
    let e = emulator(None);
    let r = post(&e, &events_path(&"0".repeat(64)), PING, 0);
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(json_body(&r)["message"].is_string());
    assert_eq!(
        call(&e, Method::GET, "/_emulator/sessions/nope", "", 0).status,
        StatusCode::NOT_FOUND
    );
}

#[test]
fn session_end_closes_then_410() {
    let e = emulator(None);
    let sid = start(&e, 0);
    assert_eq!(
        post(&e, &events_path(&sid), SESSION_END, 1).status,
        StatusCode::NO_CONTENT
    );
    let r = post(&e, &events_path(&sid), PING, 2);
    assert_eq!(r.status, StatusCode::GONE);
    assert!(json_body(&r)["message"].is_string());
    let v = get_json(&e, &format!("/_emulator/sessions/{sid}"));
    assert_eq!(v["state"], "closed");
    assert_eq!(v["events"].as_array().map(Vec::len), Some(2));
}

#[test]
fn idle_session_expires_then_410() {
    let e = emulator(None);
    let sid = start(&e, 0);
    assert_eq!(
        post(&e, &events_path(&sid), PING, 600_000).status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post(&e, &events_path(&sid), PING, 1_200_001).status,
        StatusCode::GONE
    );
    let r = call(
        &e,
        Method::GET,
        &format!("/_emulator/sessions/{sid}"),
        "",
        1_200_001,
    );
    assert_eq!(json_body(&r)["state"], "expired");
}

#[test]
fn invalid_body_is_400_json_and_not_recorded() {
    let e = emulator(None);
    let sid = start(&e, 0);
    for (path, body) in [
        ("/api/v1/sessions".to_owned(), "{not json"),
        (events_path(&sid), "[1,2]"),
        ("/api/v1/downloaded".to_owned(), ""),
    ] {
        let r = post(&e, &path, body, 1);
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {body}");
        let v = json_body(&r);
        assert_eq!(v["message"], "Request had improper format.");
        let errors = v["errors"].as_array().cloned().unwrap_or_default();
        assert!(!errors.is_empty(), "{v}");
        for err in errors {
            assert!(
                err["path"].is_string() && err["rule"].is_string() && err["detail"].is_string()
            );
        }
    }
    assert_eq!(
        get_json(&e, "/_emulator/sessions")["sessions"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let v = get_json(&e, &format!("/_emulator/sessions/{sid}"));
    assert_eq!(v["events"].as_array().map(Vec::len), Some(1));
}

#[test]
fn downloaded_batches_become_closed_sessions() {
    let e = emulator(None);
    for (path, body) in [
        ("/api/v1/downloaded", batch(false)),
        ("/api/v1/sessions", batch(true)),
    ] {
        let r = post(&e, path, &body, 0);
        assert_eq!(r.status, StatusCode::CREATED, "{path}");
        let loc = location(&r);
        let sid = loc.strip_prefix("/api/v1/sessions/").unwrap_or_default();
        assert!(is_sid(sid), "{loc}");
        let v = get_json(&e, &format!("/_emulator/sessions/{sid}"));
        assert_eq!(v["state"], "closed");
        assert_eq!(v["events"][0]["eventType"], "sessionStart");
        assert_eq!(v["events"].as_array().map(Vec::len), Some(3));
        assert_eq!(v["headers"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            post(&e, &events_path(sid), PING, 1).status,
            StatusCode::GONE
        );
    }
}

#[test]
fn preflight_wrong_method_and_unknown_path() {
    let e = emulator(None);
    let r = call(&e, Method::OPTIONS, "/api/v1/sessions", "", 0);
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        r.header("access-control-allow-origin")
            .map(|v| v.as_bytes()),
        Some(&b"*"[..])
    );
    let r = call(&e, Method::PUT, "/api/v1/sessions", "", 0);
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        r.header("allow").map(|v| v.as_bytes()),
        Some(&b"OPTIONS, POST"[..])
    );
    let r = call(&e, Method::GET, "/nope", "", 0);
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(json_body(&r)["message"].is_string());
    assert!(r.header("access-control-expose-headers").is_some());
}

#[test]
fn schemas_for_known_event_types_only() {
    let e = emulator(None);
    let v = get_json(&e, "/api/v1/schemas/ping");
    assert_eq!(v["title"], "ping");
    assert_eq!(
        call(&e, Method::GET, "/api/v1/schemas/pong", "", 0).status,
        StatusCode::NOT_FOUND
    );
}

#[test]
fn inspection_lists_counts_and_clears() {
    let e = emulator(None);
    let a = start(&e, 0);
    let b = start(&e, 0);
    let _ = post(&e, "/api/v1/sessions", "{", 0);
    assert_eq!(
        get_json(&e, "/_emulator/sessions"),
        serde_json::json!({"sessions": [a, b]})
    );
    // Three API requests; inspection requests are not counted.
    assert_eq!(
        get_json(&e, "/_emulator/requests"),
        serde_json::json!({"count": 3})
    );
    let r = call(&e, Method::DELETE, "/_emulator/sessions", "", 0);
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        get_json(&e, "/_emulator/sessions"),
        serde_json::json!({"sessions": []})
    );
    assert_eq!(
        get_json(&e, "/_emulator/requests"),
        serde_json::json!({"count": 0})
    );
    assert_eq!(
        post(&e, &events_path(&a), PING, 0).status,
        StatusCode::NOT_FOUND
    );
}
