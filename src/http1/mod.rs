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
