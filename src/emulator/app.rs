//! The emulator as an app of the gateway's own server (`server::App`): reads the request (head,
//! whole body), hands it to the pure [`Emulator`] and writes its reply. Nothing here decides an
//! answer except the transport-level ones (413, unreadable body).

use http::StatusCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::engine::{Emulator, Now, Request};
use super::headers::RequestHeaders;
use super::reply::Reply;
use super::route::is_api_path;
use crate::server::{App, BodyFailure, ConnSettings, Exchange};

/// The largest request body the emulator reads (larger ones get 413).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The emulator as an app.
pub struct EmulatorApp {
    core: Emulator,
    response_delay: Duration,
    started: Instant,
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

    async fn reply(&self, ex: &mut Exchange<'_>) -> Reply {
        let method = ex.head.method.clone();
        let path = ex.head.uri.path().to_owned();
        let headers = RequestHeaders::from_map(&ex.head.headers);
        let route = self.core.route(&method, &path);
        let body = match ex.read_body(MAX_BODY_BYTES).await {
            Ok(body) => body,
            Err(BodyFailure::TooLarge) => {
                ex.close_after();
                return Reply::error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large.");
            }
            Err(_) => {
                ex.close_after();
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

impl App for EmulatorApp {
    fn settings(&self) -> ConnSettings {
        ConnSettings {
            read_timeout: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
        }
    }

    async fn serve<'a, 'c: 'a>(&'a self, ex: &'a mut Exchange<'c>) {
        let reply = self.reply(ex).await;
        let with_body = ex.head.method != http::Method::HEAD;
        let date = httpdate::fmt_http_date(SystemTime::now());
        let out = reply.to_wire(&date, ex.version(), ex.keep_alive(), with_body);
        if ex.send(&out).await.is_err() {
            ex.close_after();
        }
    }
}
