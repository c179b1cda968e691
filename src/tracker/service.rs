//! The tracker's own time, as a pingora background service: every 100 ms the sessions due for a
//! look (reorder windows that passed; with Redis, expiries) are settled; the memory store is
//! swept for expiries at [`Tracker::sweep_interval`]; with Redis, once a second the fleet's open
//! sessions are counted and the sessions that missed an update are marked unknown. Always the
//! current generation's tracker (an in-process reload may replace it).

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::unix_ms;
use crate::runtime::Live;

const TICK: Duration = Duration::from_millis(100);
/// Sessions settled per tick, at most (the rest wait for the next tick).
const PER_TICK: usize = 2_000;

pub struct Sweeper {
    pub live: Arc<Live>,
}

#[async_trait]
impl BackgroundService for Sweeper {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut swept = Instant::now();
        let mut counted = Instant::now() - Duration::from_secs(1);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => return,
            }
            let runtime = self.live.load();
            let Some(tracker) = &runtime.tracker else {
                continue;
            };
            let now = unix_ms();
            for sid in tracker.due(now, PER_TICK) {
                tracker.settle(&sid, now).await;
            }
            if swept.elapsed() >= tracker.sweep_interval() {
                swept = Instant::now();
                tracker.sweep(now);
            }
            if counted.elapsed() >= Duration::from_secs(1) {
                counted = Instant::now();
                tracker.count_open(now).await;
                tracker.mark_missed().await;
            }
        }
    }
}
