//! mediagate: a validating gateway for the Streaming Media Collection API, built on pingora.
pub mod mcapi;
