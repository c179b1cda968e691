//! Smooth weighted round robin (the algorithm nginx uses): over any run of picks each upstream is
//! chosen in proportion to its weight, interleaved rather than in bursts. Upstreams that are not
//! eligible (unhealthy, ejected, already tried) are skipped without disturbing the others.

use std::sync::Mutex;

pub struct Balancer {
    weights: Vec<i64>,
    current: Mutex<Vec<i64>>,
}

impl Balancer {
    pub fn new(weights: &[u32]) -> Balancer {
        Balancer {
            weights: weights.iter().map(|w| i64::from(*w)).collect(),
            current: Mutex::new(vec![0; weights.len()]),
        }
    }

    /// The next upstream among those for which `eligible` holds, or `None` when there is none.
    pub fn pick(&self, eligible: impl Fn(usize) -> bool) -> Option<usize> {
        if self.weights.len() == 1 {
            return eligible(0).then_some(0);
        }
        // A poisoned lock only means another thread panicked mid-pick; the weights stay usable.
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let mut total = 0;
        let mut best: Option<usize> = None;
        for (i, weight) in self.weights.iter().enumerate() {
            if !eligible(i) {
                continue;
            }
            current[i] += weight;
            total += weight;
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        let chosen = best?;
        current[chosen] -= total;
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_follow_the_weights_smoothly() {
        let b = Balancer::new(&[5, 1, 1]);
        let picks: Vec<usize> = (0..7).map(|_| b.pick(|_| true).unwrap()).collect();
        assert_eq!(picks, vec![0, 0, 1, 0, 2, 0, 0]);
        let b = Balancer::new(&[1, 1]);
        let picks: Vec<usize> = (0..4).map(|_| b.pick(|_| true).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 0, 1]);
    }

    #[test]
    fn ineligible_upstreams_are_skipped() {
        let b = Balancer::new(&[1, 1, 1]);
        for _ in 0..10 {
            assert_eq!(b.pick(|i| i == 2), Some(2));
        }
        assert_eq!(b.pick(|_| false), None);
        let single = Balancer::new(&[3]);
        assert_eq!(single.pick(|_| true), Some(0));
        assert_eq!(single.pick(|_| false), None);
    }
}
