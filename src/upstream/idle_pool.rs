//! Idle upstream connections kept for reuse: small LIFO stacks per upstream, one per worker
//! thread.
//!
//! pingora's own pool checks every reused socket with a `getpeername` and spawns a watcher task
//! for every connection it takes back; at tens of thousands of requests per second that is a
//! system call, a task spawn and a wake-up per request. Here a connection is simply pushed back
//! and popped again (the most recently used first, so few connections stay warm).
//!
//! Why per thread (with `work_stealing = false`, the default): the gateway then serves its
//! connections on event loops of its own, one single-threaded tokio runtime per thread
//! (`server::loops`), and a socket belongs to the I/O driver of the runtime that opened it. A
//! connection opened on one thread and reused by a request on another would have every readiness
//! event of the answer delivered to the first thread, which then has to wake the second: a
//! cross-thread wake-up per request. So a thread takes back only connections it opened. With
//! work stealing there is one runtime, requests move between threads, and one stack is shared
//! (per-thread stacks would then fill on one thread while another opens new connections).
//!
//! A connection idle longer than the upstream's `idle_timeout_ms` is dropped instead of reused,
//! and [`IdlePool::prune`] (run by the cluster's housekeeping) closes those nobody took. One that the
//! upstream closed (or sent bytes on) while it sat here is found when it is taken, and closed.

use pingora_core::protocols::Stream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Stacks per upstream; threads beyond this many share them.
const SLOTS: usize = 16;

type Stack = Mutex<Vec<(Stream, Instant)>>;

pub struct IdlePool {
    /// One stack, or [`SLOTS`] (per thread).
    slots: Vec<Stack>,
    /// At most this many idle connections per thread's stack.
    max: usize,
    timeout: Duration,
}

/// This thread's stack index.
fn slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
    }
    SLOT.with(|s| *s)
}

impl IdlePool {
    pub fn new(max: usize, timeout: Duration, per_thread: bool) -> IdlePool {
        let stacks = if per_thread { SLOTS } else { 1 };
        IdlePool {
            slots: (0..stacks).map(|_| Mutex::new(Vec::new())).collect(),
            max,
            timeout,
        }
    }

    fn stack(&self) -> std::sync::MutexGuard<'_, Vec<(Stream, Instant)>> {
        let index = if self.slots.len() == 1 { 0 } else { slot() };
        self.slots[index].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently returned connection (of this thread, per thread) that has not idled
    /// too long and passes `usable` (checked outside the stack's lock: it may read the
    /// socket); the ones that fail it are closed.
    pub fn take_quiet(&self, usable: impl Fn(&mut Stream) -> bool) -> Option<Stream> {
        loop {
            let mut stream = self.pop_fresh()?;
            if usable(&mut stream) {
                return Some(stream);
            }
        }
    }

    /// Pops the most recently returned connection, unless it idled too long.
    fn pop_fresh(&self) -> Option<Stream> {
        let now = Instant::now();
        let mut idle = self.stack();
        let (stream, since) = idle.pop()?;
        if now.duration_since(since) < self.timeout {
            return Some(stream);
        }
        // Older entries lie below this one: all of them have expired too.
        idle.clear();
        None
    }

    /// Keeps a connection for reuse (dropped, hence closed, when the stack is full).
    pub fn put(&self, stream: Stream) {
        let mut idle = self.stack();
        if idle.len() < self.max {
            idle.push((stream, Instant::now()));
        }
    }

    /// Closes the connections that idled past the timeout.
    pub fn prune(&self) {
        let now = Instant::now();
        for stack in &self.slots {
            let mut idle = stack.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|(_, since)| now.duration_since(*since) < self.timeout);
        }
    }
}
