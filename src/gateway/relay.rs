//! The upstream side of a request: choosing the upstream (with the retry rule of
//! [`super::pool`]), the exchange, and relaying the answer — hop-by-hop headers dropped, CORS
//! headers added, `Location` rewritten and, with several upstreams, tagged with its owner.

use bytes::Bytes;
use pingora_error::Result;
use std::borrow::Cow;
use std::time::Instant;

use super::downstream::Exchange;
use super::upstream::{Answer, Failure, FailureKind};
use super::{forward, respond, Gateway, RequestCtx};
use crate::enrich::RuleSet;
use crate::http1::answer::{self, AnswerFraming, AnswerHead};
use crate::http1::response::{BodyFraming, ResponseHead};
use crate::location;

/// Upstream answer headers the gateway writes itself.
const SET_HERE: [&str; 5] = [
    respond::CORS_NAMES[0],
    respond::CORS_NAMES[1],
    respond::CORS_NAMES[2],
    respond::CORS_NAMES[3],
    "location",
];

/// Where a request may go.
pub enum Target {
    /// Any available upstream, by weighted round robin; another one when the connection fails.
    Balanced,
    /// Only this upstream (the session's owner), with this path.
    Owner { index: usize, path: String },
}

impl Gateway {
    /// Sends the request upstream and relays the answer. `rules` is the request's enrichment rule
    /// set (for the upstream headers); `body` is `None` for bodiless requests.
    pub(super) async fn forward(
        &self,
        ex: &mut Exchange<'_>,
        ctx: &mut RequestCtx,
        rules: &RuleSet,
        target: Target,
        body: Option<Bytes>,
    ) -> Result<()> {
        let req = &ex.head;
        let method = req.method.clone();
        let set = {
            let ectx = self.enrich_context(ctx, &req.headers, ctx.received_ms);
            self.config
                .enrich
                .upstream_headers(rules, &ectx, ex.peer(), self.tls)
        };
        let payload = body.as_deref().unwrap_or_default();
        let mut tried = vec![false; self.pool.len()];
        let mut last_failure: Option<Failure> = None;
        loop {
            let index = match &target {
                Target::Owner { index, .. } if !tried[*index] => *index,
                Target::Owner { .. } => break,
                Target::Balanced => match self.pool.pick(&tried) {
                    Some(i) => i,
                    None => break,
                },
            };
            tried[index] = true;
            ctx.upstream = Some(index);
            let upstream = &self.pool.upstreams.list[index];
            let path = match &target {
                Target::Owner { path, .. } => path.as_str(),
                Target::Balanced => ex.head.uri.path_and_query().map_or("/", |p| p.as_str()),
            };
            // The head and the body, for one write.
            let mut wire = forward::request_head(
                method.as_str(),
                path,
                &upstream.settings.authority,
                &ex.head.headers,
                &set,
                body.as_ref().map(Bytes::len),
            );
            wire.extend_from_slice(payload);
            let started = Instant::now();
            let to_head = method == http::Method::HEAD;
            let replayable = to_head || method == http::Method::GET;
            match self
                .pool
                .upstreams
                .send(index, &wire, to_head, replayable)
                .await
            {
                Ok(answer) => {
                    self.pool.record_success(index);
                    return self.relay(ex, ctx, index, answer, started).await;
                }
                Err(failure) => {
                    self.pool.record_failure(index, &self.metrics);
                    self.count_upstream_failure(ctx, index, &failure);
                    log::warn!(
                        "request {}: upstream {} failed ({}): {}",
                        ctx.request_id,
                        upstream.settings.name,
                        failure.kind.as_str(),
                        failure.error
                    );
                    let may_retry = failure.unread && matches!(target, Target::Balanced);
                    last_failure = Some(failure);
                    if !may_retry {
                        break;
                    }
                }
            }
        }
        let (status, message) = match last_failure.map(|f| f.kind) {
            Some(FailureKind::Timeout) => (504, "the upstream did not answer in time"),
            Some(_) => (502, "the upstream could not be reached"),
            None => (503, "no healthy upstream"),
        };
        self.error(ex, ctx, status, message, &[]).await
    }

    /// Writes the upstream's answer to the client: its end-to-end fields, the CORS fields, the
    /// rewritten `Location`, and the body with its length — in one write.
    async fn relay(
        &self,
        ex: &mut Exchange<'_>,
        ctx: &mut RequestCtx,
        index: usize,
        answer: Answer,
        started: Instant,
    ) -> Result<()> {
        ctx.upstream_time = Some(started.elapsed());
        let up = &answer.head;
        ctx.status = up.status;
        let framing = match up.framing {
            AnswerFraming::None if answer::status_has_no_body(up.status) => BodyFraming::None,
            // A HEAD answer keeps the length of the body it stands for.
            AnswerFraming::None => up
                .content_length
                .map_or(BodyFraming::None, BodyFraming::Length),
            _ => BodyFraming::Length(answer.body.len() as u64),
        };
        let mut head = ResponseHead::new(up.status, 768 + answer.body.len());
        for (name, value) in forward::downstream_headers(up, &SET_HERE) {
            head.header_bytes(name, value);
        }
        respond::add_cors(&mut head);
        if let Some(location) = self.rewrite_location(ex, up, index) {
            head.header("location", &location);
        }
        let mut out = head.finish(framing, ex.version(), ex.keep_alive());
        if matches!(framing, BodyFraming::Length(_)) && up.framing != AnswerFraming::None {
            out.extend_from_slice(&answer.body);
        }
        ex.send(&out).await
    }

    /// The `Location` to send for the upstream's (`None`: it sent none).
    fn rewrite_location<'h>(
        &self,
        ex: &Exchange<'_>,
        up: &'h AnswerHead,
        index: usize,
    ) -> Option<Cow<'h, [u8]>> {
        let value = up.get("location")?;
        let Ok(text) = std::str::from_utf8(value) else {
            // Not plain text: relayed untouched.
            return Some(Cow::Borrowed(value));
        };
        let host = ex.head.headers.get("host").and_then(|v| v.to_str().ok());
        let upstream = &self.pool.upstreams.list[index].settings;
        let out = self
            .config
            .location
            .rewrite(text, &upstream.authority, host);
        self.series.location(out.outcome).inc();
        if out.outcome == location::Outcome::Foreign {
            return Some(Cow::Borrowed(value));
        }
        let value = self
            .pool
            .tag_location(index, &out.value)
            .unwrap_or(out.value);
        Some(Cow::Owned(value.into_bytes()))
    }

    fn count_upstream_failure(&self, ctx: &mut RequestCtx, index: usize, failure: &Failure) {
        ctx.failure = Some(failure.kind);
        self.metrics
            .upstream_errors
            .with_label_values(&[self.pool.name(index), failure.kind.as_str()])
            .inc();
    }
}
