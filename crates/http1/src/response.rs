//! Answer heads, written straight into the bytes that go on the wire: status line, header
//! fields, and the framing and connection fields the connection loop decides.

use crate::head::Version;

/// An answer head being written.
pub struct ResponseHead {
    buf: Vec<u8>,
}

/// How the answer body is delimited on the wire: the gateway always knows the whole body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLength {
    /// `Content-Length: n` (also for empty bodies).
    Known(u64),
    /// No body and no length field: 204, 304 and 1xx answers.
    NoBody,
}

impl ResponseHead {
    /// Starts an `HTTP/1.1 <status> <reason>` head; `capacity` is a hint for the whole answer.
    pub fn new(status: u16, capacity: usize) -> ResponseHead {
        let mut buf = Vec::with_capacity(capacity.max(128));
        buf.extend_from_slice(b"HTTP/1.1 ");
        push_u64(&mut buf, u64::from(status));
        buf.push(b' ');
        buf.extend_from_slice(reason(status).as_bytes());
        buf.extend_from_slice(b"\r\n");
        ResponseHead { buf }
    }

    /// Adds one field. Names and values are written as given (callers pass valid ones: names from
    /// `http::HeaderName` or literals, values from `http::HeaderValue` or literals).
    pub fn header(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        self.buf.extend_from_slice(value);
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// Adds one field given as bytes (a name as received from an upstream).
    pub fn header_bytes(&mut self, name: &[u8], value: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(name);
        self.buf.extend_from_slice(b": ");
        self.buf.extend_from_slice(value);
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// Ends the head with the framing and connection fields; returns the bytes, to which the
    /// body (if any) may be appended.
    pub fn finish(mut self, length: BodyLength, version: Version, keep_alive: bool) -> Vec<u8> {
        match length {
            BodyLength::Known(n) => {
                self.buf.extend_from_slice(b"content-length: ");
                push_u64(&mut self.buf, n);
                self.buf.extend_from_slice(b"\r\n");
            }
            BodyLength::NoBody => {}
        }
        // Said in both cases and for both versions, as nginx does (HTTP/1.1 implies keep-alive,
        // but some clients and tools look for the field).
        match (version, keep_alive) {
            (_, true) => self.buf.extend_from_slice(b"connection: keep-alive\r\n"),
            (Version::Http11, false) => self.buf.extend_from_slice(b"connection: close\r\n"),
            // HTTP/1.0 closes unless told otherwise.
            (Version::Http10, false) => {}
        }
        self.buf.extend_from_slice(b"\r\n");
        self.buf
    }
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Appends `n` in decimal.
pub fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The reason phrase (informational only; clients ignore it).
fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_answer() {
        let mut h = ResponseHead::new(201, 0);
        h.header("location", b"/api/v1/sessions/abc");
        let out = h.finish(BodyLength::Known(0), Version::Http11, true);
        assert_eq!(
            out,
            b"HTTP/1.1 201 Created\r\nlocation: /api/v1/sessions/abc\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn connection_fields_follow_the_version() {
        let close = ResponseHead::new(400, 0).finish(BodyLength::Known(2), Version::Http11, false);
        assert!(close.ends_with(b"content-length: 2\r\nconnection: close\r\n\r\n"));
        let old = ResponseHead::new(204, 0).finish(BodyLength::NoBody, Version::Http10, true);
        assert_eq!(
            old,
            b"HTTP/1.1 204 No Content\r\nconnection: keep-alive\r\n\r\n"
        );
        let old_close =
            ResponseHead::new(304, 0).finish(BodyLength::NoBody, Version::Http10, false);
        assert_eq!(old_close, b"HTTP/1.1 304 Not Modified\r\n\r\n");
    }

    #[test]
    fn numbers_and_reasons() {
        let mut n = Vec::new();
        push_u64(&mut n, 0);
        push_u64(&mut n, 18_446_744_073_709_551_615);
        assert_eq!(n, b"018446744073709551615");
        assert!(ResponseHead::new(599, 0)
            .finish(BodyLength::NoBody, Version::Http11, true)
            .starts_with(b"HTTP/1.1 599 Unknown\r\n"));
    }
}
