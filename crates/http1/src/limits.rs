//! Every bound of the HTTP/1 codec in one place, per side. The players' side is untrusted; the
//! upstream is trusted but fallible, so its bounds only keep a broken upstream from taking the
//! gateway's memory. Body size limits are configuration (`[server] max_body_bytes`), passed in.

/// A request head (request line and fields) may take at most this many bytes (more: 431).
pub const REQUEST_HEAD_BYTES: usize = 32 * 1024;
/// At most this many header fields in a request head (more: 431).
pub const REQUEST_HEADERS: usize = 64;

/// An upstream answer head may take at most this many bytes (more: 502).
pub const ANSWER_HEAD_BYTES: usize = 32 * 1024;
/// At most this many header fields in an upstream answer head (more: 502).
pub const ANSWER_HEADERS: usize = 128;
/// An upstream answer body may take at most this many bytes; the API's answers are empty or a
/// few kilobytes (schemas).
pub const ANSWER_BODY_BYTES: usize = 16 << 20;
/// Informational answers (100 Continue and the like) skipped before the real one, at most.
pub const ANSWER_INTERIM: usize = 16;

/// Longest chunk-size line or trailer field line of a chunked body, its line ending excluded.
pub const CHUNK_LINE_BYTES: usize = 4096;
/// Longest trailer section of a chunked body, all its lines and line endings included.
pub const TRAILER_SECTION_BYTES: usize = 16 * 1024;
