//! The gateway: for each request [`service`] reads off a player's connection, [`Gateway::serve`]
//! routes it, reads and checks the body, calls the pure modules (validation, enrichment, Location
//! rewriting), performs the upstream exchange ([`relay`]), writes the answer, and records
//! metrics and the access log.
//!
//! pingora provides the server (listeners, TLS, graceful upgrade and shutdown, background
//! services) and the upstream connector; the HTTP/1 exchange on both sides is mediagate's own
//! (see [`service`] and [`upstream`] for why).

pub mod access_log;
pub mod balance;
mod deadline;
mod downstream;
pub mod forward;
pub mod health;
pub mod health_check;
mod idle_pool;
pub mod listener;
pub mod pool;
mod relay;
pub mod respond;
pub mod routes;
mod series;
pub mod service;
pub mod upstream;

use bytes::Bytes;
use pingora_error::Result;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{Config, Mode};
use crate::enrich::{self, template::rfc3339_millis};
use crate::mcapi::{self, Endpoint, EventType, Severity};
use crate::metrics::{content_type_label, Metrics};
use downstream::{BodyFailure, Conn, Exchange, HeadFailure};
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

/// Per-request state, read by [`Gateway::log_request`].
pub struct RequestCtx {
    start: Instant,
    /// When the request was received, milliseconds since the Unix epoch (read once: for
    /// validation's `ts` bounds, templates and the access log).
    received_ms: u64,
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
        let series = series::Series::new(&metrics, &names, config.enrich.rule_set_names());
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
    async fn handle(&self, ex: &mut Exchange<'_>, ctx: &mut RequestCtx) -> Result<()> {
        let req = &ex.head;
        let (route, action) = routes::dispatch(&req.method, req.uri.path());
        ctx.route = route;
        match action {
            Action::NotFound => self.error(ex, ctx, 404, "no such route", &[]).await,
            Action::MalformedSid => self.error(ex, ctx, 404, "malformed session id", &[]).await,
            Action::MethodNotAllowed => {
                let reply = ErrorReply {
                    status: 405,
                    message: "method not allowed",
                    errors: &[],
                    headers: &[("allow", route.allow())],
                };
                self.send_error(ex, ctx, &reply).await
            }
            Action::Preflight => {
                ctx.status = 204;
                let answer = respond::preflight_answer(ex.version(), ex.keep_alive());
                ex.send(&answer).await
            }
            Action::ForwardBodiless => {
                let rules = self.rule_set(ex);
                self.forward(ex, ctx, rules, Target::Balanced, None).await
            }
            Action::ForwardBody(endpoint) => self.forward_checked_body(ex, ctx, endpoint).await,
        }
    }

    /// Where an events request goes: its session's owner, with the upstream's own sid in the path.
    fn events_target(&self, ex: &Exchange<'_>) -> std::result::Result<Target, &'static str> {
        let uri = &ex.head.uri;
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
        ex: &mut Exchange<'_>,
        ctx: &mut RequestCtx,
        endpoint: Endpoint,
    ) -> Result<()> {
        let cfg = &self.config;
        let target = if endpoint == Endpoint::Events {
            match self.events_target(ex) {
                Ok(t) => t,
                Err(message) => return self.error(ex, ctx, 404, message, &[]).await,
            }
        } else {
            Target::Balanced
        };
        let content_type = ex.head.headers.get("content-type").map(|v| v.as_bytes());
        if !routes::content_type_accepted(content_type, cfg.validation.content_type) {
            return self
                .error(
                    ex,
                    ctx,
                    415,
                    "unsupported content type: send application/json",
                    &[],
                )
                .await;
        }
        let Some(body) = self.read_body(ex, ctx).await? else {
            return Ok(());
        };
        ctx.body_bytes = body.len();
        let now_ms = ctx.received_ms;
        let checked = mcapi::check(endpoint, &body, &cfg.validation.policies, now_ms);
        let mode = cfg.validation.mode;
        if mode != Mode::Off {
            self.count_violations(ctx, &checked);
        }
        if mode == Mode::Enforce && !checked.is_valid() {
            let errors: Vec<&mcapi::Violation> = checked.errors().collect();
            return self
                .error(ex, ctx, 400, "invalid request body", &errors)
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
        let rules = self.rule_set(ex);
        let enriched = match &checked.document {
            Some(doc) => {
                let headers = &ex.head.headers;
                let ectx = self.enrich_context(ctx, headers, now_ms);
                rules
                    .enrich_body(checked.text, doc, &ectx)
                    .map(|(body, applied)| {
                        self.series
                            .count_enrichment(&self.metrics, &rules.name, &applied);
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
                self.series.body_rewrite(ctx.route).inc();
                Bytes::from(new)
            }
            None => body,
        };
        self.forward(ex, ctx, rules, target, Some(body)).await
    }

    /// Reads the whole request body, answering 413 above the limit and 400/408 when it cannot be
    /// read. `None` means an answer was written.
    async fn read_body(
        &self,
        ex: &mut Exchange<'_>,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Bytes>> {
        let max = self.config.server.max_body_bytes;
        let failure = match ex.read_body(max).await {
            Ok(body) => return Ok(Some(body)),
            Err(failure) => failure,
        };
        // The rest of the stream is not a request boundary any more: close after the answer.
        ex.close_after();
        match failure {
            BodyFailure::TooLarge => self.error(ex, ctx, 413, &too_large(max), &[]).await?,
            BodyFailure::Timeout => {
                self.error(ex, ctx, 408, "timed out reading the request body", &[])
                    .await?
            }
            BodyFailure::Malformed(why) => {
                log::debug!("request {}: reading the body failed: {why}", ctx.request_id);
                self.error(ex, ctx, 400, "the request body could not be read", &[])
                    .await?
            }
        }
        Ok(None)
    }

    async fn error(
        &self,
        ex: &mut Exchange<'_>,
        ctx: &mut RequestCtx,
        status: u16,
        message: &str,
        errors: &[&mcapi::Violation],
    ) -> Result<()> {
        let reply = ErrorReply {
            status,
            message,
            errors,
            headers: &[],
        };
        self.send_error(ex, ctx, &reply).await
    }

    /// Records the status of a gateway-made error answer and writes it ([`write_error`]).
    async fn send_error(
        &self,
        ex: &mut Exchange<'_>,
        ctx: &mut RequestCtx,
        reply: &ErrorReply<'_>,
    ) -> Result<()> {
        ctx.status = reply.status;
        write_error(ex, reply).await
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
    fn rule_set(&self, ex: &Exchange<'_>) -> &enrich::RuleSet {
        let req = &ex.head;
        let host = req
            .headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri.host());
        self.config.enrich.select(host, req.uri.path())
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

impl Gateway {
    /// Serves one request: routes it, answers it, and records it.
    pub(crate) async fn serve(&self, ex: &mut Exchange<'_>) {
        let _inflight = InFlight::new(&self.metrics.inflight);
        let peer = ex.peer();
        let headers = &ex.head.headers;
        let request_id = match self.config.enrich.incoming_request_id(peer, headers) {
            Some(id) => id.to_owned(),
            None => self.request_ids.next(),
        };
        let mut ctx = RequestCtx {
            start: Instant::now(),
            received_ms: unix_ms(SystemTime::now()),
            route: Route::Unknown,
            status: 0,
            body_bytes: 0,
            request_id,
            client_ip: self.config.enrich.client_ip(peer, headers),
            upstream: None,
            upstream_time: None,
            violations: 0,
            failure: None,
        };
        let result = self.handle(ex, &mut ctx).await;
        if let Err(e) = &result {
            log::debug!("request {}: {e}", ctx.request_id);
            // The answer could not be written whole: the connection cannot be reused.
            ex.close_after();
        }
        self.log_request(ex, &ctx, result.is_err());
    }

    /// After a request's handler panicked (a bug; the panic hook has printed it): a 500 when
    /// no byte of an answer was written, and the connection is closed either way.
    pub(crate) async fn recover(&self, ex: &mut Exchange<'_>) {
        log::error!(
            "{} {}: the request handler panicked; closing the connection",
            ex.head.method,
            ex.head.uri.path()
        );
        ex.close_after();
        self.series
            .count_request(&self.metrics, Route::Unknown, 500, status_label(500));
        if !ex.answer_started() {
            let reply = ErrorReply {
                status: 500,
                message: "internal error",
                errors: &[],
                headers: &[],
            };
            let _ = write_error(ex, &reply).await;
        }
    }

    /// Answers a request whose head could not be read (when there is anyone to answer) and
    /// counts it. Returns whether the client may still be sending (the close should linger).
    pub(crate) async fn refuse(&self, conn: &mut Conn, failure: HeadFailure) -> bool {
        let (status, message) = match failure {
            HeadFailure::Closed => return false,
            HeadFailure::Timeout => (408, "timed out reading the request head"),
            HeadFailure::TooLarge => (431, "request head too large"),
            HeadFailure::Refused(e) => (e.status(), e.message()),
        };
        let reply = ErrorReply {
            status,
            message,
            errors: &[],
            headers: &[],
        };
        let started = Instant::now();
        let answer = respond::error_answer(&reply, crate::http1::Version::Http11, false, true);
        let sent = conn
            .send(&answer, self.config.server.client_read_timeout)
            .await;
        self.series
            .count_request(&self.metrics, Route::Unknown, status, status_label(status));
        if let Some(log) = &self.access_log {
            let ts = rfc3339_millis(unix_ms(SystemTime::now()));
            log.write(&access_log::Entry {
                ts: &ts,
                request_id: &self.request_ids.next(),
                client: conn.peer,
                // The head could not be read: no method or route to name.
                method: "-",
                route: Route::Unknown.template(),
                status,
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                body_bytes: 0,
                upstream: None,
                upstream_ms: None,
                violations: 0,
                error: sent.is_err().then_some("client"),
            });
        }
        true
    }

    /// Records a finished request: metrics and the access log line. `failed`: the answer could
    /// not be written whole (the client went away, or the upstream failed mid-answer).
    fn log_request(&self, ex: &Exchange<'_>, ctx: &RequestCtx, failed: bool) {
        let status = if ctx.status == 0 && failed {
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
            let ts = rfc3339_millis(ctx.received_ms + elapsed.as_millis() as u64);
            log.write(&access_log::Entry {
                ts: &ts,
                request_id: &ctx.request_id,
                client: ex.peer(),
                method: ex.head.method.as_str(),
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
        use std::fmt::Write;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(32);
        // Writing to a String cannot fail.
        let _ = write!(id, "{:016x}{:016x}", self.prefix, n);
        id
    }
}

/// Writes a gateway-made error answer to the exchange's request: without its body to a HEAD
/// request, and keeping the connection only if the exchange still may.
async fn write_error(ex: &mut Exchange<'_>, reply: &ErrorReply<'_>) -> Result<()> {
    let with_body = ex.head.method != http::Method::HEAD;
    let answer = respond::error_answer(reply, ex.version(), ex.keep_alive(), with_body);
    ex.send(&answer).await
}

/// Counts a request in `mediagate_inflight_requests` for as long as it lives, however its
/// handling ends.
struct InFlight<'g>(&'g prometheus::IntGauge);

impl<'g> InFlight<'g> {
    fn new(gauge: &'g prometheus::IntGauge) -> InFlight<'g> {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
