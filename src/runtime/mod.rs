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
//! series, diagnostics), `quality` (the counts and the page), `quarantine`, `server::rate_limit`,
//! `io::clock`.

pub mod reload;
pub mod services;

use arc_swap::ArcSwap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::observe::metrics::Metrics;
use crate::observe::series::Series;
use crate::quality::Quality;
use crate::quarantine::Quarantine;
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
    /// Per-player counts and the page's examples: the process's, kept by every generation.
    pub quality: Arc<Quality>,
    /// The spool of refused calls (the process's: `[quarantine]` keys need a new process).
    pub quarantine: Option<Arc<Quarantine>>,
}

impl Runtime {
    /// The first generation (at start).
    pub fn first(
        config: Arc<Config>,
        metrics: &Arc<Metrics>,
        quarantine: Option<Arc<Quarantine>>,
    ) -> Result<Runtime, String> {
        let cluster = Cluster::new(&config, metrics).map_err(|e| e.to_string())?;
        let quality = Arc::new(Quality::of_config(&config.quality, metrics));
        let tracker = match config.sessions.enabled {
            true => Some(Tracker::new(
                &config.sessions,
                metrics,
                None,
                quality.clone(),
            )?),
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
            quality,
            quarantine,
            config,
        })
    }
}

/// The admin listener's views of the current generation: `GET /sessions/{sid}` (its tracker),
/// `GET /quality` and the page (the process's counts, with sessions, upstreams and the
/// quarantine's state read from the metrics).
#[async_trait::async_trait]
impl crate::observe::admin::AdminSource for Live {
    fn token(&self) -> Option<String> {
        self.load().config.admin_token.clone()
    }

    fn example(&self, id: &str) -> Option<String> {
        self.load().quality.example_entry(id)
    }

    fn page(&self) -> String {
        crate::quality::page::render(&self.quality())
    }

    fn quality(&self) -> serde_json::Value {
        let rt = self.load();
        let m = &self.metrics;
        let mut q = rt.quality.snapshot(crate::io::clock::unix_ms());
        let calls: serde_json::Map<String, serde_json::Value> = ["judged", "unknown", "refused"]
            .iter()
            .map(|o| {
                (
                    (*o).to_owned(),
                    m.session_calls.with_label_values(&[o]).get().into(),
                )
            })
            .collect();
        let closed: serde_json::Map<String, serde_json::Value> = sessions::Closed::REASONS
            .iter()
            .map(|r| {
                let n = m.sessions_closed.with_label_values(&[r.as_str()]).get();
                (r.as_str().to_owned(), n.into())
            })
            .collect();
        q["sessions"] = serde_json::json!({
            "tracking": rt.tracker.is_some(),
            "active": m.sessions_active.get(),
            "tracked": m.sessions_tracked.get(),
            "calls": calls,
            "closed": closed,
        });
        q["upstreams"] = rt
            .config
            .upstreams
            .iter()
            .map(|u| {
                let healthy = m.upstream_healthy.with_label_values(&[&u.name]).get() == 1;
                serde_json::json!({"name": u.name, "healthy": healthy})
            })
            .collect();
        q["quarantine"] = match &rt.quarantine {
            Some(qu) => {
                let (written, dropped) = qu.counts();
                serde_json::json!({"dir": qu.settings().dir.display().to_string(), "written": written, "dropped": dropped})
            }
            None => serde_json::json!({"dir": null, "written": 0, "dropped": 0}),
        };
        q
    }

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
