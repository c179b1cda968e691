//! `[bench] pass_through`: the benchmark's floor. A call is read, sent to an upstream as it came
//! (hop-by-hop headers dropped) and its answer relayed with `Location` rewritten — the
//! framework's share of a request (runtime, threads, sockets, HTTP framing) with none of the
//! gateway's work: no routing, validation, enrichment, session tracking, metrics or access log.
//! `bench/run.sh` measures it as the target `mediagate-floor`, in the same run as the others.
//!
//! **May use:** what its parent module uses.

use super::{headers, Pass, RequestCtx, Tracking};
use crate::server::Exchange;
use crate::upstream::{self, Target};

impl Pass<'_> {
    /// Relays one call unchecked and writes its answer.
    pub(super) async fn pass_through(
        &self,
        ex: &mut Exchange<'_>,
        ctx: &mut RequestCtx,
    ) -> std::io::Result<()> {
        // The same body reading, limits and error answers as a checked call.
        let Some((body, _held)) = self.read_body(ex, ctx).await? else {
            return Ok(());
        };
        let head = &ex.head;
        let body = (head.framing != http1::Framing::Empty).then_some(&body[..]);
        let wire = |path: &str, authority: &str| {
            let method = head.method.as_str();
            headers::request(method, path, authority, &head.headers, &[], body, true)
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
