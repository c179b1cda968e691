//! Async I/O shared by both sides of the gateway: timeouts that cost nothing when an operation
//! completes at once ([`deadline`]) and the one loop that reads a message body off a socket with
//! the codec's [`http1::BodyReader`] ([`body`]), used for players' request bodies and upstream
//! answer bodies alike; the wall clock in milliseconds ([`clock`]); and systemd's readiness
//! notifications ([`notify`]).
//!
//! **May use:** `http1`, `tokio`, `bytes`, `nix`. Knows nothing of the API or of either side.

pub mod body;
pub mod clock;
pub mod deadline;
pub mod notify;
