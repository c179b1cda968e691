//! The access log: one JSON object per request on standard output.
//!
//! Fields: `ts` (RFC 3339), `request_id`, `client`, `method`, `route` (template), `status`,
//! `duration_ms`, `body_bytes`, `upstream` (name, when contacted), `upstream_ms`,
//! `violations` (count of validation errors), `error` (upstream failure kind, when any).
//!
//! Lines are appended to an in-memory buffer under a short lock and written out by a background
//! service every 100 ms, or at once when 64 KiB have gathered: no request waits on a `write`
//! system call, and a busy gateway writes the log in large blocks. The buffer is flushed when
//! the process shuts down gracefully; a crash can lose at most the last 100 ms.

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use serde::Serialize;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Serialize)]
pub struct Entry<'a> {
    pub ts: &'a str,
    pub request_id: &'a str,
    pub client: Option<std::net::IpAddr>,
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

const FLUSH_AT: usize = 64 * 1024;
const FLUSH_EVERY: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct AccessLog {
    buffer: Mutex<Vec<u8>>,
}

impl AccessLog {
    pub fn new() -> Arc<AccessLog> {
        Arc::new(AccessLog {
            buffer: Mutex::new(Vec::with_capacity(FLUSH_AT)),
        })
    }

    /// Appends one entry.
    pub fn write(&self, entry: &Entry) {
        let full = {
            let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
            if serde_json::to_writer(&mut *buffer, entry).is_err() {
                return;
            }
            buffer.push(b'\n');
            (buffer.len() >= FLUSH_AT)
                .then(|| std::mem::replace(&mut *buffer, Vec::with_capacity(FLUSH_AT)))
        };
        if let Some(block) = full {
            write_out(&block);
        }
    }

    /// Writes out what has gathered.
    pub fn flush(&self) {
        let block = {
            let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
            if buffer.is_empty() {
                return;
            }
            std::mem::replace(&mut *buffer, Vec::with_capacity(FLUSH_AT))
        };
        write_out(&block);
    }
}

/// A failed write (closed stdout) is ignored: the log must never take a request down.
fn write_out(block: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(block);
    let _ = out.flush();
}

/// Flushes the access log periodically and at shutdown.
pub struct Flusher(pub Arc<AccessLog>);

#[async_trait]
impl BackgroundService for Flusher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut ticker = tokio::time::interval(FLUSH_EVERY);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.0.flush(),
                _ = shutdown.changed() => break,
            }
        }
        // Requests still draining after the shutdown signal log here; keep flushing through the
        // grace period (the runtime stops this task when the process exits).
        loop {
            ticker.tick().await;
            self.0.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_json_lines() {
        let log = AccessLog::default();
        let entry = Entry {
            ts: "2026-01-01T00:00:00.000Z",
            request_id: "r",
            client: "127.0.0.1".parse().ok(),
            method: "POST",
            route: "/api/v1/sessions",
            status: 201,
            duration_ms: 0.5,
            body_bytes: 10,
            upstream: Some("u"),
            upstream_ms: None,
            violations: 0,
            error: None,
        };
        log.write(&entry);
        log.write(&entry);
        let buffer = log.buffer.lock().unwrap();
        let text = std::str::from_utf8(&buffer).unwrap();
        assert_eq!(text.lines().count(), 2);
        let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(v["client"], "127.0.0.1");
        assert!(v.get("upstream_ms").is_none());
    }
}
