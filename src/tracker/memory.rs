//! The memory store: sessions in the process, in 64 shards (a lock each, held for one
//! session's update). Bounded by `[sessions] max_sessions`: a full shard evicts its least
//! recently called session among a sample (as Redis approximates LRU), counted; an evicted
//! session is unknown from then on, never misjudged. Lost on restart (sessions become unknown).
//!
//! Hand-written layout, because a measurement asked for it (`make bench-sessions`): a plain
//! `HashMap<Key, Session>` cost 404 bytes per session at a million (its power-of-two tables were
//! half empty, with 168-byte entries, and each growth left the old table to the allocator). Each
//! shard is instead a dense slab of `(Key, Session)` (144 bytes), its capacity reserved up front
//! (pages are only resident once used), and a small open-addressing index from the key's hash
//! to the slab slot ([`Index`], 8-byte entries), sized once. Every look-up compares the whole
//! key, so two sessions never share state.

use std::sync::{Mutex, MutexGuard};

use super::key::Key;
use sessions::Session;

const SHARDS: usize = 64;
/// Sessions looked at to pick one to evict.
const EVICTION_SAMPLE: usize = 16;

/// A shard's index: open addressing with linear probing over 8-byte entries (a 32-bit tag of
/// the key's hash, the slot + 1), at most half full. One probe reads one cache line, where a
/// `HashMap<u64, u32>` reads its control bytes and then its entry (two cache misses with a
/// million sessions; `make bench-sessions`).
struct Index {
    table: Vec<u64>,
    mask: usize,
}

impl Index {
    fn with_capacity(n: usize) -> Index {
        let size = (n.max(8) * 10).div_ceil(7).next_power_of_two();
        Index {
            table: vec![0; size],
            mask: size - 1,
        }
    }

    fn tag(hash: u64) -> u64 {
        // Never 0 (an empty entry).
        (hash >> 32) | 1
    }

    fn home(&self, hash: u64) -> usize {
        hash as usize & self.mask
    }

    /// The slots whose entries carry `hash`'s tag, in probe order, until an empty entry.
    fn candidates(&self, hash: u64) -> impl Iterator<Item = (usize, usize)> + '_ {
        let tag = Index::tag(hash);
        let mut i = self.home(hash);
        std::iter::from_fn(move || loop {
            let e = self.table[i];
            if e == 0 {
                return None;
            }
            let at = i;
            i = (i + 1) & self.mask;
            if e >> 32 == tag {
                return Some((at, (e & 0xffff_ffff) as usize - 1));
            }
        })
    }

    fn insert(&mut self, hash: u64, slot: usize) {
        let mut i = self.home(hash);
        while self.table[i] != 0 {
            i = (i + 1) & self.mask;
        }
        self.table[i] = Index::tag(hash) << 32 | (slot as u64 + 1);
    }

    /// Points the entry at `at` to `slot`.
    fn repoint(&mut self, at: usize, slot: usize) {
        self.table[at] = (self.table[at] & !0xffff_ffff) | (slot as u64 + 1);
    }

    /// Empties the entry at `at`, moving later entries of the run back (no tombstones).
    fn remove(&mut self, at: usize, home_of: impl Fn(usize) -> u64) {
        let mut hole = at;
        let mut i = at;
        loop {
            i = (i + 1) & self.mask;
            let e = self.table[i];
            if e == 0 {
                break;
            }
            let home = self.home(home_of((e & 0xffff_ffff) as usize - 1));
            // The entry may move into the hole when its home is not in (hole, i].
            let between = if hole <= i {
                hole < home && home <= i
            } else {
                hole < home || home <= i
            };
            if !between {
                self.table[hole] = e;
                hole = i;
            }
        }
        self.table[hole] = 0;
    }
}

struct Shard {
    index: Index,
    slots: Vec<(Key, Session)>,
}

impl Shard {
    /// The index entry and the slot of `key`.
    fn find(&self, key: &Key) -> Option<(usize, usize)> {
        let hash = key.index_hash();
        self.index
            .candidates(hash)
            .find(|(_, slot)| self.slots.get(*slot).is_some_and(|(k, _)| k == key))
    }

    fn slot(&self, key: &Key) -> Option<usize> {
        self.find(key).map(|(_, slot)| slot)
    }

    /// Removes the session in `slot`; the last one moves into its place.
    fn remove_slot(&mut self, slot: usize) -> Option<(Key, Session)> {
        let key = self.slots.get(slot)?.0;
        let (at, _) = self.find(&key)?;
        let slots = &self.slots;
        self.index
            .remove(at, |s| slots.get(s).map_or(0, |(k, _)| k.index_hash()));
        let removed = self.slots.swap_remove(slot);
        if let Some((moved, _)) = self.slots.get(slot) {
            let moved = *moved;
            let last = self.slots.len();
            // The moved session's entry still names its old slot (the last one).
            let entry = self
                .index
                .candidates(moved.index_hash())
                .find(|(_, s)| *s == last)
                .map(|(entry, _)| entry);
            if let Some(entry) = entry {
                self.index.repoint(entry, slot);
            }
        }
        Some(removed)
    }
}

pub struct Memory {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    /// Where the next eviction sample starts (a cheap spread over the slab).
    sample_at: std::sync::atomic::AtomicUsize,
}

impl Memory {
    pub fn new(max_sessions: usize) -> Memory {
        let per_shard = max_sessions.div_ceil(SHARDS).max(1);
        Memory {
            shards: (0..SHARDS)
                .map(|_| {
                    // Sized once: neither grows by reallocating (which would leave the old
                    // tables to the allocator). The slab is reserved, not resident: its pages
                    // count once sessions are written there.
                    let reserve = per_shard.min(1 << 24);
                    Mutex::new(Shard {
                        index: Index::with_capacity(reserve),
                        slots: Vec::with_capacity(reserve),
                    })
                })
                .collect(),
            per_shard,
            sample_at: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn shard(&self, key: &Key) -> MutexGuard<'_, Shard> {
        let i = (key.low() >> 58) as usize % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the session of `key`, under its shard's lock (`None`: no such session).
    /// `hint`: the slot a [`Memory::read`] just found it in (checked, then the index is asked).
    pub fn update<R>(
        &self,
        key: &Key,
        hint: Option<u32>,
        f: impl FnOnce(&mut Session) -> R,
    ) -> Option<R> {
        let mut shard = self.shard(key);
        let hinted = hint
            .map(|h| h as usize)
            .filter(|&h| shard.slots.get(h).is_some_and(|(k, _)| k == key));
        let slot = hinted.or_else(|| shard.slot(key))?;
        Some(f(&mut shard.slots[slot].1))
    }

    /// Forgets the session of `key`.
    pub fn remove(&self, key: &Key) -> Option<Session> {
        let mut shard = self.shard(key);
        let slot = shard.slot(key)?;
        shard.remove_slot(slot).map(|(_, s)| s)
    }

    /// Reads the session of `key`; also says in which slot it was (a hint for an update).
    pub fn read<R>(&self, key: &Key, f: impl FnOnce(Option<&Session>) -> R) -> (R, Option<u32>) {
        let shard = self.shard(key);
        let slot = shard.slot(key);
        (
            f(slot.map(|slot| &shard.slots[slot].1)),
            slot.map(|s| s as u32),
        )
    }

    /// Inserts a new session (replacing one of the same key); returns the one evicted to make
    /// room, if any.
    pub fn insert(&self, key: Key, session: Session) -> Option<(Key, Session)> {
        let mut shard = self.shard(&key);
        if let Some(slot) = shard.slot(&key) {
            // The same session again: replaced.
            shard.slots[slot] = (key, session);
            return None;
        }
        let evicted = if shard.slots.len() >= self.per_shard {
            let n = shard.slots.len();
            let start = self
                .sample_at
                .fetch_add(EVICTION_SAMPLE, std::sync::atomic::Ordering::Relaxed)
                % n;
            let victim = (0..EVICTION_SAMPLE.min(n))
                .map(|i| (start + i) % n)
                .min_by_key(|&slot| shard.slots[slot].1.last_call_ms());
            victim.and_then(|slot| shard.remove_slot(slot))
        } else {
            None
        };
        let slot = shard.slots.len();
        shard.slots.push((key, session));
        shard.index.insert(key.index_hash(), slot);
        evicted
    }

    /// Visits every session, one shard at a time; a session `f` returns `false` for is removed.
    pub fn sweep(&self, mut f: impl FnMut(&Key, &mut Session) -> bool) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            let mut slot = 0;
            while slot < shard.slots.len() {
                let (key, session) = &mut shard.slots[slot];
                if f(key, session) {
                    slot += 1;
                } else {
                    // The last session moves here: look at this slot again.
                    shard.remove_slot(slot);
                }
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).slots.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessions::{Content, Start};

    fn start() -> Start {
        Start {
            ts: 0,
            playhead: 0.0,
            content: Content::Vod,
            length: None,
            player: 0,
            sdk: 0,
        }
    }

    fn key(i: u64) -> Key {
        Key::of(&format!(
            "{:016x}{i:048x}",
            i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ))
    }

    #[test]
    fn the_store_is_bounded_and_evicts_the_least_recently_called() {
        let m = Memory::new(64);
        let mut evicted = 0;
        for i in 0..1064u64 {
            evicted += usize::from(
                m.insert(key(i), Session::new(&start(), 1_000 + i))
                    .is_some(),
            );
        }
        assert!(m.len() <= 64, "{}", m.len());
        assert_eq!(evicted, 1064 - m.len());
        let newest = key(1063);
        let (kept, slot) = m.read(&newest, |s| s.is_some());
        assert!(kept, "the newest is kept");
        assert_eq!(m.update(&newest, slot, |s| s.events()), Some(1));
        assert_eq!(
            m.update(&newest, Some(9_999), |s| s.events()),
            Some(1),
            "a stale hint"
        );
        assert!(m.remove(&newest).is_some());
        assert!(!m.read(&newest, |s| s.is_some()).0);
        assert!(m.remove(&newest).is_none());
    }

    #[test]
    fn removing_and_sweeping_keep_every_other_session_reachable() {
        let m = Memory::new(10_000);
        for i in 0..5_000u64 {
            m.insert(key(i), Session::new(&start(), i));
        }
        // Forget the even ones by sweeping, then one odd one by key.
        m.sweep(|_, s| s.started_ms() % 2 == 1);
        assert_eq!(m.len(), 2_500);
        assert!(m.remove(&key(1)).is_some());
        for i in 0..5_000u64 {
            let found = m.read(&key(i), |s| s.map(|s| s.started_ms())).0;
            let expected = (i % 2 == 1 && i != 1).then_some(i);
            assert_eq!(found, expected, "session {i}");
        }
        // Inserting the same key again replaces it.
        m.insert(key(3), Session::new(&start(), 77));
        assert_eq!(m.read(&key(3), |s| s.map(|s| s.started_ms())).0, Some(77));
        assert_eq!(m.len(), 2_499);
    }

    #[test]
    fn the_index_agrees_with_a_map_through_any_sequence_of_operations() {
        // Keys in few shards and a small index, so runs, wrap-arounds and moves happen often.
        let m = Memory::new(64 * 200);
        let mut model: std::collections::HashMap<u64, u64> = Default::default();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..40_000u64 {
            let i = rand() % 3_000;
            match rand() % 10 {
                0..=5 => {
                    let evicted = m.insert(key(i), Session::new(&start(), step));
                    model.insert(i, step);
                    if let Some((k, s)) = evicted {
                        let victim = (0..3_000).find(|j| key(*j) == k).expect("a known key");
                        assert_eq!(model.remove(&victim), Some(s.started_ms()));
                    }
                }
                6..=8 => {
                    let removed = m.remove(&key(i)).map(|s| s.started_ms());
                    assert_eq!(removed, model.remove(&i), "remove {i} at step {step}");
                }
                _ => {
                    let cut = rand() % 4;
                    m.sweep(|_, s| s.started_ms() % 4 != cut);
                    model.retain(|_, v| *v % 4 != cut);
                }
            }
        }
        for i in 0..3_000 {
            let found = m.read(&key(i), |s| s.map(|s| s.started_ms())).0;
            assert_eq!(found, model.get(&i).copied(), "session {i}");
        }
        assert_eq!(m.len(), model.len());
    }
}
