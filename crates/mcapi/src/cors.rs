//! The CORS headers of the API's answers (§1.5): the backend sends exactly these four on every
//! answer, whether or not the request carried `Origin`. The gateway sends them on every answer
//! too (its own, and relayed ones in place of the upstream's), and the emulator on all of its.
//! `Allow-Methods` lists `PUT` although no `PUT` operation exists: it mirrors the backend.

/// The four headers, names lower-case.
pub const HEADERS: [(&str, &str); 4] = [
    ("access-control-allow-origin", "*"),
    ("access-control-allow-methods", "OPTIONS,POST,PUT"),
    ("access-control-allow-headers", "Content-Type"),
    ("access-control-expose-headers", "Location"),
];

/// The names of [`HEADERS`].
pub const NAMES: [&str; 4] = [HEADERS[0].0, HEADERS[1].0, HEADERS[2].0, HEADERS[3].0];

/// How long browsers may cache a preflight answer (Chromium caps this at 7200 s).
pub const PREFLIGHT_MAX_AGE: &str = "7200";
