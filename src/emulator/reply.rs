//! The emulator's answers: status, headers and body, built the way the real backend answers
//! (§1.5, §1.6), and their bytes on the wire. Pure.
//!
//! Every reply carries the four CORS headers of the real backend (`mcapi::cors`). Every reply
//! with a body carries a `Content-Length`; 201 carries `Content-Length: 0` and `Content-Type:
//! application/octet-stream`; 204 carries neither (RFC 9110 §8.6).

use http::header::{self, HeaderName, HeaderValue};
use http::StatusCode;
use http1::response::{BodyLength, ResponseHead};
use http1::Version;
use mcapi::Violation;
use serde::Serialize;

/// The `message` of a 400, as the backend's `ApiError` example words it (§1.6).
pub const IMPROPER_FORMAT: &str = "Request had improper format.";

/// The CORS headers the real backend sends on every answer (§1.5).
pub use mcapi::cors::HEADERS as CORS;

/// One answer of the emulator.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Vec<u8>,
}

#[derive(Serialize)]
struct Message<'a> {
    message: &'a str,
}

#[derive(Serialize)]
struct Invalid<'a> {
    message: &'a str,
    errors: Vec<&'a Violation>,
}

impl Reply {
    /// An empty reply with the CORS headers.
    pub fn new(status: StatusCode) -> Reply {
        let headers = CORS
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect();
        Reply {
            status,
            headers,
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Reply {
        self.headers.push((name, value));
        self
    }

    /// `201 Created` with `Location`, an empty `application/octet-stream` body.
    pub fn created(location: HeaderValue) -> Reply {
        Reply::new(StatusCode::CREATED)
            .with_header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            )
            .with_header(header::LOCATION, location)
    }

    /// `204 No Content`.
    pub fn no_content() -> Reply {
        Reply::new(StatusCode::NO_CONTENT)
    }

    /// A JSON body.
    pub fn json(status: StatusCode, value: &impl Serialize) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply::json_bytes(status, body),
            Err(_) => Reply::new(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// A body that already is JSON text.
    pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Reply {
        let mut reply = Reply::new(status).with_header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        reply.body = body;
        reply
    }

    /// `{"message": ...}`, the backend's error shape.
    pub fn error(status: StatusCode, message: &str) -> Reply {
        Reply::json(status, &Message { message })
    }

    /// `400` with `{"message": "Request had improper format.", "errors": [...]}`.
    pub fn invalid<'a>(errors: impl Iterator<Item = &'a Violation>) -> Reply {
        Reply::json(
            StatusCode::BAD_REQUEST,
            &Invalid {
                message: IMPROPER_FORMAT,
                errors: errors.collect(),
            },
        )
    }

    /// `405` with `Allow`.
    pub fn method_not_allowed(allow: &'static str) -> Reply {
        Reply::error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.")
            .with_header(header::ALLOW, HeaderValue::from_static(allow))
    }

    pub fn not_found(message: &str) -> Reply {
        Reply::error(StatusCode::NOT_FOUND, message)
    }

    /// The value of header `name`, if set.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|(k, _)| k.as_str().eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The answer's bytes: head (with `Date`, and `Content-Length` when the status has a body)
    /// and, unless the request was a HEAD, the body.
    pub fn to_wire(
        &self,
        date: &str,
        version: Version,
        keep_alive: bool,
        with_body: bool,
    ) -> Vec<u8> {
        let has_length = !(self.status.is_informational()
            || self.status == StatusCode::NO_CONTENT
            || self.status == StatusCode::NOT_MODIFIED);
        let mut head = ResponseHead::new(self.status.as_u16(), 512 + self.body.len());
        head.header("date", date.as_bytes());
        for (name, value) in &self.headers {
            head.header(name.as_str(), value.as_bytes());
        }
        let length = if has_length {
            BodyLength::Known(self.body.len() as u64)
        } else {
            BodyLength::NoBody
        };
        let mut out = head.finish(length, version, keep_alive);
        if has_length && with_body {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http1::answer::AnswerHead;

    fn wire(r: &Reply) -> (AnswerHead, Vec<u8>) {
        let date = "Tue, 01 Dec 2026 21:00:00 GMT";
        let bytes = bytes::Bytes::from(r.to_wire(date, Version::Http11, true, true));
        let (head, n) = http1::answer::parse(&bytes, false).unwrap().unwrap();
        (head, bytes[n..].to_vec())
    }

    fn get<'a>(h: &'a AnswerHead, name: &str) -> Option<&'a str> {
        h.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    fn cors_of(h: &AnswerHead) -> Vec<(String, String)> {
        CORS.iter()
            .filter_map(|(k, _)| get(h, k).map(|v| (k.to_string(), v.to_string())))
            .collect()
    }

    #[test]
    fn created_matches_the_real_backend() {
        let (h, body) = wire(&Reply::created(HeaderValue::from_static(
            "/api/v1/sessions/x",
        )));
        assert_eq!(h.status, 201);
        assert_eq!(get(&h, "content-type"), Some("application/octet-stream"));
        assert_eq!(get(&h, "content-length"), Some("0"));
        assert_eq!(get(&h, "location"), Some("/api/v1/sessions/x"));
        assert_eq!(cors_of(&h).len(), 4);
        assert!(body.is_empty());
    }

    #[test]
    fn no_content_has_no_length_and_no_type() {
        let (h, _) = wire(&Reply::no_content());
        assert_eq!(h.status, 204);
        assert!(h.get("content-length").is_none());
        assert!(h.get("content-type").is_none());
        assert_eq!(
            cors_of(&h),
            CORS.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn errors_are_json_with_a_length() {
        let (h, body) = wire(&Reply::invalid(std::iter::empty()));
        assert_eq!(h.status, 400);
        assert_eq!(get(&h, "content-type"), Some("application/json"));
        assert_eq!(
            get(&h, "content-length"),
            Some(body.len().to_string().as_str())
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"message": IMPROPER_FORMAT, "errors": []})
        );
    }

    #[test]
    fn method_not_allowed_names_the_allowed_methods() {
        let (h, _) = wire(&Reply::method_not_allowed("OPTIONS, POST"));
        assert_eq!(h.status, 405);
        assert_eq!(get(&h, "allow"), Some("OPTIONS, POST"));
        assert_eq!(cors_of(&h).len(), 4);
    }
}
