//! The record of a request: once its answer is written (or it failed), one [`Record`] feeds the
//! request metrics and the access log line — built in one place, for served requests and for
//! request heads the server refused alike.

use std::net::IpAddr;
use std::time::Duration;

use super::context::unix_ms;
use crate::observe::access_log::AccessLog;
use crate::observe::access_log::Entry;
use crate::observe::series::Series;
use mcapi::route::Route;

/// One finished request.
pub struct Record<'a> {
    pub received_ms: u64,
    pub request_id: &'a str,
    pub client: Option<IpAddr>,
    /// `-` when the head could not be read.
    pub method: &'a str,
    pub route: Route,
    pub status: u16,
    pub elapsed: Duration,
    pub body_bytes: usize,
    pub upstream: Option<&'a str>,
    pub upstream_time: Option<Duration>,
    pub violations: usize,
    pub error: Option<&'a str>,
}

/// How the request counts in the metrics.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// A served request: its status, duration and body size.
    Served,
    /// A request head the server refused: its status only (its duration is the server's, not
    /// a request's).
    Refused,
}

/// Counts the request and writes its access log line (when the log is on).
pub fn record(series: &Series, access_log: Option<&AccessLog>, r: &Record<'_>, counted: Counted) {
    match counted {
        Counted::Served => series.request(r.route, r.status, r.elapsed.as_secs_f64(), r.body_bytes),
        Counted::Refused => series.status(r.route, r.status),
    }
    let Some(log) = access_log else {
        return;
    };
    log.write(&Entry {
        ts_ms: r.received_ms + r.elapsed.as_millis() as u64,
        request_id: r.request_id,
        client: r.client,
        method: r.method,
        route: r.route.template(),
        status: r.status,
        duration: r.elapsed,
        body_bytes: r.body_bytes,
        upstream: r.upstream,
        upstream_time: r.upstream_time,
        violations: r.violations,
        error: r.error,
    });
}

/// The receive time of a request whose head was refused `elapsed` ago.
pub fn refused_at(elapsed: Duration) -> u64 {
    unix_ms(std::time::SystemTime::now()).saturating_sub(elapsed.as_millis() as u64)
}
