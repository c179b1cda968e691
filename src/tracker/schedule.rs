//! When the tracker must look at a session again on its own: the end of a reorder window (calls
//! waiting to be judged in order) and, with the Redis store, the moment the session expires
//! unless called again. One entry per session (the earliest), in a heap; an entry superseded by
//! an earlier one is skipped when it comes up. Bounded: beyond `cap` sessions new entries are
//! refused and counted by the caller (their calls are still judged by the session's next call).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;

pub struct Schedule {
    inner: Mutex<Inner>,
    cap: usize,
}

#[derive(Default)]
struct Inner {
    heap: BinaryHeap<Reverse<(u64, String)>>,
    /// The earliest entry of each session.
    due: HashMap<String, u64>,
}

impl Schedule {
    pub fn new(cap: usize) -> Schedule {
        Schedule {
            inner: Mutex::new(Inner::default()),
            cap,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for `sid` to be looked at at `at_ms` (kept: an earlier entry). `false`: full.
    pub fn at(&self, sid: &str, at_ms: u64) -> bool {
        let mut inner = self.lock();
        match inner.due.get(sid) {
            Some(&due) if due <= at_ms => return true,
            Some(_) => {}
            None if inner.due.len() >= self.cap => return false,
            None => {}
        }
        inner.due.insert(sid.to_owned(), at_ms);
        inner.heap.push(Reverse((at_ms, sid.to_owned())));
        // Superseded entries pile up only while one session keeps moving its entry earlier:
        // rebuild when they outnumber the live ones.
        if inner.heap.len() > 2 * inner.due.len() + 1024 {
            let live: BinaryHeap<_> = inner
                .due
                .iter()
                .map(|(sid, due)| Reverse((*due, sid.clone())))
                .collect();
            inner.heap = live;
        }
        true
    }

    /// Takes up to `max` sessions due at `now_ms`.
    pub fn take_due(&self, now_ms: u64, max: usize) -> Vec<String> {
        let mut inner = self.lock();
        let mut out = Vec::new();
        while out.len() < max {
            match inner.heap.peek() {
                Some(Reverse((due, _))) if *due <= now_ms => {}
                _ => break,
            }
            let Some(Reverse((due, sid))) = inner.heap.pop() else {
                break;
            };
            if inner.due.get(&sid) == Some(&due) {
                inner.due.remove(&sid);
                out.push(sid);
            }
        }
        out
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().due.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_session_the_earliest_and_bounded() {
        let s = Schedule::new(2);
        assert!(s.at("a", 100));
        assert!(s.at("a", 200), "a later one is covered by the earlier");
        assert!(s.at("a", 50));
        assert!(s.at("b", 300));
        assert!(!s.at("c", 10), "full");
        assert_eq!(s.take_due(49, 10), Vec::<String>::new());
        assert_eq!(s.take_due(100, 10), vec!["a".to_owned()]);
        assert_eq!(s.take_due(1000, 10), vec!["b".to_owned()]);
        assert_eq!(s.len(), 0);
        assert!(s.at("c", 10));
    }
}
