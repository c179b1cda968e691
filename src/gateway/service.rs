//! A player connection's loop: wait for a request → read its head → serve it → write the
//! answer, until the client, an error, keep-alive expiry or shutdown ends the connection.
//!
//! While a connection is idle its task holds only the stream and this loop's small state: the
//! request's work (routing, the body, the upstream exchange) runs in a future allocated for that
//! request alone.

use async_trait::async_trait;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;

use super::downstream::{Conn, Exchange};
use super::Gateway;

/// The players' side of the gateway: serves connections accepted by [`super::listener`]
/// (plain TCP) or, through [`ServerApp`], by pingora's listening service (TLS).
pub struct GatewayApp(pub Arc<Gateway>);

impl GatewayApp {
    /// Serves the requests of one connection until the client, an error, keep-alive expiry or
    /// shutdown ends it.
    pub async fn serve_connection(&self, mut conn: Conn, mut shutdown: ShutdownWatch) {
        let gateway = &self.0;
        let server = &gateway.config.server;
        // keepalive_timeout_seconds = 0 turns keep-alive off, as in nginx.
        let idle = Duration::from_secs(server.keepalive_timeout_seconds);
        let keep_alive_off = server.keepalive_timeout_seconds == 0;
        let mut linger = false;
        let mut served = false;
        loop {
            if !conn.has_pending() {
                // At shutdown an idle keep-alive connection is closed (its client reconnects
                // elsewhere); a new connection still gets its first request served, since
                // its client has sent it or is about to.
                if served && *shutdown.borrow() {
                    break;
                }
                // A new connection's first request is waited for as long as a head may take
                // (as nginx's client_header_timeout); later ones as long as keep-alive allows.
                let limit = if served {
                    idle
                } else {
                    server.client_read_timeout
                };
                let wait = tokio::time::timeout(limit, conn.wait_for_request());
                let arrived = if served {
                    tokio::select! {
                        _ = shutdown.changed() => false,
                        r = wait => r.unwrap_or(false),
                    }
                } else {
                    wait.await.unwrap_or(false)
                };
                if !arrived {
                    break;
                }
            }
            let (head, rest) = match conn.read_head(server.client_read_timeout).await {
                Ok(read) => read,
                Err(failure) => {
                    linger = Box::pin(gateway.refuse(&mut conn, failure)).await;
                    break;
                }
            };
            let closing = keep_alive_off || *shutdown.borrow();
            let mut ex = Exchange::new(&mut conn, head, rest, closing, server.client_read_timeout);
            // A future of its own, so that an idle connection's task does not carry the
            // request's (routing, body, upstream exchange) state.
            Box::pin(gateway.serve(&mut ex)).await;
            served = true;
            if !ex.keep_alive() {
                linger = !ex.body_was_read();
                break;
            }
            conn.shed_buffer();
        }
        // Boxed: closing (with its drain buffer) is rare and must not size every idle task.
        Box::pin(conn.close(linger)).await;
    }
}

#[async_trait]
impl ServerApp for GatewayApp {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        self.serve_connection(Conn::new(stream), shutdown.clone())
            .await;
        None
    }
}
