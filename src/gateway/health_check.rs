//! Active health checks, run as a pingora background service: every `interval` each upstream is
//! probed (a TCP connect by default, or `GET http_path` expecting `http_status`), and the results
//! feed [`super::health`]. The gauge `mediagate_upstream_healthy` is refreshed after each round.

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::sync::Arc;

use super::health::Change;
use super::pool::Pool;
use super::upstream::Probe;
use crate::config::{Health, HealthCheckKind};
use crate::metrics::Metrics;

pub struct HealthChecker {
    pub pool: Arc<Pool>,
    pub metrics: Arc<Metrics>,
    pub settings: Health,
}

#[async_trait]
impl BackgroundService for HealthChecker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let probe = match self.settings.kind {
            HealthCheckKind::Off => None,
            HealthCheckKind::Tcp => Some(Probe::Connect),
            HealthCheckKind::Http => Some(Probe::Http {
                path: &self.settings.http_path,
                status: self.settings.http_status,
            }),
        };
        let mut ticker = tokio::time::interval(self.settings.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => return,
            }
            if let Some(probe) = &probe {
                self.round(probe).await;
            }
            for upstream in &self.pool.upstreams.list {
                upstream.idle.prune();
            }
            self.pool.publish_health(&self.metrics);
        }
    }
}

impl HealthChecker {
    async fn round(&self, probe: &Probe<'_>) {
        for (i, upstream) in self.pool.upstreams.list.iter().enumerate() {
            let result = upstream.probe(probe, self.settings.timeout).await;
            let name = &upstream.settings.name;
            match self.pool.health.record_probe(i, result.is_ok()) {
                Change::BecameUnhealthy => log::warn!(
                    "upstream {name}: unhealthy ({})",
                    result.err().unwrap_or_default()
                ),
                Change::BecameHealthy => log::info!("upstream {name}: healthy again"),
                Change::None | Change::Ejected => {}
            }
        }
    }
}
