//! Wall-clock time as the gateway counts it: milliseconds since the Unix epoch, the clock every
//! replica shares (validation's `ts` bounds, templates, the access log, session expiry).

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` in milliseconds since the Unix epoch (0 before it).
pub fn unix_ms_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Now, in milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    unix_ms_of(SystemTime::now())
}
