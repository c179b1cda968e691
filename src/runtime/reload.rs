//! The in-process reload (`SIGHUP`, and `mediagate reload` when it can): the file is read and
//! checked again like `mediagate check`; if only keys a running process can change differ, the
//! next [`Runtime`] generation is built and swapped in; otherwise nothing changes and the keys
//! that need a new process are named ([`process_keys`]: sockets, threads, the pid file, the
//! access log's file) — `mediagate reload` then takes the upgrade path.
//!
//! The outcome is logged, counted (`mediagate_config_reloads_total{result}`) and written to a
//! small state file next to the pid file (`<pid_file>.reload`) for `mediagate reload` to read
//! back; `<pid_file>.keys` holds the running file's path and process keys.

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Live, Runtime};
use crate::config::{self, Config};
use crate::observe::diagnostics;
use crate::tracker::Tracker;
use crate::upstream::Cluster;

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Generation `n` now serves new requests.
    Reloaded(u64),
    /// The file failed the check or could not be applied: nothing changed.
    Failed(String),
    /// These keys changed and need a new process: nothing changed.
    UpgradeNeeded(Vec<String>),
}

impl Outcome {
    /// The `result` label of `mediagate_config_reloads_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Reloaded(_) => "ok",
            Outcome::Failed(_) => "failed",
            Outcome::UpgradeNeeded(_) => "upgrade_needed",
        }
    }

    /// One line for the log and for `mediagate reload`.
    pub fn message(&self) -> String {
        match self {
            Outcome::Reloaded(n) => format!("reloaded in process: generation {n} serves new requests"),
            Outcome::Failed(why) => format!("reload failed, nothing changed: {why}"),
            Outcome::UpgradeNeeded(keys) => format!(
                "not reloaded in process, nothing changed: {} need a new process (mediagate reload starts one)",
                keys.join(", ")
            ),
        }
    }
}

/// The keys a running process cannot change, with their values: the listening sockets and
/// their TLS files, thread counts, the pid and upgrade files, the shutdown timings, the limits
/// sized at start, the access log's destination, the label bounds and the quarantine (both
/// live as long as the process) and the emulator.
pub fn process_keys(c: &Config) -> Vec<(&'static str, String)> {
    let s = &c.server;
    let tls = s.tls.as_ref();
    vec![
        ("[server] listen", s.listen.to_string()),
        (
            "[server] tls_cert",
            tls.map(|t| t.0.clone()).unwrap_or_default(),
        ),
        (
            "[server] tls_key",
            tls.map(|t| t.1.clone()).unwrap_or_default(),
        ),
        ("[server] threads", s.threads.to_string()),
        ("[server] work_stealing", s.work_stealing.to_string()),
        ("[server] pid_file", s.pid_file.clone()),
        ("[server] upgrade_sock", s.upgrade_sock.clone()),
        (
            "[server] grace_period_seconds",
            s.grace_period_seconds.to_string(),
        ),
        (
            "[server] graceful_shutdown_timeout_seconds",
            s.graceful_shutdown_timeout_seconds.to_string(),
        ),
        ("[server] max_connections", s.max_connections.to_string()),
        (
            "[server] max_inflight_body_bytes",
            s.max_inflight_body_bytes.to_string(),
        ),
        ("[admin] listen", c.admin_listen.to_string()),
        ("[log] access_log", c.log.access_log.to_string()),
        (
            "[log] access_log_path",
            c.log
                .access_log_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        (
            "[log] access_log_buffer_bytes",
            c.log.access_log_buffer_bytes.to_string(),
        ),
        ("[quality]", format!("{:?}", c.quality)),
        ("[quarantine]", format!("{:?}", c.quarantine)),
        ("[emulator]", format!("{:?}", c.emulator)),
    ]
}

/// The process keys whose values differ between `a` and `b`.
pub fn changed_keys(a: &[(&'static str, String)], b: &[(&'static str, String)]) -> Vec<String> {
    a.iter()
        .zip(b)
        .filter(|(x, y)| x != y)
        .map(|(x, _)| x.0.to_owned())
        .collect()
}

impl Live {
    /// Reads the file again and, when it passes and only reloadable keys changed, swaps in the
    /// next generation. Blocking (it may resolve new upstreams' names): run it off the request
    /// threads.
    pub fn reload(&self) -> Outcome {
        let _one = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = self.try_reload();
        self.metrics
            .config_reloads
            .with_label_values(&[outcome.label()])
            .inc();
        outcome
    }

    fn try_reload(&self) -> Outcome {
        let new = match config::load(&self.path) {
            Ok(c) => c,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let current = self.load();
        let changed = changed_keys(&process_keys(&current.config), &process_keys(&new));
        if !changed.is_empty() {
            return Outcome::UpgradeNeeded(changed);
        }
        let metrics = &self.metrics;
        let cluster = match Cluster::rebuild(&new, metrics, &current.cluster) {
            Ok(c) => c,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let tracker = match new.sessions.enabled {
            false => None,
            true => {
                let reuse = current.tracker.as_ref().map(Tracker::backend);
                match Tracker::new(&new.sessions, metrics, reuse, current.quality.clone()) {
                    Ok(t) => Some(t),
                    Err(e) => return Outcome::Failed(e),
                }
            }
        };
        if let (Some(old), Some(t)) = (&current.tracker, &tracker) {
            if !Arc::ptr_eq(old.backend(), t.backend()) {
                log::warn!(
                    "reload: the session store's keys changed: a new {} store starts empty (sessions seen so far are unknown to it)",
                    t.store_name()
                );
            }
        }
        let rate_limit = match (&current.rate_limit, &new.limits.rate) {
            (Some(limiter), Some(rate)) if current.config.limits.rate == Some(*rate) => {
                Some(limiter.clone())
            }
            (_, Some(rate)) => Some(Arc::new(crate::server::rate_limit::RateLimiter::new(
                rate.per_second,
                rate.burst,
                rate.max_clients,
            ))),
            (_, None) => None,
        };
        if let Err(why) = diagnostics::set_level(&new.log.level) {
            log::warn!("reload: [log] level: {why}");
        }
        let generation = current.generation + 1;
        let config = Arc::new(new);
        self.store(Runtime {
            generation,
            series: crate::observe::series::Series::new(
                metrics.clone(),
                config.enrich.rule_set_names(),
            ),
            rate_limit,
            cluster: Arc::new(cluster),
            tracker,
            quality: current.quality.clone(),
            quarantine: current.quarantine.clone(),
            config,
        });
        Outcome::Reloaded(generation)
    }
}

/// `<pid_file>.keys`: the pid of the process that wrote it, the running file's path, then one
/// `key<TAB>value` line per process key.
pub fn keys_file(pid_file: &str) -> PathBuf {
    PathBuf::from(format!("{pid_file}.keys"))
}

/// `<pid_file>.reload`: `<generation-of-attempt> <result>` then the message.
pub fn result_file(pid_file: &str) -> PathBuf {
    PathBuf::from(format!("{pid_file}.reload"))
}

/// The text of the keys file.
pub fn keys_text(path: &Path, config: &Config) -> String {
    let mut out = format!("{}\n", path.display());
    for (k, v) in process_keys(config) {
        out.push_str(&format!("{k}\t{}\n", v.replace(['\n', '\t'], " ")));
    }
    out
}

/// Writes `text` to `path` through a temporary file and a rename (a reader never sees half).
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Reloads on `SIGHUP`. Writes the keys file once the signal is watched (before that a SIGHUP
/// would end the process, so `mediagate reload` waits for the file).
pub struct ReloadOnSighup {
    pub live: Arc<Live>,
    pub pid_file: String,
}

#[async_trait]
impl BackgroundService for ReloadOnSighup {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot watch SIGHUP (no in-process reload): {e}");
                return;
            }
        };
        let keys = format!(
            "{}\n{}",
            std::process::id(),
            keys_text(&self.live.path, &self.live.load().config)
        );
        if let Err(e) = write_atomically(&keys_file(&self.pid_file), &keys) {
            log::warn!("cannot write {}: {e}", keys_file(&self.pid_file).display());
        }
        let mut attempts: u64 = 0;
        loop {
            tokio::select! {
                got = hup.recv() => if got.is_none() { return },
                _ = shutdown.changed() => return,
            }
            attempts += 1;
            let live = self.live.clone();
            crate::io::notify::reloading();
            let outcome = tokio::task::spawn_blocking(move || live.reload())
                .await
                .unwrap_or_else(|e| Outcome::Failed(format!("the reload task failed: {e}")));
            let message = outcome.message();
            crate::io::notify::reloaded(&message);
            match outcome {
                Outcome::Reloaded(_) => log::info!("SIGHUP: {message}"),
                _ => log::error!("SIGHUP: {message}"),
            }
            let text = format!("{attempts} {}\n{message}\n", outcome.label());
            if let Err(e) = write_atomically(&result_file(&self.pid_file), &text) {
                log::warn!(
                    "cannot write {}: {e}",
                    result_file(&self.pid_file).display()
                );
            }
        }
    }
}
