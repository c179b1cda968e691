//! The memory store: sessions in the process, in 64 shards (a lock each, held for one
//! session's update). Bounded by `[sessions] max_sessions`: a full shard evicts its least
//! recently called session among a sample (as Redis approximates LRU), counted; an evicted
//! session is unknown from then on, never misjudged. Lost on restart (sessions become unknown).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{Mutex, MutexGuard};

use super::key::{Key, KeyHasher};
use sessions::Session;

const SHARDS: usize = 64;
/// Sessions looked at to pick one to evict.
const EVICTION_SAMPLE: usize = 16;

type Shard = HashMap<Key, Session, BuildHasherDefault<KeyHasher>>;

pub struct Memory {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

impl Memory {
    pub fn new(max_sessions: usize) -> Memory {
        Memory {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: max_sessions.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: &Key) -> MutexGuard<'_, Shard> {
        let i = (key.low() >> 58) as usize % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the session of `key`, under its shard's lock (`None`: no such session).
    pub fn update<R>(&self, key: &Key, f: impl FnOnce(&mut Session) -> R) -> Option<R> {
        let mut shard = self.shard(key);
        shard.get_mut(key).map(f)
    }

    /// Forgets the session of `key`.
    pub fn remove(&self, key: &Key) -> Option<Session> {
        self.shard(key).remove(key)
    }

    /// Reads the session of `key`.
    pub fn read<R>(&self, key: &Key, f: impl FnOnce(Option<&Session>) -> R) -> R {
        let shard = self.shard(key);
        f(shard.get(key))
    }

    /// Inserts a new session; returns the one evicted to make room, if any.
    pub fn insert(&self, key: Key, session: Session) -> Option<(Key, Session)> {
        let mut shard = self.shard(&key);
        let evicted = if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            let victim = shard
                .iter()
                .take(EVICTION_SAMPLE)
                .min_by_key(|(_, s)| s.last_call_ms())
                .map(|(k, _)| *k);
            victim.and_then(|k| shard.remove_entry(&k))
        } else {
            None
        };
        shard.insert(key, session);
        evicted
    }

    /// Visits every session, one shard at a time; a session `f` returns `false` for is removed.
    pub fn sweep(&self, mut f: impl FnMut(&Key, &mut Session) -> bool) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.retain(|k, s| f(k, s));
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
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

    #[test]
    fn the_store_is_bounded_and_evicts_the_least_recently_called() {
        let m = Memory::new(64);
        for i in 0..64u64 {
            let key = Key::of(&format!("{i:064x}"));
            assert!(m.insert(key, Session::new(&start(), 1_000 + i)).is_none() || m.len() <= 64);
        }
        let before = m.len();
        let mut evicted = 0;
        for i in 64..1064u64 {
            let key = Key::of(&format!("{i:064x}"));
            evicted += usize::from(m.insert(key, Session::new(&start(), 1_000 + i)).is_some());
        }
        assert!(m.len() <= before.max(64) + 64, "{}", m.len());
        assert!(evicted > 0);
        let key = Key::of(&format!("{:064x}", 1063));
        assert!(m.read(&key, |s| s.is_some()), "the newest is kept");
        assert_eq!(m.update(&key, |s| s.events()), Some(1));
        assert!(m.remove(&key).is_some());
        assert!(!m.read(&key, |s| s.is_some()));
    }
}
