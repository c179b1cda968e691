//! One request through the gateway, top to bottom in [`Gateway::handle`]:
//!
//! 1. route and method (`mcapi::route`: 404, 405, preflight);
//! 2. for an events call, its session's owner ([`prepare::owner_path`], 404 when none);
//! 3. the content type (415) and the body (413, 408, 400 — `server::exchange`);
//! 4. validation and enrichment ([`prepare::check`], pure): refuse (400) or forward;
//! 5. for an events call, the session gate ([`crate::tracker::Tracker::before`]): refuse a
//!    call to a closed session (410) or an enforced playhead (400), or an unknown session (404,
//!    when configured);
//! 6. the upstream exchange (`upstream::Cluster::forward`, with the retry rule);
//! 7. the answer relayed to the player ([`relay`]: CORS, `Location`), the tracker told first
//!    (a 201 starts a session; an events answer updates it);
//! 8. the record: metrics and the access log ([`record`]); on the way, what data quality
//!    learns ([`keep`]: violations by player and SDK, refused calls into the quarantine).
//!
//! Each request runs on the runtime generation current when it started ([`Pass`]): an
//! in-process reload never changes the rules under a request in flight.
//!
//! **May use:** `config`, `mcapi`, `enrich`, `location`, `sessions`, `server` (the exchange it
//! is handed), `upstream` (through [`Cluster`] and [`UpstreamId`] only), `runtime`, `tracker`,
//! `observe`. The steps that decide something are pure functions in [`prepare`], [`summary`],
//! [`headers`] and the crates; this module only strings them together with the I/O.

pub mod context;
mod floor;
pub mod headers;
mod keep;
pub mod prepare;
pub mod record;
mod relay;
pub mod summary;

use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Mode;
use crate::observe::access_log::AccessLog;
use crate::quality::labels::UNKNOWN;
use crate::quarantine::Kind;
use crate::runtime::{Live, Runtime};
use crate::server::answers::ErrorReply;
use crate::server::budget::{BodyBudget, Held};
use crate::server::connection::write_error;
use crate::server::{App, BodyFailure, ConnSettings, Exchange};
use crate::tracker::{Ticket, Verdict};
use crate::upstream::{self, Target};
use context::{RequestCtx, RequestIds};
use keep::Kept;
use mcapi::route::{self, Action};
use mcapi::sid::OwnerError;
use mcapi::Endpoint;
use prepare::Decision;
use record::{Counted, Record};

type Result = std::io::Result<()>;

/// The gateway: the players' listener's app.
pub struct Gateway {
    live: Arc<Live>,
    access_log: Option<AccessLog>,
    request_ids: RequestIds,
    /// Body bytes held by all requests together (`[server] max_inflight_body_bytes`).
    bodies: BodyBudget,
    /// Whether the listener speaks TLS (for `X-Forwarded-Proto`).
    tls: bool,
}

impl Gateway {
    pub fn new(live: Arc<Live>, access_log: Option<AccessLog>) -> Gateway {
        let config = live.load().config.clone();
        Gateway {
            tls: config.server.tls.is_some(),
            bodies: BodyBudget::new(
                config.server.max_inflight_body_bytes,
                live.metrics.inflight_body_bytes.clone(),
            ),
            live,
            access_log,
            request_ids: RequestIds::new(),
        }
    }
}

/// What the tracker is told once the upstream answered.
pub(crate) enum Tracking {
    None,
    /// A session start: the 201's `Location` names the session.
    Start(sessions::Start),
    /// An events call that passed the gate.
    Events(Ticket),
}

/// One request's pass through the gateway: the runtime generation it started on.
struct Pass<'g> {
    rt: Arc<Runtime>,
    gw: &'g Gateway,
}

impl Pass<'_> {
    /// Routes the request and writes the whole answer.
    async fn handle(&self, ex: &mut Exchange<'_>, ctx: &mut RequestCtx) -> Result {
        let (route, action) = route::dispatch(&ex.head.method, ex.head.uri.path());
        ctx.route = route;
        if let (Some(limiter), Some(client)) = (&self.rt.rate_limit, ctx.client_ip) {
            if let Err(seconds) = limiter.take(client, ctx.received_ms) {
                self.rt
                    .series
                    .metrics()
                    .load_shed
                    .with_label_values(&["rate_limit"])
                    .inc();
                let retry_after = seconds.to_string();
                let reply = ErrorReply::plain(429, "too many requests from this client");
                let headers = [("retry-after", retry_after.as_str())];
                ctx.status = Some(429);
                let with_body = ex.head.method != http::Method::HEAD;
                let answer = crate::server::answers::error_answer_with(
                    &reply,
                    &headers,
                    ex.version(),
                    ex.keep_alive(),
                    with_body,
                );
                return ex.send(&answer).await;
            }
        }
        match action {
            Action::NotFound => self.error(ex, ctx, 404, "no such route").await,
            Action::MalformedSid => self.error(ex, ctx, 404, "malformed session id").await,
            Action::MethodNotAllowed => {
                let reply = ErrorReply {
                    headers: &[("allow", route.allow())],
                    ..ErrorReply::plain(405, "method not allowed")
                };
                self.send_error(ex, ctx, &reply).await
            }
            Action::Preflight => {
                ctx.status = Some(204);
                let answer =
                    crate::server::answers::preflight_answer(ex.version(), ex.keep_alive());
                ex.send(&answer).await
            }
            Action::ForwardBodiless => {
                self.forward(ex, ctx, Target::Balanced, None, Tracking::None)
                    .await
            }
            Action::ForwardBody(endpoint) => self.forward_body(ex, ctx, endpoint).await,
        }
    }

    /// Steps 2 to 6 for a POST with a body.
    async fn forward_body(
        &self,
        ex: &mut Exchange<'_>,
        ctx: &mut RequestCtx,
        endpoint: Endpoint,
    ) -> Result {
        let rt = self.rt.clone();
        let cfg = &rt.config;
        let target = match endpoint {
            Endpoint::Events => match self.owner(ex) {
                Ok(target) => target,
                Err(message) => return self.error(ex, ctx, 404, message).await,
            },
            _ => Target::Balanced,
        };
        if !mcapi::content_type::accepted(ex.header("content-type"), cfg.validation.content_type) {
            let message = "unsupported content type: send application/json";
            return self.error(ex, ctx, 415, message).await;
        }
        // The body's bytes are held (in the budget) until the request ends.
        let Some((body, _held)) = self.read_body(ex, ctx).await? else {
            return Ok(());
        };
        ctx.body_bytes = body.len();
        let rules = self.rule_set(ex);
        let mut prepared = {
            let ectx = self.enrich_context(ctx, ex);
            prepare::check(
                endpoint,
                body,
                cfg.validation.mode,
                &cfg.validation.policies,
                rules,
                &ectx,
                rt.tracker.is_some(),
                rt.quarantine.is_some(),
            )
        };
        rt.series
            .violations(ctx.route, &prepared.violations, &prepared.omitted);
        ctx.violations = prepared.error_count();
        let upstream_path = match &target {
            Target::Owner { path, .. } => Some(path.clone()),
            Target::Balanced => None,
        };
        // Only a call with violations pays for its labels (an events call's: a store read).
        let labels = match ctx.violations {
            0 => (UNKNOWN, UNKNOWN),
            _ => {
                let (player, sdk) = (prepared.player.as_deref(), prepared.sdk.as_deref());
                let labels = keep::labels(&rt, ex, endpoint, player, sdk).await;
                keep::count_errors(
                    &rt,
                    labels,
                    &prepared.violations,
                    &prepared.omitted,
                    ctx.received_ms,
                );
                labels
            }
        };
        match &mut prepared.decision {
            Decision::Refuse(kept) => {
                let kept = Kept {
                    kind: Kind::Refused,
                    status: 400,
                    labels,
                    violations: keep::violations_of(&prepared.violations),
                    body: kept,
                    upstream_path: upstream_path.as_deref(),
                    session_rule: false,
                };
                keep::keep(&rt, ex, ctx, kept);
                let more = prepared.omitted_count();
                let truncated = (more > 0).then(|| mcapi::Violation::truncated(more));
                let errors: Vec<&mcapi::Violation> =
                    prepared.errors().chain(truncated.as_ref()).collect();
                let reply = ErrorReply {
                    errors: &errors,
                    ..ErrorReply::plain(400, "invalid request body")
                };
                self.send_error(ex, ctx, &reply).await
            }
            Decision::Forward(body) => {
                let body = std::mem::take(body);
                if cfg.validation.mode == Mode::Report && ctx.violations > 0 {
                    log::warn!(
                        "request {}: forwarding an invalid {} body (report mode): {}",
                        ctx.request_id,
                        endpoint.as_str(),
                        prepared
                            .errors()
                            .map(|v| format!("{} {}", v.path, v.rule.as_str()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                for (event_type, content_type) in &prepared.events {
                    rt.series.event(*event_type, *content_type);
                }
                if let Some(applied) = &prepared.applied {
                    rt.series
                        .enrichment(ctx.route, &rules.name, applied, prepared.rewritten);
                }
                let summary = std::mem::take(&mut prepared.summary);
                let tracking = match (&rt.tracker, endpoint) {
                    (None, _) => Tracking::None,
                    (Some(_), Endpoint::Sessions) => match summary.start {
                        Some(mut start) => {
                            start.player = rt.quality.players.label(prepared.player.as_deref());
                            start.sdk = rt.quality.sdks.label(prepared.sdk.as_deref());
                            Tracking::Start(start)
                        }
                        None => Tracking::None,
                    },
                    (Some(tracker), Endpoint::Events) => {
                        let sid = route::sid_of(ex.head.uri.path()).unwrap_or_default();
                        let (verdict, ticket) = tracker
                            .before(sid, summary.observations, ctx.received_ms)
                            .await;
                        match verdict {
                            Verdict::Forward => Tracking::Events(ticket),
                            Verdict::Refuse(rule) => {
                                let kept = Kept {
                                    kind: Kind::Refused,
                                    status: refusal(rule).0,
                                    labels: ticket.labels,
                                    violations: vec![crate::quarantine::Violation {
                                        path: refusal(rule).1.to_owned(),
                                        rule: rule.as_str().to_owned(),
                                        detail: refusal(rule).4.to_owned(),
                                    }],
                                    body: &body,
                                    upstream_path: upstream_path.as_deref(),
                                    session_rule: true,
                                };
                                keep::keep(&rt, ex, ctx, kept);
                                return self.refuse(ex, ctx, rule).await;
                            }
                            Verdict::RejectUnknown => {
                                let message = "unknown session: the gateway never saw it start ([sessions] unknown_sessions = \"reject\")";
                                return self.error(ex, ctx, 404, message).await;
                            }
                        }
                    }
                    (Some(_), _) => Tracking::None,
                };
                // A report-mode example, once the call is known to go upstream.
                if cfg.validation.mode == Mode::Report && ctx.violations > 0 {
                    let kept = Kept {
                        kind: Kind::Reported,
                        status: 0,
                        labels,
                        violations: keep::violations_of(&prepared.violations),
                        body: &body,
                        upstream_path: upstream_path.as_deref(),
                        session_rule: false,
                    };
                    keep::keep(&rt, ex, ctx, kept);
                }
                self.forward(ex, ctx, target, Some(body), tracking).await
            }
        }
    }

    /// A call a session rule refuses: 410 for a closed session, 400 for a playhead out of range.
    async fn refuse(
        &self,
        ex: &mut Exchange<'_>,
        ctx: &mut RequestCtx,
        rule: sessions::Rule,
    ) -> Result {
        let (status, path, mcapi_rule, message, detail) = refusal(rule);
        let violation = mcapi::Violation {
            path: path.to_owned(),
            rule: mcapi_rule,
            detail: detail.to_owned(),
            severity: mcapi::Severity::Error,
            event_type: None,
        };
        let errors = [&violation];
        let reply = ErrorReply {
            errors: &errors,
            ..ErrorReply::plain(status, message)
        };
        self.send_error(ex, ctx, &reply).await
    }

    /// Where an events call goes: its session's owner, with the upstream's own sid in the path.
    fn owner(&self, ex: &Exchange<'_>) -> std::result::Result<Target, &'static str> {
        let uri = &ex.head.uri;
        let outward = route::sid_of(uri.path()).ok_or("no such route")?;
        match self
            .rt
            .cluster
            .owner(outward, self.rt.config.validation.sid_format)
        {
            Ok((id, sid)) => Ok(Target::Owner {
                id,
                path: prepare::owner_path(sid, uri.query()),
            }),
            Err(OwnerError::Malformed) => Err("malformed session id"),
            Err(OwnerError::UnknownToken) => Err("unknown session"),
        }
    }

    /// Reads the whole request body, answering 413 above the limit and 400/408 when it cannot be
    /// read. `None` means an answer was written.
    async fn read_body(
        &self,
        ex: &mut Exchange<'_>,
        ctx: &mut RequestCtx,
    ) -> std::io::Result<Option<(Bytes, Held<'_>)>> {
        let max = self.rt.config.server.max_body_bytes;
        let failure = match ex.read_body_within(max, &self.gw.bodies).await {
            Ok(read) => return Ok(Some(read)),
            Err(failure) => failure,
        };
        // The rest of the stream is not a request boundary any more: close after the answer.
        ex.close_after();
        match failure {
            BodyFailure::TooLarge => {
                let message = format!("request body larger than {max} bytes");
                self.error(ex, ctx, 413, &message).await?
            }
            BodyFailure::Timeout => {
                self.error(ex, ctx, 408, "timed out reading the request body")
                    .await?
            }
            BodyFailure::Malformed(why) => {
                log::debug!("request {}: reading the body failed: {why}", ctx.request_id);
                self.error(ex, ctx, 400, "the request body could not be read")
                    .await?
            }
            BodyFailure::Overloaded => {
                self.rt
                    .series
                    .metrics()
                    .load_shed
                    .with_label_values(&["inflight_body_bytes"])
                    .inc();
                let reply = ErrorReply {
                    headers: &[("retry-after", "1")],
                    ..ErrorReply::plain(
                        503,
                        "the gateway holds too many request bodies: retry shortly",
                    )
                };
                self.send_error(ex, ctx, &reply).await?
            }
        }
        Ok(None)
    }

    /// Steps 6 and 7: sends the request upstream and relays the answer, or answers 502/503/504.
    async fn forward(
        &self,
        ex: &mut Exchange<'_>,
        ctx: &mut RequestCtx,
        target: Target,
        body: Option<Bytes>,
        tracking: Tracking,
    ) -> Result {
        let rules = self.rule_set(ex);
        let set = {
            let ectx = self.enrich_context(ctx, ex);
            self.rt
                .config
                .enrich
                .upstream_headers(rules, &ectx, ex.peer(), self.gw.tls)
        };
        let head = &ex.head;
        let underscores = self.rt.config.server.underscores_in_headers;
        if !underscores {
            let dropped = headers::underscore_names(&head.headers);
            if dropped > 0 {
                self.rt
                    .series
                    .metrics()
                    .headers_dropped
                    .with_label_values(&["underscore"])
                    .inc_by(dropped as u64);
            }
        }
        let wire = |path: &str, authority: &str| {
            let method = head.method.as_str();
            let body = body.as_deref();
            headers::request(
                method,
                path,
                authority,
                &head.headers,
                &set,
                body,
                underscores,
            )
        };
        // Only an answer of the shape the API gives this route can be its answer.
        let route = ctx.route;
        let expect = move |answer: &http1::answer::AnswerHead| {
            mcapi::answer::fits(route, answer.status, answer.get("location").is_some())
        };
        let request = upstream::Request {
            request_id: &ctx.request_id,
            method: &head.method,
            target: &target,
            path: head.uri.path_and_query().map_or("/", |p| p.as_str()),
            wire: &wire,
            expect: &expect,
        };
        match self.rt.cluster.forward(&request).await {
            Ok(exchanged) => self.relay(ex, ctx, exchanged, tracking).await,
            Err(exhausted) => {
                let labels = match &tracking {
                    Tracking::Start(start) => (start.player, start.sdk),
                    Tracking::Events(ticket) => ticket.labels,
                    Tracking::None => (UNKNOWN, UNKNOWN),
                };
                // The upstream may have taken the call without the gateway learning it: the
                // session's state can no longer be trusted.
                if let (Tracking::Events(ticket), Some(tracker)) = (tracking, &self.rt.tracker) {
                    tracker.uncertain(ticket).await;
                }
                let (status, message) = match exhausted.last {
                    Some((id, kind)) => {
                        ctx.upstream = Some(id);
                        ctx.failure = Some(kind);
                        match kind.status() {
                            504 => (504, "the upstream did not answer in time"),
                            _ => (502, "the upstream could not be reached"),
                        }
                    }
                    None => (503, "no healthy upstream"),
                };
                if let Some(body) = &body {
                    let upstream_path = match &target {
                        Target::Owner { path, .. } => Some(path.as_str()),
                        Target::Balanced => None,
                    };
                    let kept = Kept {
                        kind: Kind::UpstreamFailed,
                        status,
                        labels,
                        violations: Vec::new(),
                        body,
                        upstream_path,
                        session_rule: false,
                    };
                    keep::keep(&self.rt, ex, ctx, kept);
                }
                self.error(ex, ctx, status, message).await
            }
        }
    }

    async fn error(
        &self,
        ex: &mut Exchange<'_>,
        ctx: &mut RequestCtx,
        status: u16,
        message: &str,
    ) -> Result {
        self.send_error(ex, ctx, &ErrorReply::plain(status, message))
            .await
    }

    /// Records the status of a gateway-made error answer and writes it.
    async fn send_error(
        &self,
        ex: &mut Exchange<'_>,
        ctx: &mut RequestCtx,
        reply: &ErrorReply<'_>,
    ) -> Result {
        ctx.status = Some(reply.status);
        write_error(ex, reply).await
    }

    fn enrich_context<'a>(&self, ctx: &'a RequestCtx, ex: &'a Exchange<'_>) -> enrich::Context<'a> {
        enrich::Context {
            client_ip: ctx.client_ip,
            request_id: &ctx.request_id,
            received_at_ms: ctx.received_ms,
            headers: &ex.head.headers,
        }
    }

    /// The enrichment rule set for this request (its site, or the default).
    fn rule_set(&self, ex: &Exchange<'_>) -> &enrich::RuleSet {
        rule_set(&self.rt, ex)
    }

    /// Step 8.
    fn record(&self, ex: &Exchange<'_>, ctx: &RequestCtx) {
        let upstream = ctx.upstream.map(|id| self.rt.cluster.name(id));
        record::record(
            &self.rt.series,
            self.gw.access_log.as_ref(),
            &Record {
                received_ms: ctx.received_ms,
                request_id: &ctx.request_id,
                client: ex.peer(),
                method: ex.head.method.as_str(),
                route: ctx.route,
                // No status decided: the client went away first (nginx's 499).
                status: ctx.status.unwrap_or(499),
                elapsed: ctx.start.elapsed(),
                body_bytes: ctx.body_bytes,
                upstream,
                upstream_time: ctx.upstream_time,
                violations: ctx.violations,
                error: ctx.failure.map(|k| k.as_str()),
            },
            Counted::Served,
        );
    }
}

impl App for Gateway {
    fn settings(&self) -> ConnSettings {
        let rt = self.live.load();
        let s = &rt.config.server;
        ConnSettings {
            read_timeout: s.client_read_timeout,
            keepalive_timeout: Duration::from_secs(s.keepalive_timeout_seconds),
            body_timeout: s.client_body_timeout,
        }
    }

    async fn serve<'a, 'c: 'a>(&'a self, ex: &'a mut Exchange<'c>) {
        let pass = Pass {
            rt: self.live.load(),
            gw: self,
        };
        if pass.rt.config.pass_through {
            let mut ctx = RequestCtx::new(String::new(), None);
            if pass.pass_through(ex, &mut ctx).await.is_err() {
                ex.close_after();
            }
            return;
        }
        let _inflight = InFlight::new(&pass.rt.series.metrics().inflight);
        let peer = ex.peer();
        let headers = &ex.head.headers;
        let enrich = &pass.rt.config.enrich;
        let request_id = match enrich.incoming_request_id(peer, headers) {
            Some(id) => id.to_owned(),
            None => self.request_ids.next(),
        };
        let client_ip = enrich.client_ip(peer, headers);
        let mut ctx = RequestCtx::new(request_id, client_ip);
        if let Err(e) = pass.handle(ex, &mut ctx).await {
            log::debug!("request {}: {e}", ctx.request_id);
            // The answer could not be written whole: the connection cannot be reused.
            ex.close_after();
        }
        pass.record(ex, &ctx);
    }

    fn refused(
        &self,
        peer: Option<std::net::IpAddr>,
        status: u16,
        elapsed: Duration,
        write_failed: bool,
    ) {
        let request_id = self.request_ids.next();
        record::record(
            &self.live.load().series,
            self.access_log.as_ref(),
            &Record {
                received_ms: record::refused_at(elapsed),
                request_id: &request_id,
                client: peer,
                // The head could not be read: no method or route to name.
                method: "-",
                route: mcapi::route::Route::Unknown,
                status,
                elapsed,
                body_bytes: 0,
                upstream: None,
                upstream_time: None,
                violations: 0,
                error: write_failed.then_some("client"),
            },
            Counted::Refused,
        );
    }

    fn panicked(&self, _ex: &Exchange<'_>) {
        self.live
            .load()
            .series
            .status(mcapi::route::Route::Unknown, 500);
    }
}

/// The enrichment rule set of a request (its site, by `Host` and path, or the default).
fn rule_set<'r>(rt: &'r Runtime, ex: &Exchange<'_>) -> &'r enrich::RuleSet {
    let req = &ex.head;
    let host = req
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.host());
    rt.config.enrich.select(host, req.uri.path())
}

/// The answer to a call a session rule refuses: status, the violation's path, its rule in error
/// bodies, the message and the detail.
fn refusal(
    rule: sessions::Rule,
) -> (
    u16,
    &'static str,
    mcapi::rules::Rule,
    &'static str,
    &'static str,
) {
    match rule {
        sessions::Rule::PlayheadRange => (
            400,
            "/playerTime/playhead",
            mcapi::rules::Rule::PlayheadRange,
            "invalid request body",
            "the playhead is outside the session's range (a live session's 0 to 86400, an on-demand one's content length plus the tolerance)",
        ),
        _ => (
            410,
            "",
            mcapi::rules::Rule::SessionClosed,
            "the session is closed: the backend drops calls to it",
            "the session ended (sessionEnd), expired (no call or no playhead movement for too long) or is gone upstream; start a new session",
        ),
    }
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
