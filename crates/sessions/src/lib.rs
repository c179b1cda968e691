//! Session tracking, pure: the state of one media session ([`Session`]), what the gateway
//! learns from each call ([`Observation`], protocol-neutral: the Media Collection API's events
//! are mapped onto it by the caller, another API could be), and the rules judged across the
//! calls of a session ([`Rule`], `docs/sessions.md`).
//!
//! **Owns** the session state machine: expiry (an end event, idle time, no playhead movement),
//! the gate in front of the upstream (refuse a call to a closed session; a playhead out of
//! range), and the order-sensitive rules, judged in `ts` order once a reorder window has passed
//! (ads outside a break, nested breaks, overlapping ads and chapters, states). **May use:** std,
//! serde (the admin view). No I/O, no clock (time is passed in, milliseconds since the Unix
//! epoch, the same clock on every replica), no store: the caller keeps sessions where it likes
//! (in memory, in Redis through [`codec`]).

pub mod codec;
pub mod observation;
mod order;
pub mod rules;
pub mod session;

pub use observation::{Content, Kind, Observation, Start};
pub use rules::{Mode, Rule, Settings};
pub use session::{Closed, Finding, Gate, Session};
