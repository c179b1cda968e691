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
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
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
            // request's (routing, body, upstream exchange) state. A panic in it (a bug) ends
            // this request with a 500, not the connection's task without an answer.
            if CatchPanic(Box::pin(gateway.serve(&mut ex))).await.is_err() {
                Box::pin(gateway.recover(&mut ex)).await;
            }
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

/// Polls a future, turning a panic inside it into `Err` instead of unwinding the caller.
struct CatchPanic<F>(F);

impl<F: Future + Unpin> Future for CatchPanic<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        // Unwind safety: after a panic the future is dropped unpolled, and what it borrowed
        // (the exchange) is only used to write an error answer and close.
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Err(_) => Poll::Ready(Err(())),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn poll_once<F: Future + Unpin>(f: F) -> Poll<F::Output> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut f = f;
        Pin::new(&mut f).poll(&mut cx)
    }

    #[test]
    fn a_panic_becomes_an_error_and_a_value_passes_through() {
        let panicking = Box::pin(async { panic!("a bug") });
        assert!(matches!(
            poll_once(CatchPanic(panicking)),
            Poll::Ready(Err(()))
        ));
        let fine = Box::pin(async { 7 });
        assert!(matches!(poll_once(CatchPanic(fine)), Poll::Ready(Ok(7))));
    }
}
