//! Test support for mediagate's black-box tests: the real binary started on loopback port 0
//! with the ports it got read back ([`Gateway`], [`Emulator`]), configuration written from
//! `toml` values ([`Options`], [`toml`]), ports held so nobody else takes them ([`HeldPort`]),
//! a small HTTP/1.1 client with a timeout on every read and write ([`http`]), and a scripted
//! upstream that answers whatever a test needs, byte for byte ([`Scripted`]), a real
//! `redis-server` ([`RedisServer`]) and headless Chromium ([`chromium()`]).
//!
//! **May use:** std, `toml`, `serde_json`, `socket2`. Nothing of mediagate's own code: the tests
//! see the gateway from outside, as players and operators do.

pub mod chromium;
pub mod gateway;
pub mod http;
pub mod ports;
pub mod redis;
pub mod upstream;

pub use chromium::chromium;
pub use gateway::{binary, metric_value, scratch_dir, sid_of, Emulator, Gateway, Options};
pub use http::{request, Conn, Response};
pub use ports::HeldPort;
pub use redis::RedisServer;
pub use upstream::{Reply, Scripted, Seen};

use std::time::{Duration, Instant};

/// Parses TOML written by a test (a typo in a test's TOML is the test's bug: it panics).
pub fn toml(text: &str) -> toml::Table {
    text.parse()
        .unwrap_or_else(|e| panic!("the test's TOML does not parse: {e}\n{text}"))
}

/// Polls `f` until it returns `Some` or `limit` passes (then `None`): the way tests wait for
/// something another process does, instead of sleeping.
pub fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
