//! The emulator (`mediagate emulate`, a real process on loopback port 0), talked to over raw
//! HTTP/1.1. Each test starts its own process (own port, own state).

use mediagate::emulator::MAX_BODY_BYTES;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use testkit::{request, Conn, Emulator, Response};

const SESSION_START: &[u8] = include_bytes!("fixtures/session-start.json");
const PING: &[u8] = include_bytes!("fixtures/ping.json");
const SESSION_END: &[u8] =
    br#"{"playerTime":{"playhead":13,"ts":1509045337653},"eventType":"sessionEnd"}"#;
const JSON: (&str, &str) = ("Content-Type", "application/json");

const CORS: [(&str, &str); 4] = [
    ("access-control-allow-origin", "*"),
    ("access-control-allow-methods", "OPTIONS,POST,PUT"),
    ("access-control-allow-headers", "Content-Type"),
    ("access-control-expose-headers", "Location"),
];

/// A running emulator: the process lives as long as the value.
struct Running(Emulator);

/// Starts an emulator process with `args` and waits until it answers.
fn start(args: &[&str]) -> Running {
    let e = Emulator::start(args);
    let r = request(e.addr, "GET", "/_emulator/requests", &[], b"").expect("emulator answers");
    assert_eq!(r.status, 200);
    Running(e)
}

fn start_default() -> Running {
    start(&[])
}

fn assert_cors(r: &Response) {
    for (k, v) in CORS {
        assert_eq!(r.header(k), Some(v), "{k} in {r:?}");
    }
}

/// Starts a session on `conn`; returns the sid.
fn start_session(conn: &mut Conn) -> String {
    let r = conn
        .send("POST", "/api/v1/sessions", &[JSON], SESSION_START)
        .expect("sessionStart");
    assert_eq!(r.status, 201, "{}", r.text());
    let location = r.header("location").unwrap_or_default();
    location
        .strip_prefix("/api/v1/sessions/")
        .unwrap_or_default()
        .to_owned()
}

fn is_sid(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn events_path(sid: &str) -> String {
    format!("/api/v1/sessions/{sid}/events")
}

fn session_json(addr: SocketAddr, sid: &str) -> serde_json::Value {
    let r =
        request(addr, "GET", &format!("/_emulator/sessions/{sid}"), &[], b"").expect("inspection");
    assert_eq!(r.status, 200);
    r.json()
}

fn request_count(addr: SocketAddr) -> u64 {
    let r = request(addr, "GET", "/_emulator/requests", &[], b"").expect("count");
    r.json()["count"].as_u64().unwrap_or(u64::MAX)
}

/// Named `emulator::...` so that `cargo test emulator` selects them.
mod emulator {
    use super::*;

    #[test]
    fn session_start_is_201_with_location_and_cors() {
        let emu = start_default();
        let addr = emu.0.addr;
        let r = request(addr, "POST", "/api/v1/sessions", &[JSON], SESSION_START).expect("request");
        assert_eq!(r.status, 201);
        assert!(r.body.is_empty());
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert_eq!(r.header("content-length"), Some("0"));
        assert_eq!(r.header("connection"), Some("keep-alive"));
        let location = r.header("location").unwrap_or_default();
        let sid = location
            .strip_prefix("/api/v1/sessions/")
            .unwrap_or_default();
        assert!(is_sid(sid), "{location}");
        assert_cors(&r);
    }

    #[test]
    fn events_are_204_and_inspection_shows_them() {
        let emu = start_default();
        let addr = emu.0.addr;
        let mut conn = Conn::connect(addr).expect("connect");
        let sid = start_session(&mut conn);
        let headers = [
            JSON,
            ("X-Request-Id", "req-42"),
            ("User-Agent", "emulator-test"),
            ("X-Forwarded-For", "203.0.113.7"),
        ];
        let r = conn
            .send("POST", &events_path(&sid), &headers, PING)
            .expect("ping");
        assert_eq!(r.status, 204);
        assert!(r.body.is_empty());
        assert_cors(&r);

        let v = session_json(addr, &sid);
        assert_eq!(v["sid"], sid.as_str());
        assert_eq!(v["state"], "open");
        let expected: Vec<serde_json::Value> = [SESSION_START, PING]
            .iter()
            .map(|b| serde_json::from_slice(b).unwrap_or_default())
            .collect();
        assert_eq!(v["events"], serde_json::Value::from(expected));
        assert_eq!(v["headers"][0]["content-type"], "application/json");
        assert_eq!(v["headers"][1]["x-request-id"], "req-42");
        assert_eq!(v["headers"][1]["user-agent"], "emulator-test");
        assert_eq!(v["headers"][1]["x-forwarded-for"], "203.0.113.7");
        assert_eq!(v["headers"][1]["content-length"], PING.len().to_string());
        assert_eq!(v["headers"][1]["host"], addr.to_string());

        let list = request(addr, "GET", "/_emulator/sessions", &[], b"").expect("list");
        assert_eq!(list.json(), serde_json::json!({ "sessions": [sid] }));
    }

    #[test]
    fn unknown_sid_is_404() {
        let emu = start_default();
        let addr = emu.0.addr;
        let r = request(addr, "POST", &events_path(&"a".repeat(64)), &[JSON], PING).expect("ping");
        assert_eq!(r.status, 404);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.json()["message"].is_string());
        assert_cors(&r);
    }

    #[test]
    fn session_end_then_410() {
        let emu = start_default();
        let addr = emu.0.addr;
        let mut conn = Conn::connect(addr).expect("connect");
        let sid = start_session(&mut conn);
        let r = conn
            .send("POST", &events_path(&sid), &[JSON], SESSION_END)
            .expect("end");
        assert_eq!(r.status, 204);
        let r = conn
            .send("POST", &events_path(&sid), &[JSON], PING)
            .expect("ping");
        assert_eq!(r.status, 410);
        assert!(r.json()["message"].is_string());
        assert_cors(&r);
        assert_eq!(session_json(addr, &sid)["state"], "closed");
    }

    #[test]
    fn invalid_body_is_400_json_and_nothing_is_recorded() {
        let emu = start_default();
        let addr = emu.0.addr;
        let before = request_count(addr);
        let r = request(
            addr,
            "POST",
            "/api/v1/sessions",
            &[JSON],
            br#"{"eventType":"sessionStart","playerTime":{"playhead":0,"ts":1}}"#,
        )
        .expect("request");
        assert_eq!(r.status, 400);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_cors(&r);
        let v = r.json();
        assert_eq!(v["message"], "Request had improper format.");
        let errors = v["errors"].as_array().cloned().unwrap_or_default();
        assert!(!errors.is_empty(), "{v}");
        assert!(errors[0]["path"].is_string() && errors[0]["rule"].is_string());
        assert_eq!(request_count(addr), before + 1);
        let list = request(addr, "GET", "/_emulator/sessions", &[], b"").expect("list");
        assert_eq!(list.json(), serde_json::json!({ "sessions": [] }));
    }

    #[test]
    fn preflight_wrong_method_and_unknown_path() {
        let emu = start_default();
        let addr = emu.0.addr;
        let mut conn = Conn::connect(addr).expect("connect");
        let preflight = [
            ("Origin", "https://player.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ];
        for path in [
            "/api/v1/sessions",
            "/api/v1/downloaded",
            &events_path(&"a".repeat(64)),
        ] {
            let r = conn
                .send("OPTIONS", path, &preflight, b"")
                .expect("preflight");
            assert_eq!(r.status, 204, "{path}");
            assert_cors(&r);
        }
        let r = conn
            .send("PUT", "/api/v1/sessions", &[JSON], b"{}")
            .expect("put");
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("OPTIONS, POST"));
        assert_cors(&r);
        let r = conn.send("GET", "/nowhere", &[], b"").expect("get");
        assert_eq!(r.status, 404);
        assert!(r.json()["message"].is_string());
        assert_cors(&r);
        let r = conn
            .send("GET", "/api/v1/schemas/adStart", &[], b"")
            .expect("schema");
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["title"], "adStart");
    }

    #[test]
    fn expect_100_continue_is_answered_and_keeps_the_connection() {
        let emu = start_default();
        let addr = emu.0.addr;
        let mut conn = Conn::connect(addr).expect("connect");
        conn.write_head(
            "POST",
            "/api/v1/sessions",
            &[JSON, ("Expect", "100-continue")],
            SESSION_START.len(),
        )
        .expect("head");
        // The interim answer comes before any body byte is sent.
        let interim = conn.read_response("POST").expect("100 Continue");
        assert_eq!(interim.status, 100);
        conn.write_raw(SESSION_START).expect("body");
        let r = conn.read_response("POST").expect("final");
        assert_eq!(r.status, 201);
        assert_eq!(r.header("connection"), Some("keep-alive"));
        let sid = r
            .header("location")
            .and_then(|l| l.strip_prefix("/api/v1/sessions/"))
            .unwrap_or_default()
            .to_owned();
        // Same connection, next request.
        let r = conn
            .send("POST", &events_path(&sid), &[JSON], PING)
            .expect("ping");
        assert_eq!(r.status, 204);
    }

    #[test]
    fn keep_alive_serves_many_requests_on_one_connection() {
        let emu = start_default();
        let addr = emu.0.addr;
        let mut conn = Conn::connect(addr).expect("connect");
        let sid = start_session(&mut conn);
        for _ in 0..20 {
            let r = conn
                .send("POST", &events_path(&sid), &[JSON], PING)
                .expect("ping");
            assert_eq!(r.status, 204);
        }
        // Errors keep the connection too.
        let r = conn
            .send("POST", "/api/v1/sessions", &[JSON], b"{")
            .expect("bad");
        assert_eq!(r.status, 400);
        assert_eq!(r.header("connection"), Some("keep-alive"));
        let r = conn
            .send("GET", &format!("/_emulator/sessions/{sid}"), &[], b"")
            .expect("inspect");
        assert_eq!(r.json()["events"].as_array().map(Vec::len), Some(21));
        let r = conn
            .send("POST", &events_path(&sid), &[JSON], SESSION_END)
            .expect("end");
        assert_eq!(r.status, 204);
    }

    #[test]
    fn chunked_request_bodies_are_read() {
        let emu = start_default();
        let addr = emu.0.addr;
        let mut conn = Conn::connect(addr).expect("connect");
        let (a, b) = SESSION_START.split_at(100);
        let mut body = Vec::new();
        for part in [a, b] {
            body.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            body.extend_from_slice(part);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\n");
        let r = conn
            .send(
                "POST",
                "/api/v1/sessions",
                &[JSON, ("Transfer-Encoding", "chunked")],
                &body,
            )
            .expect("chunked");
        assert_eq!(r.status, 201, "{}", r.text());
        let r = conn
            .send("GET", "/_emulator/requests", &[], b"")
            .expect("count");
        assert_eq!(r.json()["count"], 1);
    }

    #[test]
    fn oversized_body_is_413_and_the_connection_closes() {
        let emu = start_default();
        let addr = emu.0.addr;
        let mut conn = Conn::connect(addr).expect("connect");
        let too_big = (MAX_BODY_BYTES + 1).to_string();
        conn.write_head(
            "POST",
            "/api/v1/downloaded",
            &[JSON, ("Content-Length", &too_big)],
            0,
        )
        .expect("head");
        let r = conn.read_response("POST").expect("413");
        assert_eq!(r.status, 413);
        assert_cors(&r);
        assert!(conn.is_closed_by_peer(Duration::from_secs(5)));
    }

    #[test]
    fn location_prefix_and_response_delay() {
        let emu = start(&[
            "--location-prefix",
            "https://elsewhere.example",
            "--response-delay-ms",
            "200",
        ]);
        let addr = emu.0.addr;
        let began = Instant::now();
        let r = request(addr, "POST", "/api/v1/sessions", &[JSON], SESSION_START).expect("request");
        assert!(began.elapsed() >= Duration::from_millis(200));
        assert_eq!(r.status, 201);
        let location = r.header("location").unwrap_or_default();
        let sid = location
            .strip_prefix("https://elsewhere.example/api/v1/sessions/")
            .unwrap_or_default();
        assert!(is_sid(sid), "{location}");
    }
}
