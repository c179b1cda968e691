//! From the file model to the runtime [`Config`]: each section checked and converted by a small
//! function of its own; every error names its key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{
    file, Config, ConfigError, Emulator, Health, Limits, Log, RateLimit, Server, Sessions, Store,
    Upstream, Validation,
};
use location::{normalize_authority, Rewriter};
use mcapi::Policies;

type Result<T> = std::result::Result<T, ConfigError>;

/// The largest body limit accepted for `[server] max_body_bytes` (64 MiB).
const MAX_BODY_LIMIT: u64 = 64 * 1024 * 1024;
/// Upper bound of every timeout key given in milliseconds (one hour).
const MAX_TIMEOUT_MS: u64 = 3_600_000;

pub(super) fn resolve(file: file::File, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
    let server = server(&file.server)?;
    let location = location(&file.server)?;
    let upstreams = upstreams(&file.upstream)?;
    let health = health(&file.health_check)?;
    let validation = validation(&file.validation);
    let enrich = enrich::Rules::compile(&file.enrich, &validation.policies, env)
        .map_err(|e| ConfigError::invalid(e.key, e.message))?;
    Ok(Config {
        server,
        admin_listen: socket_addr("[admin] listen", &file.admin.listen)?,
        admin_token: admin_token(&file.admin, env)?,
        upstreams,
        health,
        validation,
        enrich,
        location,
        sessions: sessions(&file.sessions, env)?,
        limits: limits(&file.limits)?,
        log: log(&file.log)?,
        quality: super::quality::quality(&file.quality)?,
        quarantine: super::quality::quarantine(&file.quarantine)?,
        emulator: file.emulator.as_ref().map(emulator).transpose()?,
        pass_through: file.bench.pass_through,
    })
}

/// `[admin] token`: a constant or `${env:NAME}` (an unset variable is an error), at least 16
/// characters.
fn admin_token(f: &file::Admin, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>> {
    let Some(raw) = &f.token else {
        return Ok(None);
    };
    let key = "[admin] token";
    let token = enrich::Template::compile(raw, env)
        .ok()
        .and_then(|t| t.as_constant().map(str::to_owned))
        .ok_or_else(|| {
            ConfigError::invalid(
                key,
                "a string, or ${env:NAME} (an unset variable is an error)",
            )
        })?;
    // A token read from a file (a Kubernetes Secret, an env file) often ends with a newline.
    let token = token.trim_end_matches(['\n', '\r']).to_owned();
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::invalid(
            key,
            "must be at least 16 visible ASCII characters",
        ));
    }
    Ok(Some(token))
}

/// `value` when it lies in `min..=max`, else an error naming `key`.
fn in_range<T: PartialOrd + std::fmt::Display>(key: &str, value: T, min: T, max: T) -> Result<T> {
    if value < min || value > max {
        return Err(ConfigError::invalid(
            key,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(value)
}

/// A timeout in milliseconds (1 ms to one hour).
fn millis(key: &str, ms: u64) -> Result<Duration> {
    in_range(key, ms, 1, MAX_TIMEOUT_MS).map(Duration::from_millis)
}

fn server(s: &file::Server) -> Result<Server> {
    if s.max_body_bytes == 0 || s.max_body_bytes > MAX_BODY_LIMIT {
        return Err(ConfigError::invalid(
            "[server] max_body_bytes",
            format!("must be between 1 and {MAX_BODY_LIMIT} (64 MiB)"),
        ));
    }
    let tls = match (&s.tls_cert, &s.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            readable("[server] tls_cert", cert)?;
            readable("[server] tls_key", key)?;
            Some((cert.clone(), key.clone()))
        }
        _ => {
            return Err(ConfigError::invalid(
                "[server] tls_cert and tls_key",
                "set both or neither",
            ))
        }
    };
    Ok(Server {
        listen: socket_addr("[server] listen", &s.listen)?,
        max_body_bytes: s.max_body_bytes as usize,
        threads: in_range("[server] threads", s.threads, 1, 256)?,
        work_stealing: s.work_stealing,
        grace_period_seconds: s.grace_period_seconds,
        graceful_shutdown_timeout_seconds: s.graceful_shutdown_timeout_seconds,
        pid_file: s.pid_file.clone(),
        upgrade_sock: s.upgrade_sock.clone(),
        keepalive_timeout_seconds: s.keepalive_timeout_seconds,
        client_read_timeout: Duration::from_millis(s.client_read_timeout_ms.max(1)),
        client_body_timeout: millis("[server] client_body_timeout_ms", s.client_body_timeout_ms)?,
        max_inflight_body_bytes: in_range(
            "[server] max_inflight_body_bytes",
            s.max_inflight_body_bytes,
            s.max_body_bytes,
            1 << 40,
        )? as usize,
        max_connections: in_range("[server] max_connections", s.max_connections, 1, 10_000_000)?,
        underscores_in_headers: s.underscores_in_headers,
        tls,
    })
}

/// How the gateway names itself in `Location` (`public_url`, `absolute_location`).
fn location(s: &file::Server) -> Result<Rewriter> {
    let public_url = s
        .public_url
        .as_deref()
        .map(|u| parse_url("[server] public_url", u))
        .transpose()?;
    if s.absolute_location && public_url.is_none() {
        return Err(ConfigError::invalid(
            "[server] absolute_location",
            "needs [server] public_url",
        ));
    }
    Ok(Rewriter {
        absolute_base: public_url
            .as_ref()
            .filter(|_| s.absolute_location)
            .map(|u| format!("{}://{}", u.scheme, u.authority)),
        own_authorities: public_url.iter().map(|u| u.authority.clone()).collect(),
    })
}

fn upstreams(list: &[file::Upstream]) -> Result<Vec<Upstream>> {
    if list.is_empty() {
        return Err(ConfigError::invalid(
            "[[upstream]]",
            "at least one upstream is required",
        ));
    }
    let mut upstreams: Vec<Upstream> = Vec::with_capacity(list.len());
    for (i, u) in list.iter().enumerate() {
        let at = format!("[[upstream]] #{}", i + 1);
        let upstream = upstream(&at, u)?;
        if upstreams.iter().any(|o| o.name == upstream.name) {
            return Err(ConfigError::invalid(
                format!("{at} name"),
                format!("{:?} is used twice", upstream.name),
            ));
        }
        if let Some(other) = upstreams.iter().find(|o| o.token == upstream.token) {
            return Err(ConfigError::invalid(
                format!("{at} name"),
                format!(
                    "{:?} and {:?} map to the same session token; rename one",
                    upstream.name, other.name
                ),
            ));
        }
        upstreams.push(upstream);
    }
    Ok(upstreams)
}

fn upstream(at: &str, u: &file::Upstream) -> Result<Upstream> {
    let url = parse_url(&format!("{at} url"), &u.url)?;
    let name = u.name.clone().unwrap_or_else(|| url.authority.clone());
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        return Err(ConfigError::invalid(
            format!("{at} name"),
            format!("{name:?} must be non-empty and use only [A-Za-z0-9._:-]"),
        ));
    }
    in_range(&format!("{at} weight"), u.weight, 1, 1000)?;
    if let Some(ca) = &u.ca_file {
        if url.scheme != "https" {
            return Err(ConfigError::invalid(
                format!("{at} ca_file"),
                "only meaningful for an https:// url",
            ));
        }
        readable(&format!("{at} ca_file"), ca)?;
    }
    let timeout = |key: &str, ms: u64| millis(&format!("{at} {key}"), ms);
    Ok(Upstream {
        token: mcapi::sid::token_for(&name),
        name,
        tls: url.scheme == "https",
        host: url.host,
        port: url.port,
        authority: url.authority,
        weight: u.weight,
        ca_file: u.ca_file.clone(),
        connect_timeout: timeout("connect_timeout_ms", u.connect_timeout_ms)?,
        read_timeout: timeout("read_timeout_ms", u.read_timeout_ms)?,
        write_timeout: timeout("write_timeout_ms", u.write_timeout_ms)?,
        idle_timeout: timeout("idle_timeout_ms", u.idle_timeout_ms)?,
        response_timeout: timeout("response_timeout_ms", u.response_timeout_ms)?,
    })
}

fn health(h: &file::HealthCheck) -> Result<Health> {
    let timeout = |key: &str, ms: u64| millis(&format!("[health_check] {key}"), ms);
    let count = |key: &str, n: u32| in_range(&format!("[health_check] {key}"), n, 1, 100);
    if !h.http_path.starts_with('/') || h.http_path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ConfigError::invalid(
            "[health_check] http_path",
            format!("{:?} must be a path starting with /", h.http_path),
        ));
    }
    if !(100..=599).contains(&h.http_status) {
        return Err(ConfigError::invalid(
            "[health_check] http_status",
            "must be an HTTP status (100-599)",
        ));
    }
    Ok(Health {
        kind: h.kind,
        interval: timeout("interval_ms", h.interval_ms)?,
        timeout: timeout("timeout_ms", h.timeout_ms)?,
        unhealthy_threshold: count("unhealthy_threshold", h.unhealthy_threshold)?,
        healthy_threshold: count("healthy_threshold", h.healthy_threshold)?,
        http_path: h.http_path.clone(),
        http_status: h.http_status,
        passive_failures: h.passive_failures,
        passive_ejection: timeout("passive_ejection_ms", h.passive_ejection_ms)?,
    })
}

fn validation(v: &file::Validation) -> Validation {
    Validation {
        mode: v.mode,
        policies: Policies {
            unknown_params: v.unknown_params,
            states_update: v.states_update,
            error_params: v.error_params,
            ts_max_age_ms: v.ts_max_age_seconds.map(|s| s.saturating_mul(1000)),
            ts_max_ahead_ms: v.ts_max_ahead_seconds.map(|s| s.saturating_mul(1000)),
        },
        sid_format: v.sid_format,
        content_type: v.content_type,
    }
}

fn sessions(f: &file::Sessions, env: &dyn Fn(&str) -> Option<String>) -> Result<Sessions> {
    let key = |k: &str| format!("[sessions] {k}");
    let mut settings = sessions::Settings::default();
    let secs = |k: &str, v: u64, max: u64| in_range(&key(k), v, 1, max).map(|v| v * 1000);
    settings.idle_timeout_ms = secs("idle_timeout_seconds", f.idle_timeout_seconds, 86_400)?;
    settings.playhead_timeout_ms = secs(
        "playhead_timeout_seconds",
        f.playhead_timeout_seconds,
        86_400,
    )?;
    settings.closed_retention_ms = secs(
        "closed_retention_seconds",
        f.closed_retention_seconds,
        7 * 86_400,
    )?;
    settings.reorder_window_ms =
        in_range(&key("reorder_window_ms"), f.reorder_window_ms, 0, 60_000)?;
    if !(0.0..=86_400.0).contains(&f.playhead_tolerance_seconds) {
        return Err(ConfigError::invalid(
            key("playhead_tolerance_seconds"),
            "must be between 0 and 86400",
        ));
    }
    settings.playhead_tolerance = f.playhead_tolerance_seconds;
    for (name, mode) in &f.rules {
        let at = format!("[sessions.rules] {name}");
        let rule = sessions::Rule::parse(name).ok_or_else(|| {
            let names: Vec<&str> = sessions::Rule::ALL.iter().map(|r| r.as_str()).collect();
            ConfigError::invalid(
                &at,
                format!("not a session rule (one of {})", names.join(", ")),
            )
        })?;
        settings.set_mode(rule, *mode).map_err(|_| {
            ConfigError::invalid(
                &at,
                "an order-sensitive rule can only be \"off\" or \"report\": it is judged after the reorder window, when the call has already gone upstream, and a late call may yet explain it",
            )
        })?;
    }
    let store = match f.store {
        file::StoreKind::Memory => {
            for (name, set) in [
                ("redis_url", f.redis_url.is_some()),
                ("redis_ca_file", f.redis_ca_file.is_some()),
            ] {
                if set {
                    return Err(ConfigError::invalid(
                        key(name),
                        "only meaningful with store = \"redis\"",
                    ));
                }
            }
            Store::Memory
        }
        file::StoreKind::Redis => {
            let raw = f.redis_url.as_deref().ok_or_else(|| {
                ConfigError::invalid(key("redis_url"), "needed by store = \"redis\"")
            })?;
            let url = enrich::Template::compile(raw, env)
                .ok()
                .and_then(|t| t.as_constant().map(str::to_owned))
                .ok_or_else(|| {
                    ConfigError::invalid(
                        key("redis_url"),
                        "a URL, with ${env:NAME} for secrets (an unset variable is an error)",
                    )
                })?;
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError::invalid(
                    key("redis_url"),
                    "must start with redis:// or rediss:// (TLS)",
                ));
            }
            if f.key_prefix.is_empty() {
                return Err(ConfigError::invalid(key("key_prefix"), "must not be empty"));
            }
            if f.redis_ca_file.is_some() && !url.starts_with("rediss://") {
                return Err(ConfigError::invalid(
                    key("redis_ca_file"),
                    "only meaningful with a rediss:// redis_url",
                ));
            }
            if f.redis_ca_file.as_deref() == Some("") {
                return Err(ConfigError::invalid(
                    key("redis_ca_file"),
                    "must not be empty",
                ));
            }
            Store::Redis {
                url,
                key_prefix: f.key_prefix.clone(),
                ca_file: f.redis_ca_file.clone(),
            }
        }
    };
    Ok(Sessions {
        enabled: f.enabled,
        store,
        store_timeout: millis(&key("store_timeout_ms"), f.store_timeout_ms)?,
        max_sessions: in_range(&key("max_sessions"), f.max_sessions, 1, 100_000_000)?,
        unknown_sessions: f.unknown_sessions,
        settings,
    })
}

fn limits(l: &file::Limits) -> Result<Limits> {
    if l.requests_per_second == 0.0 {
        return Ok(Limits { rate: None });
    }
    if !(l.requests_per_second > 0.0 && l.requests_per_second <= 1e6) {
        return Err(ConfigError::invalid(
            "[limits] requests_per_second",
            "must be between 0 (off) and 1000000",
        ));
    }
    Ok(Limits {
        rate: Some(RateLimit {
            per_second: l.requests_per_second,
            burst: in_range("[limits] burst", l.burst, 1, 1_000_000)?,
            max_clients: in_range("[limits] max_clients", l.max_clients, 1, 10_000_000)?,
        }),
    })
}

fn log(l: &file::Log) -> Result<Log> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    if !LEVELS.contains(&l.level.as_str()) {
        return Err(ConfigError::invalid(
            "[log] level",
            format!("{:?} is not one of {}", l.level, LEVELS.join(", ")),
        ));
    }
    if l.access_log_path.as_deref() == Some("") {
        return Err(ConfigError::invalid(
            "[log] access_log_path",
            "must name a file (leave it out for standard output)",
        ));
    }
    Ok(Log {
        access_log: l.access_log,
        access_log_path: l.access_log_path.as_ref().map(PathBuf::from),
        access_log_buffer_bytes: in_range(
            "[log] access_log_buffer_bytes",
            l.access_log_buffer_bytes,
            64 * 1024,
            1 << 30,
        )? as usize,
        level: l.level.clone(),
    })
}

fn emulator(e: &file::Emulator) -> Result<Emulator> {
    Ok(Emulator {
        listen: socket_addr("[emulator] listen", &e.listen)?,
        idle_timeout: Duration::from_secs(e.idle_timeout_seconds),
        location_prefix: e.location_prefix.clone(),
        response_delay: Duration::from_millis(e.response_delay_ms),
    })
}

fn readable(key: &str, path: &str) -> Result<()> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|e| ConfigError::invalid(key, format!("cannot read {path:?}: {e}")))
}

fn socket_addr(key: &str, value: &str) -> Result<SocketAddr> {
    value.parse().map_err(|_| {
        ConfigError::invalid(
            key,
            format!("{value:?} is not an IP address with a port (e.g. \"127.0.0.1:8080\" or \"[::1]:8080\")"),
        )
    })
}

struct Url {
    scheme: &'static str,
    host: String,
    port: u16,
    authority: String,
}

fn parse_url(key: &str, value: &str) -> Result<Url> {
    let err = |message: String| ConfigError::invalid(key, message);
    let uri: http::Uri = value
        .parse()
        .map_err(|_| err(format!("{value:?} is not a URL")))?;
    let scheme = match uri.scheme_str() {
        Some("http") => "http",
        Some("https") => "https",
        _ => {
            return Err(err(format!(
                "{value:?} must start with http:// or https://"
            )))
        }
    };
    let authority = uri
        .authority()
        .ok_or_else(|| err(format!("{value:?} has no host")))?;
    if authority.as_str().contains('@') {
        return Err(err(format!("{value:?} must not carry user information")));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(err(format!(
            "{value:?} must not have a path or a query (only scheme://host[:port])"
        )));
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
