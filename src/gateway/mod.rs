//! The pingora glue: a `ProxyHttp` whose `request_filter` routes each request, reads and checks
//! the body, calls the pure modules (validation, enrichment, Location rewriting), performs the
//! upstream exchange (`relay`) and writes the answer; `logging` records metrics and the access
//! log.
//!
//! Every request is answered from `request_filter` (it returns `Ok(true)`), so pingora's own
//! upstream phases never run: see [`upstream`] for why the exchange is done here.

pub mod access_log;
pub mod balance;
pub mod forward;
pub mod health;
pub mod health_check;
mod idle_pool;
pub mod pool;
mod relay;
pub mod respond;
pub mod routes;
mod series;
pub mod upstream;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_proxy::{ProxyHttp, Session};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{Config, Mode};
use crate::enrich::{self, template::rfc3339_millis};
use crate::mcapi::{self, Endpoint, EventType, Severity};
use crate::metrics::{content_type_label, Metrics};
use pool::{OwnerError, Pool};
use relay::Target;
use respond::ErrorReply;
use routes::{Action, Route};
use upstream::FailureKind;

/// The gateway service.
pub struct Gateway {
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    pool: Arc<Pool>,
    request_ids: RequestIds,
    access_log: Option<Arc<access_log::AccessLog>>,
    series: series::Series,
    /// Whether the listener speaks TLS (for `X-Forwarded-Proto`).
    tls: bool,
}

/// Per-request state, read by `logging`.
pub struct RequestCtx {
    start: Instant,
    route: Route,
    status: u16,
    body_bytes: usize,
    request_id: String,
    /// The client's address (see `enrich::Rules::client_ip`), found once per request.
    client_ip: Option<IpAddr>,
    upstream: Option<usize>,
    upstream_time: Option<Duration>,
    violations: usize,
    failure: Option<FailureKind>,
}

impl Gateway {
    /// `access_log` receives one line per request when the access log is on.
    pub fn new(
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        pool: Arc<Pool>,
        access_log: Option<Arc<access_log::AccessLog>>,
    ) -> Gateway {
        pool.publish_health(&metrics);
        let names: Vec<&str> = (0..pool.len()).map(|i| pool.name(i)).collect();
        let series = series::Series::new(&metrics, &names);
        Gateway {
            series,
            access_log,
            tls: config.server.tls.is_some(),
            config,
            metrics,
            pool,
            request_ids: RequestIds::new(),
        }
    }

    /// Routes the request and writes the whole answer.
    async fn handle(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        let req = session.req_header();
        let (route, action) = routes::dispatch(&req.method, req.uri.path());
        ctx.route = route;
        match action {
            Action::NotFound => self.error(session, ctx, 404, "no such route", &[]).await,
            Action::MalformedSid => {
                self.error(session, ctx, 404, "malformed session id", &[])
                    .await
            }
            Action::MethodNotAllowed => {
                let reply = ErrorReply {
                    status: 405,
                    message: "method not allowed",
                    errors: &[],
                    headers: &[("allow", route.allow())],
                };
                ctx.status = 405;
                respond::error(session, reply).await
            }
            Action::Preflight => {
                ctx.status = 204;
                respond::preflight(session).await
            }
            Action::ForwardBodiless => {
                let rules = self.rule_set(session);
                self.forward(session, ctx, rules, Target::Balanced, None)
                    .await
            }
            Action::ForwardBody(endpoint) => {
                self.forward_checked_body(session, ctx, endpoint).await
            }
        }
    }

    /// Where an events request goes: its session's owner, with the upstream's own sid in the path.
    fn events_target(&self, session: &Session) -> std::result::Result<Target, &'static str> {
        let uri = &session.req_header().uri;
        let outward = routes::sid_of(uri.path()).ok_or("no such route")?;
        match self.pool.owner(outward, self.config.validation.sid_format) {
            Ok((index, sid)) => {
                let mut path = format!("/api/v1/sessions/{sid}/events");
                if let Some(q) = uri.query() {
                    path.push('?');
                    path.push_str(q);
                }
                Ok(Target::Owner { index, path })
            }
            Err(OwnerError::Malformed) => Err("malformed session id"),
            Err(OwnerError::UnknownToken) => Err("unknown session"),
        }
    }

    async fn forward_checked_body(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        endpoint: Endpoint,
    ) -> Result<()> {
        let cfg = &self.config;
        let target = if endpoint == Endpoint::Events {
            match self.events_target(session) {
                Ok(t) => t,
                Err(message) => return self.error(session, ctx, 404, message, &[]).await,
            }
        } else {
            Target::Balanced
        };
        let content_type = session
            .req_header()
            .headers
            .get("content-type")
            .map(|v| v.as_bytes());
        if !routes::content_type_accepted(content_type, cfg.validation.content_type) {
            return self
                .error(
                    session,
                    ctx,
                    415,
                    "unsupported content type: send application/json",
                    &[],
                )
                .await;
        }
        let Some(body) = self.read_body(session, ctx).await? else {
            return Ok(());
        };
        ctx.body_bytes = body.len();
        let now_ms = unix_ms(SystemTime::now());
        let checked = mcapi::check(endpoint, &body, &cfg.validation.policies, now_ms);
        let mode = cfg.validation.mode;
        if mode != Mode::Off {
            self.count_violations(ctx, &checked);
        }
        if mode == Mode::Enforce && !checked.is_valid() {
            let errors: Vec<&mcapi::Violation> = checked.errors().collect();
            return self
                .error(session, ctx, 400, "invalid request body", &errors)
                .await;
        }
        if mode == Mode::Report && !checked.is_valid() {
            log::warn!(
                "request {}: forwarding an invalid {} body (report mode): {}",
                ctx.request_id,
                endpoint.as_str(),
                checked
                    .errors()
                    .map(|v| format!("{} {}", v.path, v.rule.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let rules = self.rule_set(session);
        let enriched = match &checked.document {
            Some(doc) => {
                let headers = &session.req_header().headers;
                let ectx = self.enrich_context(ctx, headers, now_ms);
                rules
                    .enrich_body(checked.text, doc, &ectx)
                    .map(|(body, applied)| {
                        self.count_enrichment(&rules.name, &applied);
                        body
                    })
            }
            None => None,
        };
        if let Some(doc) = &checked.document {
            self.count_events(doc);
        }
        drop(checked);
        let body = match enriched {
            Some(new) => {
                self.metrics
                    .body_rewrites
                    .with_label_values(&[ctx.route.template()])
                    .inc();
                Bytes::from(new)
            }
            None => body,
        };
        self.forward(session, ctx, rules, target, Some(body)).await
    }

    /// Reads the whole request body, answering 413 above the limit and 400/408 when it cannot be
    /// read. `None` means an answer was written.
    async fn read_body(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Bytes>> {
        let max = self.config.server.max_body_bytes;
        let declared = session
            .req_header()
            .headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > max as u64) {
            // The body is left unread, so pingora closes the connection after this answer.
            self.error(session, ctx, 413, &too_large(max), &[]).await?;
            return Ok(None);
        }
        let expects_continue = session
            .req_header()
            .headers
            .get("expect")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if expects_continue {
            let downstream = session.as_downstream_mut();
            // A 100 Continue before the body would otherwise switch keep-alive off.
            downstream.set_close_on_response_before_downstream_finish(false);
            downstream.write_continue_response().await?;
            downstream.set_close_on_response_before_downstream_finish(true);
        }
        let mut buf = BytesMut::with_capacity(declared.map_or(4096, |l| l as usize));
        loop {
            let read = tokio::time::timeout(
                self.config.server.client_read_timeout,
                session.read_request_body(),
            );
            let chunk = match read.await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => {
                    log::debug!("request {}: reading the body failed: {e}", ctx.request_id);
                    session.as_downstream_mut().set_keepalive(None);
                    self.error(session, ctx, 400, "the request body could not be read", &[])
                        .await?;
                    return Ok(None);
                }
                Err(_) => {
                    session.as_downstream_mut().set_keepalive(None);
                    self.error(session, ctx, 408, "timed out reading the request body", &[])
                        .await?;
                    return Ok(None);
                }
            };
            if buf.len() + chunk.len() > max {
                session.as_downstream_mut().set_keepalive(None);
                self.error(session, ctx, 413, &too_large(max), &[]).await?;
                return Ok(None);
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Some(buf.freeze()))
    }

    async fn error(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        status: u16,
        message: &str,
        errors: &[&mcapi::Violation],
    ) -> Result<()> {
        ctx.status = status;
        let reply = ErrorReply {
            status,
            message,
            errors,
            headers: &[],
        };
        respond::error(session, reply).await
    }

    fn enrich_context<'a>(
        &self,
        ctx: &'a RequestCtx,
        headers: &'a http::HeaderMap,
        now_ms: u64,
    ) -> enrich::Context<'a> {
        enrich::Context {
            client_ip: ctx.client_ip,
            request_id: &ctx.request_id,
            received_at_ms: now_ms,
            headers,
        }
    }

    /// The enrichment rule set for this request (its site, or the default).
    fn rule_set(&self, session: &Session) -> &enrich::RuleSet {
        let req = session.req_header();
        let host = req
            .headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri.host());
        self.config.enrich.select(host, req.uri.path())
    }

    fn count_enrichment(&self, site: &str, applied: &enrich::Applied) {
        for (action, n) in applied.counts() {
            if n > 0 {
                self.metrics
                    .enrichments
                    .with_label_values(&[site, action])
                    .inc_by(u64::from(n));
            }
        }
    }

    fn count_violations(&self, ctx: &mut RequestCtx, checked: &mcapi::Checked) {
        let route = ctx.route.template();
        for v in &checked.violations {
            let rule = v.rule.as_str();
            let severity = match v.severity {
                Severity::Error => {
                    ctx.violations += 1;
                    self.metrics
                        .validation_failures
                        .with_label_values(&[route, rule])
                        .inc();
                    "error"
                }
                Severity::Warning => {
                    self.metrics
                        .validation_warnings
                        .with_label_values(&[route, rule])
                        .inc();
                    "warning"
                }
            };
            let event = mcapi::event_type_label(v.event_type);
            self.metrics
                .violations_by_event
                .with_label_values(&[event, rule, severity])
                .inc();
        }
    }

    fn count_events(&self, doc: &mcapi::Document) {
        for event in doc.events() {
            self.series.event(event.event_type).inc();
            if event.event_type == Some(EventType::SessionStart) {
                let ct = event.param_str("media.contentType");
                let label = ct.as_deref().map_or("other", content_type_label);
                self.series.session(label).inc();
            }
        }
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            start: Instant::now(),
            route: Route::Unknown,
            status: 0,
            body_bytes: 0,
            request_id: String::new(),
            client_ip: None,
            upstream: None,
            upstream_time: None,
            violations: 0,
            failure: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        self.metrics.inflight.inc();
        ctx.start = Instant::now();
        let headers = &session.req_header().headers;
        ctx.request_id = match self
            .config
            .enrich
            .incoming_request_id(peer_ip(session), headers)
        {
            Some(id) => id.to_owned(),
            None => self.request_ids.next(),
        };
        ctx.client_ip = self.config.enrich.client_ip(peer_ip(session), headers);
        let keepalive = if session.is_process_shutting_down() {
            None
        } else {
            Some(self.config.server.keepalive_timeout_seconds)
        };
        session.as_downstream_mut().set_keepalive(keepalive);
        self.handle(session, ctx).await?;
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        // Never reached: request_filter answers every request.
        Error::e_explain(
            ErrorType::InternalError,
            "mediagate answers every request in request_filter",
        )
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        if ctx.request_id.is_empty() {
            // request_filter never ran (the request header could not be read).
            return;
        }
        self.metrics.inflight.dec();
        let status = if ctx.status == 0 && e.is_some() {
            499
        } else {
            ctx.status
        };
        let route = ctx.route.template();
        let elapsed = ctx.start.elapsed();
        self.series
            .count_request(&self.metrics, ctx.route, status, status_label(status));
        self.series
            .duration(ctx.route)
            .observe(elapsed.as_secs_f64());
        if ctx.body_bytes > 0 {
            self.series
                .body_bytes(ctx.route)
                .observe(ctx.body_bytes as f64);
        }
        let upstream = ctx.upstream.map(|i| self.pool.name(i));
        if let (Some(i), Some(t)) = (ctx.upstream, ctx.upstream_time) {
            self.series.upstream_duration(i).observe(t.as_secs_f64());
        }
        if let Some(log) = &self.access_log {
            let ts = rfc3339_millis(unix_ms(SystemTime::now()));
            log.write(&access_log::Entry {
                ts: &ts,
                request_id: &ctx.request_id,
                client: peer_ip(session),
                method: session.req_header().method.as_str(),
                route,
                status,
                duration_ms: elapsed.as_secs_f64() * 1000.0,
                body_bytes: ctx.body_bytes,
                upstream,
                upstream_ms: ctx.upstream_time.map(|t| t.as_secs_f64() * 1000.0),
                violations: ctx.violations,
                error: ctx.failure.map(FailureKind::as_str),
            });
        }
    }
}

fn peer_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn too_large(max: usize) -> String {
    format!("request body larger than {max} bytes")
}

/// Status codes as static label values (allocated once, not per request).
fn status_label(status: u16) -> &'static str {
    static LABELS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let labels = LABELS.get_or_init(|| {
        (100..600)
            .map(|s: u16| &*Box::leak(s.to_string().into_boxed_str()))
            .collect()
    });
    labels
        .get(usize::from(status.wrapping_sub(100)))
        .copied()
        .unwrap_or("other")
}

/// Request ids: 32 hex characters, a per-process random prefix and a counter.
struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl RequestIds {
    fn new() -> RequestIds {
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

    fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}{:016x}", self.prefix, n)
    }
}
