//! The memory players' bodies may take: one budget for the bytes of request bodies received and
//! held by all requests together (`[server] max_inflight_body_bytes`). Bytes are counted as they
//! arrive — never from what a head declares — and given back when the request ends; the
//! upload that would cross the budget is refused (503), so a crowd of stalled or slow uploads
//! cannot take the gateway's memory.

use std::sync::atomic::{AtomicUsize, Ordering};

pub struct BodyBudget {
    held: AtomicUsize,
    limit: usize,
    /// `mediagate_inflight_body_bytes`.
    gauge: prometheus::IntGauge,
}

/// What one request holds of the budget; given back when dropped.
pub struct Held<'b> {
    budget: &'b BodyBudget,
    bytes: usize,
}

impl BodyBudget {
    pub fn new(limit: usize, gauge: prometheus::IntGauge) -> BodyBudget {
        BodyBudget {
            held: AtomicUsize::new(0),
            limit,
            gauge,
        }
    }

    /// An empty holding.
    pub fn holding(&self) -> Held<'_> {
        Held {
            budget: self,
            bytes: 0,
        }
    }

    /// Bytes held by all requests now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

impl Held<'_> {
    /// Holds `n` more bytes; `false` (and nothing held) when that would cross the budget.
    pub fn grow(&mut self, n: usize) -> bool {
        let before = self.budget.held.fetch_add(n, Ordering::Relaxed);
        if before + n > self.budget.limit {
            self.budget.held.fetch_sub(n, Ordering::Relaxed);
            return false;
        }
        self.bytes += n;
        self.budget.gauge.add(n as i64);
        true
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.held.fetch_sub(self.bytes, Ordering::Relaxed);
            self.budget.gauge.sub(self.bytes as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdings_are_bounded_and_given_back() {
        let gauge = prometheus::IntGauge::new("t", "t").unwrap();
        let budget = BodyBudget::new(100, gauge.clone());
        let mut a = budget.holding();
        assert!(a.grow(60));
        let mut b = budget.holding();
        assert!(!b.grow(50), "would cross the budget");
        assert!(b.grow(40));
        assert_eq!(budget.held(), 100);
        assert_eq!(gauge.get(), 100);
        drop(a);
        assert_eq!(budget.held(), 40);
        assert!(b.grow(60));
        drop(b);
        assert_eq!(budget.held(), 0);
    }
}
