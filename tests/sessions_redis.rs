//! Session tracking on the Redis store, black box: a real `redis-server` started by the test,
//! real gateway processes sharing it in front of one emulator, a session's calls spread over
//! them; a gateway restarted mid-session; the Redis server killed and started again.

mod common;

use common::*;
use std::time::Duration;
use testkit::{poll, request, toml, Emulator, Gateway, Options, RedisServer};

const T0: i64 = 1_768_507_200_000;

fn gateway(emulator: &Emulator, redis: &RedisServer, prefix: &str) -> Gateway {
    Gateway::start(Options {
        upstream: Some(emulator.url()),
        tables: toml(&format!(
            "[sessions]\nstore = \"redis\"\nredis_url = \"{}\"\nkey_prefix = \"{prefix}\"\n\
             reorder_window_ms = 200\nstore_timeout_ms = 200\n",
            redis.url()
        )),
        ..Options::default()
    })
}

#[test]
fn two_gateways_sharing_redis_judge_one_session_as_one_gateway_would() {
    let redis = RedisServer::start();
    let emulator = Emulator::start(&[]);
    let a = gateway(&emulator, &redis, "t1:");
    let b = gateway(&emulator, &redis, "t1:");
    // `b` labels another player first: label numbers differ between the replicas.
    let mut other = fixture("vod/01-sessions-sessionStart.json");
    other["params"]["media.playerName"] = "seen-first-on-b".into();
    other["params"]["media.length"] = "not a number".into();
    let r = b.post(
        "/api/v1/sessions",
        &serde_json::to_vec(&other).expect("JSON"),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let sid = start_vod(&a, T0);
    // A clean ad break, its calls alternating between the replicas.
    accepted(&b, &sid, &vod("adBreakStart", T0 + 10));
    accepted(&a, &sid, &vod("adStart", T0 + 20));
    accepted(&b, &sid, &vod("adComplete", T0 + 30));
    accepted(&a, &sid, &vod("adBreakComplete", T0 + 40));
    // One ad outside any break, then the end.
    accepted(&b, &sid, &vod("adStart", T0 + 50));
    accepted(&a, &sid, &vod("adComplete", T0 + 60));
    accepted(&b, &sid, &vod("sessionEnd", T0 + 70));
    // The end reached `b`; `a` refuses what follows, without the upstream.
    let upstream = emulator.requests();
    let r = send(&a, &sid, &ping(T0 + 80, 1.0));
    assert_eq!(r.status, 410, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["rule"], "session_closed");
    assert_eq!(emulator.requests(), upstream);
    // `b` never saw the start: the stored session names its player, `b` counts it by that name.
    let r = send(&b, &sid, &ping(T0 + 90, 1.0));
    assert_eq!(r.status, 410, "{}", r.text());
    let by_player = "mediagate_violations_by_player_total{player=\"acme-html5-player\",rule=\"session_closed\",sdk=\"acme-player-4.2\"}";
    assert_eq!(
        b.metric_when(by_player, |v| v >= 1.0),
        1.0,
        "{}",
        b.metrics()
    );
    // Judged once across the two (both ad calls outside the break), as one gateway would.
    let total = |rule: &str| violations(&a, rule) + violations(&b, rule);
    let mut last = 0.0;
    poll(Duration::from_secs(5), || {
        last = total("ad_outside_break");
        (last == 2.0).then_some(())
    });
    assert_eq!(last, 2.0, "{}\n{}", a.stderr(), b.stderr());
    assert_eq!(
        all_violations(&a) + all_violations(&b),
        2.0 + total("session_closed")
    );
    assert_eq!(total("session_closed"), 2.0);
    assert_eq!(calls(&a, "unknown") + calls(&b, "unknown"), 0.0);
    let (status, v) = view(&b, &sid);
    assert_eq!(status, 200);
    assert_eq!(v["store"], "redis");
    assert_eq!(v["session"]["closed"], "session_end", "{v}");
    // The fleet's count of open sessions comes from the store: none is open now.
    let s2 = start_vod(&a, T0);
    accepted(&b, &s2, &ping(T0 + 10, 1.0));
    for gw in [&a, &b] {
        let seen = poll(Duration::from_secs(5), || {
            (gw.metric("mediagate_sessions_active") == 1.0).then_some(())
        });
        assert!(seen.is_some(), "{}", gw.metrics());
    }
    // Keys carry the prefix and expire with the session.
    let ttl = redis.command(&format!("PTTL t1:{sid}")).unwrap_or_default();
    let ttl: i64 = ttl.trim().trim_start_matches(':').parse().unwrap_or(-1);
    assert!(ttl > 0, "the key expires: {ttl}");
}

#[test]
fn a_gateway_restarted_mid_session_keeps_judging_it() {
    let redis = RedisServer::start();
    let emulator = Emulator::start(&[]);
    let first = gateway(&emulator, &redis, "t2:");
    let sid = start_vod(&first, T0);
    accepted(&first, &sid, &vod("adBreakStart", T0 + 10));
    drop(first);
    // A new process (a crash and restart, a rolling deploy): the session is still known.
    let second = gateway(&emulator, &redis, "t2:");
    accepted(&second, &sid, &vod("adStart", T0 + 20));
    accepted(&second, &sid, &vod("adComplete", T0 + 30));
    accepted(&second, &sid, &vod("adBreakComplete", T0 + 40));
    accepted(&second, &sid, &vod("sessionEnd", T0 + 50));
    assert_eq!(calls(&second, "judged"), 4.0);
    assert_eq!(all_violations(&second), 0.0, "{}", second.stderr());
    let r = send(&second, &sid, &ping(T0 + 60, 1.0));
    assert_eq!(r.status, 410, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["rule"], "session_closed");
}

#[test]
fn a_dead_redis_never_fails_a_call_and_judging_resumes_when_it_is_back() {
    let mut redis = RedisServer::start();
    let emulator = Emulator::start(&[]);
    let gw = gateway(&emulator, &redis, "t3:");
    let sid = start_vod(&gw, T0);
    accepted(&gw, &sid, &ping(T0 + 10, 1.0));
    assert_eq!(calls(&gw, "judged"), 1.0);

    redis.kill();
    // Every call is answered as without session checks: starts, events, even an ad outside
    // any break (not judged: the state cannot be read).
    let other = start_vod(&gw, T0);
    for i in 0..20 {
        accepted(&gw, &sid, &ping(T0 + 100 + i, 1.0));
        accepted(&gw, &other, &vod("adStart", T0 + 100 + i));
    }
    let m = gw.metrics();
    assert!(
        sum(&m, "mediagate_session_store_errors_total", &[]) > 0.0,
        "{m}"
    );
    assert_eq!(calls(&gw, "unknown"), 40.0);
    assert_eq!(all_violations(&gw), 0.0);
    let ready = request(gw.admin, "GET", "/readyz", &[], b"").expect("admin");
    assert_eq!(
        ready.status, 200,
        "a dead store does not make the gateway unready"
    );

    // Back (empty): new sessions are judged again once the client has reconnected.
    redis.restart();
    let judged = poll(Duration::from_secs(10), || {
        let s = start_vod(&gw, T0);
        let before = calls(&gw, "judged");
        accepted(&gw, &s, &ping(T0 + 10, 1.0));
        (calls(&gw, "judged") > before).then_some(s)
    })
    .expect("judged again once Redis is back");
    accepted(&gw, &judged, &vod("sessionEnd", T0 + 20));
    assert_eq!(send(&gw, &judged, &ping(T0 + 30, 1.0)).status, 410);
    // The session that lived through the outage is unknown (its state is gone), never
    // misjudged.
    accepted(&gw, &sid, &vod("adStart", T0 + 500));
    assert_eq!(all_violations(&gw) - violations(&gw, "session_closed"), 0.0);
}

#[test]
fn a_tls_redis_is_verified_with_the_configured_ca() {
    let tls = fixture_path("tls");
    let redis = RedisServer::start_tls(
        &tls.join("server.pem"),
        &tls.join("server.key"),
        &tls.join("ca.pem"),
    );
    assert!(redis.url().starts_with("rediss://"));
    let emulator = Emulator::start(&[]);
    let with_ca = |ca: Option<&std::path::Path>| {
        let ca = ca.map_or(String::new(), |p| {
            format!("redis_ca_file = \"{}\"\n", p.display())
        });
        Gateway::start(Options {
            upstream: Some(emulator.url()),
            tables: toml(&format!(
                "[sessions]\nstore = \"redis\"\nredis_url = \"{}\"\n{ca}store_timeout_ms = 500\n",
                redis.url()
            )),
            ..Options::default()
        })
    };
    // Verified with the test CA: judged.
    let gw = with_ca(Some(&tls.join("ca.pem")));
    let sid = start_vod(&gw, T0);
    accepted(&gw, &sid, &ping(T0 + 10, 1.0));
    assert_eq!(calls(&gw, "judged"), 1.0, "{}", gw.stderr());
    assert_eq!(
        sum(&gw.metrics(), "mediagate_session_store_errors_total", &[]),
        0.0
    );

    // The system's roots do not know the test CA: the handshake fails, calls go on unjudged.
    let gw = with_ca(None);
    let sid = start_vod(&gw, T0);
    accepted(&gw, &sid, &ping(T0 + 10, 1.0));
    assert_eq!(calls(&gw, "unknown"), 1.0);
    assert!(sum(&gw.metrics(), "mediagate_session_store_errors_total", &[]) > 0.0);
}
