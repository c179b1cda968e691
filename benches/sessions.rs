//! The CPU the session tracker adds per event, with the memory store (`make bench-sessions`),
//! on a store holding 100 000 sessions, events spread over them at random (as a million players'
//! pings are):
//!
//! - `tracker/ping`, `tracker/ad_break`: the gate before forwarding (`Tracker::before`) and the
//!   update after the upstream's 2xx (`Tracker::after`). The reorder window is 0, so each call
//!   is judged as it is accepted: the judging work the sweep would otherwise do later is
//!   included, once.
//! - `tracker/sweep`: one sweep of the store, per session (`Tracker::sweep`: expiry and the
//!   calls whose window passed). With pings every 10 s and a sweep every 4 s (the defaults), a
//!   sweep costs each event 2.5 sessions' worth.
//! - `summary/ping`: what the pipeline takes from the checked body
//!   (`pipeline::summary::summarize`).
//!
//! The goal is at most 1 µs per event (docs/benchmarks.md, "Session tracking").

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mediagate::observe::metrics::Metrics;
use mediagate::pipeline::summary::summarize;
use mediagate::tracker::Tracker;
use sessions::{Content, Kind, Observation, Start};
use std::hint::black_box;

// The gateway binary's allocator (src/main.rs), so allocation costs are those of production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SESSIONS: usize = 100_000;
const PER_ITER: usize = 1_000;
const PING: &[u8] = include_bytes!("../tests/fixtures/ping.json");

fn tracker(metrics: &Metrics) -> Tracker {
    let config = mediagate::config::parse(
        "[[upstream]]\nurl = \"http://127.0.0.1:1\"\n[sessions]\nmax_sessions = 1000000\nreorder_window_ms = 0\n",
        &|_| None,
    )
    .expect("the bench's configuration");
    Tracker::new(
        &config.sessions,
        metrics,
        None,
        std::sync::Arc::new(mediagate::quality::Quality::of_config(
            &config.quality,
            metrics,
        )),
    )
    .expect("a memory tracker")
}

fn sid(i: usize) -> String {
    String::from_utf8_lossy(&sid_bytes(i)).into_owned()
}

/// Session `i`'s sid, spread like real sids (random hex), deterministic, made on the stack (as
/// the gateway reads it from the request path it just parsed: in cache).
fn sid_bytes(i: usize) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut out = [b'0'; 64];
    for (n, v) in [(0, x), (48, i as u64)] {
        for k in 0..16 {
            out[n + k] = HEX[((v >> (60 - 4 * k)) & 15) as usize];
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let metrics = Metrics::new().expect("metrics");
    let tracker = tracker(&metrics);
    let now = mediagate::io::clock::unix_ms();
    let start = Start {
        ts: 1_000,
        playhead: 0.0,
        content: Content::Vod,
        length: Some(1800.0),
        player: 0,
        sdk: 0,
    };
    let sids: Vec<String> = (0..SESSIONS).map(sid).collect();
    rt.block_on(async {
        for s in &sids {
            tracker.started(s, &start, now).await;
        }
    });

    let mut group = c.benchmark_group("tracker");
    group.throughput(Throughput::Elements(PER_ITER as u64));
    let mut ts = 2_000i64;
    let mut next = 0usize;
    group.bench_function("ping", |b| {
        b.iter(|| {
            rt.block_on(async {
                for _ in 0..PER_ITER {
                    ts += 1;
                    let ping = Observation {
                        kind: Kind::Ping,
                        ts,
                        playhead: (ts % 1000) as f64,
                        state: 0,
                    };
                    let bytes = sid_bytes(next % SESSIONS);
                    let sid = std::str::from_utf8(&bytes).unwrap_or_default();
                    next += 7919;
                    let (verdict, ticket) = tracker.before(sid, vec![ping], now).await;
                    black_box(verdict);
                    tracker.after(ticket, 204).await;
                }
            })
        })
    });
    let kinds = [
        Kind::AdBreakStart,
        Kind::AdStart,
        Kind::AdComplete,
        Kind::AdBreakComplete,
    ];
    group.bench_function("ad_break", |b| {
        b.iter(|| {
            rt.block_on(async {
                for i in 0..PER_ITER {
                    ts += 1;
                    let o = Observation {
                        kind: kinds[i % 4],
                        ts,
                        playhead: 10.0,
                        state: 0,
                    };
                    let bytes = sid_bytes((next / 4) % SESSIONS);
                    let sid = std::str::from_utf8(&bytes).unwrap_or_default();
                    if i % 4 == 3 {
                        next += 4 * 7919;
                    }
                    let (verdict, ticket) = tracker.before(sid, vec![o], now).await;
                    black_box(verdict);
                    tracker.after(ticket, 204).await;
                }
            })
        })
    });
    group.throughput(Throughput::Elements(SESSIONS as u64));
    group.bench_function("sweep", |b| {
        b.iter(|| tracker.sweep(mediagate::io::clock::unix_ms()))
    });
    group.finish();

    let checked = mcapi::check(
        mcapi::Endpoint::Events,
        PING,
        &mcapi::Policies::default(),
        0,
    );
    let doc = checked.document.as_ref().expect("the ping parses");
    c.bench_function("summary/ping", |b| {
        b.iter(|| black_box(summarize(black_box(doc))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
