use super::*;
use crate::codec;
use crate::observation::state_hash;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");

/// The Media Collection API's event names as session kinds (the gateway maps its parsed events
/// the same way).
fn kind_of(event_type: &str) -> Kind {
    match event_type {
        "sessionStart" => Kind::Start,
        "play" => Kind::Play,
        "ping" => Kind::Ping,
        "bufferStart" => Kind::BufferStart,
        "pauseStart" => Kind::PauseStart,
        "adBreakStart" => Kind::AdBreakStart,
        "adStart" => Kind::AdStart,
        "adComplete" => Kind::AdComplete,
        "adSkip" => Kind::AdSkip,
        "adBreakComplete" => Kind::AdBreakComplete,
        "chapterStart" => Kind::ChapterStart,
        "chapterComplete" => Kind::ChapterComplete,
        "chapterSkip" => Kind::ChapterSkip,
        "stateStart" => Kind::StateStart,
        "stateEnd" => Kind::StateEnd,
        "sessionComplete" => Kind::Complete,
        "sessionEnd" => Kind::End,
        _ => Kind::Other,
    }
}

fn observe(body: &serde_json::Value) -> Observation {
    let state = body["params"]["media.state.name"]
        .as_str()
        .map_or(0, state_hash);
    Observation {
        kind: kind_of(body["eventType"].as_str().unwrap_or("")),
        ts: body["playerTime"]["ts"].as_i64().unwrap(),
        playhead: body["playerTime"]["playhead"].as_f64().unwrap_or(f64::NAN),
        state,
    }
}

fn start_of(body: &serde_json::Value) -> Start {
    let params = &body["params"];
    Start {
        ts: body["playerTime"]["ts"].as_i64().unwrap(),
        playhead: body["playerTime"]["playhead"].as_f64().unwrap_or(0.0),
        content: Content::of(params["media.contentType"].as_str().unwrap_or("")),
        length: params["media.length"].as_f64(),
        player: 0,
        sdk: 0,
    }
}

/// The bodies of one fixture directory (a session in order), or of the downloaded batch.
fn fixture(dir: &str) -> Vec<serde_json::Value> {
    let path = format!("{FIXTURES}/{dir}");
    let mut files: Vec<_> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut bodies = Vec::new();
    for f in files {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        match v {
            serde_json::Value::Array(items) => bodies.extend(items),
            one => bodies.push(one),
        }
    }
    bodies
}

fn trace() -> Vec<serde_json::Value> {
    std::fs::read_to_string(format!(
        "{FIXTURES}/traces/js-sdk-3.1-vod-preroll-chapter.jsonl"
    ))
    .unwrap()
    .lines()
    .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["body"].clone())
    .collect()
}

/// Replays `bodies` (a session, its start first), each call arriving at `arrival(i, ts)`
/// (gateway milliseconds), every call gated and then accepted, and settles long after.
/// Returns every finding.
fn replay(
    bodies: &[serde_json::Value],
    s: &Settings,
    arrival: impl Fn(usize, i64) -> u64,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let first = &bodies[0];
    let t0 = first["playerTime"]["ts"].as_i64().unwrap();
    let mut session = Session::new(&start_of(first), arrival(0, t0));
    let mut calls: Vec<(u64, Observation)> = bodies[1..]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let o = observe(b);
            (arrival(i + 1, o.ts), o)
        })
        .collect();
    calls.sort_by_key(|(at, _)| *at);
    let mut last = 0;
    for (at, obs) in &calls {
        assert_eq!(
            session.gate(obs, *at, s, &mut out),
            Gate::Forward,
            "{obs:?}"
        );
        session.accept(obs, *at, s, &mut out);
        last = *at;
    }
    session.settle(last + s.reorder_window_ms, s, &mut out);
    out
}

/// Every documented sequence, and a real SDK's trace, judged with every rule on.
fn all_rules_on() -> Settings {
    let mut s = Settings::default();
    for r in Rule::ALL {
        s.set_mode(
            *r,
            if r.order_sensitive() {
                Mode::Report
            } else {
                Mode::Enforce
            },
        )
        .unwrap();
    }
    // Documented sequences leave pings out, so the gap rule is judged only where pings are.
    s.set_mode(Rule::PingGap, Mode::Off).unwrap();
    s.idle_timeout_ms = u64::MAX / 4;
    s.playhead_timeout_ms = u64::MAX / 4;
    s
}

/// Calls arriving at their own `ts` (the player's clock and the gateway's agree).
fn on_time(t0: i64) -> impl Fn(usize, i64) -> u64 {
    move |_, ts| (ts - t0) as u64 + 1_000_000
}

#[test]
fn documented_sequences_and_a_real_trace_break_no_rule() {
    let s = all_rules_on();
    for dir in ["vod", "live", "resume", "downloaded"] {
        let bodies = fixture(dir);
        let t0 = bodies[0]["playerTime"]["ts"].as_i64().unwrap();
        assert_eq!(replay(&bodies, &s, on_time(t0)), vec![], "{dir}");
    }
    let bodies = trace();
    let t0 = bodies[0]["playerTime"]["ts"].as_i64().unwrap();
    assert_eq!(replay(&bodies, &s, on_time(t0)), vec![], "trace");
}

#[test]
fn shuffled_bursts_break_no_rule() {
    let s = all_rules_on();
    let sets: Vec<Vec<serde_json::Value>> = ["vod", "live", "resume"]
        .iter()
        .map(|d| fixture(d))
        .chain(std::iter::once(trace()))
        .collect();
    for bodies in &sets {
        let t0 = bodies[0]["playerTime"]["ts"].as_i64().unwrap();
        for seed in 0..200u64 {
            // Each call arrives at its ts plus a delay of up to 1.5 s: calls less than that
            // apart arrive in any order (a burst sent concurrently), all within the window.
            let arrival = |i: usize, ts: i64| {
                let mut x = seed.wrapping_mul(6_364_136_223_846_793_005) ^ (i as u64 + 1);
                x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                (ts - t0) as u64 + 1_000_000 + (x >> 40) % 1_500
            };
            assert_eq!(replay(bodies, &s, arrival), vec![], "seed {seed}");
        }
    }
}

fn vod_start(ts: i64) -> Start {
    Start {
        ts,
        playhead: 0.0,
        content: Content::Vod,
        length: Some(60.0),
        player: 0,
        sdk: 0,
    }
}

fn obs(kind: Kind, ts: i64, playhead: f64) -> Observation {
    Observation {
        kind,
        ts,
        playhead,
        state: 0,
    }
}

/// The rules a sequence of `(kind, ts)` breaks (arriving in order, 100 ms apart).
fn broken(calls: &[(Kind, i64)], s: &Settings) -> Vec<Rule> {
    let mut session = Session::new(&vod_start(0), 1_000);
    let mut out = Vec::new();
    let mut now = 1_000;
    for (kind, ts) in calls {
        now += 100;
        let o = Observation {
            kind: *kind,
            ts: *ts,
            playhead: 1.0,
            state: if matches!(kind, Kind::StateStart | Kind::StateEnd) {
                *ts as u32
            } else {
                0
            },
        };
        session.gate(&o, now, s, &mut out);
        session.accept(&o, now, s, &mut out);
    }
    session.settle(now + s.reorder_window_ms, s, &mut out);
    out.into_iter().map(|f| f.rule).collect()
}

#[test]
fn each_order_sensitive_rule_has_a_sequence_that_breaks_it_and_one_that_does_not() {
    let mut s = all_rules_on();
    s.set_mode(Rule::PingGap, Mode::Report).unwrap();
    use Kind::*;
    // Each rule: a sequence (kind, ts) that breaks it, and a near one that does not.
    type Sequence = Vec<(Kind, i64)>;
    let cases: Vec<(Rule, Sequence, Sequence)> = vec![
        (
            Rule::AdOutsideBreak,
            vec![(AdBreakStart, 5), (AdBreakComplete, 8), (AdStart, 10)],
            vec![
                (AdBreakStart, 10),
                (AdStart, 10),
                (AdComplete, 20),
                (AdBreakComplete, 20),
            ],
        ),
        (
            Rule::AdBreakUnclosed,
            vec![
                (AdBreakStart, 10),
                (AdStart, 10),
                (AdComplete, 20),
                (End, 30),
            ],
            vec![(AdBreakStart, 10), (AdBreakComplete, 20), (End, 30)],
        ),
        (
            Rule::AdBreakNested,
            vec![(AdBreakStart, 10), (AdBreakStart, 20)],
            vec![
                (AdBreakStart, 10),
                (AdBreakComplete, 15),
                (AdBreakStart, 20),
            ],
        ),
        (
            Rule::AdOverlap,
            vec![(AdBreakStart, 10), (AdStart, 11), (AdStart, 12)],
            // An ad started and skipped in one burst, then the next one.
            vec![
                (AdBreakStart, 10),
                (AdStart, 11),
                (AdSkip, 11),
                (AdStart, 12),
            ],
        ),
        (
            Rule::ChapterOverlap,
            vec![(ChapterStart, 10), (ChapterStart, 20)],
            vec![
                (ChapterStart, 10),
                (ChapterComplete, 20),
                (ChapterStart, 20),
            ],
        ),
        (
            Rule::StateNotStarted,
            vec![(StateEnd, 7)],
            vec![(StateStart, 7), (StateEnd, 7)],
        ),
        (
            Rule::StateLimit,
            (1..=11).map(|i| (StateStart, i)).collect(),
            (1..=10).map(|i| (StateStart, i)).collect(),
        ),
        (
            Rule::PingBurst,
            vec![(Ping, 10_000), (Ping, 10_200)],
            vec![(Ping, 10_000), (Ping, 11_000)],
        ),
        (
            Rule::PingGap,
            vec![(Play, 1_000), (Ping, 11_000), (Ping, 80_000)],
            vec![(Play, 1_000), (PauseStart, 2_000), (Ping, 80_000)],
        ),
    ];
    for (rule, breaks, keeps) in cases {
        assert_eq!(broken(&breaks, &s), vec![rule], "{rule:?} should be broken");
        assert_eq!(broken(&keeps, &s), vec![], "{rule:?} should hold");
        // Off: not judged.
        let mut off = s.clone();
        off.set_mode(rule, Mode::Off).unwrap();
        assert!(!broken(&breaks, &off).contains(&rule));
    }
}

#[test]
fn a_call_arriving_after_its_window_is_judged_ts_backwards_not_in_order() {
    let s = all_rules_on();
    let mut session = Session::new(&vod_start(0), 0);
    let mut out = Vec::new();
    session.accept(&obs(Kind::AdBreakStart, 100, 0.0), 10, &s, &mut out);
    session.accept(&obs(Kind::AdBreakComplete, 200, 0.0), 20, &s, &mut out);
    session.settle(5_000, &s, &mut out);
    // The ad arrives 5 s later with a ts inside the break: out of order, not "outside".
    session.accept(&obs(Kind::AdStart, 150, 0.0), 5_000, &s, &mut out);
    session.settle(10_000, &s, &mut out);
    let rules: Vec<Rule> = out.iter().map(|f| f.rule).collect();
    assert_eq!(rules, vec![Rule::TsBackwards]);
    // Within the window the same arrival order is judged in ts order: nothing broken.
    let mut session = Session::new(&vod_start(0), 0);
    let mut out = Vec::new();
    session.accept(&obs(Kind::AdBreakStart, 100, 0.0), 10, &s, &mut out);
    session.accept(&obs(Kind::AdBreakComplete, 200, 0.0), 20, &s, &mut out);
    session.accept(&obs(Kind::AdStart, 150, 0.0), 500, &s, &mut out);
    session.accept(&obs(Kind::AdComplete, 160, 0.0), 510, &s, &mut out);
    session.settle(10_000, &s, &mut out);
    assert_eq!(out, vec![]);
}

#[test]
fn calls_after_the_end_are_refused_only_when_certainly_later() {
    let s = Settings::default();
    let mut session = Session::new(&vod_start(0), 0);
    let mut out = Vec::new();
    session.accept(&obs(Kind::End, 1_000, 5.0), 1_000, &s, &mut out);
    // A ping stamped before the end, arriving within the window: forwarded.
    assert_eq!(
        session.gate(&obs(Kind::Ping, 900, 5.0), 2_000, &s, &mut out),
        Gate::Forward
    );
    // Stamped after the end: refused.
    let late = obs(Kind::Ping, 1_100, 5.0);
    assert_eq!(
        session.gate(&late, 1_200, &s, &mut out),
        Gate::Refuse(Rule::SessionClosed)
    );
    // Stamped before, but arriving after the window: refused.
    assert_eq!(
        session.gate(&obs(Kind::Ping, 900, 5.0), 3_001, &s, &mut out),
        Gate::Refuse(Rule::SessionClosed)
    );
    assert_eq!(out.len(), 2);
    // Report mode counts and forwards; off forwards without a finding.
    let mut report = s.clone();
    report.set_mode(Rule::SessionClosed, Mode::Report).unwrap();
    let mut out = Vec::new();
    assert_eq!(session.gate(&late, 1_200, &report, &mut out), Gate::Forward);
    assert_eq!(out.len(), 1);
}

#[test]
fn sessions_expire_by_idle_time_and_by_a_still_playhead() {
    let mut s = Settings::default();
    s.idle_timeout_ms = 600_000;
    s.playhead_timeout_ms = 1_800_000;
    let mut session = Session::new(&vod_start(0), 0);
    let mut out = Vec::new();
    assert_eq!(session.closed_at(599_999, &s), None);
    assert_eq!(
        session.closed_at(600_000, &s),
        Some((Closed::Idle, 600_000))
    );
    // Pings every 5 minutes with the playhead still: the playhead timeout.
    for i in 1..=5u64 {
        session.accept(
            &obs(Kind::Ping, (i * 300_000) as i64, 0.0),
            i * 300_000,
            &s,
            &mut out,
        );
    }
    assert_eq!(
        session.closed_at(1_800_000, &s),
        Some((Closed::Stalled, 1_800_000))
    );
    let settled = session.settle(1_800_001, &s, &mut out);
    assert_eq!(settled.closed, Some(Closed::Stalled));
    assert!(!settled.forget);
    assert!(
        session
            .settle(1_800_000 + s.closed_retention_ms + 1, &s, &mut out)
            .forget
    );
    // A moving playhead keeps it open.
    let mut moving = Session::new(&vod_start(0), 0);
    for i in 1..=10u64 {
        moving.accept(
            &obs(Kind::Ping, (i * 300_000) as i64, i as f64),
            i * 300_000,
            &s,
            &mut out,
        );
    }
    assert_eq!(moving.closed_at(3_000_000, &s), None);
}

#[test]
fn playheads_out_of_range() {
    let mut s = Settings::default();
    let live = Session::new(
        &Start {
            content: Content::Live,
            length: None,
            ..vod_start(0)
        },
        0,
    );
    let vod = Session::new(&vod_start(0), 0);
    let mut out = Vec::new();
    // X32: a live playhead of 90000.
    assert_eq!(
        live.gate(&obs(Kind::Ping, 1, 90_000.0), 1, &s, &mut out),
        Gate::Forward
    );
    assert_eq!(out.pop().map(|f| f.rule), Some(Rule::PlayheadRange));
    assert_eq!(
        live.gate(&obs(Kind::Ping, 1, 86_399.0), 1, &s, &mut out),
        Gate::Forward
    );
    assert!(out.is_empty());
    assert_eq!(
        vod.gate(&obs(Kind::Ping, 1, 70.0), 1, &s, &mut out),
        Gate::Forward
    );
    assert!(out.is_empty(), "60 s plus the tolerance");
    vod.gate(&obs(Kind::Ping, 1, 70.5), 1, &s, &mut out);
    assert_eq!(out.pop().map(|f| f.rule), Some(Rule::PlayheadRange));
    s.set_mode(Rule::PlayheadRange, Mode::Enforce).unwrap();
    assert_eq!(
        live.gate(&obs(Kind::Ping, 1, -1.0), 1, &s, &mut out),
        Gate::Refuse(Rule::PlayheadRange)
    );
}

#[test]
fn a_tainted_session_is_never_judged() {
    let s = all_rules_on();
    let mut session = Session::new(&vod_start(0), 0);
    let mut out = Vec::new();
    session.accept(&obs(Kind::End, 10, 0.0), 10, &s, &mut out);
    session.taint();
    assert_eq!(
        session.gate(&obs(Kind::Ping, 20, 0.0), 100_000, &s, &mut out),
        Gate::Forward
    );
    session.accept(&obs(Kind::AdStart, 30, 0.0), 100_000, &s, &mut out);
    assert!(out.is_empty());
}

#[test]
fn sessions_round_trip_through_bytes() {
    let s = all_rules_on();
    let mut session = Session::new(&vod_start(5), 7);
    let mut out = Vec::new();
    for (i, kind) in [Kind::AdBreakStart, Kind::AdStart, Kind::StateStart]
        .iter()
        .enumerate()
    {
        let mut o = obs(*kind, 10 + i as i64, 1.5);
        o.state = 99;
        session.accept(&o, 20 + i as u64, &s, &mut out);
    }
    assert!(session.has_pending());
    // Label numbers are the writer's: the bytes carry the names, mapped to the reader's own.
    session.player = 7;
    session.sdk = 9;
    let names = ["web", "js-3"];
    let label = |which: usize, name: &str| match (which, name) {
        (0, "web") => 7,
        (1, "js-3") => 9,
        _ => 0,
    };
    let bytes = codec::encode(&session, names);
    assert_eq!(codec::decode(&bytes, &label), Some(session.clone()));
    assert_eq!(codec::decode(&bytes[..bytes.len() - 1], &label), None);
    let mut other = bytes.clone();
    other[0] = 9;
    assert_eq!(codec::decode(&other, &label), None);
    // A version-1 session (no names) still reads, its labels unknown.
    let mut v1 = vec![1u8];
    let fixed = 1 + 8 * 8 + 4 + 4 + 4 + 3;
    v1.extend_from_slice(&bytes[1..fixed]);
    v1.extend_from_slice(&[7, 0, 9, 0]);
    v1.extend_from_slice(&bytes[fixed + 1 + 3 + 1 + 4..]);
    let old = codec::decode(&v1, &|_, name| if name.is_empty() { 1 } else { 99 }).expect("v1");
    assert_eq!((old.player, old.sdk), (1, 1));
    assert_eq!(old.events, session.events);
    let elsewhere = |which: usize, _: &str| 20 + which as u16;
    let read = codec::decode(&bytes, &elsewhere).expect("decodes");
    assert_eq!((read.player, read.sdk), (20, 21));
    session.settle(10_000, &s, &mut out);
    let bytes = codec::encode(&session, names);
    assert_eq!(codec::decode(&bytes, &label), Some(session));
    assert!(bytes.len() < 120, "{}", bytes.len());
}

#[test]
fn a_session_is_small() {
    assert!(
        std::mem::size_of::<Session>() <= 104,
        "{}",
        std::mem::size_of::<Session>()
    );
}
