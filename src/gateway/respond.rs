//! Answers the gateway makes itself: JSON errors, CORS preflights, and the CORS headers that
//! every answer carries (spec §1.5: the exact values the real backend sends).

use serde::Serialize;

use crate::http1::response::{BodyFraming, ResponseHead};
use crate::http1::Version;

use crate::mcapi::Violation;

/// The four headers the backend sends on every answer (design.md, "CORS").
pub const CORS_HEADERS: [(&str, &str); 4] = [
    ("access-control-allow-origin", "*"),
    ("access-control-allow-methods", "OPTIONS,POST,PUT"),
    ("access-control-allow-headers", "Content-Type"),
    ("access-control-expose-headers", "Location"),
];

/// How long browsers may cache a preflight answer (Chromium caps this at 7200 s).
const PREFLIGHT_MAX_AGE: &str = "7200";

/// A gateway-made error: status, message, and the body violations (empty when the error is not
/// about the body).
pub struct ErrorReply<'a> {
    pub status: u16,
    pub message: &'a str,
    pub errors: &'a [&'a Violation],
    /// Extra headers, e.g. `Allow` on a 405.
    pub headers: &'a [(&'static str, &'static str)],
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    errors: &'a [&'a Violation],
}

impl ErrorReply<'_> {
    pub fn body(&self) -> Vec<u8> {
        let body = ErrorBody {
            message: self.message,
            errors: self.errors,
        };
        // Serializing plain strings into a Vec cannot fail.
        serde_json::to_vec(&body).unwrap_or_else(|_| br#"{"message":"error","errors":[]}"#.to_vec())
    }
}

/// Writes the CORS headers (an upstream answer's own CORS fields are dropped and these written
/// instead, so every answer carries exactly these values).
pub fn add_cors(head: &mut ResponseHead) {
    for (name, value) in CORS_HEADERS {
        head.header(name, value.as_bytes());
    }
}

/// The names of [`CORS_HEADERS`].
pub const CORS_NAMES: [&str; 4] = [
    CORS_HEADERS[0].0,
    CORS_HEADERS[1].0,
    CORS_HEADERS[2].0,
    CORS_HEADERS[3].0,
];

/// A JSON error answer, head and body, ready for the wire. `with_body`: false for the answer to
/// a HEAD request (the length of the body it stands for, no body).
pub fn error_answer(
    reply: &ErrorReply<'_>,
    version: Version,
    keep_alive: bool,
    with_body: bool,
) -> Vec<u8> {
    let body = reply.body();
    let mut head = ResponseHead::new(reply.status, 320 + body.len());
    head.header("content-type", b"application/json");
    for (name, value) in reply.headers {
        head.header(name, value.as_bytes());
    }
    add_cors(&mut head);
    let mut out = head.finish(BodyFraming::Length(body.len() as u64), version, keep_alive);
    if with_body {
        out.extend_from_slice(&body);
    }
    out
}

/// The answer to a CORS preflight: 204 with the CORS headers.
pub fn preflight_answer(version: Version, keep_alive: bool) -> Vec<u8> {
    let mut head = ResponseHead::new(204, 320);
    add_cors(&mut head);
    head.header("access-control-max-age", PREFLIGHT_MAX_AGE.as_bytes());
    head.finish(BodyFraming::None, version, keep_alive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcapi::{rules::Rule, Severity};

    #[test]
    fn error_bodies_always_carry_errors() {
        let reply = ErrorReply {
            status: 404,
            message: "no such route",
            errors: &[],
            headers: &[],
        };
        assert_eq!(reply.body(), br#"{"message":"no such route","errors":[]}"#);
        let v = Violation {
            path: "/params/media.length".into(),
            rule: Rule::Json,
            detail: "expected a number".into(),
            severity: Severity::Error,
            event_type: None,
        };
        let reply = ErrorReply {
            status: 400,
            message: "invalid body",
            errors: &[&v],
            headers: &[],
        };
        let parsed: serde_json::Value = serde_json::from_slice(&reply.body()).unwrap();
        assert_eq!(parsed["errors"][0]["path"], "/params/media.length");
        assert_eq!(parsed["errors"][0]["rule"], "json");
        assert!(parsed["errors"][0].get("severity").is_none());
    }

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
