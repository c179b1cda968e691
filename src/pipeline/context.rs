//! What the gateway knows about one request while it handles it, and ids for requests.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::upstream::failure::FailureKind;
use crate::upstream::UpstreamId;
use mcapi::route::Route;

/// Per-request state, filled in as the request goes along and read once by the record.
pub struct RequestCtx {
    pub start: Instant,
    /// When the request was received, milliseconds since the Unix epoch (read once: for
    /// validation's `ts` bounds, templates and the access log).
    pub received_ms: u64,
    pub route: Route,
    /// The status of the answer, once one is being written (`None`: the client went away, or
    /// the answer could not be written, before any status was decided).
    pub status: Option<u16>,
    pub body_bytes: usize,
    pub request_id: String,
    /// The client's address (see `enrich::Rules::client_ip`), found once per request.
    pub client_ip: Option<IpAddr>,
    /// The upstream that answered, or the last one tried.
    pub upstream: Option<UpstreamId>,
    /// From sending the request upstream to the end of its answer.
    pub upstream_time: Option<Duration>,
    /// Validation errors of the body (the access log's `violations`).
    pub violations: usize,
    pub failure: Option<FailureKind>,
}

impl RequestCtx {
    pub fn new(request_id: String, client_ip: Option<IpAddr>) -> RequestCtx {
        RequestCtx {
            start: Instant::now(),
            received_ms: unix_ms(SystemTime::now()),
            route: Route::Unknown,
            status: None,
            body_bytes: 0,
            request_id,
            client_ip,
            upstream: None,
            upstream_time: None,
            violations: 0,
            failure: None,
        }
    }
}

pub use crate::io::clock::unix_ms_of as unix_ms;

/// Request ids: 32 hex characters, a per-process random prefix and a counter.
pub struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl RequestIds {
    pub fn new() -> RequestIds {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        RequestIds {
            prefix: h.finish(),
            counter: AtomicU64::new(0),
        }
    }

    pub fn next(&self) -> String {
        use std::fmt::Write;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(32);
        // Writing to a String cannot fail.
        let _ = write!(id, "{:016x}{:016x}", self.prefix, n);
        id
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}
