//! Memory per tracked session in the memory store, at one million sessions
//! (`make bench-sessions`; goal ≤ 256 bytes): the process's resident set growth divided by the
//! sessions, measured after the sessions started, and again after each received a ping that was
//! judged (their waiting-call queues emptied). Uses the gateway's allocator (mimalloc), so the
//! figure includes its overhead and fragmentation, as in production.
//!
//!     cargo run --release --example session_memory [SESSIONS]

use mediagate::observe::metrics::Metrics;
use mediagate::tracker::Tracker;
use sessions::{Content, Kind, Observation, Start};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Resident set size, bytes (Linux).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let metrics = Metrics::new().expect("metrics");
    // No reorder window: each call is judged as it is accepted (the steady state of an idle
    // session, whose queue is empty).
    let config = mediagate::config::parse(
        &format!(
            "[[upstream]]\nurl = \"http://127.0.0.1:1\"\n[sessions]\nmax_sessions = {}\nreorder_window_ms = 0\n",
            n + n / 10
        ),
        &|_| None,
    )
    .expect("the configuration");
    // Measured from before the store exists (its slabs are reserved when it is made).
    let before = rss();
    let tracker = Tracker::new(
        &config.sessions,
        &metrics,
        None,
        std::sync::Arc::new(mediagate::quality::Quality::of_config(
            &config.quality,
            &metrics,
        )),
    )
    .expect("a memory tracker");
    let now = mediagate::io::clock::unix_ms();
    let start = Start {
        ts: 1_000,
        playhead: 0.0,
        content: Content::Vod,
        length: Some(1800.0),
        player: 0,
        sdk: 0,
    };
    let sid = |i: usize| {
        let x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        format!("{x:016x}{i:048x}")
    };
    rt.block_on(async {
        for i in 0..n {
            tracker.started(&sid(i), &start, now).await;
        }
    });
    let started = rss();
    rt.block_on(async {
        for i in 0..n {
            let ping = Observation {
                kind: Kind::Ping,
                ts: 2_000,
                playhead: 10.0,
                state: 0,
            };
            let (_, ticket) = tracker.before(&sid(i), vec![ping], now).await;
            tracker.after(ticket, 204).await;
        }
    });
    let pinged = rss();
    let per = |after: u64| after.saturating_sub(before) as f64 / n as f64;
    println!("sessions tracked:              {n}");
    println!(
        "after sessionStart:            {:.0} bytes/session (RSS +{} MiB)",
        per(started),
        (started - before) >> 20
    );
    println!(
        "after one judged ping each:    {:.0} bytes/session (RSS +{} MiB)",
        per(pinged),
        (pinged.saturating_sub(before)) >> 20
    );
    println!(
        "size_of::<Session>():          {} bytes",
        std::mem::size_of::<sessions::Session>()
    );
    println!(
        "evicted:                       {}",
        metrics.sessions_evicted.get()
    );
}
