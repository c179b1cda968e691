//! The server side of every listener: the players' gateway listener, the admin listener and the
//! emulator all run on it. It accepts connections (plain TCP or TLS, bound here or taken over
//! from the previous process on an upgrade — [`listener`]) and places them on its event loops
//! ([`loops`]), runs each connection's loop
//! ([`connection`]: wait for a request, read its head, hand it to the [`App`], write the answer,
//! keep the connection or close it), reads request bodies ([`exchange`]) and writes the answers
//! it makes itself ([`answers`]); and the admission limits that protect it: the connection cap
//! (in [`listener`]), the budget of body bytes held ([`budget`]) and the per-client rate limit
//! ([`rate_limit`]).
//!
//! **May use:** `http1`, `io`, `mcapi` (CORS and the error shape of its own answers), `observe`
//! (the listening report), pingora's server (services, listening-socket hand-over, TLS
//! acceptor). Knows nothing of what an app does with a request.

pub mod answers;
pub mod bound;
pub mod budget;
pub mod connection;
pub mod exchange;
pub mod listener;
pub mod loops;
pub mod rate_limit;

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

pub use exchange::{BodyFailure, Conn, Exchange, HeadFailure};

/// How a listener's connections behave.
#[derive(Clone, Copy, Debug)]
pub struct ConnSettings {
    /// How long a request head may take from its first byte, each read of a body and each
    /// write of an answer; also how long a new connection may wait for its first request.
    pub read_timeout: Duration,
    /// How long an idle keep-alive connection is kept; zero: every answer closes.
    pub keepalive_timeout: Duration,
    /// How long a whole request body may take, from the end of its head.
    pub body_timeout: Duration,
}

/// What a listener serves: one request at a time, per connection.
pub trait App: Send + Sync + 'static {
    fn settings(&self) -> ConnSettings;

    /// Serves one request whose head was read, and writes the whole answer.
    fn serve<'a, 'c: 'a>(
        &'a self,
        ex: &'a mut Exchange<'c>,
    ) -> impl Future<Output = ()> + Send + 'a;

    /// A request head was refused and answered `status` (for metrics and logs); `elapsed`
    /// since the refusal began, `write_failed` when the answer could not be written.
    fn refused(
        &self,
        _peer: Option<IpAddr>,
        _status: u16,
        _elapsed: Duration,
        _write_failed: bool,
    ) {
    }

    /// [`App::serve`] panicked (a bug): the connection answers 500 when it still can, and closes.
    fn panicked(&self, _ex: &Exchange<'_>) {}
}
