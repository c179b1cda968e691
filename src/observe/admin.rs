//! The admin listener (`[admin] listen`, loopback by default), an app on the same server as
//! the gateway. Endpoints:
//! - `GET /metrics` — Prometheus text exposition of every `mediagate_*` series;
//! - `GET /healthz` — 200 while the process serves requests (liveness);
//! - `GET /readyz`  — 200 while the gateway accepts traffic, 503 from the moment a graceful
//!   shutdown or upgrade starts (readiness; load balancers stop sending new requests);
//! - `GET /sessions/{sid}` — the session tracker's state of one session, as JSON (why it got a
//!   410, what is open; 404 when the tracker does not know it);
//! - another method on those paths — 405 with `Allow`; anything else — 404.

use async_trait::async_trait;
use http1::response::{BodyLength, ResponseHead};
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::metrics::Metrics;
use crate::server::{App, ConnSettings, Exchange};

/// Shared readiness flag: true from start until shutdown begins.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn new_ready() -> Readiness {
        Readiness(Arc::new(AtomicBool::new(true)))
    }
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    pub fn set_not_ready(&self) {
        self.0.store(false, Ordering::Relaxed)
    }
}

/// A background service that flips readiness off as soon as pingora signals shutdown
/// (SIGTERM, or SIGQUIT once the sockets have been handed to a new process).
pub struct ReadinessWatcher(pub Readiness);

#[async_trait]
impl BackgroundService for ReadinessWatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
        log::info!("shutdown started: /readyz now answers 503");
        self.0.set_not_ready();
    }
}

pub struct AdminApp {
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
    /// The gateway's session tracker, when this admin listener has a gateway.
    pub sessions: Option<Arc<dyn SessionLookup>>,
}

impl AdminApp {
    /// `GET /sessions/{sid}`.
    async fn session(&self, sid: &str) -> (u16, &'static str, Vec<u8>) {
        let (status, body) = match &self.sessions {
            Some(lookup) => lookup.lookup(sid).await,
            None => (
                404,
                serde_json::json!({"sid": sid, "message": "this listener has no session tracker"}),
            ),
        };
        (status, "application/json", body.to_string().into_bytes())
    }
}

/// What the admin listener asks the gateway's session tracker (the runtime answers).
#[async_trait]
pub trait SessionLookup: Send + Sync {
    /// The status and JSON body of `GET /sessions/{sid}`.
    async fn lookup(&self, sid: &str) -> (u16, serde_json::Value);
}

impl App for AdminApp {
    fn settings(&self) -> ConnSettings {
        ConnSettings {
            read_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(10),
        }
    }

    async fn serve<'a, 'c: 'a>(&'a self, ex: &'a mut Exchange<'c>) {
        let method = &ex.head.method;
        let is_get = method == http::Method::GET || method == http::Method::HEAD;
        let path = ex.head.uri.path().to_owned();
        let session = path
            .strip_prefix("/sessions/")
            .filter(|sid| !sid.is_empty() && !sid.contains('/'));
        let (status, content_type, body) = match (path.as_str(), is_get) {
            (_, true) if session.is_some() => self.session(session.unwrap_or_default()).await,
            (_, false) if session.is_some() => {
                (405, "text/plain", b"method not allowed\n".to_vec())
            }
            ("/metrics", true) => (
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(),
            ),
            ("/healthz", true) => (200, "text/plain", b"ok\n".to_vec()),
            ("/readyz", true) if self.readiness.is_ready() => {
                (200, "text/plain", b"ready\n".to_vec())
            }
            ("/readyz", true) => (503, "text/plain", b"shutting down\n".to_vec()),
            ("/metrics" | "/healthz" | "/readyz", false) => {
                (405, "text/plain", b"method not allowed\n".to_vec())
            }
            _ => (404, "text/plain", b"not found\n".to_vec()),
        };
        // The admin app never reads bodies: a request with one closes the connection after.
        let _ = ex.read_body(0).await;
        let mut head = ResponseHead::new(status, 256 + body.len());
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        head.header("date", date.as_bytes());
        head.header("content-type", content_type.as_bytes());
        if status == 405 {
            head.header("allow", b"GET, HEAD");
        }
        let mut out = head.finish(
            BodyLength::Known(body.len() as u64),
            ex.version(),
            ex.keep_alive(),
        );
        if ex.head.method != http::Method::HEAD {
            out.extend_from_slice(&body);
        }
        if ex.send(&out).await.is_err() {
            ex.close_after();
        }
    }
}
