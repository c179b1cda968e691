//! Helpers shared by the session tests: fixture bodies with the clock a test needs, a session
//! replayed call by call, the admin view of a session, and sums of labelled series.
#![allow(dead_code)]

use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use testkit::{poll, request, sid_of, Gateway, Response};

pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A fixture body as JSON.
pub fn fixture(rel: &str) -> Value {
    let text = std::fs::read_to_string(fixture_path(rel)).expect("fixture");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// `body` with `playerTime.ts` (and the playhead, when given) replaced.
pub fn at(mut body: Value, ts: i64, playhead: Option<f64>) -> Vec<u8> {
    body["playerTime"]["ts"] = ts.into();
    if let Some(p) = playhead {
        body["playerTime"]["playhead"] = p.into();
    }
    serde_json::to_vec(&body).expect("JSON")
}

/// The documented VOD event of `name` (Fixture A's file names), at `ts`.
pub fn vod(name: &str, ts: i64) -> Vec<u8> {
    let file = std::fs::read_dir(fixture_path("vod"))
        .expect("vod fixtures")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|f| f.ends_with(&format!("-events-{name}.json")))
        .unwrap_or_else(|| panic!("no vod fixture for {name}"));
    at(fixture(&format!("vod/{file}")), ts, None)
}

/// A `ping` at `ts` with `playhead`.
pub fn ping(ts: i64, playhead: f64) -> Vec<u8> {
    format!(r#"{{"eventType":"ping","playerTime":{{"playhead":{playhead},"ts":{ts}}}}}"#)
        .into_bytes()
}

/// `stateStart` or `stateEnd` of `state`.
pub fn state(kind: &str, name: &str, ts: i64) -> Vec<u8> {
    format!(
        r#"{{"eventType":"{kind}","playerTime":{{"playhead":1,"ts":{ts}}},"params":{{"media.state.name":"{name}"}}}}"#
    )
    .into_bytes()
}

/// Starts a session through `gw` with the VOD fixture's start (ts `ts`); its outward sid.
pub fn start_vod(gw: &Gateway, ts: i64) -> String {
    let r = gw.post(
        "/api/v1/sessions",
        &at(fixture("vod/01-sessions-sessionStart.json"), ts, Some(0.0)),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    sid_of(r.header("location").expect("location")).to_owned()
}

pub fn events_path(sid: &str) -> String {
    format!("/api/v1/sessions/{sid}/events")
}

pub fn send(gw: &Gateway, sid: &str, body: &[u8]) -> Response {
    gw.post(&events_path(sid), body)
}

/// Sends `body` and asserts the upstream accepted it.
pub fn accepted(gw: &Gateway, sid: &str, body: &[u8]) {
    let r = send(gw, sid, body);
    assert!(
        (200..300).contains(&r.status),
        "{} {}: {}",
        r.status,
        String::from_utf8_lossy(body),
        r.text()
    );
}

/// `GET /sessions/{sid}` on the admin listener: status and JSON.
pub fn view(gw: &Gateway, sid: &str) -> (u16, Value) {
    let r = request(gw.admin, "GET", &format!("/sessions/{sid}"), &[], b"").expect("admin");
    (r.status, r.json())
}

/// Waits until the tracker has judged every call of `sid` (none waits for its window).
pub fn settled(gw: &Gateway, sid: &str) {
    let done = poll(Duration::from_secs(10), || {
        let (status, v) = view(gw, sid);
        (status == 200 && v["session"]["waiting"] == 0).then_some(())
    });
    assert!(
        done.is_some(),
        "session {sid} never settled: {:?}",
        view(gw, sid)
    );
}

/// The sum of every series of `name` whose labels contain all of `labels` (`rule="x"`).
pub fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|want| rest.contains(want)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Violations of `rule` counted by `gw` (reported and refused).
pub fn violations(gw: &Gateway, rule: &str) -> f64 {
    sum(
        &gw.metrics(),
        "mediagate_session_violations_total",
        &[&format!("rule=\"{rule}\"")],
    )
}

/// Every session violation `gw` counted.
pub fn all_violations(gw: &Gateway) -> f64 {
    sum(&gw.metrics(), "mediagate_session_violations_total", &[])
}

pub fn calls(gw: &Gateway, outcome: &str) -> f64 {
    sum(
        &gw.metrics(),
        "mediagate_session_calls_total",
        &[&format!("outcome=\"{outcome}\"")],
    )
}

/// Polls until `f(gw)` equals `want` (5 s), then asserts it.
pub fn eventually(gw: &Gateway, what: &str, want: f64, f: impl Fn(&Gateway) -> f64) {
    let mut last = f64::NAN;
    poll(Duration::from_secs(5), || {
        last = f(gw);
        (last == want).then_some(())
    });
    assert_eq!(last, want, "{what}\n{}", gw.stderr());
}

/// A gateway in front of an emulator with the quarantine on (in a scratch directory) and no
/// reorder window: session findings are judged at once.
pub fn quarantined_gateway() -> Gateway {
    let spool = testkit::scratch_dir("spool");
    Gateway::start(testkit::Options {
        tables: testkit::toml(&format!(
            "[quarantine]\ndir = \"{}\"\n[sessions]\nreorder_window_ms = 0\n",
            spool.display()
        )),
        ..testkit::Options::default()
    })
}
