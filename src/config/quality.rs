//! The data-quality keys: `[quality]` (the label bounds of per-player counts) and
//! `[quarantine]` (the spool of refused calls), resolved and checked. `docs/configuration.md`
//! documents each key; `docs/data-quality.md` what they do.

use serde::Deserialize;
use std::path::PathBuf;

use super::ConfigError;

type Result<T> = std::result::Result<T, ConfigError>;

/// `[quality]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityFile {
    pub max_label_values: usize,
    pub players: Vec<String>,
    pub sdks: Vec<String>,
}

impl Default for QualityFile {
    fn default() -> Self {
        QualityFile {
            max_label_values: 50,
            players: Vec::new(),
            sdks: Vec::new(),
        }
    }
}

/// `[quarantine]` as written (on when `dir` is set).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuarantineFile {
    pub dir: Option<String>,
    pub file_bytes: u64,
    pub max_bytes: u64,
    pub queue_bytes: u64,
    pub max_body_bytes: u64,
    pub keep_identity: bool,
    pub keep_bodies: bool,
    pub upstream_failures: bool,
    pub report_samples_per_second: f64,
    pub headers: Vec<String>,
}

impl Default for QuarantineFile {
    fn default() -> Self {
        QuarantineFile {
            dir: None,
            file_bytes: 16 * 1024 * 1024,
            max_bytes: 256 * 1024 * 1024,
            queue_bytes: 4 * 1024 * 1024,
            max_body_bytes: 64 * 1024,
            keep_identity: false,
            keep_bodies: false,
            upstream_failures: false,
            report_samples_per_second: 1.0,
            headers: vec![
                "user-agent".into(),
                "origin".into(),
                "referer".into(),
                "content-type".into(),
            ],
        }
    }
}

/// Per-player counts (`[quality]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Quality {
    pub max_label_values: usize,
    pub players: Vec<String>,
    pub sdks: Vec<String>,
}

/// The quarantine (`[quarantine]`), when it is on.
#[derive(Debug, Clone, PartialEq)]
pub struct Quarantine {
    pub dir: PathBuf,
    pub file_bytes: u64,
    pub max_bytes: u64,
    pub queue_bytes: usize,
    pub max_body_bytes: usize,
    pub keep_identity: bool,
    pub keep_bodies: bool,
    pub upstream_failures: bool,
    pub report_samples_per_second: f64,
    /// Request headers kept, lower-case.
    pub headers: Vec<String>,
}

/// Header fields never kept, whatever the allow-list says: they carry credentials.
const NEVER_KEPT: [&str; 4] = [
    "authorization",
    "cookie",
    "proxy-authorization",
    "set-cookie",
];

pub(super) fn quality(f: &QualityFile) -> Result<Quality> {
    if !(1..=1000).contains(&f.max_label_values) {
        return Err(ConfigError::invalid(
            "[quality] max_label_values",
            "must be between 1 and 1000 (each value is a metric series per rule)",
        ));
    }
    for (key, list) in [("players", &f.players), ("sdks", &f.sdks)] {
        if list.len() > 1000 {
            return Err(ConfigError::invalid(
                format!("[quality] {key}"),
                "at most 1000 names",
            ));
        }
    }
    Ok(Quality {
        max_label_values: f.max_label_values,
        players: f.players.clone(),
        sdks: f.sdks.clone(),
    })
}

pub(super) fn quarantine(f: &QuarantineFile) -> Result<Option<Quarantine>> {
    let key = |k: &str| format!("[quarantine] {k}");
    let Some(dir) = &f.dir else {
        return Ok(None);
    };
    if dir.is_empty() {
        return Err(ConfigError::invalid(
            key("dir"),
            "must not be empty (leave it out to turn the quarantine off)",
        ));
    }
    const MIB: u64 = 1024 * 1024;
    let range = |k: &str, v: u64, min: u64, max: u64| {
        if v < min || v > max {
            Err(ConfigError::invalid(
                key(k),
                format!("must be between {min} and {max}"),
            ))
        } else {
            Ok(v)
        }
    };
    let file_bytes = range("file_bytes", f.file_bytes, 64 * 1024, 4096 * MIB)?;
    let max_bytes = range("max_bytes", f.max_bytes, 0, 1024 * 1024 * MIB)?;
    if max_bytes < file_bytes {
        return Err(ConfigError::invalid(
            key("max_bytes"),
            "must be at least file_bytes (one rotated file)",
        ));
    }
    let queue_bytes = range("queue_bytes", f.queue_bytes, 64 * 1024, 1024 * MIB)?;
    let max_body_bytes = range("max_body_bytes", f.max_body_bytes, 0, 64 * MIB)?;
    if !(0.0..=10_000.0).contains(&f.report_samples_per_second) {
        return Err(ConfigError::invalid(
            key("report_samples_per_second"),
            "must be between 0 (none) and 10000",
        ));
    }
    let mut headers = Vec::new();
    for h in &f.headers {
        let name = h.to_ascii_lowercase();
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ConfigError::invalid(
                key("headers"),
                format!("{h:?} is not a header name"),
            ));
        }
        if NEVER_KEPT.contains(&name.as_str()) {
            return Err(ConfigError::invalid(
                key("headers"),
                format!("{h} carries credentials and is never kept"),
            ));
        }
        headers.push(name);
    }
    Ok(Some(Quarantine {
        dir: PathBuf::from(dir),
        file_bytes,
        max_bytes,
        queue_bytes: queue_bytes as usize,
        max_body_bytes: max_body_bytes as usize,
        keep_identity: f.keep_identity,
        keep_bodies: f.keep_bodies,
        upstream_failures: f.upstream_failures,
        report_samples_per_second: f.report_samples_per_second,
        headers,
    }))
}
