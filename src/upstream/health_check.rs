//! Active health checks, run as a pingora background service: every `interval` each upstream is
//! probed (a TCP connect by default, or `GET http_path` expecting `http_status`) and the results
//! feed its health; then the cluster's housekeeping runs (idle connections past their timeout
//! are closed, the gauge `mediagate_upstream_healthy` is refreshed). Each round takes the current
//! runtime generation's cluster and `[health_check]` settings (an in-process reload may change
//! them; the interval is read again after each round).

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::sync::Arc;

use super::client::Probe;
use crate::config::HealthCheckKind;
use crate::runtime::Live;

pub struct HealthChecker {
    pub live: Arc<Live>,
}

#[async_trait]
impl BackgroundService for HealthChecker {
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
