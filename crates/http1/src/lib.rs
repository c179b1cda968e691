//! The HTTP/1.x codec, sans I/O: request heads ([`head`]), upstream answer heads ([`answer`]),
//! bodies of either side ([`body`], with chunked decoding in [`chunked`]), answer heads to
//! write ([`response`]) and every bound ([`limits`]).
//!
//! **Owns** HTTP/1 framing (RFC 9112) and its leniencies. **May use:** `httparse` (the parser
//! pingora and hyper use), `http` (method, URI and header types), `bytes`. No sockets, no clock,
//! no tokio: the binary's `io` module drives it over sockets, for players and upstreams alike.
//!
//! Why mediagate speaks HTTP/1 itself instead of through pingora's proxy session: a tracking
//! call is a small POST answered with an empty 201/204, and pingora's per-request objects
//! (session, header maps with case tables, the proxy phase machine, a 64 KiB-capable buffer held
//! across idle keep-alive periods) cost more than the whole rule path, and its proxy loop cannot
//! replay bodies above 64 KiB. What it is checked against: the unit tests here, the black-box
//! connection tests (`tests/connections.rs`) and the fuzz targets (`fuzz/`).

pub mod answer;
pub mod body;
pub mod chunked;
pub mod head;
pub mod limits;
pub mod response;

pub use body::{BodyError, BodyReader, Framing, Step};
pub use head::{HeadError, RequestHead, Version};

/// A `Content-Length` value: digits only (RFC 9110 §8.6: no sign, nothing inside), surrounding
/// blanks allowed, like nginx.
pub(crate) fn content_length(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}
