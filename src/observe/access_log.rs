//! The access log: one JSON object per request, written through a [`LogSink`] (standard output
//! by default, or `[log] access_log_path`), so that a slow reader never stalls a request.
//!
//! Fields: `ts` (RFC 3339), `request_id`, `client`, `method`, `route` (template), `status`,
//! `duration_ms`, `body_bytes`, `upstream` (name, when contacted), `upstream_ms`,
//! `violations` (count of validation errors), `error` (upstream failure kind, when any).
//!
//! The line is written straight into the sink's buffer by [`Entry::write_json`], not through
//! serde: a generic serializer's per-field machinery (`format_escaped_str` and the formatter
//! calls) was a visible share of a request's profile, and every field here is a number, an
//! address or a string that is almost never in need of escaping.

use http1::response::push_u64;
use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::log_sink::LogSink;

pub struct Entry<'a> {
    /// The time of the line (the end of the request), milliseconds since the Unix epoch.
    pub ts_ms: u64,
    pub request_id: &'a str,
    pub client: Option<IpAddr>,
    pub method: &'a str,
    pub route: &'a str,
    pub status: u16,
    /// Written as `duration_ms`, milliseconds with three decimals (microseconds).
    pub duration: Duration,
    pub body_bytes: usize,
    pub upstream: Option<&'a str>,
    pub upstream_time: Option<Duration>,
    pub violations: usize,
    pub error: Option<&'a str>,
}

impl Entry<'_> {
    /// Appends the entry as one JSON object (no newline). Writing to a `Vec` cannot fail.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"ts\":\"");
        enrich::template::rfc3339_millis_to(out, self.ts_ms);
        out.extend_from_slice(b"\",\"request_id\":");
        json::write_str(out, self.request_id);
        out.extend_from_slice(b",\"client\":");
        match self.client {
            Some(IpAddr::V4(ip)) => {
                out.push(b'"');
                for (i, octet) in ip.octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    push_u64(out, u64::from(octet));
                }
                out.push(b'"');
            }
            Some(ip) => {
                out.push(b'"');
                let _ = write!(out, "{ip}");
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"method\":");
        json::write_str(out, self.method);
        out.extend_from_slice(b",\"route\":");
        json::write_str(out, self.route);
        out.extend_from_slice(b",\"status\":");
        push_u64(out, u64::from(self.status));
        out.extend_from_slice(b",\"duration_ms\":");
        millis(out, self.duration);
        out.extend_from_slice(b",\"body_bytes\":");
        push_u64(out, self.body_bytes as u64);
        if let Some(upstream) = self.upstream {
            out.extend_from_slice(b",\"upstream\":");
            json::write_str(out, upstream);
        }
        if let Some(t) = self.upstream_time {
            out.extend_from_slice(b",\"upstream_ms\":");
            millis(out, t);
        }
        out.extend_from_slice(b",\"violations\":");
        push_u64(out, self.violations as u64);
        if let Some(error) = self.error {
            out.extend_from_slice(b",\"error\":");
            json::write_str(out, error);
        }
        out.push(b'}');
    }
}

/// `t` in milliseconds with three decimals (`12.345`), without float formatting.
fn millis(out: &mut Vec<u8>, t: Duration) {
    let micros = t.as_micros().min(u128::from(u64::MAX)) as u64;
    push_u64(out, micros / 1000);
    out.push(b'.');
    let frac = micros % 1000;
    out.extend_from_slice(&[
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
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
        self.sink.line(|out| entry.write_json(out));
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
            ts_ms: 1_767_225_600_000,
            request_id: "r",
            client: "127.0.0.1".parse().ok(),
            method: "POST",
            route: "/api/v1/sessions",
            status: 201,
            duration: Duration::from_micros(500),
            body_bytes: 10,
            upstream: Some("u"),
            upstream_time: None,
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
        assert_eq!(v["ts"], "2026-01-01T00:00:00.000Z");
        assert!(v.get("upstream_ms").is_none());
    }

    #[test]
    fn every_field_is_valid_json_and_escaped() {
        let entry = Entry {
            ts_ms: 1_767_225_600_123,
            request_id: "a\"b\\c\u{1}",
            client: "::1".parse().ok(),
            method: "-",
            route: "/api/v1/sessions/{sid}/events",
            status: 400,
            duration: Duration::from_micros(125),
            body_bytes: 0,
            upstream: Some("up\"stream"),
            upstream_time: Some(Duration::from_millis(2)),
            violations: 3,
            error: Some("timeout"),
        };
        let mut out = Vec::new();
        entry.write_json(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let want = serde_json::json!({
            "ts": "2026-01-01T00:00:00.123Z", "request_id": "a\"b\\c\u{1}", "client": "::1",
            "method": "-", "route": "/api/v1/sessions/{sid}/events", "status": 400,
            "duration_ms": 0.125, "body_bytes": 0, "upstream": "up\"stream", "upstream_ms": 2.0,
            "violations": 3, "error": "timeout",
        });
        assert_eq!(v, want);
        let mut none = Vec::new();
        Entry {
            client: None,
            upstream: None,
            upstream_time: None,
            error: None,
            ..entry
        }
        .write_json(&mut none);
        let v: serde_json::Value = serde_json::from_slice(&none).unwrap();
        assert!(v["client"].is_null());
        let text = String::from_utf8(none).unwrap();
        assert!(text.contains("\"duration_ms\":0.125,"), "{text}");
        assert!(v.get("upstream").is_none() && v.get("error").is_none());
    }
}
