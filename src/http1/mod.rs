//! HTTP/1.x framing, pure (no I/O): parsing a player's request head ([`head`]), decoding chunked
//! bodies ([`chunked`]), writing answer heads ([`response`]), and parsing an upstream's answer
//! head ([`answer`]). The I/O that drives them is in `gateway::downstream` and
//! `gateway::upstream`.
//!
//! mediagate speaks HTTP/1 to players itself instead of through pingora's proxy session: a
//! tracking call is a small POST answered with an empty 201/204, and pingora's per-request
//! objects (session, header maps with case tables, the proxy phase machine, a 64 KiB-capable
//! buffer held across idle keep-alive periods) cost more than the whole rule path.

pub mod answer;
pub mod chunked;
pub mod head;
pub mod response;

pub use head::{Framing, HeadError, RequestHead, Version};

/// A `Content-Length` value: digits only (RFC 9110 §8.6: no sign, nothing inside), surrounding
/// blanks allowed, like nginx.
pub(crate) fn content_length(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}
