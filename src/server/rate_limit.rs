//! The per-client rate limit (`[limits]`, off by default): a token bucket per client address,
//! `burst` requests at once and `requests_per_second` on average. A guard against a runaway
//! player (a retry loop, a stuck heartbeat timer), not a security control: addresses behind one
//! NAT share a bucket, and an attacker can spread over many addresses.
//!
//! Memory is bounded: at most `max_clients` addresses are tracked, in 16 shards; a full shard
//! forgets the addresses it tracks (they start again with a full bucket). Time is passed in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

const SHARDS: usize = 16;

pub struct RateLimiter {
    per_ms: f64,
    burst: f64,
    per_shard: usize,
    shards: Vec<Mutex<HashMap<IpAddr, Bucket>>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

impl RateLimiter {
    /// `burst` requests at once, `per_second` on average, `max_clients` addresses tracked.
    pub fn new(per_second: f64, burst: u32, max_clients: usize) -> RateLimiter {
        RateLimiter {
            per_ms: per_second / 1000.0,
            burst: f64::from(burst),
            per_shard: max_clients.div_ceil(SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Takes a token for `client` at `now_ms`. `Err(seconds)`: refused; a token is back in
    /// that many seconds (for `Retry-After`).
    pub fn take(&self, client: IpAddr, now_ms: u64) -> Result<(), u64> {
        let shard = &self.shards[shard_of(client)];
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.per_shard && !map.contains_key(&client) {
            map.clear();
        }
        let bucket = map.entry(client).or_insert(Bucket {
            tokens: self.burst,
            at_ms: now_ms,
        });
        let elapsed = now_ms.saturating_sub(bucket.at_ms) as f64;
        bucket.tokens = (bucket.tokens + elapsed * self.per_ms).min(self.burst);
        bucket.at_ms = now_ms;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait_ms = (1.0 - bucket.tokens) / self.per_ms;
        Err((wait_ms / 1000.0).ceil().max(1.0) as u64)
    }
}

fn shard_of(ip: IpAddr) -> usize {
    let low = match ip {
        IpAddr::V4(v4) => u32::from(v4) as u64,
        IpAddr::V6(v6) => u128::from(v6) as u64,
    };
    // Mix the bits so that neighbouring addresses spread over the shards.
    (low.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60) as usize % SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32, max_clients: usize) -> RateLimiter {
        RateLimiter::new(per_second, burst, max_clients)
    }

    #[test]
    fn a_burst_then_the_rate() {
        let l = limiter(2.0, 3, 100);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(l.take(a, 0), Ok(()));
        }
        assert_eq!(l.take(a, 0), Err(1), "the burst is spent");
        assert_eq!(l.take(b, 0), Ok(()), "another client has its own bucket");
        assert_eq!(l.take(a, 499), Err(1));
        assert_eq!(
            l.take(a, 500),
            Ok(()),
            "two a second: one token after 500 ms"
        );
        assert_eq!(l.take(a, 500), Err(1));
        assert_eq!(l.take(a, 10_000), Ok(()));
        let slow = limiter(0.1, 1, 100);
        assert_eq!(slow.take(a, 0), Ok(()));
        assert_eq!(slow.take(a, 0), Err(10), "Retry-After in whole seconds");
    }

    #[test]
    fn memory_is_bounded() {
        let l = limiter(1.0, 1, 32);
        for i in 0..10_000u32 {
            let _ = l.take(IpAddr::from(i.to_be_bytes()), 0);
        }
        let tracked: usize = l.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(tracked <= 32, "{tracked}");
    }
}
