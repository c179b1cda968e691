//! Black-box tests of the players' HTTP/1 connections: keep-alive rules, pipelining, limits on
//! request heads, framing refusals, timeouts — the real binary on ephemeral loopback ports.

use std::time::Duration;
use testkit::{toml, Conn, Gateway, Options};

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
fn gateway_made_answers_to_head_have_no_body() {
    let gw = Gateway::start(Options::default());
    let mut conn = Conn::connect(gw.addr).unwrap();
    for (path, status) in [("/nowhere", 404), ("/api/v1/sessions", 405)] {
        let r = conn.send("HEAD", path, &[], b"").unwrap();
        assert_eq!(r.status, status);
        assert!(r.header("content-length").is_some_and(|l| l != "0"));
    }
    // Had a body followed either answer, this one would be read out of step.
    let r = conn.post_json("/api/v1/sessions", SESSION_START).unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
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
        server: toml("keepalive_timeout_seconds = 0"),
        ..Options::default()
    });
    let mut conn = Conn::connect(gw.addr).unwrap();
    // A client that connects and sends its request a moment later is served all the same.
    std::thread::sleep(Duration::from_millis(200));
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
        // RFC 9112 §3.2: exactly one Host in HTTP/1.1.
        (b"GET /api/v1/schemas/ping HTTP/1.1\r\n\r\n".to_vec(), 400),
        (
            b"GET /api/v1/schemas/ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(),
            400,
        ),
        // RFC 9112 §6.3: a Transfer-Encoding that does not end in chunked.
        (post_head(2, "Transfer-Encoding: \r\n").into_bytes(), 400),
        (
            b"GET /api/v1/schemas/ping HTTP/2.0\r\nHost: a\r\n\r\n".to_vec(),
            505,
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
    // Each refusal is counted and has its access log line (written out within 100 ms).
    assert_eq!(
        gw.metric_when(
            r#"mediagate_requests_total{route="other",status="431"}"#,
            |v| v >= 2.0
        ),
        2.0
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut log = gw.access_log();
    while log.matches("\"method\":\"-\"").count() < 9 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        log = gw.access_log();
    }
    let refused: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &serde_json::Value| e["method"] == "-")
        .collect();
    let statuses: Vec<u64> = refused
        .iter()
        .filter_map(|e| e["status"].as_u64())
        .collect();
    assert_eq!(
        statuses,
        [431, 431, 400, 400, 501, 400, 400, 400, 505],
        "{log}"
    );
    assert!(refused.iter().all(|e| e["client"] == "127.0.0.1"));
}

#[test]
fn blank_lines_around_requests_are_ignored_and_http_1_2_is_served_as_1_1() {
    let gw = Gateway::start(Options {
        server: toml("client_read_timeout_ms = 500"),
        ..Options::default()
    });
    let mut conn = Conn::connect(gw.addr).unwrap();
    // A CRLF after a request (RFC 9112 §2.2) is not the start of another: no 408 follows.
    conn.write_raw(b"GET /api/v1/schemas/ping HTTP/1.1\r\nHost: gw\r\n\r\n\r\n")
        .unwrap();
    assert_eq!(conn.read_response("GET").unwrap().status, 200);
    assert!(
        !conn.is_closed_by_peer(Duration::from_millis(1500)),
        "the connection stays open past client_read_timeout_ms"
    );
    // Empty lines before a request, even in a packet of their own, are skipped.
    conn.write_raw(b"\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    conn.write_raw(b"GET /api/v1/schemas/ping HTTP/1.2\r\nHost: gw\r\n\r\n")
        .unwrap();
    let r = conn.read_response("GET").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("connection"), Some("keep-alive"));
}

#[test]
fn a_content_type_with_multibyte_characters_gets_415_and_leaves_no_request_in_flight() {
    let gw = Gateway::start(Options::default());
    let mut conn = Conn::connect(gw.addr).unwrap();
    let mut wire = b"POST /api/v1/sessions HTTP/1.1\r\nHost: gw\r\nContent-Type: aaaaa".to_vec();
    wire.extend_from_slice("\u{e9}1234".as_bytes());
    wire.extend_from_slice(b"\r\nContent-Length: 2\r\n\r\n{}");
    conn.write_raw(&wire).unwrap();
    let r = conn.read_response("POST").unwrap();
    assert_eq!(r.status, 415, "{}", r.text());
    assert_eq!(
        gw.metric_when("mediagate_inflight_requests", |v| v == 0.0),
        0.0
    );
}

#[test]
fn a_stalled_head_gets_408() {
    let gw = Gateway::start(Options {
        server: toml("client_read_timeout_ms = 300"),
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
fn a_head_trickled_a_byte_at_a_time_still_gets_408_in_time() {
    let gw = Gateway::start(Options {
        server: toml("client_read_timeout_ms = 400"),
        ..Options::default()
    });
    let mut conn = Conn::connect(gw.addr).unwrap();
    let mut writer = conn.try_clone_stream().unwrap();
    let started = std::time::Instant::now();
    // A byte every 50 ms, each well within the timeout, for far longer than the timeout.
    let trickle = std::thread::spawn(move || {
        use std::io::Write;
        for b in b"POST /api/v1/sessions HTTP/1.1\r\nHost: gw\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if writer.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let r = conn.read_response("POST").unwrap();
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let _ = trickle.join();
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
    let r = testkit::request(gw.addr, "GET", "/api/v1/schemas/ping", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    assert!(r.header("keep-alive").is_none());
    assert_eq!(r.header("connection"), Some("keep-alive"));
    let len: usize = r.header("content-length").unwrap().parse().unwrap();
    assert_eq!(len, r.body.len());
    assert!(r.json().is_object());
}

/// A scripted upstream: answers each request by its path with a fixed byte string, closing the
/// connection after answers that say so. Counts the connections it accepted.
struct ScriptedUpstream {
    addr: std::net::SocketAddr,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl ScriptedUpstream {
    fn start() -> ScriptedUpstream {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut writer = stream;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                        let mut length = 0;
                        loop {
                            let mut field = String::new();
                            if reader.read_line(&mut field).unwrap_or(0) == 0 {
                                return;
                            }
                            if field == "\r\n" {
                                break;
                            }
                            let lower = field.to_ascii_lowercase();
                            if let Some(v) = lower.strip_prefix("content-length:") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; length];
                        let _ = reader.read_exact(&mut body);
                        let flood = "HTTP/1.1 102 Processing\r\n\r\n".repeat(20)
                            + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Up: flood\r\n\r\n{}";
                        let (answer, close): (&[u8], bool) = match path.as_str() {
                            "/api/v1/schemas/interim" => (
                                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Up: interim\r\n\r\n{}",
                                false,
                            ),
                            "/api/v1/schemas/flood" => (flood.as_bytes(), false),
                            "/api/v1/schemas/upgrade" => (
                                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n",
                                false,
                            ),
                            "/api/v1/schemas/gzip" => (
                                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabcdefgh",
                                true,
                            ),
                            "/api/v1/schemas/chunked" => (
                                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nX-Up: 1\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n",
                                false,
                            ),
                            "/api/v1/schemas/closing" => (
                                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"b\":2}",
                                true,
                            ),
                            "/api/v1/schemas/head" => {
                                (b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", false)
                            }
                            _ => (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false),
                        };
                        if writer.write_all(answer).is_err() || close {
                            return;
                        }
                    }
                });
            }
        });
        ScriptedUpstream { addr, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn chunked_close_delimited_and_head_answers_are_relayed_with_a_length() {
    let up = ScriptedUpstream::start();
    let gw = Gateway::start(Options {
        upstream: Some(format!("http://{}", up.addr)),
        // No probes: every connection the upstream accepts is one the gateway made for a request.
        tables: toml("[health_check]\nkind = \"off\"\n"),
        ..Options::default()
    });
    let mut conn = Conn::connect(gw.addr).unwrap();

    // A chunked answer is read whole and relayed with its length; the upstream connection is
    // kept for the next request.
    for _ in 0..2 {
        let r = conn
            .send("GET", "/api/v1/schemas/chunked", &[], b"")
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, br#"{"a":1}"#);
        assert_eq!(r.header("content-length"), Some("7"));
        assert_eq!(r.header("transfer-encoding"), None);
        assert_eq!(r.header("x-up"), Some("1"));
    }
    assert_eq!(up.accepted(), 1, "the upstream connection was reused");

    // A close-delimited answer: relayed with a length; that upstream connection is not reused.
    let r = conn
        .send("GET", "/api/v1/schemas/closing", &[], b"")
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, br#"{"b":2}"#);
    assert_eq!(r.header("content-length"), Some("7"));
    assert_eq!(
        r.header("connection"),
        Some("keep-alive"),
        "the client's connection stays"
    );

    // HEAD: the length of the body it stands for, no body; the client connection stays usable.
    let r = conn.send("HEAD", "/api/v1/schemas/head", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("42"));
    let r = conn
        .send("GET", "/api/v1/schemas/chunked", &[], b"")
        .unwrap();
    assert_eq!(r.body, br#"{"a":1}"#);
    assert_eq!(
        up.accepted(),
        2,
        "one new connection after the closing answer, kept after the HEAD"
    );
}

#[test]
fn informational_and_oddly_framed_upstream_answers_never_put_answers_out_of_step() {
    let up = ScriptedUpstream::start();
    let gw = Gateway::start(Options {
        upstream: Some(format!("http://{}", up.addr)),
        tables: toml("[health_check]\nkind = \"off\"\n"),
        ..Options::default()
    });
    let mut conn = Conn::connect(gw.addr).unwrap();
    let get = |conn: &mut Conn, path: &str| conn.send("GET", path, &[], b"").unwrap();

    // 1xx answers are skipped; the final one is relayed.
    let r = get(&mut conn, "/api/v1/schemas/interim");
    assert_eq!((r.status, r.header("x-up")), (200, Some("interim")));
    // Endless 1xx, or a 101 nobody asked for: 502, and that upstream connection is dropped,
    // so the next answer is the next request's own.
    for path in ["/api/v1/schemas/flood", "/api/v1/schemas/upgrade"] {
        let r = get(&mut conn, path);
        assert_eq!(r.status, 502, "{path}: {}", r.text());
        let r = get(&mut conn, "/api/v1/schemas/interim");
        assert_eq!(
            (r.status, r.header("x-up")),
            (200, Some("interim")),
            "after {path}"
        );
    }
    // A coding the gateway does not decode: relaying the body with the coding removed would
    // hand the player coded bytes, so the answer is a 502, whatever its length says.
    let r = get(&mut conn, "/api/v1/schemas/gzip");
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
}
