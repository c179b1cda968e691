//! The runtime: everything a request reads that an in-process reload may replace — the
//! configuration, the upstream cluster, the metric series, the rate limiter and the session
//! tracker — as one [`Runtime`] generation, swapped whole ([`Live`], `arc-swap`).
//!
//! A request loads the current generation once, when it starts, and finishes on it: a reload
//! never changes the rules under a request in flight. A new generation keeps what did not change
//! (the pools and health of unchanged upstreams, the session store, the rate limiter's buckets);
//! [`reload`] builds it, or says which keys need a new process (`mediagate reload`'s upgrade).
//!
//! [`services`] are the background services that follow the current generation (health checks,
//! the session tracker's sweeper); [`reload::ReloadOnSighup`] makes the next one.
//!
//! **May use:** `config`, `upstream` (the cluster, its probes), `tracker`, `observe` (metrics,
//! series, diagnostics), `server::rate_limit`, `io::clock`.

pub mod reload;
pub mod services;

use arc_swap::ArcSwap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::observe::metrics::Metrics;
use crate::observe::series::Series;
use crate::server::rate_limit::RateLimiter;
use crate::tracker::Tracker;
use crate::upstream::Cluster;

/// One generation of the runtime configuration.
pub struct Runtime {
    /// 1 at start, one more per successful reload.
    pub generation: u64,
    pub config: Arc<Config>,
    pub cluster: Arc<Cluster>,
    pub series: Series,
    pub rate_limit: Option<Arc<RateLimiter>>,
    pub tracker: Option<Tracker>,
}

impl Runtime {
    /// The first generation (at start).
    pub fn first(config: Arc<Config>, metrics: &Arc<Metrics>) -> Result<Runtime, String> {
        let cluster = Cluster::new(&config, metrics).map_err(|e| e.to_string())?;
        let tracker = match config.sessions.enabled {
            true => Some(Tracker::new(&config.sessions, metrics, None)?),
            false => None,
        };
        Ok(Runtime {
            generation: 1,
            series: Series::new(metrics.clone(), config.enrich.rule_set_names()),
            rate_limit: config
                .limits
                .rate
                .as_ref()
                .map(|r| Arc::new(RateLimiter::new(r.per_second, r.burst, r.max_clients))),
            cluster: Arc::new(cluster),
            tracker,
            config,
        })
    }
}

/// `GET /sessions/{sid}` on the admin listener: the current generation's tracker.
#[async_trait::async_trait]
impl crate::observe::admin::SessionLookup for Live {
    async fn lookup(&self, sid: &str) -> (u16, serde_json::Value) {
        let runtime = self.load();
        let Some(tracker) = &runtime.tracker else {
            let body = serde_json::json!({"sid": sid, "message": "session tracking is off ([sessions] enabled = false)"});
            return (404, body);
        };
        let store = tracker.store_name();
        match tracker.view(sid).await {
            Ok(Some(view)) => (
                200,
                serde_json::json!({"sid": sid, "store": store, "known": true, "session": view}),
            ),
            Ok(None) => (
                404,
                serde_json::json!({"sid": sid, "store": store, "known": false,
                    "message": "unknown: the tracker never saw it start, forgot it (closed longer than closed_retention_seconds), or evicted it (max_sessions)"}),
            ),
            Err(e) => (
                503,
                serde_json::json!({"sid": sid, "store": store, "message": format!("the session store failed: {e}")}),
            ),
        }
    }
}

/// The current generation, and what a reload needs to make the next one.
pub struct Live {
    current: ArcSwap<Runtime>,
    pub metrics: Arc<Metrics>,
    /// The configuration file the process was started with (a reload reads it again).
    pub path: PathBuf,
    /// One reload at a time.
    reloading: std::sync::Mutex<()>,
}

impl Live {
    pub fn new(first: Runtime, metrics: Arc<Metrics>, path: PathBuf) -> Live {
        Live {
            current: ArcSwap::from_pointee(first),
            metrics,
            path,
            reloading: std::sync::Mutex::new(()),
        }
    }

    /// The current generation (a request keeps it until it ends).
    pub fn load(&self) -> Arc<Runtime> {
        self.current.load_full()
    }

    fn store(&self, next: Runtime) {
        self.current.store(Arc::new(next));
    }
}
