//! Answers the gateway makes itself, ready for the wire: JSON errors in the API's error shape
//! (`mcapi::error`), CORS preflights, and the CORS headers every answer carries
//! (`mcapi::cors`: the exact values the real backend sends).

use http1::response::{BodyLength, ResponseHead};
use http1::Version;
use mcapi::Violation;

/// A gateway-made error: status, message, and the body violations (empty when the error is not
/// about the body).
pub struct ErrorReply<'a> {
    pub status: u16,
    pub message: &'a str,
    pub errors: &'a [&'a Violation],
    /// Extra headers, e.g. `Allow` on a 405.
    pub headers: &'a [(&'static str, &'static str)],
}

impl<'a> ErrorReply<'a> {
    /// An error that is not about the body.
    pub fn plain(status: u16, message: &'a str) -> ErrorReply<'a> {
        ErrorReply {
            status,
            message,
            errors: &[],
            headers: &[],
        }
    }
}

/// Writes the CORS headers (an upstream answer's own CORS fields are dropped and these written
/// instead, so every answer carries exactly these values).
pub fn add_cors(head: &mut ResponseHead) {
    for (name, value) in mcapi::cors::HEADERS {
        head.header(name, value.as_bytes());
    }
}

/// A JSON error answer, head and body. `with_body`: false for the answer to a HEAD request (the
/// length of the body it stands for, no body).
pub fn error_answer(
    reply: &ErrorReply<'_>,
    version: Version,
    keep_alive: bool,
    with_body: bool,
) -> Vec<u8> {
    error_answer_with(reply, &[], version, keep_alive, with_body)
}

/// [`error_answer`] with more header fields whose values are made per request (`Retry-After`).
pub fn error_answer_with(
    reply: &ErrorReply<'_>,
    extra: &[(&str, &str)],
    version: Version,
    keep_alive: bool,
    with_body: bool,
) -> Vec<u8> {
    let body = mcapi::error::body(reply.message, reply.errors);
    let mut head = ResponseHead::new(reply.status, 320 + body.len());
    head.header("content-type", b"application/json");
    for (name, value) in reply.headers.iter().chain(extra) {
        head.header(name, value.as_bytes());
    }
    add_cors(&mut head);
    let mut out = head.finish(BodyLength::Known(body.len() as u64), version, keep_alive);
    if with_body {
        out.extend_from_slice(&body);
    }
    out
}

/// The answer to a CORS preflight: 204 with the CORS headers.
pub fn preflight_answer(version: Version, keep_alive: bool) -> Vec<u8> {
    let mut head = ResponseHead::new(204, 320);
    add_cors(&mut head);
    head.header(
        "access-control-max-age",
        mcapi::cors::PREFLIGHT_MAX_AGE.as_bytes(),
    );
    head.finish(BodyLength::NoBody, version, keep_alive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_are_framed_json_with_cors() {
        let reply = ErrorReply {
            status: 405,
            message: "method not allowed",
            errors: &[],
            headers: &[("allow", "POST, OPTIONS")],
        };
        let out = String::from_utf8(error_answer(&reply, Version::Http11, false, true)).unwrap();
        let to_head = error_answer(&reply, Version::Http11, false, false);
        assert!(to_head.ends_with(b"\r\n\r\n"));
        assert!(out.as_bytes().starts_with(&to_head));
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(head.contains("\r\nallow: POST, OPTIONS\r\n"));
        assert!(head.contains("\r\naccess-control-allow-origin: *\r\n"));
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(head.ends_with("connection: close"));
        assert_eq!(body, r#"{"message":"method not allowed","errors":[]}"#);
        let pre = String::from_utf8(preflight_answer(Version::Http11, true)).unwrap();
        assert!(pre.contains("access-control-max-age: 7200\r\n"));
        assert!(!pre.contains("content-length"));
    }
}
