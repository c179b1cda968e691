//! A connection's loop: wait for a request → read its head → let the app serve it → keep the
//! connection or close it, until the client, an error, keep-alive expiry or shutdown ends it.
//!
//! While a connection is idle its task holds only the stream and this loop's small state: the
//! request's work (routing, the body, the upstream exchange) runs in a future allocated for that
//! request alone.

use pingora_core::server::ShutdownWatch;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use super::answers::{self, ErrorReply};
use super::exchange::{Conn, Exchange, HeadFailure};
use super::App;

/// Serves the requests of one connection until the client, an error, keep-alive expiry or
/// shutdown ends it.
pub async fn serve<A: App>(app: &A, mut conn: Conn, mut shutdown: ShutdownWatch) {
    let settings = app.settings();
    // keepalive_timeout = 0 turns keep-alive off, as in nginx.
    let idle = settings.keepalive_timeout;
    let keep_alive_off = idle.is_zero();
    let mut linger = false;
    let mut served = false;
    loop {
        if !conn.has_pending() {
            // At shutdown an idle keep-alive connection is closed (its client reconnects
            // elsewhere); a new connection still gets its first request served, since its
            // client has sent it or is about to.
            if served && *shutdown.borrow() {
                break;
            }
            // A new connection's first request is waited for as long as a head may take (as
            // nginx's client_header_timeout); later ones as long as keep-alive allows.
            let limit = if served { idle } else { settings.read_timeout };
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
        // The request, from its head to its answer, in a future of its own (one allocation):
        // an idle connection's task then carries none of the request's state (the head reader,
        // routing, the body, the upstream exchange).
        match Box::pin(one_request(
            app,
            &mut conn,
            &settings,
            keep_alive_off,
            &shutdown,
        ))
        .await
        {
            Next::Keep => {}
            Next::Close { linger: l } => {
                linger = l;
                break;
            }
        }
        served = true;
        conn.shed_buffer();
    }
    // Boxed: closing (with its drain buffer) is rare and must not size every idle task.
    Box::pin(conn.close(linger)).await;
}

/// After a request: keep the connection for the next one, or close it (lingering when the client
/// may still be sending).
enum Next {
    Keep,
    Close { linger: bool },
}

/// Reads one request's head and lets the app serve it (or answers a head that cannot be read).
/// With `keep_alive_off`, or once shutting down, the answer closes the connection.
async fn one_request<A: App>(
    app: &A,
    conn: &mut Conn,
    settings: &super::ConnSettings,
    keep_alive_off: bool,
    shutdown: &ShutdownWatch,
) -> Next {
    let (head, rest) = match conn.read_head(settings.read_timeout).await {
        Ok(read) => read,
        Err(failure) => {
            let linger = refuse(app, conn, failure).await;
            return Next::Close { linger };
        }
    };
    let closing = keep_alive_off || *shutdown.borrow();
    let mut ex = Exchange::new(conn, head, rest, closing, settings);
    // A panic in the app (a bug) ends this request with a 500, not the connection's task
    // without an answer.
    let panicked = {
        let serving = std::pin::pin!(app.serve(&mut ex));
        CatchPanic(serving).await.is_err()
    };
    if panicked {
        recover(app, &mut ex).await;
    }
    if ex.keep_alive() {
        Next::Keep
    } else {
        Next::Close {
            linger: !ex.body_was_read(),
        }
    }
}

/// Answers a request whose head could not be read (when there is anyone to answer). Returns
/// whether the client may still be sending (the close should linger).
async fn refuse<A: App>(app: &A, conn: &mut Conn, failure: HeadFailure) -> bool {
    let Some((status, message)) = failure.answer() else {
        return false;
    };
    let started = Instant::now();
    let reply = ErrorReply::plain(status, message);
    let answer = answers::error_answer(&reply, http1::Version::Http11, false, true);
    let sent = conn.send(&answer, app.settings().read_timeout).await;
    app.refused(conn.peer, status, started.elapsed(), sent.is_err());
    true
}

/// After a request's handler panicked (a bug; the panic hook has printed it): a 500 when no
/// byte of an answer was written, and the connection is closed either way.
async fn recover<A: App>(app: &A, ex: &mut Exchange<'_>) {
    log::error!(
        "{} {}: the request handler panicked; closing the connection",
        ex.head.method,
        ex.head.uri.path()
    );
    ex.close_after();
    app.panicked(ex);
    if !ex.answer_started() {
        let _ = write_error(ex, &ErrorReply::plain(500, "internal error")).await;
    }
}

/// Writes a gateway-made error answer to the exchange's request: without its body to a HEAD
/// request, and keeping the connection only if the exchange still may.
pub async fn write_error(ex: &mut Exchange<'_>, reply: &ErrorReply<'_>) -> std::io::Result<()> {
    let with_body = ex.head.method != http::Method::HEAD;
    let answer = answers::error_answer(reply, ex.version(), ex.keep_alive(), with_body);
    ex.send(&answer).await
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
