//! Session-id minting: 64 lowercase hexadecimal characters (256 bits), the shape of every sid the
//! real backend hands out (§1.3).
//!
//! Each sid is four SipHash outputs of `(seed, counter, lane)` under the secret keys of a
//! [`RandomState`] (seeded by the standard library from the operating system's randomness). The
//! counter makes sids distinct; the secret keys make them unpredictable to clients. This is an
//! emulator, not a security boundary: it needs no cryptographic guarantee and no `rand` crate.

use std::collections::hash_map::RandomState;
use std::fmt::Write;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The length of a minted sid.
pub const SID_LEN: usize = 64;

/// Mints fresh sids. Lock-free; share it behind an `Arc` or inside the emulator.
pub struct SidMinter {
    keys: RandomState,
    seed: u64,
    counter: AtomicU64,
}

impl SidMinter {
    pub fn new() -> SidMinter {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        SidMinter {
            keys: RandomState::new(),
            seed: nanos ^ (u64::from(std::process::id()) << 32),
            counter: AtomicU64::new(0),
        }
    }

    /// A new sid: 64 lowercase hex characters.
    pub fn mint(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut sid = String::with_capacity(SID_LEN);
        for lane in 0u64..4 {
            let mut h = self.keys.build_hasher();
            h.write_u64(self.seed);
            h.write_u64(n);
            h.write_u64(lane);
            // Writing to a String cannot fail.
            let _ = write!(sid, "{:016x}", h.finish());
        }
        sid
    }
}

impl Default for SidMinter {
    fn default() -> Self {
        SidMinter::new()
    }
}

/// Whether `s` has the shape of a minted sid (`^[0-9a-f]{64}$`).
pub fn is_sid(s: &str) -> bool {
    s.len() == SID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn sids_are_64_lowercase_hex() {
        let m = SidMinter::new();
        for _ in 0..100 {
            let sid = m.mint();
            assert!(is_sid(&sid), "{sid}");
        }
    }

    #[test]
    fn sids_are_unique_within_and_across_minters() {
        let (a, b) = (SidMinter::new(), SidMinter::new());
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(a.mint()));
            assert!(seen.insert(b.mint()));
        }
    }

    #[test]
    fn sid_shape_check_rejects_near_misses() {
        assert!(!is_sid(&"A".repeat(64)));
        assert!(!is_sid(&"a".repeat(63)));
        assert!(!is_sid(&"g".repeat(64)));
        assert!(is_sid(&"0".repeat(64)));
    }
}
