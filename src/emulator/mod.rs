//! The built-in emulator of the collection backend, so the gateway runs, is tested and is
//! benchmarked with no outside service.
//!
//! It answers like the real backend (spec §1.5, §5.1, §6): `201` + `Location:
//! /api/v1/sessions/<64-hex sid>` for a valid `sessionStart` (or a downloaded batch), `204` for a
//! valid event on an open session, `404` for an unknown sid, `410` once `sessionEnd` closed it or
//! it stayed idle past the idle timeout, `400` `{"message", "errors"}` for a body
//! [`crate::mcapi::check`] rejects; the four CORS headers on every answer. It remembers what it
//! received and shows it on `/_emulator/...` (see [`route`]).
//!
//! Layout: [`engine`] (the behaviour, pure, clock injected), [`store`] (sessions and memory bounds),
//! [`sid`], [`route`], [`reply`], [`body`], [`headers`], [`schema`]; [`app`] is the only pingora
//! glue.

pub mod app;
pub mod body;
pub mod engine;
pub mod headers;
pub mod reply;
pub mod route;
pub mod schema;
pub mod sid;
pub mod store;

use crate::mcapi;
use pingora_core::apps::http_app::HttpServer;
use pingora_core::services::listening::Service;
use std::time::Duration;

pub use app::{EmulatorApp, MAX_BODY_BYTES};
pub use engine::{CoreSettings, Emulator};
pub use store::Limits;

/// How the emulator is run.
#[derive(Clone, Debug)]
pub struct EmulatorSettings {
    /// The address to listen on, e.g. `127.0.0.1:8081`.
    pub listen: String,
    /// A session with no event for longer than this is expired (410).
    pub idle_timeout: Duration,
    /// When set, `Location` is `<prefix>/api/v1/sessions/<sid>` instead of the relative form
    /// (e.g. `http://127.0.0.1:8081`), to test the gateway's Location rewriting.
    pub location_prefix: Option<String>,
    /// Slept before answering each API request (timeout tests).
    pub response_delay: Duration,
    /// The validation policies bodies are checked with.
    pub policies: mcapi::Policies,
}

impl Default for EmulatorSettings {
    fn default() -> Self {
        EmulatorSettings {
            listen: "127.0.0.1:8081".to_owned(),
            idle_timeout: Duration::from_secs(600),
            location_prefix: None,
            response_delay: Duration::ZERO,
            policies: mcapi::Policies::default(),
        }
    }
}

/// The pingora service [`service`] returns; `Server::add_service` accepts it.
pub type EmulatorService = Service<HttpServer<EmulatorApp>>;

/// The emulator as a pingora HTTP app (not yet bound to an address), with the default [`Limits`].
pub fn app(settings: &EmulatorSettings) -> EmulatorApp {
    let core = Emulator::new(CoreSettings {
        idle_timeout: settings.idle_timeout,
        location_prefix: settings.location_prefix.clone(),
        policies: settings.policies.clone(),
        limits: Limits::default(),
    });
    EmulatorApp::new(core, settings.response_delay)
}

/// A pingora listening service serving the emulator on `settings.listen` (plain HTTP/1.1).
pub fn service(settings: EmulatorSettings) -> EmulatorService {
    let mut service = Service::new(
        "mediagate emulator".to_owned(),
        HttpServer::new_app(app(&settings)),
    );
    service.add_tcp(&settings.listen);
    service
}
