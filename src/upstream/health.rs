//! One upstream's health: the state active checks and passive ejection share, and its
//! transitions. Pure (time is passed in); the cluster holds one state per upstream.
//!
//! An upstream is *available* when its active state is healthy and it is not ejected. Active
//! checks flip the state after `unhealthy_threshold` consecutive failed probes and back after
//! `healthy_threshold` consecutive good ones. Passive ejection takes an upstream out for
//! `passive_ejection` after `passive_failures` consecutive failed exchanges (0 switches it off);
//! a good probe ends an ejection early, and only a successful exchange resets the count of
//! failed ones. Upstreams start healthy.
//! Time is passed in (milliseconds on any monotonic clock), so the rules are testable.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

pub struct Thresholds {
    pub unhealthy: u32,
    pub healthy: u32,
    pub passive_failures: u32,
    pub passive_ejection: Duration,
}

#[derive(Debug)]
pub struct State {
    healthy: AtomicBool,
    failures: AtomicU32,
    ejected_until_ms: AtomicU64,
    /// Consecutive probe results against the current state (only the checker writes it).
    streak: AtomicU32,
}

/// What a recorded event changed, for logs and the health gauge.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    None,
    BecameHealthy,
    BecameUnhealthy,
    Ejected,
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

impl State {
    /// Upstreams start healthy.
    pub fn new() -> State {
        State {
            healthy: AtomicBool::new(true),
            failures: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            streak: AtomicU32::new(0),
        }
    }

    pub fn is_available(&self, now_ms: u64) -> bool {
        self.healthy.load(Ordering::Relaxed)
            && self.ejected_until_ms.load(Ordering::Relaxed) <= now_ms
    }

    /// A successful exchange.
    pub fn record_success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// A failed exchange (the upstream could not be reached or broke the exchange).
    pub fn record_failure(&self, thresholds: &Thresholds, now_ms: u64) -> Change {
        let limit = thresholds.passive_failures;
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if limit == 0 || failures < limit {
            return Change::None;
        }
        self.failures.store(0, Ordering::Relaxed);
        let until = now_ms + thresholds.passive_ejection.as_millis() as u64;
        self.ejected_until_ms.store(until, Ordering::Relaxed);
        Change::Ejected
    }

    /// The result of one active probe.
    pub fn record_probe(&self, thresholds: &Thresholds, ok: bool) -> Change {
        let healthy = self.healthy.load(Ordering::Relaxed);
        // A good probe ends an ejection, but does not clear the count of failed exchanges: a
        // connect (or a probe's GET) succeeding says nothing of the exchanges that failed.
        if ok {
            self.ejected_until_ms.store(0, Ordering::Relaxed);
        }
        if ok == healthy {
            self.streak.store(0, Ordering::Relaxed);
            return Change::None;
        }
        let streak = self.streak.fetch_add(1, Ordering::Relaxed) + 1;
        let needed = if healthy {
            thresholds.unhealthy
        } else {
            thresholds.healthy
        };
        if streak < needed {
            return Change::None;
        }
        self.streak.store(0, Ordering::Relaxed);
        self.healthy.store(ok, Ordering::Relaxed);
        if ok {
            Change::BecameHealthy
        } else {
            Change::BecameUnhealthy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds(passive: u32) -> Thresholds {
        Thresholds {
            unhealthy: 2,
            healthy: 2,
            passive_failures: passive,
            passive_ejection: Duration::from_millis(1000),
        }
    }

    #[test]
    fn active_checks_need_consecutive_results() {
        let t = thresholds(0);
        let (h, other) = (State::new(), State::new());
        assert!(h.is_available(0));
        assert_eq!(h.record_probe(&t, false), Change::None);
        assert_eq!(
            h.record_probe(&t, true),
            Change::None,
            "a good probe resets the streak"
        );
        assert_eq!(h.record_probe(&t, false), Change::None);
        assert_eq!(h.record_probe(&t, false), Change::BecameUnhealthy);
        assert!(!h.is_available(0));
        assert!(other.is_available(0));
        assert_eq!(h.record_probe(&t, true), Change::None);
        assert_eq!(h.record_probe(&t, true), Change::BecameHealthy);
        assert!(h.is_available(0));
    }

    #[test]
    fn passive_ejection_expires_or_ends_on_a_good_probe() {
        let t = thresholds(3);
        let h = State::new();
        assert_eq!(h.record_failure(&t, 100), Change::None);
        h.record_success();
        assert_eq!(h.record_failure(&t, 100), Change::None);
        assert_eq!(h.record_failure(&t, 100), Change::None);
        h.record_probe(&t, true); // a good probe does not reset the failed exchanges
        assert_eq!(h.record_failure(&t, 100), Change::Ejected);
        assert!(!h.is_available(500));
        assert!(h.is_available(1100), "ejection lasts passive_ejection");
        assert_eq!(h.record_failure(&t, 2000), Change::None);
        assert_eq!(h.record_failure(&t, 2000), Change::None);
        assert_eq!(h.record_failure(&t, 2000), Change::Ejected);
        h.record_probe(&t, true);
        assert!(h.is_available(2001));
        let t1 = thresholds(1);
        let (a, b) = (State::new(), State::new());
        a.record_failure(&t1, 0);
        b.record_failure(&t1, 0);
        assert!(!a.is_available(10) && !b.is_available(10));
        assert!(a.is_available(1000) && b.is_available(1000));
    }

    #[test]
    fn passive_ejection_can_be_switched_off() {
        let t = thresholds(0);
        let h = State::new();
        for _ in 0..100 {
            assert_eq!(h.record_failure(&t, 0), Change::None);
        }
        assert!(h.is_available(0));
    }
}
