//! When the tracker must look at a session again on its own: the end of a reorder window (calls
//! waiting to be judged in order) and, with the Redis store, the moment the session expires
//! unless called again. One entry per session (the earliest), in a heap; an entry superseded by
//! an earlier one is skipped when it comes up. Bounded: beyond `cap` sessions new entries are
//! refused and counted by the caller (their calls are still judged by the session's next call).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::sync::Mutex;

/// A schedule of sessions named by `K` (the memory store's key, or a sid for Redis).
pub struct Schedule<K> {
    inner: Mutex<Inner<K>>,
    cap: usize,
}

struct Inner<K> {
    heap: BinaryHeap<Reverse<(u64, K)>>,
    /// The earliest entry of each session.
    due: HashMap<K, u64>,
}

impl<K: Hash + Eq + Ord + Clone> Schedule<K> {
    pub fn new(cap: usize) -> Schedule<K> {
        Schedule {
            inner: Mutex::new(Inner {
                heap: BinaryHeap::new(),
                due: HashMap::new(),
            }),
            cap,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for `id` to be looked at at `at_ms` (kept: an earlier entry). `false`: full.
    pub fn at(&self, id: &K, at_ms: u64) -> bool {
        let mut inner = self.lock();
        match inner.due.get(id) {
            Some(&due) if due <= at_ms => return true,
            Some(_) => {}
            None if inner.due.len() >= self.cap => return false,
            None => {}
        }
        inner.due.insert(id.clone(), at_ms);
        inner.heap.push(Reverse((at_ms, id.clone())));
        // Superseded entries pile up only while one session keeps moving its entry earlier:
        // rebuild when they outnumber the live ones.
        if inner.heap.len() > 2 * inner.due.len() + 1024 {
            let live: BinaryHeap<_> = inner
                .due
                .iter()
                .map(|(id, due)| Reverse((*due, id.clone())))
                .collect();
            inner.heap = live;
        }
        true
    }

    /// Takes up to `max` sessions due at `now_ms`.
    pub fn take_due(&self, now_ms: u64, max: usize) -> Vec<K> {
        let mut inner = self.lock();
        let mut out = Vec::new();
        while out.len() < max {
            match inner.heap.peek() {
                Some(Reverse((due, _))) if *due <= now_ms => {}
                _ => break,
            }
            let Some(Reverse((due, id))) = inner.heap.pop() else {
                break;
            };
            if inner.due.get(&id) == Some(&due) {
                inner.due.remove(&id);
                out.push(id);
            }
        }
        out
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().due.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_session_the_earliest_and_bounded() {
        let s = Schedule::new(2);
        let id = |x: &str| x.to_owned();
        assert!(s.at(&id("a"), 100));
        assert!(s.at(&id("a"), 200), "a later one is covered by the earlier");
        assert!(s.at(&id("a"), 50));
        assert!(s.at(&id("b"), 300));
        assert!(!s.at(&id("c"), 10), "full");
        assert_eq!(s.take_due(49, 10), Vec::<String>::new());
        assert_eq!(s.take_due(100, 10), vec!["a".to_owned()]);
        assert_eq!(s.take_due(1000, 10), vec!["b".to_owned()]);
        assert_eq!(s.len(), 0);
        assert!(s.at(&id("c"), 10));
    }
}
