//! The gateway's event loops (`[server] work_stealing = false`, the default): `[server] threads`
//! threads, each running a single-threaded tokio runtime of its own that serves the connections
//! placed on it from their first byte to their close. A request, its timers, its upstream
//! exchange (on that thread's own idle upstream connections, see `upstream::idle_pool`) and its
//! answer never leave the thread, so serving a request wakes no other thread — the share-nothing
//! loop per core of nginx and HAProxy. The listener's accept loop hands each new connection to
//! the loop with the fewest open connections (an even split, where a random pick leaves one loop
//! with more of a small number of busy connections).
//!
//! Why not pingora's no-steal runtime: it places each task on a thread picked at random and
//! gives no way to pick one, nor to know how many connections a thread holds.
//!
//! **May use:** tokio, std, `observe::allocations` (a loop's allocations are counted).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// How long a loop's runtime waits for its tasks when it is stopped (they were cancelled).
const STOP_WAIT: Duration = Duration::from_secs(1);
/// A loop always has a timer due within this long (see [`keep_a_timer_due`]).
const TIMER_DUE: Duration = Duration::from_millis(250);

pub struct Loops {
    loops: Vec<Loop>,
}

struct Loop {
    handle: Handle,
    /// Connections open on this loop.
    open: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// A connection's place on a loop, counted while it lives.
pub struct Placed {
    open: Arc<AtomicUsize>,
}

impl Drop for Placed {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Loops {
    /// Starts `n` loops (at least one), on threads named `{name}-{i}`.
    pub fn start(n: usize, name: &str) -> io::Result<Loops> {
        let mut loops = Loops { loops: Vec::new() };
        for i in 0..n.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    crate::observe::allocations::count_this_thread();
                    // Runs the loop's connections until told to stop (or the sender is gone).
                    runtime.block_on(async {
                        tokio::select! {
                            _ = stopped => {}
                            _ = keep_a_timer_due() => {}
                        }
                    });
                    runtime.shutdown_timeout(STOP_WAIT);
                })?;
            loops.loops.push(Loop {
                handle,
                open: Arc::new(AtomicUsize::new(0)),
                stop: Some(stop),
                thread: Some(thread),
            });
        }
        Ok(loops)
    }

    /// The loop with the fewest open connections, and the new connection's place on it.
    pub fn place(&self) -> (&Handle, Placed) {
        let chosen = self
            .loops
            .iter()
            .min_by_key(|l| l.open.load(Ordering::Relaxed))
            .unwrap_or(&self.loops[0]);
        chosen.open.fetch_add(1, Ordering::Relaxed);
        let placed = Placed {
            open: chosen.open.clone(),
        };
        (&chosen.handle, placed)
    }

    /// Connections open on all loops.
    pub fn open(&self) -> usize {
        self.loops
            .iter()
            .map(|l| l.open.load(Ordering::Relaxed))
            .sum()
    }

    /// Connections open on each loop.
    #[cfg(test)]
    fn open_per_loop(&self) -> Vec<usize> {
        self.loops
            .iter()
            .map(|l| l.open.load(Ordering::Relaxed))
            .collect()
    }
}

/// Keeps a timer due within [`TIMER_DUE`] on this loop, for ever.
///
/// tokio's timer wakes its driver (a write to the runtime's eventfd, and a wasted turn of
/// `epoll_wait`) whenever a timer is set to expire before the driver's next planned wake-up, even
/// from the driver's own thread. With no other timer set, that is every request's: the read of
/// the upstream's answer and the keep-alive wait are each bounded by one. Measured under load,
/// 0.22 such writes per request; with a timer always due sooner than a request's timeouts
/// (seconds), none. The cost: four wake-ups a second of an idle loop.
async fn keep_a_timer_due() {
    loop {
        tokio::time::sleep(TIMER_DUE).await;
    }
}

impl Drop for Loops {
    /// Stops every loop: what still runs on them is cancelled.
    fn drop(&mut self) {
        for l in &mut self.loops {
            if let Some(stop) = l.stop.take() {
                let _ = stop.send(());
            }
        }
        for l in &mut self.loops {
            if let Some(thread) = l.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_go_to_the_least_busy_loop_and_are_counted_while_they_live() {
        let loops = Loops::start(2, "test-loop").unwrap();
        let a = loops.place().1;
        let b = loops.place().1;
        assert_eq!(loops.open_per_loop(), vec![1, 1]);
        drop(a);
        assert_eq!(loops.open_per_loop(), vec![0, 1]);
        let c = loops.place().1;
        assert_eq!(loops.open_per_loop(), vec![1, 1]);
        assert_eq!(loops.open(), 2);
        drop((b, c));
        assert_eq!(loops.open(), 0);
    }

    #[test]
    fn a_task_runs_on_its_loop_thread() {
        let loops = Loops::start(2, "test-loop").unwrap();
        let (handle, placed) = loops.place();
        let (tx, rx) = std::sync::mpsc::channel();
        handle.spawn(async move {
            let _placed = placed;
            let _ = tx.send(std::thread::current().name().map(String::from));
        });
        let name = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(name.as_deref(), Some("test-loop-0"));
    }
}
