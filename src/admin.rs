//! The admin listener (`[admin] listen`, loopback by default). Endpoints:
//! - `GET /metrics` — Prometheus text exposition of every `mediagate_*` series;
//! - `GET /healthz` — 200 while the process serves requests (liveness);
//! - `GET /readyz`  — 200 while the gateway accepts traffic, 503 from the moment a graceful
//!   shutdown or upgrade starts (readiness; load balancers stop sending new requests);
//! - anything else — 404.

use async_trait::async_trait;
use http::{header, Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::metrics::Metrics;

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
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let is_get = req.method == http::Method::GET || req.method == http::Method::HEAD;
        match (req.uri.path(), is_get) {
            ("/metrics", true) => reply(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(),
            ),
            ("/healthz", true) => reply(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            ("/readyz", true) if self.readiness.is_ready() => {
                reply(StatusCode::OK, "text/plain", b"ready\n".to_vec())
            }
            ("/readyz", true) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                b"shutting down\n".to_vec(),
            ),
            ("/metrics" | "/healthz" | "/readyz", false) => reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                b"method not allowed\n".to_vec(),
            ),
            _ => reply(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
        }
    }
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let len = resp.body().len();
    let headers = resp.headers_mut();
    if let Ok(v) = content_type.parse() {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CONTENT_LENGTH, len.into());
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, http::HeaderValue::from_static("GET, HEAD"));
    }
    resp
}
