//! Configuration: the file model ([`mod@file`]), its resolution into the runtime [`Config`] with
//! everything checked and compiled ([`resolve`]: addresses, upstreams, enrichment rules,
//! policies), and the errors that name the key at fault ([`ConfigError`]).
//!
//! **May use:** `mcapi`, `enrich`, `location` (their settings types and compilers), `serde`,
//! `toml`, `http` (URL parsing). Loading never touches the network: listen addresses must be IP
//! literals, and upstream host names are only resolved when the gateway starts
//! (`upstream::Cluster::new`).

pub mod file;
pub mod quality;
mod resolve;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use file::{HealthCheckKind, Mode, StoreKind, UnknownSessions};
use location::Rewriter;
use mcapi::content_type::ContentTypePolicy;
use mcapi::sid::SidFormat;
use mcapi::Policies;
pub use quality::{Quality, Quarantine};

/// The default configuration path, relative to the working directory.
pub const DEFAULT_PATH: &str = "config/mediagate.toml";

/// Why a configuration was refused. The message names the key (`[server] listen: ...`), like
/// `nginx -t`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, an unknown key, or a value of the wrong type (toml names the key and line).
    #[error("{0}")]
    Syntax(#[from] toml::de::Error),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    /// One of the above, in this file.
    #[error("{}: {error}", path.display())]
    InFile {
        path: PathBuf,
        error: Box<ConfigError>,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A loaded and validated configuration.
#[derive(Debug)]
pub struct Config {
    pub server: Server,
    pub admin_listen: SocketAddr,
    /// The bearer token payload examples, the quarantine view and session look-ups on the admin
    /// listener require (`[admin] token`, `${env:NAME}` resolved).
    pub admin_token: Option<String>,
    pub upstreams: Vec<Upstream>,
    pub health: Health,
    pub validation: Validation,
    pub enrich: enrich::Rules,
    pub location: Rewriter,
    pub sessions: Sessions,
    pub limits: Limits,
    pub log: Log,
    pub quality: Quality,
    pub quarantine: Option<Quarantine>,
    pub emulator: Option<Emulator>,
    /// `[bench] pass_through`: the benchmark's floor. Every call is relayed as it came (its
    /// `Location` rewritten): no routing, validation, enrichment, session tracking, metrics or
    /// access log.
    pub pass_through: bool,
}

/// Session tracking (`[sessions]`), when it is on.
#[derive(Debug, Clone)]
pub struct Sessions {
    pub enabled: bool,
    pub store: Store,
    pub store_timeout: Duration,
    pub max_sessions: usize,
    pub unknown_sessions: UnknownSessions,
    pub settings: sessions::Settings,
}

/// Where session state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    Memory,
    Redis {
        /// `redis://` or `rediss://`, credentials resolved (`${env:NAME}`).
        url: String,
        key_prefix: String,
        /// A CA bundle (PEM) to verify a `rediss://` server with, instead of the system's.
        ca_file: Option<String>,
    },
}

/// The per-client rate limit (`[limits]`), when it is on.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub rate: Option<RateLimit>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
    pub max_clients: usize,
}

#[derive(Debug)]
pub struct Server {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub threads: usize,
    pub work_stealing: bool,
    pub grace_period_seconds: u64,
    pub graceful_shutdown_timeout_seconds: u64,
    pub pid_file: String,
    pub upgrade_sock: String,
    pub keepalive_timeout_seconds: u64,
    pub client_read_timeout: Duration,
    /// The whole body must arrive within this long of the request head.
    pub client_body_timeout: Duration,
    /// Body bytes received and held by all requests together, at most (503 above).
    pub max_inflight_body_bytes: usize,
    /// Players' connections open at once, at most (accepting pauses above).
    pub max_connections: usize,
    /// Forward header fields whose names contain `_` (dropped by default).
    pub underscores_in_headers: bool,
    /// Certificate and key files (PEM) when the listener speaks TLS.
    pub tls: Option<(String, String)>,
}

/// One upstream collection backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    pub name: String,
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// The `Host` sent upstream: the URL's authority (default port left out).
    pub authority: String,
    pub weight: u32,
    /// A CA bundle (PEM) to verify an https upstream with, instead of the system's.
    pub ca_file: Option<String>,
    /// The upstream's token in outward session ids (`mcapi::sid`).
    pub token: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub idle_timeout: Duration,
    /// The whole answer, from the end of the request write.
    pub response_timeout: Duration,
}

/// Health checking (`[health_check]`).
#[derive(Debug, Clone)]
pub struct Health {
    pub kind: HealthCheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
    pub http_path: String,
    pub http_status: u16,
    pub passive_failures: u32,
    pub passive_ejection: Duration,
}

#[derive(Debug, Clone)]
pub struct Validation {
    pub mode: Mode,
    pub policies: Policies,
    pub sid_format: SidFormat,
    pub content_type: ContentTypePolicy,
}

/// Logging (`[log]`).
#[derive(Debug, Clone)]
pub struct Log {
    pub access_log: bool,
    /// `None`: standard output.
    pub access_log_path: Option<PathBuf>,
    pub access_log_buffer_bytes: usize,
    pub level: String,
}

#[derive(Debug, Clone)]
pub struct Emulator {
    pub listen: SocketAddr,
    pub idle_timeout: Duration,
    pub location_prefix: Option<String>,
    pub response_delay: Duration,
}

/// What a valid configuration may still get wrong, for `check` and the start-up log.
pub fn warnings(c: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if !c.admin_listen.ip().is_loopback() && c.admin_token.is_none() {
        out.push(format!(
            "[admin] listen = \"{}\" is not on loopback and [admin] token is not set: anyone who reaches the port can read payload examples, the quarantine view and session states (set token = \"${{env:MEDIAGATE_ADMIN_TOKEN}}\")",
            c.admin_listen
        ));
    }
    if c.quarantine.as_ref().is_some_and(|q| q.keep_identity) {
        out.push("[quarantine] keep_identity = true: visitor and customer ids are written to disk in clear".to_owned());
    }
    if c.quarantine.as_ref().is_some_and(|q| q.keep_bodies) {
        out.push("[quarantine] keep_bodies = true: bodies that are not JSON (a truncated one included) are written as received, identity params and all".to_owned());
    }
    for h in c.quarantine.iter().flat_map(|q| &q.headers) {
        if matches!(
            h.as_str(),
            "x-forwarded-for" | "forwarded" | "x-real-ip" | "x-api-key"
        ) {
            out.push(format!("[quarantine] headers: {h} may identify a person or carry a credential; it is written to disk as received"));
        }
    }
    out
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, &|k| std::env::var(k).ok()).map_err(|e| ConfigError::InFile {
        path: path.to_owned(),
        error: Box::new(e),
    })
}

/// Parses and validates configuration text; `env` looks up environment variables.
pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let file: file::File = toml::from_str(text)?;
    resolve::resolve(file, env)
}

#[cfg(test)]
mod tests;
