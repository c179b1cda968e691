//! Black-box tests of the request path: the real `mediagate` binary in front of its built-in
//! emulator, on ephemeral loopback ports, over real HTTP.

use std::path::Path;
use testkit::{request, sid_of, toml, Conn, Gateway, HeldPort, Options, Response};

const SESSION_START: &[u8] = include_bytes!("fixtures/session-start.json");
const PING: &[u8] = include_bytes!("fixtures/ping.json");
const CORS: [(&str, &str); 4] = [
    ("access-control-allow-origin", "*"),
    ("access-control-allow-methods", "OPTIONS,POST,PUT"),
    ("access-control-allow-headers", "Content-Type"),
    ("access-control-expose-headers", "Location"),
];

fn assert_cors(r: &Response) {
    for (name, value) in CORS {
        assert_eq!(
            r.header(name),
            Some(value),
            "{name} on a {} answer",
            r.status
        );
    }
}

/// A gateway-made JSON error with the documented shape.
fn assert_json_error(r: &Response, status: u16) -> serde_json::Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_cors(r);
    let body = r.json();
    assert!(body["message"].is_string(), "{body}");
    assert!(body["errors"].is_array(), "{body}");
    body
}

/// The fixture files of one directory, in replay order.
fn fixtures(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("fixture"))
        })
        .collect()
}

/// Replays a recorded session (first body to /sessions, the rest to /events) through the gateway.
fn replay(gw: &Gateway, dir: &str) -> (String, usize) {
    let files = fixtures(dir);
    let mut conn = Conn::connect(gw.addr).expect("connect");
    let mut sid = String::new();
    for (name, body) in &files {
        let json = [("Content-Type", "application/json")];
        if name.contains("-sessions-") {
            let r = conn
                .send("POST", "/api/v1/sessions", &json, body)
                .expect("answer");
            assert_eq!(r.status, 201, "{name}: {}", r.text());
            assert_cors(&r);
            let location = r.header("location").expect("Location");
            sid = sid_of(location).to_owned();
            assert_eq!(sid.len(), 64);
        } else {
            let r = conn
                .send(
                    "POST",
                    &format!("/api/v1/sessions/{sid}/events"),
                    &json,
                    body,
                )
                .expect("answer");
            assert_eq!(r.status, 204, "{name}: {}", r.text());
            assert_cors(&r);
        }
    }
    (sid, files.len())
}

#[test]
fn a_full_vod_session_reaches_the_emulator_event_by_event() {
    let gw = Gateway::start(Options::default());
    let (sid, count) = replay(&gw, "vod");
    let seen = gw.emulator_session(&sid);
    let events = seen["events"].as_array().expect("events");
    assert_eq!(events.len(), count);
    let sent: Vec<serde_json::Value> = fixtures("vod")
        .iter()
        .map(|(_, b)| serde_json::from_slice(b).unwrap())
        .collect();
    assert_eq!(
        events, &sent,
        "the emulator received exactly what the player sent"
    );
    let headers = &seen["headers"][0];
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-request-id"].as_str().map(str::len), Some(32));
    assert_eq!(headers["host"], gw.emulator.to_string());
    assert_eq!(
        gw.metric_when("mediagate_events_total{event_type=\"adStart\"}", |v| v
            >= 3.0),
        3.0
    );
    assert_eq!(
        gw.metric_when(
            "mediagate_sessions_started_total{content_type=\"vod\"}",
            |v| v >= 1.0
        ),
        1.0
    );
}

#[test]
fn live_resume_and_downloaded_fixtures_are_accepted() {
    let gw = Gateway::start(Options::default());
    let (live, _) = replay(&gw, "live");
    assert_eq!(
        gw.emulator_session(&live)["state"],
        "closed",
        "the live fixture ends with sessionEnd"
    );
    replay(&gw, "resume");
    let batch = &fixtures("downloaded")[0].1;
    let r = gw.post("/api/v1/downloaded", batch);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_cors(&r);
    // The deprecated array form on /sessions takes the same batch (it carries media.downloaded).
    let r = gw.post("/api/v1/sessions", batch);
    assert_eq!(r.status, 201, "{}", r.text());
}

#[test]
fn invalid_bodies_get_400_with_every_violation_and_never_reach_the_upstream() {
    let gw = Gateway::start(Options::default());
    let sid = gw.start_session();
    let before = gw.emulator_requests();
    let mut checked = 0;
    for (name, body) in fixtures("invalid") {
        let (path, content_type) = match name.split(['-', '.']).nth(1) {
            Some("sessions") => ("/api/v1/sessions".to_owned(), "application/json"),
            Some("events") => (format!("/api/v1/sessions/{sid}/events"), "application/json"),
            Some("downloaded") => ("/api/v1/downloaded".to_owned(), "application/json"),
            other => panic!("unexpected fixture name {name} ({other:?})"),
        };
        let content_type = if name.ends_with(".txt") {
            "application/x-www-form-urlencoded"
        } else {
            content_type
        };
        let r = request(
            gw.addr,
            "POST",
            &path,
            &[("Content-Type", content_type)],
            &body,
        )
        .expect("answer");
        let err = assert_json_error(&r, 400);
        let errors = err["errors"].as_array().expect("errors");
        assert!(!errors.is_empty(), "{name}: no error listed");
        for e in errors {
            assert!(
                e["path"].is_string() && e["rule"].is_string() && e["detail"].is_string(),
                "{name}: {e}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} invalid fixtures found");
    assert_eq!(
        gw.emulator_requests(),
        before,
        "an invalid body reached the upstream"
    );
    assert!(
        gw.metric_when(
            "mediagate_validation_failures_total{route=\"/api/v1/sessions\",rule=\"required\"}",
            |v| v >= 2.0
        ) >= 2.0
    );
    assert!(
        gw.metric_when(
            "mediagate_requests_total{route=\"/api/v1/sessions/{sid}/events\",status=\"400\"}",
            |v| v >= 10.0
        ) >= 10.0
    );
}

#[test]
fn the_relative_location_shape_is_kept() {
    let gw = Gateway::start(Options::default());
    let r = gw.post("/api/v1/sessions", SESSION_START);
    let location = r.header("location").expect("Location");
    assert!(location.starts_with("/api/v1/sessions/"), "{location}");
    assert_eq!(
        location.split('/').nth(4).map(str::len),
        Some(64),
        "the JS SDK's split(\"/\")[4]"
    );
    assert_eq!(
        gw.metric_when("mediagate_location_rewrites_total{outcome=\"kept\"}", |v| v
            >= 1.0),
        1.0
    );
}

#[test]
fn an_absolute_location_naming_the_upstream_becomes_relative() {
    let gw = Gateway::start(Options {
        emulator: vec!["--location-prefix".into(), "http://{listen}".into()],
        ..Options::default()
    });
    let r = gw.post("/api/v1/sessions", SESSION_START);
    assert_eq!(r.status, 201);
    let location = r.header("location").expect("Location");
    assert!(
        location.starts_with("/api/v1/sessions/"),
        "internal host leaked: {location}"
    );
    assert_eq!(
        gw.metric_when(
            "mediagate_location_rewrites_total{outcome=\"rewritten\"}",
            |v| v >= 1.0
        ),
        1.0
    );
    // The rewritten sid still works through the gateway.
    let r = gw.post(&format!("{location}/events"), PING);
    assert_eq!(r.status, 204, "{}", r.text());
}

#[test]
fn a_foreign_location_is_left_alone_and_counted() {
    let gw = Gateway::start(Options {
        emulator: vec![
            "--location-prefix".into(),
            "https://elsewhere.example".into(),
        ],
        ..Options::default()
    });
    let r = gw.post("/api/v1/sessions", SESSION_START);
    let location = r.header("location").expect("Location");
    assert!(
        location.starts_with("https://elsewhere.example/api/v1/sessions/"),
        "{location}"
    );
    assert_eq!(
        gw.metric_when(
            "mediagate_location_rewrites_total{outcome=\"foreign\"}",
            |v| v >= 1.0
        ),
        1.0
    );
}

#[test]
fn absolute_locations_on_public_url_are_opt_in() {
    let gw = Gateway::start(Options {
        server: toml("public_url = \"https://collect.example.com\"\nabsolute_location = true"),
        ..Options::default()
    });
    let location = gw
        .post("/api/v1/sessions", SESSION_START)
        .header("location")
        .unwrap()
        .to_owned();
    assert!(
        location.starts_with("https://collect.example.com/api/v1/sessions/"),
        "{location}"
    );
}

/// A downloaded batch of about 300 KB: far above pingora's 64 KiB retry buffer.
fn big_batch() -> Vec<u8> {
    let mut events: Vec<serde_json::Value> = vec![serde_json::from_slice(SESSION_START).unwrap()];
    let mut i = 0u64;
    let mut size = 0;
    while size < 300_000 {
        i += 1;
        let e = serde_json::json!({"eventType": "ping", "playerTime": {"playhead": i * 10, "ts": 1509045324153u64 + i * 10_000}});
        size += e.to_string().len() + 1;
        events.push(e);
    }
    serde_json::to_vec(&events).unwrap()
}

#[test]
fn a_300_kb_chunked_batch_is_validated_then_forwarded_whole_with_a_content_length() {
    let gw = Gateway::start(Options::default());
    let body = big_batch();
    let mut conn = Conn::connect(gw.addr).expect("connect");
    conn.write_head(
        "POST",
        "/api/v1/downloaded",
        &[
            ("Content-Type", "application/json"),
            ("Transfer-Encoding", "chunked"),
        ],
        0,
    )
    .unwrap();
    for chunk in body.chunks(16 * 1024) {
        conn.write_raw(format!("{:x}\r\n", chunk.len()).as_bytes())
            .unwrap();
        conn.write_raw(chunk).unwrap();
        conn.write_raw(b"\r\n").unwrap();
    }
    conn.write_raw(b"0\r\n\r\n").unwrap();
    let r = conn.read_response("POST").expect("answer");
    assert_eq!(r.status, 201, "{}", r.text());
    let sid = sid_of(r.header("location").expect("Location")).to_owned();
    let seen = gw.emulator_session(&sid);
    let expected: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen["events"], expected, "the whole batch arrived");
    assert_eq!(seen["headers"][0]["content-length"], body.len().to_string());
    // The same connection is still usable.
    let r = conn.post_json("/api/v1/sessions", SESSION_START).unwrap();
    assert_eq!(r.status, 201);
}

#[test]
fn an_invalid_large_batch_is_refused_before_the_upstream_is_contacted() {
    let gw = Gateway::start(Options::default());
    let mut body = big_batch();
    let tail = body.len() - 1;
    body.splice(
        tail..tail,
        br#",{"eventType":"pause","playerTime":{"playhead":1,"ts":1}}"#
            .iter()
            .copied(),
    );
    let before = gw.emulator_requests();
    let r = gw.post("/api/v1/downloaded", &body);
    let err = assert_json_error(&r, 400);
    assert_eq!(err["errors"][0]["rule"], "event_type");
    assert!(err["errors"][0]["path"]
        .as_str()
        .unwrap()
        .ends_with("/eventType"));
    assert_eq!(gw.emulator_requests(), before);
}

#[test]
fn size_limit_content_type_routes_and_methods() {
    let gw = Gateway::start(Options {
        server: toml("max_body_bytes = 2048"),
        ..Options::default()
    });
    let big = vec![b' '; 4096];
    let json = ("Content-Type", "application/json");
    // 413 from Content-Length, before the body is read.
    let r = request(gw.addr, "POST", "/api/v1/sessions", &[json], &big).unwrap();
    assert_json_error(&r, 413);
    // 413 from the running count of a chunked body.
    let mut conn = Conn::connect(gw.addr).unwrap();
    conn.write_head(
        "POST",
        "/api/v1/sessions",
        &[json, ("Transfer-Encoding", "chunked")],
        0,
    )
    .unwrap();
    conn.write_raw(format!("{:x}\r\n", big.len()).as_bytes())
        .unwrap();
    conn.write_raw(&big).unwrap();
    conn.write_raw(b"\r\n0\r\n\r\n").unwrap();
    assert_json_error(&conn.read_response("POST").unwrap(), 413);
    // 415 for types that are not JSON.
    for ct in ["application/xml", "multipart/form-data; boundary=x"] {
        let r = request(
            gw.addr,
            "POST",
            "/api/v1/sessions",
            &[("Content-Type", ct)],
            SESSION_START,
        )
        .unwrap();
        assert_json_error(&r, 415);
    }
    // Older browser SDKs send JSON as text/plain, and some send no type at all.
    for headers in [&[("Content-Type", "text/plain;charset=UTF-8")][..], &[][..]] {
        let r = request(gw.addr, "POST", "/api/v1/sessions", headers, SESSION_START).unwrap();
        assert_eq!(r.status, 201, "{}", r.text());
    }
    // 404 for unknown paths and malformed sids.
    for path in [
        "/",
        "/api/v1/session",
        "/api/v2/sessions",
        "/api/v1/sessions/abc/events",
        "/api/v1/sessions/x",
    ] {
        let r = request(gw.addr, "POST", path, &[json], PING).unwrap();
        assert_json_error(&r, 404);
    }
    // 405 with Allow.
    let sid = gw.start_session();
    for (method, path, allow) in [
        (
            "GET",
            format!("/api/v1/sessions/{sid}/events"),
            "POST, OPTIONS",
        ),
        (
            "PUT",
            format!("/api/v1/sessions/{sid}/events"),
            "POST, OPTIONS",
        ),
        ("DELETE", "/api/v1/sessions".to_owned(), "POST, OPTIONS"),
        (
            "POST",
            "/api/v1/schemas/ping".to_owned(),
            "GET, HEAD, OPTIONS",
        ),
    ] {
        let r = request(gw.addr, method, &path, &[], b"").unwrap();
        assert_json_error(&r, 405);
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
    // Preflights are answered by the gateway.
    for path in [
        "/api/v1/sessions".to_owned(),
        format!("/api/v1/sessions/{sid}/events"),
        "/api/v1/downloaded".to_owned(),
    ] {
        let r = request(
            gw.addr,
            "OPTIONS",
            &path,
            &[
                ("Origin", "https://player.example"),
                ("Access-Control-Request-Method", "POST"),
            ],
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 204);
        assert_cors(&r);
    }
    // Schemas are forwarded to the upstream.
    let r = request(gw.addr, "GET", "/api/v1/schemas/sessionStart", &[], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_cors(&r);
    assert!(r.json().is_object());
}

#[test]
fn expect_100_continue_is_answered_before_the_body_and_keeps_the_connection() {
    let gw = Gateway::start(Options::default());
    let mut conn = Conn::connect(gw.addr).unwrap();
    conn.write_head(
        "POST",
        "/api/v1/sessions",
        &[
            ("Content-Type", "application/json"),
            ("Expect", "100-continue"),
        ],
        SESSION_START.len(),
    )
    .unwrap();
    // The body is not sent until the gateway says 100 Continue.
    let interim = conn.read_response("POST").expect("interim answer");
    assert_eq!(interim.status, 100);
    conn.write_raw(SESSION_START).unwrap();
    let r = conn.read_response("POST").expect("final answer");
    assert_eq!(r.status, 201);
    assert_eq!(r.header("connection"), Some("keep-alive"));
    let r = conn.post_json("/api/v1/sessions", SESSION_START).unwrap();
    assert_eq!(r.status, 201);
}

#[test]
fn upstream_answers_pass_through_with_cors_added() {
    let gw = Gateway::start(Options::default());
    let unknown = "0".repeat(64);
    let r = gw.post(&format!("/api/v1/sessions/{unknown}/events"), PING);
    assert_eq!(r.status, 404, "the emulator's own 404 for an unknown sid");
    assert_cors(&r);
    let sid = gw.start_session();
    let end = br#"{"playerTime":{"playhead":13,"ts":1509045337653},"eventType":"sessionEnd"}"#;
    assert_eq!(
        gw.post(&format!("/api/v1/sessions/{sid}/events"), end)
            .status,
        204
    );
    let r = gw.post(&format!("/api/v1/sessions/{sid}/events"), PING);
    assert_eq!(r.status, 410, "closed sessions answer 410");
    assert_cors(&r);
}

#[test]
fn report_mode_forwards_invalid_bodies_and_counts_them() {
    let gw = Gateway::start(Options {
        tables: toml("[validation]\nmode = \"report\""),
        ..Options::default()
    });
    let sid = gw.start_session();
    let before = gw.emulator_requests();
    let bad = br#"{"playerTime":{"playhead":1,"ts":1509045336653},"eventType":"ping","params":{"media.id":"x"}}"#;
    let r = gw.post(&format!("/api/v1/sessions/{sid}/events"), bad);
    assert_eq!(gw.emulator_requests(), before + 1, "report mode forwards");
    assert_eq!(r.status, 400, "the emulator itself rejects it");
    assert_eq!(r.json()["message"], "Request had improper format.");
    assert_eq!(gw.metric_when("mediagate_validation_failures_total{route=\"/api/v1/sessions/{sid}/events\",rule=\"params_not_allowed\"}", |v| v >= 1.0), 1.0);
}

#[test]
fn enrichment_sets_session_params_and_upstream_headers() {
    let gw = Gateway::start(Options {
        tables: toml(
            r#"
[enrich.session_params.if_absent]
"media.streamType" = "video"
"analytics.reportSuite" = "unused"
[enrich.session_params.always]
"analytics.trackingServer" = "${env:TRACKING_SERVER}"
[enrich.upstream_headers]
"X-Collector-Region" = "eu-${env:REGION}"
"#,
        ),
        env: vec![
            ("TRACKING_SERVER".into(), "first-party.example.com".into()),
            ("REGION".into(), "west".into()),
        ],
        ..Options::default()
    });
    let sid = gw.start_session();
    let seen = gw.emulator_session(&sid);
    let params = &seen["events"][0]["params"];
    assert_eq!(params["media.streamType"], "video");
    assert_eq!(
        params["analytics.reportSuite"], "example-rsid",
        "if_absent keeps the player's value"
    );
    assert_eq!(
        params["analytics.trackingServer"],
        "first-party.example.com"
    );
    assert!(
        gw.metric_when(
            "mediagate_body_enrichments_total{route=\"/api/v1/sessions\"}",
            |v| v >= 1.0
        ) >= 1.0
    );
    // Events are forwarded byte for byte.
    let r = gw.post(&format!("/api/v1/sessions/{sid}/events"), PING);
    assert_eq!(r.status, 204);
    let seen = gw.emulator_session(&sid);
    assert_eq!(
        seen["events"][1],
        serde_json::from_slice::<serde_json::Value>(PING).unwrap()
    );
    let _ = seen;
}

#[test]
fn a_dead_upstream_gets_a_502_json_error() {
    // A port nobody listens on: connections are refused.
    let dead = HeldPort::new();
    let gw = Gateway::start(Options {
        upstream: Some(dead.url()),
        ..Options::default()
    });
    let r = gw.post("/api/v1/sessions", SESSION_START);
    assert_json_error(&r, 502);
    assert_eq!(
        gw.metric_when(
            "mediagate_upstream_errors_total{kind=\"connect\",upstream=\"primary\"}",
            |v| v >= 1.0
        ),
        1.0
    );
    assert_eq!(
        gw.metric_when(
            "mediagate_requests_total{route=\"/api/v1/sessions\",status=\"502\"}",
            |v| v >= 1.0
        ),
        1.0
    );
}

#[test]
fn metrics_and_admin_endpoints() {
    let gw = Gateway::start(Options::default());
    replay(&gw, "resume");
    let _ = gw.post("/api/v1/sessions", b"{not json");
    gw.metric_when(
        "mediagate_requests_total{route=\"/api/v1/sessions\",status=\"400\"}",
        |v| v >= 1.0,
    );
    let text = gw.metrics();
    for (series, at_least) in [
        (
            "mediagate_requests_total{route=\"/api/v1/sessions\",status=\"201\"}",
            1.0,
        ),
        (
            "mediagate_requests_total{route=\"/api/v1/sessions/{sid}/events\",status=\"204\"}",
            1.0,
        ),
        (
            "mediagate_requests_total{route=\"/api/v1/sessions\",status=\"400\"}",
            1.0,
        ),
        (
            "mediagate_validation_failures_total{route=\"/api/v1/sessions\",rule=\"json\"}",
            1.0,
        ),
        (
            "mediagate_request_duration_seconds_count{route=\"/api/v1/sessions\"}",
            2.0,
        ),
        (
            "mediagate_upstream_duration_seconds_count{upstream=\"primary\"}",
            2.0,
        ),
        ("mediagate_events_total{event_type=\"play\"}", 1.0),
        (
            "mediagate_sessions_started_total{content_type=\"vod\"}",
            1.0,
        ),
        ("mediagate_upstream_healthy{upstream=\"primary\"}", 1.0),
        (
            concat!(
                "mediagate_build_info{commit=\"",
                env!("MEDIAGATE_COMMIT"),
                "\",version=\"0.1.0\"}"
            ),
            1.0,
        ),
    ] {
        let v = gw.metric_when(series, |v| v >= at_least);
        assert!(
            v >= at_least,
            "{series} = {v}, expected at least {at_least}"
        );
    }
    assert!(
        !text.contains(&"0".repeat(64)[..16]),
        "no raw path or sid in labels"
    );
    assert_eq!(
        request(gw.admin, "GET", "/healthz", &[], b"")
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        request(gw.admin, "GET", "/readyz", &[], b"")
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        request(gw.admin, "GET", "/nope", &[], b"").unwrap().status,
        404
    );
    if let Ok(out) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
    {
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // One JSON access log line per request.
    // The access log is written out in blocks, at least every 100 ms.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut log = gw.access_log();
    while !log.contains("\"status\":400") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        log = gw.access_log();
    }
    let line = log
        .lines()
        .find(|l| l.contains("\"status\":400"))
        .expect("access log line");
    let entry: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(entry["route"], "/api/v1/sessions");
    assert_eq!(entry["violations"], 1);
}

#[test]
fn sites_custom_metadata_and_privacy_rules_apply_end_to_end() {
    let gw = Gateway::start(Options {
        tables: toml(
            r#"[enrich.custom_metadata]
"geoCountry" = "${header:cf-ipcountry}"
[enrich.privacy]
hash = ["analytics.visitorId"]
hash_secret = "${env:HASH_SECRET}"
[[enrich.site]]
name = "kids"
host = "kids.example.com"
[enrich.site.session_params.always]
"analytics.reportSuite" = "kids-rsid"
"#,
        ),
        env: vec![("HASH_SECRET".into(), "a-long-enough-test-secret".into())],
        ..Options::default()
    });
    // Every rule set's series exist from the start, at 0.
    let before = gw.metrics();
    for series in [
        "mediagate_enrichments_total{action=\"param_set\",site=\"kids\"} 0",
        "mediagate_enrichments_total{action=\"custom_metadata_set\",site=\"default\"} 0",
        "mediagate_body_enrichments_total{route=\"/api/v1/sessions\"} 0",
    ] {
        assert!(before.contains(series), "{series} missing:\n{before}");
    }
    let send = |host: &str| {
        let r = request(
            gw.addr,
            "POST",
            "/api/v1/sessions",
            &[
                ("Content-Type", "application/json"),
                ("Host", host),
                ("CF-IPCountry", "FR"),
            ],
            SESSION_START,
        )
        .unwrap();
        assert_eq!(r.status, 201, "{}", r.text());
        let sid = sid_of(r.header("location").unwrap()).to_owned();
        gw.emulator_session(&sid)["events"][0].clone()
    };
    let kids = send("kids.example.com");
    assert_eq!(kids["params"]["analytics.reportSuite"], "kids-rsid");
    assert_eq!(kids["customMetadata"]["geoCountry"], "FR");
    let visitor = kids["params"]["analytics.visitorId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(visitor.len(), 64, "hashed: {visitor}");
    let other = send("www.example.com");
    assert_eq!(other["params"]["analytics.reportSuite"], "example-rsid");
    assert_eq!(
        other["params"]["analytics.visitorId"],
        visitor.as_str(),
        "same secret, same hash"
    );
    assert!(
        gw.metric_when(
            "mediagate_enrichments_total{action=\"param_set\",site=\"kids\"}",
            |v| v >= 1.0
        ) >= 1.0
    );
    assert!(
        gw.metric_when(
            "mediagate_enrichments_total{action=\"param_hashed\",site=\"default\"}",
            |v| v >= 1.0
        ) >= 1.0
    );
}

#[test]
fn an_idle_session_expires_upstream_and_its_410_reaches_the_player() {
    let gw = Gateway::start(Options {
        emulator: vec!["--idle-timeout-seconds".into(), "1".into()],
        ..Options::default()
    });
    let sid = gw.start_session();
    let path = format!("/api/v1/sessions/{sid}/events");
    assert_eq!(gw.post(&path, PING).status, 204);
    // Spec X31: no event for longer than the idle timeout. Poll until the emulator expires it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut r = gw.post(&path, PING);
    while r.status == 204 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        r = gw.post(&path, PING);
    }
    assert_eq!(r.status, 410, "{}", r.text());
    assert_cors(&r);
}
