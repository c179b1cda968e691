//! The access log: one JSON object per request, written through a [`LogSink`] (standard output
//! by default, or `[log] access_log_path`), so that a slow reader never stalls a request.
//!
//! Fields: `ts` (RFC 3339), `request_id`, `client`, `method`, `route` (template), `status`,
//! `duration_ms`, `body_bytes`, `upstream` (name, when contacted), `upstream_ms`,
//! `violations` (count of validation errors), `error` (upstream failure kind, when any).

use serde::Serialize;
use std::sync::Arc;

use super::log_sink::LogSink;

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

pub struct AccessLog {
    sink: Arc<LogSink>,
}

impl AccessLog {
    pub fn new(sink: Arc<LogSink>) -> AccessLog {
        AccessLog { sink }
    }

    /// Appends one entry (dropped, and counted, when the sink is full).
    pub fn write(&self, entry: &Entry) {
        self.sink.line(|out| {
            // Serializing strings and numbers into a Vec cannot fail.
            let _ = serde_json::to_writer(out, entry);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::log_sink::Destination;
    use std::time::Duration;

    #[test]
    fn entries_are_json_lines() {
        let path = std::env::temp_dir().join(format!("access-{}.log", std::process::id()));
        let counter = prometheus::IntCounter::new("t", "t").unwrap();
        let sink = Arc::new(
            LogSink::start("t", Destination::File(path.clone()), 1 << 20, counter).unwrap(),
        );
        let log = AccessLog::new(sink.clone());
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
        sink.close(Duration::from_secs(5));
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(text.lines().count(), 2);
        let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(v["client"], "127.0.0.1");
        assert!(v.get("upstream_ms").is_none());
    }
}
