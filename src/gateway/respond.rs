//! Answers the gateway makes itself: JSON errors, CORS preflights, and the CORS headers that
//! every answer carries (spec §1.5: the exact values the real backend sends).

use bytes::Bytes;
use pingora_error::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use serde::Serialize;

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

/// Adds the CORS headers, replacing any other value already there (an upstream answer usually
/// carries them already, and is then left as it is).
pub fn add_cors(header: &mut ResponseHeader) -> Result<()> {
    for (name, value) in CORS_HEADERS {
        let present = header.headers.get_all(name).iter().count() == 1
            && header
                .headers
                .get(name)
                .is_some_and(|v| v.as_bytes() == value.as_bytes());
        if !present {
            header.insert_header(name, value)?;
        }
    }
    Ok(())
}

/// Writes a JSON error answer.
pub async fn error(session: &mut Session, reply: ErrorReply<'_>) -> Result<()> {
    let body = Bytes::from(reply.body());
    let mut header = ResponseHeader::build(reply.status, Some(8))?;
    header.insert_header("content-type", "application/json")?;
    header.insert_header("content-length", body.len())?;
    for (name, value) in reply.headers {
        header.insert_header(*name, *value)?;
    }
    add_cors(&mut header)?;
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session.write_response_body(Some(body), true).await
}

/// Answers a CORS preflight: 204 with the CORS headers.
pub async fn preflight(session: &mut Session) -> Result<()> {
    let mut header = ResponseHeader::build(204, Some(6))?;
    add_cors(&mut header)?;
    header.insert_header("access-control-max-age", PREFLIGHT_MAX_AGE)?;
    session.write_response_header(Box::new(header), true).await
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
}
