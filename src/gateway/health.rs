//! Upstream health: the state active checks and passive ejection share, and its transitions.
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

#[derive(Default)]
struct State {
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

pub struct Health {
    states: Vec<State>,
    thresholds: Thresholds,
}

impl Health {
    pub fn new(count: usize, thresholds: Thresholds) -> Health {
        let states = (0..count)
            .map(|_| State {
                healthy: AtomicBool::new(true),
                ..State::default()
            })
            .collect();
        Health { states, thresholds }
    }

    pub fn is_available(&self, i: usize, now_ms: u64) -> bool {
        let s = &self.states[i];
        s.healthy.load(Ordering::Relaxed) && s.ejected_until_ms.load(Ordering::Relaxed) <= now_ms
    }

    /// A successful exchange.
    pub fn record_success(&self, i: usize) {
        let s = &self.states[i];
        if s.failures.load(Ordering::Relaxed) != 0 {
            s.failures.store(0, Ordering::Relaxed);
        }
    }

    /// A failed exchange (the upstream could not be reached or broke the exchange).
    pub fn record_failure(&self, i: usize, now_ms: u64) -> Change {
        let limit = self.thresholds.passive_failures;
        let s = &self.states[i];
        let failures = s.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if limit == 0 || failures < limit {
            return Change::None;
        }
        s.failures.store(0, Ordering::Relaxed);
        let until = now_ms + self.thresholds.passive_ejection.as_millis() as u64;
        s.ejected_until_ms.store(until, Ordering::Relaxed);
        Change::Ejected
    }

    /// The result of one active probe.
    pub fn record_probe(&self, i: usize, ok: bool) -> Change {
        let s = &self.states[i];
        let healthy = s.healthy.load(Ordering::Relaxed);
        // A good probe ends an ejection, but does not clear the count of failed exchanges: a
        // connect (or a probe's GET) succeeding says nothing of the exchanges that failed.
        if ok {
            s.ejected_until_ms.store(0, Ordering::Relaxed);
        }
        if ok == healthy {
            s.streak.store(0, Ordering::Relaxed);
            return Change::None;
        }
        let streak = s.streak.fetch_add(1, Ordering::Relaxed) + 1;
        let needed = if healthy {
            self.thresholds.unhealthy
        } else {
            self.thresholds.healthy
        };
        if streak < needed {
            return Change::None;
        }
        s.streak.store(0, Ordering::Relaxed);
        s.healthy.store(ok, Ordering::Relaxed);
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

    fn health(passive: u32) -> Health {
        Health::new(
            2,
            Thresholds {
                unhealthy: 2,
                healthy: 2,
                passive_failures: passive,
                passive_ejection: Duration::from_millis(1000),
            },
        )
    }

    #[test]
    fn active_checks_need_consecutive_results() {
        let h = health(0);
        assert!(h.is_available(0, 0));
        assert_eq!(h.record_probe(0, false), Change::None);
        assert_eq!(
            h.record_probe(0, true),
            Change::None,
            "a good probe resets the streak"
        );
        assert_eq!(h.record_probe(0, false), Change::None);
        assert_eq!(h.record_probe(0, false), Change::BecameUnhealthy);
        assert!(!h.is_available(0, 0));
        assert!(h.is_available(1, 0));
        assert_eq!(h.record_probe(0, true), Change::None);
        assert_eq!(h.record_probe(0, true), Change::BecameHealthy);
        assert!(h.is_available(0, 0));
    }

    #[test]
    fn passive_ejection_expires_or_ends_on_a_good_probe() {
        let h = health(3);
        assert_eq!(h.record_failure(0, 100), Change::None);
        h.record_success(0);
        assert_eq!(h.record_failure(0, 100), Change::None);
        assert_eq!(h.record_failure(0, 100), Change::None);
        h.record_probe(0, true); // a good probe does not reset the failed exchanges
        assert_eq!(h.record_failure(0, 100), Change::Ejected);
        assert!(!h.is_available(0, 500));
        assert!(h.is_available(0, 1100), "ejection lasts passive_ejection");
        assert_eq!(h.record_failure(0, 2000), Change::None);
        assert_eq!(h.record_failure(0, 2000), Change::None);
        assert_eq!(h.record_failure(0, 2000), Change::Ejected);
        h.record_probe(0, true);
        assert!(h.is_available(0, 2001));
        let both = health(1);
        both.record_failure(0, 0);
        both.record_failure(1, 0);
        assert!(!both.is_available(0, 10) && !both.is_available(1, 10));
        assert!(both.is_available(0, 1000) && both.is_available(1, 1000));
    }

    #[test]
    fn passive_ejection_can_be_switched_off() {
        let h = health(0);
        for _ in 0..100 {
            assert_eq!(h.record_failure(1, 0), Change::None);
        }
        assert!(h.is_available(1, 0));
    }
}
