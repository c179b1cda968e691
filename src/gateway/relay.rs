//! The upstream side of a request: choosing the upstream (with the retry rule of
//! [`super::pool`]), the exchange, and relaying the answer — hop-by-hop headers dropped, CORS
//! headers added, `Location` rewritten and, with several upstreams, tagged with its owner.

use bytes::Bytes;
use pingora_error::Result;
use pingora_http::ResponseHeader;
use std::borrow::Cow;
use std::time::{Instant, SystemTime};

use super::downstream::Exchange;
use super::upstream::{Answer, Failure, FailureKind};
use super::{forward, respond, unix_ms, Gateway, RequestCtx};
use crate::enrich::RuleSet;
use crate::http1::response::{self, BodyFraming, ResponseHead};
use crate::http1::Version;
use crate::location;

/// Answer bytes are written to the client once this many have gathered (small answers go out
/// in one write with their head).
const WRITE_CHUNK: usize = 64 * 1024;

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
        let path = match &target {
            Target::Owner { path, .. } => path.clone(),
            Target::Balanced => req
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
        };
        let set = {
            let now_ms = unix_ms(SystemTime::now());
            let ectx = self.enrich_context(ctx, &req.headers, now_ms);
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
            let head = forward::request_head(
                method.as_str(),
                &path,
                &upstream.settings.authority,
                &ex.head.headers,
                &set,
                body.as_ref().map(Bytes::len),
            );
            let started = Instant::now();
            match self.pool.upstreams.send(index, &head, payload).await {
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
                    let may_retry = failure.before_send && matches!(target, Target::Balanced);
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

    async fn relay(
        &self,
        ex: &mut Exchange<'_>,
        ctx: &mut RequestCtx,
        index: usize,
        mut answer: Answer<'_>,
        started: Instant,
    ) -> Result<()> {
        let is_head = ex.head.method == http::Method::HEAD;
        let Some(upstream) = answer.session.resp_header() else {
            let failure = Failure::protocol("no response header");
            self.count_upstream_failure(ctx, index, &failure);
            return self
                .error(ex, ctx, 502, "the upstream answered badly", &[])
                .await;
        };
        let status = upstream.status.as_u16();
        ctx.status = status;
        let length = upstream
            .headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let has_body = !is_head && !matches!(status, 100..=199 | 204 | 304) && length != Some(0);
        let bodiless_status = matches!(status, 100..=199 | 204 | 304);
        let framing = match length {
            _ if bodiless_status => BodyFraming::None,
            // A HEAD answer keeps the length of the body it stands for.
            Some(n) => BodyFraming::Length(n),
            None if !has_body => BodyFraming::None,
            None if ex.version() == Version::Http11 => BodyFraming::Chunked,
            None => {
                ex.close_after();
                BodyFraming::UntilClose
            }
        };
        let mut head = ResponseHead::new(status, 512);
        for (name, value) in forward::downstream_headers(&upstream.headers, &SET_HERE) {
            head.header(name.as_str(), value.as_bytes());
        }
        respond::add_cors(&mut head);
        if let Some(location) = self.rewrite_location(ex, upstream, index) {
            head.header("location", &location);
        }
        let mut out = head.finish(framing, ex.version(), ex.keep_alive());
        if !has_body {
            ctx.upstream_time = Some(started.elapsed());
            if is_head {
                // The answer to a HEAD has no body, but the upstream client session does not
                // know the request was HEAD: the connection is not reused.
                drop(answer);
            } else {
                answer.release().await;
            }
            return ex.send(&out).await;
        }
        loop {
            match answer.body_chunk().await {
                Ok(Some(chunk)) => {
                    if framing == BodyFraming::Chunked {
                        response::push_chunk(&mut out, &chunk);
                    } else {
                        out.extend_from_slice(&chunk);
                    }
                    if out.len() >= WRITE_CHUNK {
                        ex.send(&out).await?;
                        out.clear();
                    }
                }
                Ok(None) => break,
                Err(failure) => {
                    // Part of the answer may be out already: all that is left is to cut the
                    // connection.
                    self.pool.record_failure(index, &self.metrics);
                    self.count_upstream_failure(ctx, index, &failure);
                    ex.close_after();
                    return Err(failure.error);
                }
            }
        }
        if framing == BodyFraming::Chunked {
            out.extend_from_slice(response::LAST_CHUNK);
        }
        ctx.upstream_time = Some(started.elapsed());
        answer.release().await;
        ex.send(&out).await
    }

    /// The `Location` to send for the upstream's (`None`: it sent none).
    fn rewrite_location<'h>(
        &self,
        ex: &Exchange<'_>,
        header: &'h ResponseHeader,
        index: usize,
    ) -> Option<Cow<'h, [u8]>> {
        let value = header.headers.get("location")?;
        let Ok(text) = value.to_str() else {
            // Not plain text: relayed untouched.
            return Some(Cow::Borrowed(value.as_bytes()));
        };
        let host = ex.head.headers.get("host").and_then(|v| v.to_str().ok());
        let upstream = &self.pool.upstreams.list[index].settings;
        let out = self
            .config
            .location
            .rewrite(text, &upstream.authority, host);
        self.series.location(out.outcome).inc();
        if out.outcome == location::Outcome::Foreign {
            return Some(Cow::Borrowed(value.as_bytes()));
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
