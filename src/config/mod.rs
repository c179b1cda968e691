//! Configuration: the file model ([`mod@file`]), its validation, and the runtime [`Config`] with
//! everything resolved (addresses, compiled enrichment rules, policies).
//!
//! Loading never touches the network: listen addresses must be IP literals, and upstream host
//! names are only resolved when the gateway starts ([`Upstream::resolve`]).

pub mod file;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use crate::enrich;
use crate::location::{normalize_authority, Rewriter};
use crate::mcapi::Policies;
pub use file::{HealthCheckKind, Mode, SidFormat, Strictness};

/// The default configuration path, relative to the working directory.
pub const DEFAULT_PATH: &str = "config/mediagate.toml";

/// A loaded and validated configuration.
#[derive(Debug)]
pub struct Config {
    pub server: Server,
    pub admin_listen: SocketAddr,
    pub upstreams: Vec<Upstream>,
    pub health: Health,
    pub validation: Validation,
    pub enrich: enrich::Rules,
    pub location: Rewriter,
    pub access_log: bool,
    pub log_level: String,
    pub emulator: Option<Emulator>,
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
    /// Certificate and key files (PEM) when the listener speaks TLS.
    pub tls: Option<(String, String)>,
}

/// One upstream collection backend.
#[derive(Debug, Clone)]
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
    /// The upstream's token in outward session ids (see `location::affinity`).
    pub token: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Upstream {
    /// Resolves the host (DNS for names). Only called when the gateway starts.
    pub fn resolve(&self) -> Result<SocketAddr, String> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("upstream {}: cannot resolve {}: {e}", self.name, self.host))?
            .next()
            .ok_or_else(|| format!("upstream {}: {} has no address", self.name, self.host))
    }
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
    pub content_type: Strictness,
}

#[derive(Debug, Clone)]
pub struct Emulator {
    pub listen: SocketAddr,
    pub idle_timeout: Duration,
    pub location_prefix: Option<String>,
    pub response_delay: Duration,
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text, &|k| std::env::var(k).ok()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses and validates configuration text; `env` looks up environment variables.
pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
    let file: file::File = toml::from_str(text).map_err(|e| e.to_string())?;
    resolve(file, env)
}

fn resolve(file: file::File, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
    let s = &file.server;
    let listen = socket_addr("[server] listen", &s.listen)?;
    if s.max_body_bytes == 0 || s.max_body_bytes > 64 * 1024 * 1024 {
        return Err("[server] max_body_bytes: must be between 1 and 67108864 (64 MiB)".into());
    }
    if s.threads == 0 || s.threads > 256 {
        return Err("[server] threads: must be between 1 and 256".into());
    }
    let public_url = s
        .public_url
        .as_deref()
        .map(|u| parse_url("[server] public_url", u))
        .transpose()?;
    if s.absolute_location && public_url.is_none() {
        return Err("[server] absolute_location: needs [server] public_url".into());
    }
    let location = Rewriter {
        absolute_base: public_url
            .as_ref()
            .filter(|_| s.absolute_location)
            .map(|u| format!("{}://{}", u.scheme, u.authority)),
        own_authorities: public_url.iter().map(|u| u.authority.clone()).collect(),
    };

    if file.upstream.is_empty() {
        return Err("[[upstream]]: at least one upstream is required".into());
    }
    let mut upstreams = Vec::new();
    for (i, u) in file.upstream.iter().enumerate() {
        let at = format!("[[upstream]] #{}", i + 1);
        let url = parse_url(&format!("{at} url"), &u.url)?;
        let name = u.name.clone().unwrap_or_else(|| url.authority.clone());
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        {
            return Err(format!(
                "{at} name: {name:?} must be non-empty and use only [A-Za-z0-9._:-]"
            ));
        }
        if upstreams.iter().any(|o: &Upstream| o.name == name) {
            return Err(format!("{at} name: {name:?} is used twice"));
        }
        if !(1..=1000).contains(&u.weight) {
            return Err(format!("{at} weight: must be between 1 and 1000"));
        }
        if let Some(ca) = &u.ca_file {
            if url.scheme != "https" {
                return Err(format!("{at} ca_file: only meaningful for an https:// url"));
            }
            readable(&format!("{at} ca_file"), ca)?;
        }
        let token = crate::location::affinity::token_for(&name);
        if let Some(other) = upstreams.iter().find(|o: &&Upstream| o.token == token) {
            return Err(format!(
                "{at} name: {name:?} and {:?} map to the same session token; rename one",
                other.name
            ));
        }
        for (key, ms) in [
            ("connect_timeout_ms", u.connect_timeout_ms),
            ("read_timeout_ms", u.read_timeout_ms),
            ("write_timeout_ms", u.write_timeout_ms),
            ("idle_timeout_ms", u.idle_timeout_ms),
        ] {
            if ms == 0 || ms > 3_600_000 {
                return Err(format!("{at} {key}: must be between 1 and 3600000"));
            }
        }
        upstreams.push(Upstream {
            name,
            tls: url.scheme == "https",
            host: url.host,
            port: url.port,
            authority: url.authority,
            weight: u.weight,
            ca_file: u.ca_file.clone(),
            token,
            connect_timeout: Duration::from_millis(u.connect_timeout_ms),
            read_timeout: Duration::from_millis(u.read_timeout_ms),
            write_timeout: Duration::from_millis(u.write_timeout_ms),
            idle_timeout: Duration::from_millis(u.idle_timeout_ms),
        });
    }

    let h = &file.health_check;
    for (key, ms) in [
        ("interval_ms", h.interval_ms),
        ("timeout_ms", h.timeout_ms),
        ("passive_ejection_ms", h.passive_ejection_ms),
    ] {
        if ms == 0 || ms > 3_600_000 {
            return Err(format!(
                "[health_check] {key}: must be between 1 and 3600000"
            ));
        }
    }
    for (key, n) in [
        ("unhealthy_threshold", h.unhealthy_threshold),
        ("healthy_threshold", h.healthy_threshold),
    ] {
        if n == 0 || n > 100 {
            return Err(format!("[health_check] {key}: must be between 1 and 100"));
        }
    }
    if !h.http_path.starts_with('/') || h.http_path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!(
            "[health_check] http_path: {:?} must be a path starting with /",
            h.http_path
        ));
    }
    if !(100..=599).contains(&h.http_status) {
        return Err("[health_check] http_status: must be an HTTP status (100-599)".into());
    }
    let health = Health {
        kind: h.kind,
        interval: Duration::from_millis(h.interval_ms),
        timeout: Duration::from_millis(h.timeout_ms),
        unhealthy_threshold: h.unhealthy_threshold,
        healthy_threshold: h.healthy_threshold,
        http_path: h.http_path.clone(),
        http_status: h.http_status,
        passive_failures: h.passive_failures,
        passive_ejection: Duration::from_millis(h.passive_ejection_ms),
    };
    let tls = match (&s.tls_cert, &s.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            readable("[server] tls_cert", cert)?;
            readable("[server] tls_key", key)?;
            Some((cert.clone(), key.clone()))
        }
        _ => return Err("[server] tls_cert and tls_key: set both or neither".into()),
    };

    let v = &file.validation;
    let policies = Policies {
        unknown_params: v.unknown_params,
        states_update: v.states_update,
        error_params: v.error_params,
        ts_max_age_ms: v.ts_max_age_seconds.map(|s| s.saturating_mul(1000)),
        ts_max_ahead_ms: v.ts_max_ahead_seconds.map(|s| s.saturating_mul(1000)),
    };
    let enrich = enrich::Rules::compile(&file.enrich, &policies, env)?;

    if !["error", "warn", "info", "debug", "trace", "off"].contains(&file.log.level.as_str()) {
        return Err(format!(
            "[log] level: {:?} is not one of error, warn, info, debug, trace, off",
            file.log.level
        ));
    }

    let emulator = file
        .emulator
        .as_ref()
        .map(|e| -> Result<Emulator, String> {
            Ok(Emulator {
                listen: socket_addr("[emulator] listen", &e.listen)?,
                idle_timeout: Duration::from_secs(e.idle_timeout_seconds),
                location_prefix: e.location_prefix.clone(),
                response_delay: Duration::from_millis(e.response_delay_ms),
            })
        })
        .transpose()?;

    Ok(Config {
        server: Server {
            listen,
            max_body_bytes: s.max_body_bytes as usize,
            threads: s.threads,
            work_stealing: s.work_stealing,
            grace_period_seconds: s.grace_period_seconds,
            graceful_shutdown_timeout_seconds: s.graceful_shutdown_timeout_seconds,
            pid_file: s.pid_file.clone(),
            upgrade_sock: s.upgrade_sock.clone(),
            keepalive_timeout_seconds: s.keepalive_timeout_seconds,
            client_read_timeout: Duration::from_millis(s.client_read_timeout_ms.max(1)),
            tls,
        },
        admin_listen: socket_addr("[admin] listen", &file.admin.listen)?,
        upstreams,
        health,
        validation: Validation {
            mode: v.mode,
            policies,
            sid_format: v.sid_format,
            content_type: v.content_type,
        },
        enrich,
        location,
        access_log: file.log.access_log,
        log_level: file.log.level.clone(),
        emulator,
    })
}

fn readable(key: &str, path: &str) -> Result<(), String> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|e| format!("{key}: cannot read {path:?}: {e}"))
}

fn socket_addr(key: &str, value: &str) -> Result<SocketAddr, String> {
    value.parse().map_err(|_| {
        format!("{key}: {value:?} is not an IP address with a port (e.g. \"127.0.0.1:8080\" or \"[::1]:8080\")")
    })
}

struct Url {
    scheme: &'static str,
    host: String,
    port: u16,
    authority: String,
}

fn parse_url(key: &str, value: &str) -> Result<Url, String> {
    let uri: http::Uri = value
        .parse()
        .map_err(|_| format!("{key}: {value:?} is not a URL"))?;
    let scheme = match uri.scheme_str() {
        Some("http") => "http",
        Some("https") => "https",
        _ => {
            return Err(format!(
                "{key}: {value:?} must start with http:// or https://"
            ))
        }
    };
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{key}: {value:?} has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!("{key}: {value:?} must not carry user information"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "{key}: {value:?} must not have a path or a query (only scheme://host[:port])"
        ));
    }
    let default_port = if scheme == "https" { 443 } else { 80 };
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok(Url {
        scheme,
        host,
        port: authority.port_u16().unwrap_or(default_port),
        authority: normalize_authority(scheme, authority.as_str()),
    })
}

#[cfg(test)]
mod tests;
