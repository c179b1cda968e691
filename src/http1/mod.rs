//! HTTP/1.x framing for the players' side of the gateway, pure (no I/O): parsing a request head
//! ([`head`]), decoding chunked request bodies ([`chunked`]) and writing answer heads
//! ([`response`]). The connection loop that drives them is `gateway::conn`.
//!
//! mediagate speaks HTTP/1 to players itself instead of through pingora's proxy session: a
//! tracking call is a small POST answered with an empty 201/204, and pingora's per-request
//! objects (session, header maps with case tables, the proxy phase machine, a 64 KiB-capable
//! buffer held across idle keep-alive periods) cost more than the whole rule path.

pub mod chunked;
pub mod head;
pub mod response;

pub use head::{Framing, HeadError, RequestHead, Version};
