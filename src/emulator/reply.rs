//! The emulator's answers: status, headers and body, built the way the real backend answers
//! (spec §1.5, §1.6), and their conversion into an `http::Response`. Pure.
//!
//! Every reply carries the four CORS headers of the real backend. Every reply with a body
//! carries a `Content-Length` (pingora would otherwise frame it close-delimited and drop
//! keep-alive); 201 carries `Content-Length: 0` and `Content-Type: application/octet-stream`;
//! 204 carries neither (RFC 9110 §8.6).

use crate::mcapi::Violation;
use http::header::{self, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use serde::Serialize;

/// The `message` of a 400, as the backend's `ApiError` example words it (spec §1.6).
pub const IMPROPER_FORMAT: &str = "Request had improper format.";

/// The CORS headers the real backend sends on every answer (spec §1.5).
pub const CORS: [(&str, &str); 4] = [
    ("access-control-allow-origin", "*"),
    ("access-control-allow-methods", "OPTIONS,POST,PUT"),
    ("access-control-allow-headers", "Content-Type"),
    ("access-control-expose-headers", "Location"),
];

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

    /// Converts into the response pingora's `ServeHttp` writes, adding `Content-Length`.
    pub fn into_http(self) -> Response<Vec<u8>> {
        let Reply {
            status,
            headers,
            body,
        } = self;
        let has_length = !(status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED);
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let map = response.headers_mut();
        for (name, value) in headers {
            map.append(name, value);
        }
        if has_length {
            let len = response.body().len();
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors_of(r: &Response<Vec<u8>>) -> Vec<(String, String)> {
        CORS.iter()
            .filter_map(|(k, _)| {
                r.headers()
                    .get(*k)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| (k.to_string(), v.to_string()))
            })
            .collect()
    }

    #[test]
    fn created_matches_the_real_backend() {
        let r = Reply::created(HeaderValue::from_static("/api/v1/sessions/x")).into_http();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        assert_eq!(r.headers()["content-length"], "0");
        assert_eq!(r.headers()["location"], "/api/v1/sessions/x");
        assert_eq!(cors_of(&r).len(), 4);
        assert!(r.body().is_empty());
    }

    #[test]
    fn no_content_has_no_length_and_no_type() {
        let r = Reply::no_content().into_http();
        assert_eq!(r.status(), 204);
        assert!(r.headers().get("content-length").is_none());
        assert!(r.headers().get("content-type").is_none());
        assert_eq!(
            cors_of(&r),
            CORS.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn errors_are_json_with_a_length() {
        let r = Reply::invalid(std::iter::empty()).into_http();
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(
            r.headers()["content-length"],
            r.body().len().to_string().as_str()
        );
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"message": IMPROPER_FORMAT, "errors": []})
        );
    }

    #[test]
    fn method_not_allowed_names_the_allowed_methods() {
        let r = Reply::method_not_allowed("OPTIONS, POST").into_http();
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()["allow"], "OPTIONS, POST");
        assert_eq!(cors_of(&r).len(), 4);
    }
}
