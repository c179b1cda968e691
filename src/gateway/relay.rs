//! The upstream side of a request: choosing the upstream (with the retry rule of
//! [`super::pool`]), the exchange, and relaying the answer — hop-by-hop headers dropped, CORS
//! headers added, `Location` rewritten and, with several upstreams, tagged with its owner.

use bytes::Bytes;
use pingora_error::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use std::time::{Instant, SystemTime};

use super::upstream::{Answer, Failure, FailureKind};
use super::{forward, peer_ip, respond, unix_ms, Gateway, RequestCtx};
use crate::enrich::RuleSet;
use crate::location;

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
        session: &mut Session,
        ctx: &mut RequestCtx,
        rules: &RuleSet,
        target: Target,
        body: Option<Bytes>,
    ) -> Result<()> {
        let req = session.req_header();
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
                .upstream_headers(rules, &ectx, peer_ip(session), self.tls)
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
                &session.req_header().headers,
                &set,
                body.as_ref().map(Bytes::len),
            );
            let started = Instant::now();
            match self.pool.upstreams.send(index, &head, payload).await {
                Ok(answer) => {
                    self.pool.record_success(index);
                    return self.relay(session, ctx, index, answer, started).await;
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
        self.error(session, ctx, status, message, &[]).await
    }

    async fn relay(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        index: usize,
        mut answer: Answer<'_>,
        started: Instant,
    ) -> Result<()> {
        let is_head = session.req_header().method == http::Method::HEAD;
        let Some(upstream_header) = answer.session.resp_header() else {
            let failure = Failure::protocol("no response header");
            self.count_upstream_failure(ctx, index, &failure);
            return self
                .error(session, ctx, 502, "the upstream answered badly", &[])
                .await;
        };
        let mut header = Box::new(upstream_header.clone());
        forward::strip_downstream_hop_by_hop(&mut header);
        respond::add_cors(&mut header)?;
        self.rewrite_location(session, &mut header, index)?;
        ctx.status = header.status.as_u16();
        let bodiless = is_head
            || matches!(ctx.status, 204 | 304)
            || header
                .headers
                .get("content-length")
                .is_some_and(|v| v.as_bytes() == b"0");
        session.write_response_header(header, bodiless).await?;
        if is_head {
            // The answer has no body; the connection is not reused (the client session does not
            // know the request was HEAD), so it is simply dropped.
            ctx.upstream_time = Some(started.elapsed());
            return Ok(());
        }
        loop {
            match answer.body_chunk().await {
                Ok(Some(chunk)) => session.write_response_body(Some(chunk), false).await?,
                Ok(None) => break,
                Err(failure) => {
                    // The header is already out: all that is left is to cut the connection.
                    self.pool.record_failure(index, &self.metrics);
                    self.count_upstream_failure(ctx, index, &failure);
                    session.as_downstream_mut().set_keepalive(None);
                    return Err(failure.error);
                }
            }
        }
        if !bodiless {
            session.write_response_body(None, true).await?;
        }
        ctx.upstream_time = Some(started.elapsed());
        answer.release().await;
        Ok(())
    }

    fn rewrite_location(
        &self,
        session: &Session,
        header: &mut ResponseHeader,
        index: usize,
    ) -> Result<()> {
        let Some(value) = header.headers.get("location").and_then(|v| v.to_str().ok()) else {
            return Ok(());
        };
        let host = session
            .req_header()
            .headers
            .get("host")
            .and_then(|v| v.to_str().ok());
        let upstream = &self.pool.upstreams.list[index].settings;
        let out = self
            .config
            .location
            .rewrite(value, &upstream.authority, host);
        self.series.location(out.outcome).inc();
        if out.outcome == location::Outcome::Foreign {
            return Ok(());
        }
        match self.pool.tag_location(index, &out.value) {
            Some(tagged) => header.insert_header("location", tagged)?,
            None if out.outcome == location::Outcome::Rewritten => {
                header.insert_header("location", out.value)?
            }
            // Kept as the upstream sent it: nothing to write.
            None => {}
        }
        Ok(())
    }

    fn count_upstream_failure(&self, ctx: &mut RequestCtx, index: usize, failure: &Failure) {
        ctx.failure = Some(failure.kind);
        self.metrics
            .upstream_errors
            .with_label_values(&[self.pool.name(index), failure.kind.as_str()])
            .inc();
    }
}
