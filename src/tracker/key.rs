//! How the memory store names a session: the outward sid itself when it has the backend's shape
//! (64 hex characters, with an owner token or not) — 37 bytes that give the sid back for logs —
//! or a 128-bit keyed hash of it otherwise (a lenient sid).

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The sid's 32 bytes, or the hash's 16 (then `hashed`).
    bytes: [u8; 32],
    /// The owner token (8 hex characters), when the sid has one.
    token: Option<u32>,
    hashed: bool,
}

impl Key {
    pub fn of(sid: &str) -> Key {
        let (token, hex) = match sid.split_once('~') {
            Some((t, rest)) if t.len() == 8 => (u32::from_str_radix(t, 16).ok(), rest),
            _ => (None, sid),
        };
        let plain_token = !sid.contains('~') || token.is_some();
        if plain_token
            && hex.len() == 64
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            let mut bytes = [0u8; 32];
            for (i, byte) in bytes.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
            }
            return Key {
                bytes,
                token,
                hashed: false,
            };
        }
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&hash_with(0, sid).to_le_bytes());
        bytes[8..16].copy_from_slice(&hash_with(1, sid).to_le_bytes());
        Key {
            bytes,
            token: None,
            hashed: true,
        }
    }

    /// 64 bits of the key, for a shard and a hash table.
    pub fn low(&self) -> u64 {
        u64::from_le_bytes(self.bytes[..8].try_into().unwrap_or_default())
    }
}

impl std::hash::Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The bytes are random (a sid) or a hash already.
        state.write_u64(self.low() ^ u64::from(self.token.unwrap_or(0)));
    }
}

/// Two keyed hashes (per process), for sids that are not the backend's hex.
fn hash_with(which: usize, sid: &str) -> u64 {
    static STATES: OnceLock<[std::collections::hash_map::RandomState; 2]> = OnceLock::new();
    let states = STATES.get_or_init(Default::default);
    let mut h = states[which].build_hasher();
    h.write(sid.as_bytes());
    h.finish()
}

/// The sid, for logs (a hashed key shows as `#<hash>`).
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.hashed {
            write!(f, "#")?;
            for b in &self.bytes[..16] {
                write!(f, "{b:02x}")?;
            }
            return Ok(());
        }
        if let Some(t) = self.token {
            write!(f, "{t:08x}~")?;
        }
        for b in &self.bytes {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A hasher for keys that are already hashes or random bytes: the key's low 64 bits.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "5d41402abc4b2a76b9719d911017c592aa6cd1b2e3f40567890abcdef0123456";

    #[test]
    fn backend_sids_are_kept_whole_and_others_hashed() {
        assert_eq!(Key::of(SID).to_string(), SID);
        let tagged = format!("0123abcd~{SID}");
        assert_eq!(Key::of(&tagged).to_string(), tagged);
        assert_ne!(Key::of(SID), Key::of(&tagged));
        let lenient = Key::of("1482236761294786918253");
        assert!(lenient.to_string().starts_with('#'));
        assert_eq!(lenient, Key::of("1482236761294786918253"));
        assert_ne!(lenient, Key::of("1482236761294786918254"));
        assert!(Key::of(&SID.to_uppercase()).to_string().starts_with('#'));
    }
}
