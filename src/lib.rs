//! mediagate: a validating gateway for the Streaming Media Collection API, built on pingora.
//!
//! Pure domain modules ([`mcapi`], [`enrich`], [`location`], [`http1`]) do the work; [`gateway`],
//! [`admin`] and [`emulator`] are the pingora glue; [`config`] and [`metrics`] tie them together.

pub mod admin;
pub mod cli;
pub mod config;
pub mod emulator;
pub mod enrich;
pub mod gateway;
pub mod http1;
pub mod location;
pub mod mcapi;
pub mod metrics;
