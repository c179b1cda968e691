//! mediagate: a validating gateway for the Streaming Media Collection API, built on pingora.
//!
//! The request's path, one folder per step (`docs/architecture.md` walks it):
//! [`server`] (listeners, connections, the players' HTTP/1) → [`pipeline`] (route, check,
//! enrich, record) → [`upstream`] (the cluster, the exchange and its retry rule), with
//! [`observe`] (metrics, logs, admin) beside them, [`quality`] and [`quarantine`] (who sends bad
//! data, and what was refused, kept), [`config`] feeding them all, [`io`] shared by
//! both sides, the built-in backend in [`emulator`] and the command line in [`cli`]. The pure
//! parts are the crates under `crates/`: `json`, `http1`, `mcapi`, `enrich`, `location`.

pub mod cli;
pub mod config;
pub mod emulator;
pub mod io;
pub mod observe;
pub mod pipeline;
pub mod quality;
pub mod quarantine;
pub mod runtime;
pub mod server;
pub mod tracker;
pub mod upstream;
