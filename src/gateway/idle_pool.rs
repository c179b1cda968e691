//! Idle upstream connections kept for reuse, one small LIFO stack per upstream.
//!
//! pingora's own pool checks every reused socket with a `getpeername` and spawns a watcher task
//! for every connection it takes back; at tens of thousands of requests per second that is a
//! system call, a task spawn and a wake-up per request. Here a connection is simply pushed back
//! and popped again (the most recently used first, so few connections stay warm). A connection
//! idle longer than the upstream's `idle_timeout_ms` is dropped instead of reused, and
//! [`IdlePool::prune`] (run by the health checker) closes those nobody took. A connection the
//! upstream closed while it sat here is caught by the retry rule of [`super::upstream`].

use pingora_core::protocols::Stream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct IdlePool {
    idle: Mutex<Vec<(Stream, Instant)>>,
    max: usize,
    timeout: Duration,
}

impl IdlePool {
    pub fn new(max: usize, timeout: Duration) -> IdlePool {
        IdlePool {
            idle: Mutex::new(Vec::with_capacity(max.min(1024))),
            max,
            timeout,
        }
    }

    /// The most recently returned connection that has not idled too long.
    pub fn take(&self) -> Option<Stream> {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((stream, since)) = idle.pop() {
            if now.duration_since(since) < self.timeout {
                return Some(stream);
            }
            // Older entries lie below this one: all of them have expired too.
            idle.clear();
        }
        None
    }

    /// Keeps a connection for reuse (dropped, hence closed, when the pool is full).
    pub fn put(&self, stream: Stream) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max {
            idle.push((stream, Instant::now()));
        }
    }

    /// Closes the connections that idled past the timeout.
    pub fn prune(&self) {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|(_, since)| now.duration_since(*since) < self.timeout);
    }
}
