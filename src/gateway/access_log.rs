//! The access log: one JSON object per request on standard output.
//!
//! Fields: `ts` (RFC 3339), `request_id`, `client`, `method`, `route` (template), `status`,
//! `duration_ms`, `body_bytes`, `upstream` (name, when contacted), `upstream_ms`,
//! `violations` (count of validation errors), `error` (upstream failure kind, when any).

use serde::Serialize;
use std::io::Write;

#[derive(Serialize)]
pub struct Entry<'a> {
    pub ts: &'a str,
    pub request_id: &'a str,
    pub client: Option<String>,
    pub method: &'a str,
    pub route: &'a str,
    pub status: u16,
    pub duration_ms: f64,
    pub body_bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_ms: Option<f64>,
    pub violations: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

/// Writes one entry as a line. A failed write (closed stdout) is ignored: the log must never
/// take a request down.
pub fn write(entry: &Entry) {
    let mut line = Vec::with_capacity(256);
    if serde_json::to_writer(&mut line, entry).is_ok() {
        line.push(b'\n');
        let _ = std::io::stdout().lock().write_all(&line);
    }
}
