//! The pingora glue: a [`ServeHttp`] app that reads the request (headers, whole body), hands it to
//! the pure [`Emulator`] and returns its reply. Nothing here decides an answer except the
//! transport-level ones (413, unreadable body).
//!
//! Verified against pingora 0.9.1 (`pingora-core/src/apps/http_app.rs`,
//! `protocols/http/v1/server.rs`):
//! - `HttpServer` turns keep-alive on (60 s) before calling us and reuses the connection after
//!   the reply when the body was read to its end and the reply is not close-delimited; so every
//!   reply with a body carries `Content-Length` ([`Reply::into_http`]) and the body is always
//!   read in full before answering.
//! - pingora does not send `100 Continue` when the app reads the body itself; we send it with
//!   `write_continue_response`. Writing any response header while the body is unread switches
//!   keep-alive off (`close_on_response_before_downstream_finish`), so that flag is lowered
//!   around the `100 Continue` only.
//! - A 413 is answered without reading the body: the connection then closes.

use super::engine::{Emulator, Now, Request};
use super::headers::RequestHeaders;
use super::reply::Reply;
use super::route::is_api_path;
use async_trait::async_trait;
use http::{header, HeaderMap, StatusCode, Version};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The largest request body the emulator reads (larger ones get 413).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The emulator as a pingora HTTP app.
pub struct EmulatorApp {
    core: Emulator,
    response_delay: Duration,
    started: Instant,
}

enum BodyError {
    TooLarge,
    Unreadable,
}

impl EmulatorApp {
    pub fn new(core: Emulator, response_delay: Duration) -> EmulatorApp {
        EmulatorApp {
            core,
            response_delay,
            started: Instant::now(),
        }
    }

    /// The pure emulator behind this app.
    pub fn core(&self) -> &Emulator {
        &self.core
    }

    fn now(&self) -> Now {
        Now {
            mono_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            epoch_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    async fn serve(&self, session: &mut ServerSession) -> Reply {
        let req = session.req_header();
        let method = req.method.clone();
        let path = req.uri.path().to_owned();
        let headers = RequestHeaders::from_map(&req.headers);
        let too_large = declared_length(&req.headers).is_some_and(|n| n > MAX_BODY_BYTES as u64);
        let expects_continue = req.version == Version::HTTP_11 && expects_continue(&req.headers);

        let route = self.core.route(&method, &path);
        if too_large {
            session.set_keepalive(None);
            return too_large_reply();
        }
        if expects_continue && !session.is_body_empty() {
            session.set_close_on_response_before_downstream_finish(false);
            let sent = session.write_continue_response().await;
            session.set_close_on_response_before_downstream_finish(true);
            if let Err(e) = sent {
                log::debug!("emulator: writing 100 Continue failed: {e}");
                session.set_keepalive(None);
                return Reply::error(StatusCode::BAD_REQUEST, "Connection failed.");
            }
        }
        let body = match read_body(session).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                session.set_keepalive(None);
                return too_large_reply();
            }
            Err(BodyError::Unreadable) => {
                session.set_keepalive(None);
                return Reply::error(StatusCode::BAD_REQUEST, "Unreadable request body.");
            }
        };
        if is_api_path(&path) && !self.response_delay.is_zero() {
            tokio::time::sleep(self.response_delay).await;
        }
        let request = Request {
            method: &method,
            path: &path,
            headers,
            body: &body,
        };
        self.core.handle(route, request, self.now())
    }
}

#[async_trait]
impl ServeHttp for EmulatorApp {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        self.serve(session).await.into_http()
    }
}

fn too_large_reply() -> Reply {
    Reply::error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large.")
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Reads the whole request body, up to [`MAX_BODY_BYTES`].
async fn read_body(session: &mut ServerSession) -> Result<Vec<u8>, BodyError> {
    let hint = declared_length(&session.req_header().headers).unwrap_or(0);
    let mut body = Vec::with_capacity(usize::try_from(hint).unwrap_or(0).min(MAX_BODY_BYTES));
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(BodyError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                log::debug!("emulator: reading the request body failed: {e}");
                return Err(BodyError::Unreadable);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn expect_and_length_parsing() {
        let mut h = HeaderMap::new();
        assert!(!expects_continue(&h));
        assert_eq!(declared_length(&h), None);
        h.insert(header::EXPECT, HeaderValue::from_static("100-Continue"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("12"));
        assert!(expects_continue(&h));
        assert_eq!(declared_length(&h), Some(12));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("x"));
        assert_eq!(declared_length(&h), None);
    }
}
