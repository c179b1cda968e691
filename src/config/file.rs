//! The configuration file model: what `config/mediagate.toml` may contain, exactly as written.
//!
//! Every table rejects unknown keys so that a typo is an error naming the key, never a setting
//! silently ignored. Defaults live here, next to the keys; `config/mediagate.toml` documents them.

use serde::Deserialize;
use std::collections::BTreeMap;

use crate::mcapi::{ErrorParams, UnknownParams};

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
    pub enrich: Enrich,
    #[serde(default)]
    pub log: Log,
    pub emulator: Option<Emulator>,
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
            work_stealing: true,
            grace_period_seconds: 5,
            graceful_shutdown_timeout_seconds: 5,
            pid_file: "/tmp/mediagate.pid".into(),
            upgrade_sock: "/tmp/mediagate_upgrade.sock".into(),
            keepalive_timeout_seconds: 60,
            client_read_timeout_ms: 30_000,
            tls_cert: None,
            tls_key: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    pub listen: String,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            listen: "127.0.0.1:9090".into(),
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
    pub fn weight() -> u32 {
        1
    }
    pub fn request_id_header() -> String {
        "x-request-id".into()
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

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Strictness {
    #[default]
    Lenient,
    Strict,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SidFormat {
    #[default]
    Strict,
    Lenient,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Validation {
    pub mode: Mode,
    pub unknown_params: UnknownParams,
    pub sid_format: SidFormat,
    pub content_type: Strictness,
    pub states_update: bool,
    pub error_params: ErrorParams,
    pub ts_max_age_seconds: Option<u64>,
    pub ts_max_ahead_seconds: Option<u64>,
}

impl Default for Validation {
    fn default() -> Self {
        Validation {
            mode: Mode::Enforce,
            unknown_params: UnknownParams::Reject,
            sid_format: SidFormat::Strict,
            content_type: Strictness::Lenient,
            states_update: false,
            error_params: ErrorParams::Warn,
            ts_max_age_seconds: None,
            ts_max_ahead_seconds: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Enrich {
    pub x_forwarded_for: bool,
    pub x_forwarded_proto: bool,
    pub request_id_header: String,
    pub trusted_proxies: Vec<String>,
    pub session_params: SessionParams,
    pub custom_metadata: BTreeMap<String, String>,
    pub privacy: Privacy,
    pub upstream_headers: BTreeMap<String, String>,
    /// Rule sets for some sites, selected by request host and/or path prefix.
    pub site: Vec<Site>,
}

impl Default for Enrich {
    fn default() -> Self {
        Enrich {
            x_forwarded_for: true,
            x_forwarded_proto: true,
            request_id_header: defaults::request_id_header(),
            trusted_proxies: Vec::new(),
            session_params: SessionParams::default(),
            custom_metadata: BTreeMap::new(),
            privacy: Privacy::default(),
            upstream_headers: BTreeMap::new(),
            site: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct SessionParams {
    pub if_absent: BTreeMap<String, toml::Value>,
    pub always: BTreeMap<String, toml::Value>,
}

/// Identity params removed from, or hashed in, every `sessionStart`.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct Privacy {
    pub remove: Vec<String>,
    pub hash: Vec<String>,
    /// The HMAC-SHA256 key for `hash`, usually `${env:NAME}`.
    pub hash_secret: Option<String>,
}

/// A site: the rules of `[enrich]`, amended for requests matching `host` and/or `path_prefix`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub name: String,
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    #[serde(default)]
    pub session_params: SessionParams,
    #[serde(default)]
    pub custom_metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub privacy: Privacy,
    #[serde(default)]
    pub upstream_headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub access_log: bool,
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            access_log: true,
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
