//! `[bench] pass_through`: the benchmark's floor. A call is read, sent to an upstream as it came
//! (hop-by-hop headers dropped) and its answer relayed with `Location` rewritten — the
//! framework's share of a request (runtime, threads, sockets, HTTP framing) with none of the
//! gateway's work: no routing, validation, enrichment, session tracking, metrics or access log.
//! `bench/run.sh` measures it as the target `mediagate-floor`, in the same run as the others.
//!
//! **May use:** what its parent module uses.

use super::{headers, Pass, RequestCtx, Tracking};
use crate::server::{BodyFailure, Exchange};
use crate::upstream::{self, Target};

impl Pass<'_> {
    /// Relays one call unchecked and writes its answer.
    pub(super) async fn pass_through(
        &self,
        ex: &mut Exchange<'_>,
        ctx: &mut RequestCtx,
    ) -> std::io::Result<()> {
        let max = self.rt.config.server.max_body_bytes;
        let body = match ex.read_body(max).await {
            Ok(body) => body,
            Err(failure) => {
                ex.close_after();
                let status = match failure {
                    BodyFailure::TooLarge => 413,
                    BodyFailure::Timeout => 408,
                    BodyFailure::Overloaded => 503,
                    BodyFailure::Malformed(_) => 400,
                };
                return self
                    .error(ex, ctx, status, "the request body could not be read")
                    .await;
            }
        };
        let head = &ex.head;
        let has_body = head.framing != http1::Framing::Empty;
        let wire = |path: &str, authority: &str| {
            let mut wire = headers::request_head(
                head.method.as_str(),
                path,
                authority,
                &head.headers,
                &[],
                has_body.then_some(body.len()),
                true,
            );
            wire.extend_from_slice(&body);
            wire
        };
        let request = upstream::Request {
            request_id: "",
            method: &head.method,
            target: &Target::Balanced,
            path: head.uri.path_and_query().map_or("/", |p| p.as_str()),
            wire: &wire,
            expect: &|_| true,
        };
        match self.rt.cluster.forward(&request).await {
            Ok(exchanged) => self.relay(ex, ctx, exchanged, Tracking::None).await,
            Err(_) => {
                self.error(ex, ctx, 502, "the upstream could not be reached")
                    .await
            }
        }
    }
}
