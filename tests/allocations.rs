//! The request path's heap allocations, counted by the gateway's own allocator
//! (`MEDIAGATE_COUNT_ALLOCATIONS=1`, read from the admin listener's `GET /debug/allocations`):
//! on a warm keep-alive connection, a ping on a known session and a session start each stay
//! within their budget of allocations on the event loops (docs/benchmarks.md says what they are
//! spent on). A change that adds an allocation per request fails here.

use testkit::{request, sid_of, Conn, Gateway, Options};

const SESSION_START: &[u8] = include_bytes!("fixtures/session-start.json");
const PING: &[u8] = include_bytes!("fixtures/ping.json");

/// Allocations per call on the event loops, at most (measured, see docs/benchmarks.md).
const PING_BUDGET: f64 = 24.0;
const START_BUDGET: f64 = 31.0;

const WARM_UP: usize = 200;
const CALLS: usize = 500;

fn allocations(gw: &Gateway) -> u64 {
    let r = request(gw.admin, "GET", "/debug/allocations", &[], b"").expect("admin answers");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["allocations"].as_u64().expect("a count")
}

/// Allocations per call of `calls` calls made by `call`, after a warm-up.
fn per_call(gw: &Gateway, mut call: impl FnMut()) -> f64 {
    for _ in 0..WARM_UP {
        call();
    }
    let before = allocations(gw);
    for _ in 0..CALLS {
        call();
    }
    let after = allocations(gw);
    (after - before) as f64 / CALLS as f64
}

#[test]
fn the_common_calls_stay_within_their_allocation_budget() {
    let gw = Gateway::start(Options {
        env: vec![("MEDIAGATE_COUNT_ALLOCATIONS".into(), "1".into())],
        ..Options::default()
    });
    let mut conn = Conn::connect(gw.addr).expect("connect");
    let started = conn
        .post_json("/api/v1/sessions", SESSION_START)
        .expect("answer");
    assert_eq!(started.status, 201, "{}", started.text());
    let sid = sid_of(started.header("location").expect("location")).to_owned();
    let events = format!("/api/v1/sessions/{sid}/events");

    let ping = per_call(&gw, || {
        let r = conn.post_json(&events, PING).expect("answer");
        assert_eq!(r.status, 204, "{}", r.text());
    });
    let start = per_call(&gw, || {
        let r = conn
            .post_json("/api/v1/sessions", SESSION_START)
            .expect("answer");
        assert_eq!(r.status, 201, "{}", r.text());
    });
    eprintln!("allocations per call: ping {ping:.2}, sessionStart {start:.2}");
    // Counting works at all (a call cannot be served with none while these budgets hold).
    assert!(ping > 0.0 || start > 0.0, "nothing was counted");
    assert!(
        ping <= PING_BUDGET,
        "a ping allocates {ping:.2} times, budget {PING_BUDGET}"
    );
    assert!(
        start <= START_BUDGET,
        "a session start allocates {start:.2} times, budget {START_BUDGET}"
    );
}

#[test]
fn without_the_variable_nothing_is_counted_or_served() {
    let gw = Gateway::start(Options::default());
    let r = request(gw.admin, "GET", "/debug/allocations", &[], b"").expect("admin answers");
    assert_eq!(r.status, 404, "{}", r.text());
}
