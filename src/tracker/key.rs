//! How the memory store names a session: the outward sid itself when it has the backend's shape
//! (64 hex characters, with an owner token or not) — 40 bytes that give the sid back for logs —
//! or a 128-bit keyed hash of it otherwise (a lenient sid).

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// 40 bytes (37 and alignment).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// The sid's 32 bytes, or the hash's 16 (then `Tag::Hashed`).
    bytes: [u8; 32],
    /// The owner token (8 hex characters), with `Tag::Token`.
    token_bits: u32,
    tag: Tag,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
enum Tag {
    Plain,
    Token,
    Hashed,
}

impl Key {
    pub fn of(sid: &str) -> Key {
        let (token, hex) = match sid.split_once('~') {
            Some((t, rest)) if t.len() == 8 => (token_of(t), rest),
            _ => (None, sid),
        };
        let plain_token = !sid.contains('~') || token.is_some();
        if let Some(bytes) = plain_token.then(|| hex_32(hex)).flatten() {
            return Key {
                bytes,
                token_bits: token.unwrap_or(0),
                tag: if token.is_some() {
                    Tag::Token
                } else {
                    Tag::Plain
                },
            };
        }
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&hash_with(0, sid).to_le_bytes());
        bytes[8..16].copy_from_slice(&hash_with(1, sid).to_le_bytes());
        Key {
            bytes,
            token_bits: 0,
            tag: Tag::Hashed,
        }
    }

    /// 64 bits of the key, for a shard.
    pub fn low(&self) -> u64 {
        u64::from_le_bytes(self.bytes[..8].try_into().unwrap_or_default())
    }

    /// A 64-bit hash of the whole key for a shard's index, mixed so that its top bits (which a
    /// hash table reads) vary within a shard (whose keys share the top bits of [`Key::low`]).
    pub fn index_hash(&self) -> u64 {
        let second = u64::from_le_bytes(self.bytes[8..16].try_into().unwrap_or_default());
        let token = u64::from(self.token_bits) | (self.tag as u64) << 32;
        (self.low() ^ second.rotate_left(29) ^ token.rotate_left(13))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

impl std::hash::Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.index_hash());
    }
}

/// Each byte's value as a lowercase hex digit, or 0xff (a table: the sid of every events call is
/// decoded, `make bench-sessions`).
const NIBBLES: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            b @ b'0'..=b'9' => b - b'0',
            b @ b'a'..=b'f' => b - b'a' + 10,
            _ => 0xff,
        };
        c += 1;
    }
    t
};

fn nibble(c: u8) -> Option<u8> {
    let n = NIBBLES[usize::from(c)];
    (n != 0xff).then_some(n)
}

/// 8 lowercase hex characters as their number (exactly: `Display` gives them back).
fn token_of(t: &str) -> Option<u32> {
    t.bytes()
        .try_fold(0u32, |acc, c| Some(acc << 4 | u32::from(nibble(c)?)))
        .filter(|_| t.len() == 8)
}

/// 64 lowercase hex characters as their 32 bytes.
fn hex_32(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    let mut bad = 0u8;
    for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
        let (hi, lo) = (NIBBLES[usize::from(pair[0])], NIBBLES[usize::from(pair[1])]);
        bad |= hi | lo;
        *byte = hi << 4 | (lo & 15);
    }
    // A digit is at most 15: any 0xff shows in the high bits.
    (bad & 0xf0 == 0).then_some(bytes)
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
        if self.tag == Tag::Hashed {
            write!(f, "#")?;
            for b in &self.bytes[..16] {
                write!(f, "{b:02x}")?;
            }
            return Ok(());
        }
        if self.tag == Tag::Token {
            let t = self.token_bits;
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
        // A token that is not 8 lowercase hex characters makes the whole sid hashed.
        assert!(Key::of(&format!("+123abcd~{SID}"))
            .to_string()
            .starts_with('#'));
        assert!(Key::of(&format!("0123ABCD~{SID}"))
            .to_string()
            .starts_with('#'));
    }
}
