//! The background services that follow the current runtime generation (pingora background
//! services; each round takes the generation current then, so an in-process reload changes
//! them without a restart):
//!
//! - [`HealthChecks`]: every `[health_check] interval_ms` each upstream is probed (a TCP connect
//!   by default, or `GET http_path` expecting `http_status`) and the results feed its health;
//!   then the cluster's housekeeping runs (idle connections past their timeout are closed, the
//!   gauge `mediagate_upstream_healthy` is refreshed).
//! - [`Sweeper`], the session tracker's own time: every 100 ms the sessions due for a look
//!   (reorder windows that passed; with Redis, expiries) are settled; the memory store is swept
//!   for expiries at `Tracker::sweep_interval`; with Redis, once a second the fleet's open
//!   sessions are counted and the sessions that missed an update are marked unknown.

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Live;
use crate::config::HealthCheckKind;
use crate::io::clock::unix_ms;
use crate::upstream::client::Probe;

pub struct HealthChecks {
    pub live: Arc<Live>,
}

#[async_trait]
impl BackgroundService for HealthChecks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            let runtime = self.live.load();
            let settings = &runtime.config.health;
            let probe = match settings.kind {
                HealthCheckKind::Off => None,
                HealthCheckKind::Tcp => Some(Probe::Connect),
                HealthCheckKind::Http => Some(Probe::Http {
                    path: &settings.http_path,
                    status: settings.http_status,
                }),
            };
            if let Some(probe) = &probe {
                runtime.cluster.probe_all(probe, settings.timeout).await;
            }
            runtime.cluster.maintain();
            let interval = settings.interval;
            drop(runtime);
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

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
            tracker.settle_due(now, PER_TICK).await;
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
