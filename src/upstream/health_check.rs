//! Active health checks, run as a pingora background service: every `interval` each upstream is
//! probed (a TCP connect by default, or `GET http_path` expecting `http_status`) and the results
//! feed its health; then the cluster's housekeeping runs (idle connections past their timeout
//! are closed, the gauge `mediagate_upstream_healthy` is refreshed).

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::sync::Arc;

use super::client::Probe;
use super::Cluster;
use crate::config::{Health, HealthCheckKind};

pub struct HealthChecker {
    pub cluster: Arc<Cluster>,
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
                self.cluster.probe_all(probe, self.settings.timeout).await;
            }
            self.cluster.maintain();
        }
    }
}
