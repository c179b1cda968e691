//! The admin listener (`[admin] listen`, loopback by default), an app on the same server as
//! the gateway. Endpoints:
//! - `GET /metrics` — Prometheus text exposition of every `mediagate_*` series;
//! - `GET /healthz` — 200 while the process serves requests (liveness);
//! - `GET /readyz`  — 200 while the gateway accepts traffic, 503 from the moment a graceful
//!   shutdown or upgrade starts (readiness; load balancers stop sending new requests);
//! - `GET /sessions/{sid}` — the session tracker's state of one session, as JSON (why it got a
//!   410, what is open; 404 when the tracker does not know it);
//! - `GET /quality` — data quality as JSON: violations by rule and by player × SDK × rule over
//!   the last hour and since start, sessions, upstreams, the quarantine and its last examples;
//! - `GET /` — the same as a page (rendered by the runtime with `quality::page`);
//! - `GET /quality/examples/{id}` — one kept example's quarantine entry, as JSON;
//! - `GET /debug/allocations` — only with `MEDIAGATE_COUNT_ALLOCATIONS=1`: the heap allocations
//!   the gateway's event loops made so far (`observe::allocations`), as JSON;
//! - another method on those paths — 405 with `Allow`; anything else — 404.
//!
//! When `[admin] token` is set, every path but `/healthz`, `/readyz` and `/metrics` (probes and
//! scrapes) needs it: `Authorization: Bearer <token>`, or Basic with the token as the password
//! (so a browser can open the page); otherwise 401 with `WWW-Authenticate`.

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
/// (SIGTERM, or SIGQUIT once the sockets have been handed to a new process), and tells systemd
/// the service is stopping — unless the pid file names another process: then this one handed
/// its sockets over, and the service goes on in the new one (which said `MAINPID=`).
pub struct ReadinessWatcher {
    pub readiness: Readiness,
    pub pid_file: String,
}

#[async_trait]
impl BackgroundService for ReadinessWatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
        log::info!("shutdown started: /readyz now answers 503");
        let own = std::process::id().to_string();
        let named = std::fs::read_to_string(&self.pid_file).unwrap_or_default();
        if named.trim() == own || named.trim().is_empty() {
            crate::io::notify::stopping();
        }
        self.readiness.set_not_ready();
    }
}

pub struct AdminApp {
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
    /// The gateway's state (sessions, data quality), when this admin listener has a gateway.
    pub source: Option<Arc<dyn AdminSource>>,
}

type Answer = (u16, &'static str, Vec<u8>);

const JSON: &str = "application/json";

impl AdminApp {
    /// `GET /sessions/{sid}`.
    async fn session(&self, sid: &str) -> Answer {
        let (status, body) = match &self.source {
            Some(source) => source.lookup(sid).await,
            None => (
                404,
                serde_json::json!({"sid": sid, "message": "this listener has no session tracker"}),
            ),
        };
        (status, JSON, body.to_string().into_bytes())
    }

    fn quality(&self) -> serde_json::Value {
        match &self.source {
            Some(source) => source.quality(),
            None => serde_json::json!({"message": "this listener has no gateway"}),
        }
    }

    fn page(&self) -> String {
        match &self.source {
            Some(source) => source.page(),
            None => "<!doctype html><title>mediagate</title><p>this listener has no gateway</p>"
                .to_owned(),
        }
    }

    /// `GET /quality/examples/{id}`.
    fn example(&self, id: &str) -> Answer {
        match self.source.as_ref().and_then(|s| s.example(id)) {
            Some(entry) => (200, JSON, entry.into_bytes()),
            None => (
                404,
                JSON,
                serde_json::json!({"id": id, "message": "no such example: only the last few are kept here (mediagate quarantine show --id lists the spool)"})
                    .to_string()
                    .into_bytes(),
            ),
        }
    }

    /// Whether the request may see the protected paths.
    fn authorized(&self, ex: &Exchange<'_>) -> bool {
        let Some(token) = self.source.as_ref().and_then(|s| s.token()) else {
            return true;
        };
        let given = ex
            .head
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(presented_token);
        given.is_some_and(|g| same(g.as_bytes(), token.as_bytes()))
    }
}

/// The token an `Authorization` value presents: `Bearer <token>`, or `Basic` with the token as
/// the password (any user name).
fn presented_token(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        return text
            .split_once(':')
            .map(|(_, password)| password.to_owned());
    }
    None
}

/// Compares the SHA-256 digests without returning early, so that timing tells neither how much
/// of a guess matched nor the token's length.
fn same(a: &[u8], b: &[u8]) -> bool {
    let digest = |x: &[u8]| ring::digest::digest(&ring::digest::SHA256, x);
    let (a, b) = (digest(a), digest(b));
    a.as_ref()
        .iter()
        .zip(b.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// What the admin listener asks the gateway (the runtime answers).
#[async_trait]
pub trait AdminSource: Send + Sync {
    /// The status and JSON body of `GET /sessions/{sid}`.
    async fn lookup(&self, sid: &str) -> (u16, serde_json::Value);
    /// `[admin] token` of the current configuration.
    fn token(&self) -> Option<String>;
    /// The body of `GET /quality`.
    fn quality(&self) -> serde_json::Value;
    /// The page at `/` (what `quality` says, as HTML).
    fn page(&self) -> String;
    /// A kept example's quarantine entry.
    fn example(&self, id: &str) -> Option<String>;
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
        let one = |prefix: &str| {
            path.strip_prefix(prefix)
                .filter(|id| !id.is_empty() && !id.contains('/'))
                .map(str::to_owned)
        };
        let session = one("/sessions/");
        let example = one("/quality/examples/");
        let protected =
            session.is_some() || example.is_some() || matches!(path.as_str(), "/" | "/quality");
        let (status, content_type, body) = match (path.as_str(), is_get) {
            _ if protected && !self.authorized(ex) => (
                401,
                JSON,
                br#"{"error":{"status":401,"message":"this path needs [admin] token: Authorization: Bearer <token>"}}"#.to_vec(),
            ),
            (_, true) if session.is_some() => self.session(session.as_deref().unwrap_or_default()).await,
            (_, true) if example.is_some() => self.example(example.as_deref().unwrap_or_default()),
            ("/quality", true) => (200, JSON, self.quality().to_string().into_bytes()),
            ("/", true) => (200, "text/html; charset=utf-8", self.page().into_bytes()),
            (_, false) if protected => (405, "text/plain", b"method not allowed\n".to_vec()),
            ("/metrics", true) => (
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(),
            ),
            ("/healthz", true) => (200, "text/plain", b"ok\n".to_vec()),
            ("/debug/allocations", true) if super::allocations::enabled() => (
                200,
                JSON,
                format!("{{\"allocations\":{}}}", super::allocations::total()).into_bytes(),
            ),
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
        if status == 401 {
            head.header(
                "www-authenticate",
                b"Bearer realm=\"mediagate admin\", Basic realm=\"mediagate admin\"",
            );
        }
        if protected {
            // Payloads and session states: never kept by a cache.
            head.header("cache-control", b"no-store");
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
