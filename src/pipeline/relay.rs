//! The upstream's answer, relayed to the player: its end-to-end fields (hop-by-hop and framing
//! ones dropped), the CORS fields, `Location` rewritten (`location`) and, with several
//! upstreams, tagged with its owner — head and body in one write, with the body's length. The
//! session tracker hears of the answer before the player does (a player that has its 201 may
//! send its next call at once, and that call must find the session).

use http1::answer::{self, AnswerHead};
use http1::response::{BodyLength, ResponseHead};
use http1::Framing;
use std::borrow::Cow;

use super::{headers, Pass, RequestCtx, Tracking};
use crate::server::answers;
use crate::server::Exchange;
use crate::upstream::{Exchanged, UpstreamId};

/// Upstream answer headers the gateway writes itself.
const SET_HERE: [&str; 5] = [
    mcapi::cors::NAMES[0],
    mcapi::cors::NAMES[1],
    mcapi::cors::NAMES[2],
    mcapi::cors::NAMES[3],
    "location",
];

impl Pass<'_> {
    /// Writes the upstream's answer to the player.
    pub(super) async fn relay(
        &self,
        ex: &mut Exchange<'_>,
        ctx: &mut RequestCtx,
        exchanged: Exchanged,
        tracking: Tracking,
    ) -> std::io::Result<()> {
        let Exchanged {
            id,
            answer,
            elapsed,
        } = exchanged;
        ctx.upstream = Some(id);
        ctx.upstream_time = Some(elapsed);
        let up = &answer.head;
        let location = match self.rewrite_location(ex, up, id) {
            Ok(location) => location,
            Err(()) => {
                let message = "the upstream answered with a Location the gateway does not relay";
                log::warn!(
                    "request {}: upstream {}: {message} ({:?})",
                    ctx.request_id,
                    self.rt.cluster.name(id),
                    up.get("location").map(String::from_utf8_lossy)
                );
                if let (Tracking::Events(ticket), Some(tracker)) = (tracking, &self.rt.tracker) {
                    // The upstream took the call: its state is no longer known for sure.
                    tracker.uncertain(ticket).await;
                }
                return self.error(ex, ctx, 502, message).await;
            }
        };
        ctx.status = Some(up.status);
        if let Some(tracker) = &self.rt.tracker {
            match tracking {
                Tracking::None => {}
                Tracking::Events(ticket) => tracker.after(ticket, up.status).await,
                Tracking::Start(start) if up.status == 201 => {
                    match location.as_deref().and_then(mcapi::sid::sid_of_location) {
                        Some(sid) => tracker.started(sid, &start, ctx.received_ms).await,
                        None => log::debug!(
                            "request {}: a 201 without a session id in its Location: not tracked",
                            ctx.request_id
                        ),
                    }
                }
                Tracking::Start(_) => {}
            }
        }
        let length = match up.framing {
            Framing::Empty if answer::status_has_no_body(up.status) => BodyLength::NoBody,
            // A HEAD answer keeps the length of the body it stands for.
            Framing::Empty => up
                .content_length
                .map_or(BodyLength::NoBody, BodyLength::Known),
            _ => BodyLength::Known(answer.body.len() as u64),
        };
        let mut head = ResponseHead::new(up.status, 768 + answer.body.len());
        for (name, value) in headers::downstream_headers(up, &SET_HERE) {
            head.header_bytes(name, value);
        }
        answers::add_cors(&mut head);
        if let Some(location) = location {
            head.header("location", &location);
        }
        let mut out = head.finish(length, ex.version(), ex.keep_alive());
        if matches!(length, BodyLength::Known(_)) && up.framing != Framing::Empty {
            out.extend_from_slice(&answer.body);
        }
        ex.send(&out).await
    }

    /// The `Location` to send for the upstream's (`None`: it sent none), or `Err` when it must
    /// not be relayed (counted as `unsafe`).
    fn rewrite_location<'h>(
        &self,
        ex: &Exchange<'_>,
        up: &'h AnswerHead,
        id: UpstreamId,
    ) -> Result<Option<Cow<'h, [u8]>>, ()> {
        let Some(value) = up.get("location") else {
            return Ok(None);
        };
        let host = ex.header("host").and_then(|v| std::str::from_utf8(v).ok());
        let out = self
            .rt
            .config
            .location
            .rewrite(value, self.rt.cluster.origin(id), host);
        self.rt.series.location(out.outcome);
        match (out.outcome, out.value) {
            (location::Outcome::Unsafe, _) => Err(()),
            (_, None) => Ok(Some(Cow::Borrowed(value))),
            (_, Some(rewritten)) => {
                let tagged = self
                    .rt
                    .cluster
                    .tag_location(id, &rewritten)
                    .unwrap_or(rewritten);
                Ok(Some(Cow::Owned(tagged.into_bytes())))
            }
        }
    }
}
