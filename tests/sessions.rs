//! Session tracking, black box: the real gateway in front of the real emulator, players' calls
//! over HTTP, the tracker seen through its answers, `GET /sessions/{sid}` and its metrics. The
//! gateway's own `[sessions]` timeouts are shortened so that expiry happens in seconds (the
//! emulator's stay at 10 minutes: a 410 the emulator did not see is the gateway's).

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;
use testkit::{poll, request, toml, Emulator, Gateway, Options};

const T0: i64 = 1_768_507_200_000;

/// A gateway whose `[sessions]` table holds `sessions` (a 200 ms reorder window unless it says).
fn gateway(sessions: &str) -> Gateway {
    let window = match sessions.contains("reorder_window_ms") {
        true => "",
        false => "reorder_window_ms = 200\n",
    };
    let text = match sessions.split_once("[sessions.rules]") {
        Some((keys, rules)) => format!("[sessions]\n{window}{keys}[sessions.rules]{rules}"),
        None => format!("[sessions]\n{window}{sessions}"),
    };
    Gateway::start(Options {
        tables: toml(&text),
        ..Options::default()
    })
}

/// Replays a fixture directory (`NN-<endpoint>-<event>.json`, in name order) as one session.
fn replay_dir(gw: &Gateway, dir: &str) -> (String, usize) {
    let mut files: Vec<String> = std::fs::read_dir(fixture_path(dir))
        .expect("fixture dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let start = std::fs::read(fixture_path(&format!("{dir}/{}", files[0]))).expect("start");
    let r = gw.post("/api/v1/sessions", &start);
    assert_eq!(r.status, 201, "{dir}: {}", r.text());
    let sid = testkit::sid_of(r.header("location").expect("location")).to_owned();
    for f in &files[1..] {
        let body = std::fs::read(fixture_path(&format!("{dir}/{f}"))).expect("event");
        accepted(gw, &sid, &body);
    }
    (sid, files.len() - 1)
}

/// The real SDK trace's requests (`{"arrival", "path", "body"}` lines).
fn trace() -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(fixture_path("traces/js-sdk-3.1-vod-preroll-chapter.jsonl"))
        .expect("trace");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a trace line");
            (
                v["path"].as_str().expect("path").to_owned(),
                v["body"].clone(),
            )
        })
        .collect()
}

/// Replays the trace; with `shuffle`, each burst (calls sharing one `ts`) in reverse order.
fn replay_trace(gw: &Gateway, shuffle: bool) -> (String, usize) {
    let lines = trace();
    let r = gw.post(&lines[0].0, &serde_json::to_vec(&lines[0].1).expect("JSON"));
    assert_eq!(r.status, 201, "{}", r.text());
    let sid = testkit::sid_of(r.header("location").expect("location")).to_owned();
    let mut events: Vec<Value> = lines[1..].iter().map(|(_, b)| b.clone()).collect();
    if shuffle {
        let mut bursts: Vec<Vec<Value>> = Vec::new();
        for e in events {
            match bursts.last_mut() {
                Some(b) if b[0]["playerTime"]["ts"] == e["playerTime"]["ts"] => b.push(e),
                _ => bursts.push(vec![e]),
            }
        }
        assert!(bursts.iter().any(|b| b.len() > 1), "the trace has bursts");
        events = bursts
            .into_iter()
            .flat_map(|b| b.into_iter().rev())
            .collect();
    }
    for e in &events {
        accepted(gw, &sid, &serde_json::to_vec(e).expect("JSON"));
    }
    (sid, events.len())
}

#[test]
fn documented_sessions_and_the_real_sdk_trace_break_no_session_rule() {
    let gw = gateway("");
    let mut sids = Vec::new();
    let mut events = 0;
    for dir in ["vod", "live", "resume"] {
        let (sid, n) = replay_dir(&gw, dir);
        sids.push(sid);
        events += n;
    }
    for shuffle in [false, true] {
        let (sid, n) = replay_trace(&gw, shuffle);
        sids.push(sid);
        events += n;
    }
    // Fixture D: a whole downloaded session in one call (judged by validation alone).
    let batch = std::fs::read(fixture_path("downloaded/01-downloaded-batch.json")).expect("batch");
    let r = gw.post("/api/v1/downloaded", &batch);
    assert!((200..300).contains(&r.status), "{}", r.text());
    for sid in &sids {
        settled(&gw, sid);
    }
    eventually(&gw, "every call judged", events as f64, |gw| {
        calls(gw, "judged")
    });
    assert_eq!(all_violations(&gw), 0.0, "{}", gw.stderr());
    assert_eq!(calls(&gw, "unknown"), 0.0);
    // The VOD fixture and the live one end with sessionEnd.
    let (_, vod) = view(&gw, &sids[0]);
    assert_eq!(vod["session"]["closed"], "session_end");
    assert_eq!(vod["session"]["ad_break_open"], false);
}

#[test]
fn order_sensitive_rules_are_reported_in_ts_order_and_the_calls_go_on() {
    // Findings are logged at debug (counted at every level).
    let gw = Gateway::start(Options {
        tables: toml("[sessions]\nreorder_window_ms = 200\n[log]\nlevel = \"debug\"\n"),
        ..Options::default()
    });
    let sid = start_vod(&gw, T0);
    // Sent out of order within the window: the break opens before the ad by ts, so no finding.
    accepted(&gw, &sid, &vod("adStart", T0 + 20));
    accepted(&gw, &sid, &vod("adBreakStart", T0 + 10));
    let (status, v) = view(&gw, &sid);
    assert_eq!(status, 200);
    assert_eq!(v["known"], true);
    assert!(v["session"]["waiting"].as_u64().unwrap_or(0) >= 1, "{v}");
    settled(&gw, &sid);
    let (_, v) = view(&gw, &sid);
    assert_eq!(v["session"]["ad_break_open"], true, "{v}");
    assert_eq!(v["session"]["ad_open"], true, "{v}");
    accepted(&gw, &sid, &vod("adComplete", T0 + 30));
    accepted(&gw, &sid, &vod("adBreakComplete", T0 + 40));
    assert_eq!(all_violations(&gw), 0.0);

    // Each rule broken once; every call still answered by the upstream.
    accepted(&gw, &sid, &vod("adStart", T0 + 50)); // no break open
    accepted(&gw, &sid, &vod("chapterStart", T0 + 60));
    accepted(&gw, &sid, &vod("chapterStart", T0 + 70)); // overlapping chapter
    accepted(&gw, &sid, &state("stateEnd", "mute", T0 + 80)); // never started
    accepted(&gw, &sid, &vod("adBreakStart", T0 + 90));
    accepted(&gw, &sid, &vod("adBreakStart", T0 + 100)); // nested break
    accepted(&gw, &sid, &ping(T0 + 60, 1.0)); // arrives after later calls: judged late
    settled(&gw, &sid);
    for rule in [
        "ad_outside_break",
        "chapter_overlap",
        "state_not_started",
        "ad_break_nested",
    ] {
        eventually(&gw, rule, 1.0, |gw| violations(gw, rule));
    }
    // The session ends with the break open.
    accepted(&gw, &sid, &vod("sessionEnd", T0 + 200));
    eventually(&gw, "ad_break_unclosed", 1.0, |gw| {
        violations(gw, "ad_break_unclosed")
    });
    assert_eq!(violations(&gw, "session_closed"), 0.0);
    let log = gw.stderr();
    assert!(
        log.contains(&format!("session {sid}: chapter_overlap (chapterStart")),
        "findings are logged with the sid and rule:\n{log}"
    );
}

#[test]
fn a_playhead_out_of_range_is_reported_and_refused_when_enforced() {
    let gw = gateway("");
    let sid = start_vod(&gw, T0);
    // The VOD fixture's media.length is 1800.5 s; the tolerance 10 s.
    accepted(&gw, &sid, &ping(T0 + 10, 1805.0));
    assert_eq!(violations(&gw, "playhead_range"), 0.0);
    accepted(&gw, &sid, &ping(T0 + 20, 5000.0));
    eventually(&gw, "reported", 1.0, |gw| violations(gw, "playhead_range"));

    let strict = gateway("[sessions.rules]\nplayhead_range = \"enforce\"\n");
    let sid = start_vod(&strict, T0);
    let before = strict.emulator_requests();
    let r = send(&strict, &sid, &ping(T0 + 20, 5000.0));
    assert_eq!(r.status, 400, "{}", r.text());
    let body = r.json();
    assert_eq!(body["errors"][0]["rule"], "playhead_range", "{body}");
    assert_eq!(body["errors"][0]["path"], "/playerTime/playhead");
    assert_eq!(
        strict.emulator_requests(),
        before,
        "refused without the upstream"
    );
    let m = strict.metrics();
    assert_eq!(
        sum(
            &m,
            "mediagate_session_violations_total",
            &["rule=\"playhead_range\"", "action=\"refused\""]
        ),
        1.0
    );
    assert_eq!(calls(&strict, "refused"), 1.0);
}

#[test]
fn calls_after_session_end_are_answered_410_by_the_gateway_alone() {
    // X30. The window is long enough to see a late call forwarded, short enough to outwait.
    let gw = gateway("reorder_window_ms = 1000\n");
    let sid = start_vod(&gw, T0);
    accepted(&gw, &sid, &vod("play", T0 + 10));
    accepted(&gw, &sid, &vod("sessionEnd", T0 + 1000));
    let upstream = gw.emulator_requests();
    // Later by the player's clock: certainly after the end.
    let r = send(&gw, &sid, &ping(T0 + 2000, 2.0));
    assert_eq!(r.status, 410, "{}", r.text());
    let body = r.json();
    assert_eq!(body["errors"][0]["rule"], "session_closed", "{body}");
    assert!(body["message"].as_str().unwrap_or("").contains("closed"));
    assert_eq!(
        gw.emulator_requests(),
        upstream,
        "the upstream received nothing"
    );
    // Earlier by the player's clock and within the window: it may have been sent before the
    // end, so it is forwarded (and the backend answers for itself).
    let r = send(&gw, &sid, &ping(T0 + 500, 1.0));
    assert_ne!(
        r.json()["errors"][0]["rule"],
        "session_closed",
        "{}",
        r.text()
    );
    assert_eq!(gw.emulator_requests(), upstream + 1);
    // Once the window has passed, even an earlier ts is refused.
    let refused = poll(Duration::from_secs(5), || {
        let r = send(&gw, &sid, &ping(T0 + 500, 1.0));
        (r.status == 410 && r.json()["errors"][0]["rule"] == "session_closed").then_some(())
    });
    assert!(refused.is_some());
    let (_, v) = view(&gw, &sid);
    assert_eq!(v["session"]["closed"], "session_end", "{v}");
    eventually(&gw, "closed by the end", 1.0, |gw| {
        sum(
            &gw.metrics(),
            "mediagate_sessions_closed_total",
            &["reason=\"session_end\""],
        )
    });
    assert!(calls(&gw, "refused") >= 2.0);
}

#[test]
fn idle_and_stalled_sessions_expire_on_the_gateways_own_clock() {
    // X31, no event for the idle timeout.
    let gw = gateway("idle_timeout_seconds = 1\n");
    let sid = start_vod(&gw, T0);
    let closed = poll(Duration::from_secs(5), || {
        (view(&gw, &sid).1["session"]["closed"] == "idle_timeout").then_some(())
    });
    assert!(closed.is_some(), "{:?}", view(&gw, &sid));
    let upstream = gw.emulator_requests();
    let r = send(&gw, &sid, &ping(T0 + 10, 1.0));
    assert_eq!(r.status, 410, "{}", r.text());
    assert_eq!(gw.emulator_requests(), upstream);
    eventually(&gw, "counted by the sweep", 1.0, |gw| {
        sum(
            &gw.metrics(),
            "mediagate_sessions_closed_total",
            &["reason=\"idle_timeout\""],
        )
    });

    // No playhead movement for the playhead timeout, while pings keep it from idling.
    let gw = gateway("idle_timeout_seconds = 60\nplayhead_timeout_seconds = 1\n");
    let sid = start_vod(&gw, T0);
    let mut ts = T0;
    let stalled = poll(Duration::from_secs(5), || {
        ts += 100;
        let r = send(&gw, &sid, &ping(ts, 0.0));
        (r.status == 410).then_some(r)
    })
    .expect("the session stalls");
    assert_eq!(stalled.json()["errors"][0]["rule"], "session_closed");
    assert_eq!(view(&gw, &sid).1["session"]["closed"], "playhead_timeout");
}

#[test]
fn an_upstream_that_lost_the_session_closes_it_for_the_gateway() {
    let gw = Gateway::start(Options {
        emulator: vec!["--idle-timeout-seconds".into(), "1".into()],
        tables: toml("[sessions]\nreorder_window_ms = 200\n"),
        ..Options::default()
    });
    let sid = start_vod(&gw, T0);
    // The emulator expires the session after a second without events.
    let expired = poll(Duration::from_secs(10), || {
        (gw.emulator_session(&sid)["state"] == "expired").then_some(())
    });
    assert!(expired.is_some(), "{}", gw.emulator_session(&sid));
    // The gateway's own clock says open: it forwards, and the upstream's 410 is relayed.
    let upstream = gw.emulator_requests();
    assert_eq!(send(&gw, &sid, &ping(T0 + 10, 0.0)).status, 410);
    assert_eq!(gw.emulator_requests(), upstream + 1);
    assert_eq!(view(&gw, &sid).1["session"]["closed"], "upstream_gone");
    let upstream = gw.emulator_requests();
    assert_eq!(send(&gw, &sid, &ping(T0 + 20, 0.0)).status, 410);
    assert_eq!(gw.emulator_requests(), upstream, "answered by the gateway");
}

#[test]
fn unknown_sessions_are_forwarded_unjudged_or_rejected_when_asked() {
    let emulator = Emulator::start(&[]);
    // A session started without the gateway (another path, or before a restart).
    let start = std::fs::read(fixture_path("vod/01-sessions-sessionStart.json")).expect("start");
    let r = request(
        emulator.addr,
        "POST",
        "/api/v1/sessions",
        &[("Content-Type", "application/json")],
        &start,
    )
    .expect("emulator");
    assert_eq!(r.status, 201);
    let sid = testkit::sid_of(r.header("location").expect("location")).to_owned();

    let open = Gateway::start(Options {
        upstream: Some(emulator.url()),
        tables: toml("[sessions]\nreorder_window_ms = 100\n"),
        ..Options::default()
    });
    // An ad outside any break: never judged, since the gateway does not know the session.
    accepted(&open, &sid, &vod("adStart", T0 + 10));
    accepted(&open, &sid, &ping(T0 + 20, 1.0));
    assert_eq!(calls(&open, "unknown"), 2.0);
    assert_eq!(all_violations(&open), 0.0);
    assert_eq!(view(&open, &sid).0, 404);
    assert_eq!(view(&open, &sid).1["known"], false);

    let strict = Gateway::start(Options {
        upstream: Some(emulator.url()),
        tables: toml("[sessions]\nunknown_sessions = \"reject\"\n"),
        ..Options::default()
    });
    let before = emulator.requests();
    let r = send(&strict, &sid, &ping(T0 + 30, 1.0));
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.json()["message"]
        .as_str()
        .unwrap_or("")
        .contains("unknown session"));
    assert_eq!(emulator.requests(), before);
    // A session the strict gateway saw start is served.
    let own = start_vod(&strict, T0);
    accepted(&strict, &own, &ping(T0 + 10, 1.0));
}

#[test]
fn the_session_cap_evicts_and_evicted_sessions_become_unknown() {
    // 64 sessions at most: one per shard of the memory store.
    let gw = gateway("max_sessions = 64\n");
    let sids: Vec<String> = (0..150).map(|i| start_vod(&gw, T0 + i)).collect();
    let evicted = gw.metric("mediagate_sessions_evicted_total");
    assert!(evicted > 0.0 && evicted < 150.0, "{evicted}");
    for sid in &sids {
        accepted(&gw, sid, &ping(T0 + 1000, 1.0));
    }
    assert_eq!(
        calls(&gw, "unknown"),
        evicted,
        "an evicted session is unknown, not misjudged"
    );
    assert_eq!(calls(&gw, "judged"), 150.0 - evicted);
    assert_eq!(all_violations(&gw), 0.0);
    assert!(gw.metric("mediagate_sessions_active") <= 64.0);
}

#[test]
fn tracking_can_be_switched_off() {
    let gw = gateway("enabled = false\n");
    let sid = start_vod(&gw, T0);
    accepted(&gw, &sid, &vod("adStart", T0 + 10));
    accepted(&gw, &sid, &vod("sessionEnd", T0 + 20));
    // The backend decides alone.
    let r = send(&gw, &sid, &ping(T0 + 30, 1.0));
    assert_ne!(r.status, 502);
    assert_eq!(calls(&gw, "judged") + calls(&gw, "unknown"), 0.0);
    assert_eq!(view(&gw, &sid).0, 404);
}
