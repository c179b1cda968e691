//! Heap allocations made on the gateway's event-loop threads, counted by the allocator itself,
//! when the process was started with `MEDIAGATE_COUNT_ALLOCATIONS=1` (a test and debugging aid:
//! `tests/allocations.rs` reads the count from the admin listener's `GET /debug/allocations`
//! around a batch of calls, to hold the request path to its allocation budget).
//!
//! [`Counting`] wraps the real allocator (mimalloc). With counting off, an allocation pays one
//! relaxed load of a flag nobody writes. With it on, only threads that asked to be counted
//! ([`count_this_thread`], the event loops) count, each into an atomic of its own (no cache line
//! shared between threads); [`total`] adds them up.
//!
//! **May use:** std only (it runs inside the allocator: it must not allocate).

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// The environment variable that turns counting on at start.
pub const ENV: &str = "MEDIAGATE_COUNT_ALLOCATIONS";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Counted threads at most (more are not counted).
const THREADS: usize = 64;

/// One counter per counted thread; [`NEXT`] of them are handed out.
static COUNTERS: [AtomicU64; THREADS] = [const { AtomicU64::new(0) }; THREADS];
static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's counter, when it is counted.
    static MINE: Cell<Option<&'static AtomicU64>> = const { Cell::new(None) };
}

/// Turns counting on when [`ENV`] is `1` (call once, at start).
pub fn init_from_env() {
    if std::env::var(ENV).is_ok_and(|v| v == "1") {
        ENABLED.store(true, Ordering::Relaxed);
    }
}

/// Whether counting is on.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Counts this thread's allocations from now on (when counting is on).
pub fn count_this_thread() {
    if !enabled() {
        return;
    }
    let index = NEXT.fetch_add(1, Ordering::Relaxed);
    if let Some(counter) = COUNTERS.get(index) {
        MINE.with(|m| m.set(Some(counter)));
    }
}

/// Allocations counted so far on all counted threads.
pub fn total() -> u64 {
    COUNTERS.iter().map(|c| c.load(Ordering::Relaxed)).sum()
}

#[inline]
fn count() {
    if ENABLED.load(Ordering::Relaxed) {
        // `try_with`: the thread-local may already be gone while a thread exits.
        let _ = MINE.try_with(|m| {
            if let Some(counter) = m.get() {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// The process's allocator: `A`, with allocations counted (see the module comment).
pub struct Counting<A>(pub A);

// SAFETY: every call is passed on to the wrapped allocator unchanged; counting touches only
// atomics and a const-initialized thread-local `Cell` (no allocation, no destructor).
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}
