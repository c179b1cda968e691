//! Timeouts that cost nothing when the operation completes at once: a write of a small answer
//! to a socket with room in its buffer finishes on its first poll, and arming a timer (a clock
//! read, a timer-wheel insertion and removal) for it would be pure overhead on every request.

use std::future::{poll_fn, Future};
use std::task::Poll;
use std::time::Duration;

/// Runs `fut`; only when it does not complete on its first poll is it bounded by `limit`.
/// `None`: the limit passed.
pub async fn within<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    match poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        Poll::Ready(out) => Some(out),
        Poll::Pending => tokio::time::timeout(limit, fut).await.ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::within;
    use std::time::Duration;

    #[tokio::test]
    async fn ready_at_once_or_bounded() {
        assert_eq!(within(Duration::from_millis(1), async { 7 }).await, Some(7));
        let never = std::future::pending::<()>();
        assert_eq!(within(Duration::from_millis(20), never).await, None);
        let later = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            3
        };
        assert_eq!(within(Duration::from_secs(5), later).await, Some(3));
    }
}
