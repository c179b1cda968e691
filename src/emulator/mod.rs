//! The built-in emulator of the collection backend, so the gateway runs, is tested and is
//! benchmarked with no outside service.
//!
//! It answers like the real backend (§1.5, §5.1, §6): `201` + `Location:
//! /api/v1/sessions/<64-hex sid>` for a valid `sessionStart` (or a downloaded batch), `204` for a
//! valid event on an open session, `404` for an unknown sid, `410` once `sessionEnd` closed it or
//! it stayed idle past the idle timeout, `400` `{"message", "errors"}` for a body
//! [`mcapi::check`] rejects; the four CORS headers on every answer. Its own answers (not
//! the backend's): `405` + `Allow` for another method on a known path, `404` for unknown paths,
//! `413` above [`MAX_BODY_BYTES`]; `GET /api/v1/schemas/{eventType}` answers the draft-04 JSON Schema
//! generated from the rule table ([`mcapi::schema::schema_for`]), 404 for unknown types.
//!
//! Inspection (for tests and users):
//! - `GET /_emulator/sessions/{sid}`: `{"sid", "state": "open"|"closed"|"expired", "events":
//!   [...], "headers": [...], "dropped_events"}`: every accepted body's event objects in order
//!   (a batch contributes one entry per element), and per accepted request the selected headers
//!   of [`headers::RequestHeaders`];
//! - `GET /_emulator/sessions`: `{"sessions": [sid, ...]}` in creation order;
//! - `GET /_emulator/requests`: `{"count": N}`, API requests (`/api/...`) received, whatever
//!   their fate;
//! - `DELETE /_emulator/sessions`: forgets all sessions and resets the count (204).
//!
//! Memory is bounded ([`Limits`]): 100 000 sessions (oldest evicted), 10 000 recorded events per
//! session (later ones accepted but only counted), 256 MiB of recorded bodies in all.
//!
//! Layout: [`engine`] (the behaviour, pure, clock injected), [`store`] (sessions and memory bounds),
//! [`sid`], [`route`], [`reply`], [`body`], [`headers`], [`schema`]; [`app`] is the only glue: an
//! app of the gateway's own server (`server::App`), bound by `run` or `emulate`.
//!
//! **May use:** `mcapi` (routes, CORS, validation, schemas), `json`, `http1` (answer heads),
//! `server` (the app interface). Nothing of the gateway's pipeline.

pub mod app;
pub mod body;
pub mod engine;
pub mod headers;
pub mod reply;
pub mod route;
pub mod schema;
pub mod sid;
pub mod store;

use std::net::SocketAddr;
use std::time::Duration;

pub use app::{EmulatorApp, MAX_BODY_BYTES};
pub use engine::{Emulator, EngineSettings};
pub use store::Limits;

/// How the emulator is run.
#[derive(Clone, Debug)]
pub struct EmulatorSettings {
    /// The address to listen on, e.g. `127.0.0.1:8081` (port 0: any free port).
    pub listen: SocketAddr,
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
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            idle_timeout: Duration::from_secs(600),
            location_prefix: None,
            response_delay: Duration::ZERO,
            policies: mcapi::Policies::default(),
        }
    }
}

/// The emulator as an app (not yet bound to an address), with the default [`Limits`].
pub fn new_app(settings: &EmulatorSettings) -> EmulatorApp {
    let core = Emulator::new(EngineSettings {
        idle_timeout: settings.idle_timeout,
        location_prefix: settings.location_prefix.clone(),
        policies: settings.policies.clone(),
        limits: Limits::default(),
    });
    EmulatorApp::new(core, settings.response_delay)
}
