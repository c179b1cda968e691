//! The error body of the API (§1.6), which the gateway's own errors extend:
//! `{"message": "...", "errors": [{"path", "rule", "detail"}]}`. `message` keeps compatibility
//! with the backend's shape; `errors` is always present (empty when the error is not about the
//! body); `path` is a JSON Pointer.

use serde::Serialize;

use crate::Violation;

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    errors: &'a [&'a Violation],
}

/// The JSON text of an error body.
pub fn body(message: &str, errors: &[&Violation]) -> Vec<u8> {
    let body = ErrorBody { message, errors };
    // Serializing strings and violations into a Vec cannot fail.
    serde_json::to_vec(&body).unwrap_or_else(|_| br#"{"message":"error","errors":[]}"#.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{rules::Rule, Severity};

    #[test]
    fn error_bodies_always_carry_errors() {
        assert_eq!(
            body("no such route", &[]),
            br#"{"message":"no such route","errors":[]}"#
        );
        let v = Violation {
            path: "/params/media.length".into(),
            rule: Rule::Json,
            detail: "expected a number".into(),
            severity: Severity::Error,
            event_type: None,
        };
        let parsed: serde_json::Value =
            serde_json::from_slice(&body("invalid body", &[&v])).unwrap();
        assert_eq!(parsed["errors"][0]["path"], "/params/media.length");
        assert_eq!(parsed["errors"][0]["rule"], "json");
        assert!(parsed["errors"][0].get("severity").is_none());
    }
}
