//! The configuration file model: what `config/mediagate.toml` may contain, exactly as written.
//!
//! Every table rejects unknown keys so that a typo is an error naming the key, never a setting
//! silently ignored. Defaults live here, next to the keys (those of the validation policies in
//! `mcapi::Policies`, those of `[enrich]` in `enrich::file`); `docs/configuration.md` documents
//! every key and `config/mediagate.toml` is the commented default file.

use serde::Deserialize;

use mcapi::content_type::ContentTypePolicy;
use mcapi::sid::SidFormat;
use mcapi::{ErrorParams, Policies, UnknownParams};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub server: Server,
    #[serde(default)]
    pub admin: Admin,
    #[serde(default)]
    pub upstream: Vec<Upstream>,
    #[serde(default)]
    pub health_check: HealthCheck,
    #[serde(default)]
    pub validation: Validation,
    #[serde(default)]
    pub enrich: enrich::file::Enrich,
    #[serde(default)]
    pub sessions: Sessions,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub quality: super::quality::QualityFile,
    #[serde(default)]
    pub quarantine: super::quality::QuarantineFile,
    pub emulator: Option<Emulator>,
    #[serde(default)]
    pub bench: Bench,
}

/// `[bench]`: switches for measuring the gateway itself, never for production.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Bench {
    /// Forward every call unchecked: no validation, enrichment, metrics or access log.
    pub pass_through: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    pub listen: String,
    pub public_url: Option<String>,
    pub absolute_location: bool,
    pub max_body_bytes: u64,
    pub threads: usize,
    pub work_stealing: bool,
    pub grace_period_seconds: u64,
    pub graceful_shutdown_timeout_seconds: u64,
    pub pid_file: String,
    pub upgrade_sock: String,
    pub keepalive_timeout_seconds: u64,
    pub client_read_timeout_ms: u64,
    pub client_body_timeout_ms: u64,
    pub max_inflight_body_bytes: u64,
    pub max_connections: usize,
    pub underscores_in_headers: bool,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: "0.0.0.0:8080".into(),
            public_url: None,
            absolute_location: false,
            max_body_bytes: 1024 * 1024,
            threads: 2,
            work_stealing: false,
            grace_period_seconds: 5,
            graceful_shutdown_timeout_seconds: 5,
            pid_file: "/tmp/mediagate.pid".into(),
            upgrade_sock: "/tmp/mediagate_upgrade.sock".into(),
            keepalive_timeout_seconds: 60,
            client_read_timeout_ms: 30_000,
            client_body_timeout_ms: 60_000,
            max_inflight_body_bytes: 64 * 1024 * 1024,
            max_connections: 20_000,
            underscores_in_headers: false,
            tls_cert: None,
            tls_key: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    pub listen: String,
    /// A bearer token for the examples, the quarantine view and session look-ups.
    pub token: Option<String>,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            listen: "127.0.0.1:9090".into(),
            token: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub url: String,
    pub name: Option<String>,
    #[serde(default = "defaults::weight")]
    pub weight: u32,
    pub ca_file: Option<String>,
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "defaults::read_timeout_ms")]
    pub read_timeout_ms: u64,
    #[serde(default = "defaults::write_timeout_ms")]
    pub write_timeout_ms: u64,
    #[serde(default = "defaults::idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    #[serde(default = "defaults::response_timeout_ms")]
    pub response_timeout_ms: u64,
}

mod defaults {
    pub fn connect_timeout_ms() -> u64 {
        2_000
    }
    pub fn read_timeout_ms() -> u64 {
        10_000
    }
    pub fn write_timeout_ms() -> u64 {
        10_000
    }
    pub fn idle_timeout_ms() -> u64 {
        30_000
    }
    pub fn response_timeout_ms() -> u64 {
        15_000
    }
    pub fn weight() -> u32 {
        1
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheckKind {
    /// A TCP connect (the backend documents no health route).
    #[default]
    Tcp,
    /// `GET http_path`, expecting `http_status`.
    Http,
    /// No active checks; only passive ejection.
    Off,
}

/// Active and passive health checking of the upstreams.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheck {
    pub kind: HealthCheckKind,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
    pub http_path: String,
    pub http_status: u16,
    pub passive_failures: u32,
    pub passive_ejection_ms: u64,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            kind: HealthCheckKind::Tcp,
            interval_ms: 5_000,
            timeout_ms: 1_000,
            unhealthy_threshold: 2,
            healthy_threshold: 2,
            http_path: "/".into(),
            http_status: 200,
            passive_failures: 3,
            passive_ejection_ms: 10_000,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Report,
    Off,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Validation {
    pub mode: Mode,
    pub unknown_params: UnknownParams,
    pub sid_format: SidFormat,
    pub content_type: ContentTypePolicy,
    pub states_update: bool,
    pub error_params: ErrorParams,
    pub ts_max_age_seconds: Option<u64>,
    pub ts_max_ahead_seconds: Option<u64>,
}

impl Default for Validation {
    /// The policies' defaults are `mcapi::Policies::default()`'s.
    fn default() -> Self {
        let p = Policies::default();
        Validation {
            mode: Mode::Enforce,
            unknown_params: p.unknown_params,
            sid_format: SidFormat::default(),
            content_type: ContentTypePolicy::default(),
            states_update: p.states_update,
            error_params: p.error_params,
            ts_max_age_seconds: p.ts_max_age_ms.map(|ms| ms / 1000),
            ts_max_ahead_seconds: p.ts_max_ahead_ms.map(|ms| ms / 1000),
        }
    }
}

/// Where session state lives.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In the process: bounded, lost on restart (sessions become unknown, never misjudged).
    #[default]
    Memory,
    /// A Redis-protocol server shared by every replica.
    Redis,
}

/// What happens to calls for sessions the gateway never saw start.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum UnknownSessions {
    /// Forwarded, never judged (counted as `unknown`).
    #[default]
    Forward,
    /// Answered 404 (safe only when every call goes through the gateway and, with several
    /// replicas, the Redis store is used).
    Reject,
}

/// Session tracking (`[sessions]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sessions {
    pub enabled: bool,
    pub store: StoreKind,
    pub redis_url: Option<String>,
    pub redis_ca_file: Option<String>,
    pub key_prefix: String,
    pub store_timeout_ms: u64,
    pub max_sessions: usize,
    pub closed_retention_seconds: u64,
    pub reorder_window_ms: u64,
    pub idle_timeout_seconds: u64,
    pub playhead_timeout_seconds: u64,
    pub playhead_tolerance_seconds: f64,
    pub unknown_sessions: UnknownSessions,
    /// The mode of each rule, by name (`session_closed = "enforce"`).
    pub rules: std::collections::BTreeMap<String, sessions::Mode>,
}

impl Default for Sessions {
    fn default() -> Self {
        let s = sessions::Settings::default();
        Sessions {
            enabled: true,
            store: StoreKind::Memory,
            redis_url: None,
            redis_ca_file: None,
            key_prefix: "mediagate:session:".into(),
            store_timeout_ms: 20,
            max_sessions: 1_000_000,
            closed_retention_seconds: s.closed_retention_ms / 1000,
            reorder_window_ms: s.reorder_window_ms,
            idle_timeout_seconds: s.idle_timeout_ms / 1000,
            playhead_timeout_seconds: s.playhead_timeout_ms / 1000,
            playhead_tolerance_seconds: s.playhead_tolerance,
            unknown_sessions: UnknownSessions::Forward,
            rules: std::collections::BTreeMap::new(),
        }
    }
}

/// A per-client rate limit (off by default): a guard against a runaway player, not security.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Requests a second each client address may send, on average (0: no limit).
    pub requests_per_second: f64,
    /// Requests a client may send at once above the rate.
    pub burst: u32,
    /// Client addresses tracked at most (the least recently seen are forgotten).
    pub max_clients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            requests_per_second: 0.0,
            burst: 50,
            max_clients: 100_000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub access_log: bool,
    /// Write the access log to this file (reopened on SIGUSR1) instead of standard output.
    pub access_log_path: Option<String>,
    /// Bytes of access log lines waiting for their reader, at most; more are dropped (counted).
    pub access_log_buffer_bytes: u64,
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            access_log: true,
            access_log_path: None,
            access_log_buffer_bytes: 4 * 1024 * 1024,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Emulator {
    pub listen: String,
    #[serde(default = "defaults_emulator::idle_timeout_seconds")]
    pub idle_timeout_seconds: u64,
    pub location_prefix: Option<String>,
    #[serde(default)]
    pub response_delay_ms: u64,
}

mod defaults_emulator {
    pub fn idle_timeout_seconds() -> u64 {
        600
    }
}
