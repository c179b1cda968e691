//! What the gateway tells its operators: the Prometheus registry and its series ([`metrics`],
//! with the hot-path ones resolved once in [`series`]), the access log ([`access_log`]) and the
//! diagnostic log ([`diagnostics`]), both written through a [`log_sink::LogSink`] that never
//! makes a request wait, the admin listener ([`admin`]: metrics, liveness, readiness) and the
//! count of the event loops' heap allocations ([`allocations`], a test aid).
//!
//! **May use:** `mcapi`, `enrich`, `location` (label values), `server` (the admin listener runs
//! on it), `prometheus`, `log`/`env_logger`. Nothing here decides how a request is answered.

pub mod access_log;
pub mod admin;
pub mod allocations;
pub mod diagnostics;
pub mod log_sink;
pub mod metrics;
pub mod series;
