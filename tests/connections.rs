//! Black-box tests of the players' HTTP/1 connections: keep-alive rules, pipelining, limits on
//! request heads, framing refusals, timeouts — the real binary on ephemeral loopback ports.

#[path = "common/http.rs"]
#[allow(dead_code)]
mod http_client;

#[path = "common/gateway.rs"]
#[allow(dead_code)]
mod gateway;

use gateway::{Gateway, Options};
use http_client::Conn;
use std::time::Duration;

const SESSION_START: &[u8] = include_bytes!("fixtures/session-start.json");

fn post_head(len: usize, extra: &str) -> String {
    format!(
        "POST /api/v1/sessions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n{extra}\r\n"
    )
}

#[test]
fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let gw = Gateway::start(Options::default());
    let mut conn = Conn::connect(gw.addr).unwrap();
    let mut wire = Vec::new();
    for _ in 0..3 {
        wire.extend_from_slice(post_head(SESSION_START.len(), "").as_bytes());
        wire.extend_from_slice(SESSION_START);
    }
    wire.extend_from_slice(b"OPTIONS /api/v1/sessions HTTP/1.1\r\nHost: gw\r\n\r\n");
    conn.write_raw(&wire).unwrap();
    let mut locations = Vec::new();
    for _ in 0..3 {
        let r = conn.read_response("POST").unwrap();
        assert_eq!(r.status, 201, "{}", r.text());
        locations.push(r.header("location").unwrap().to_owned());
    }
    locations.dedup();
    assert_eq!(locations.len(), 3, "three sessions: {locations:?}");
    assert_eq!(conn.read_response("OPTIONS").unwrap().status, 204);
    // And the connection is still usable.
    assert_eq!(
        conn.post_json("/api/v1/sessions", SESSION_START)
            .unwrap()
            .status,
        201
    );
}

#[test]
fn http_1_0_keeps_the_connection_only_when_asked() {
    let gw = Gateway::start(Options::default());
    let mut conn = Conn::connect(gw.addr).unwrap();
    conn.write_raw(b"OPTIONS /api/v1/sessions HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let r = conn.read_response("OPTIONS").unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(r.header("connection"), Some("keep-alive"));
    conn.write_raw(b"OPTIONS /api/v1/sessions HTTP/1.0\r\n\r\n")
        .unwrap();
    let r = conn.read_response("OPTIONS").unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(r.header("connection"), None);
    assert!(conn.is_closed_by_peer(Duration::from_secs(5)));
}

#[test]
fn connection_close_is_honoured() {
    let gw = Gateway::start(Options::default());
    let mut conn = Conn::connect(gw.addr).unwrap();
    let r = conn
        .send(
            "POST",
            "/api/v1/sessions",
            &[
                ("Content-Type", "application/json"),
                ("Connection", "close"),
            ],
            SESSION_START,
        )
        .unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(conn.is_closed_by_peer(Duration::from_secs(5)));
}

#[test]
fn keepalive_timeout_zero_closes_after_every_answer() {
    let gw = Gateway::start(Options {
        server: "keepalive_timeout_seconds = 0".into(),
        ..Options::default()
    });
    let mut conn = Conn::connect(gw.addr).unwrap();
    let r = conn.post_json("/api/v1/sessions", SESSION_START).unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(conn.is_closed_by_peer(Duration::from_secs(5)));
}

#[test]
fn oversized_or_malformed_heads_get_json_errors_and_a_close() {
    let gw = Gateway::start(Options::default());
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            format!(
                "GET /api/v1/schemas/ping HTTP/1.1\r\nHost: gw\r\nX-Big: {}\r\n\r\n",
                "a".repeat(40 * 1024)
            )
            .into_bytes(),
            431,
        ),
        (
            format!(
                "GET /api/v1/schemas/ping HTTP/1.1\r\n{}\r\n",
                (0..70).map(|i| format!("X-{i}: 1\r\n")).collect::<String>()
            )
            .into_bytes(),
            431,
        ),
        (b"HELLO\r\n\r\n".to_vec(), 400),
        (post_head(5, "Content-Length: 6\r\n").into_bytes(), 400),
        (
            b"POST /api/v1/sessions HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(),
            501,
        ),
    ];
    for (wire, status) in cases {
        let mut conn = Conn::connect(gw.addr).unwrap();
        conn.write_raw(&wire).unwrap();
        let r = conn.read_response("GET").unwrap();
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&wire[..40]));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.json()["message"].is_string());
        assert!(conn.is_closed_by_peer(Duration::from_secs(5)));
    }
}

#[test]
fn a_stalled_head_gets_408() {
    let gw = Gateway::start(Options {
        server: "client_read_timeout_ms = 300".into(),
        ..Options::default()
    });
    let mut conn = Conn::connect(gw.addr).unwrap();
    conn.write_raw(b"POST /api/v1/sessions HTTP/1.1\r\nHost: gw\r\n")
        .unwrap();
    let r = conn.read_response("POST").unwrap();
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(conn.is_closed_by_peer(Duration::from_secs(5)));
}

#[test]
fn chunked_with_content_length_is_read_as_chunked_then_closed() {
    let gw = Gateway::start(Options::default());
    let mut conn = Conn::connect(gw.addr).unwrap();
    let mut wire = post_head(3, "Transfer-Encoding: chunked\r\n").into_bytes();
    wire.extend_from_slice(format!("{:x}\r\n", SESSION_START.len()).as_bytes());
    wire.extend_from_slice(SESSION_START);
    wire.extend_from_slice(b"\r\n0\r\n\r\n");
    conn.write_raw(&wire).unwrap();
    let r = conn.read_response("POST").unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("connection"), Some("close"));
    assert!(conn.is_closed_by_peer(Duration::from_secs(5)));
}

#[test]
fn relayed_answers_drop_hop_by_hop_fields_and_carry_their_length() {
    let gw = Gateway::start(Options::default());
    let r = http_client::request(gw.addr, "GET", "/api/v1/schemas/ping", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    assert!(r.header("keep-alive").is_none());
    assert_eq!(r.header("connection"), Some("keep-alive"));
    let len: usize = r.header("content-length").unwrap().parse().unwrap();
    assert_eq!(len, r.body.len());
    assert!(r.json().is_object());
}
