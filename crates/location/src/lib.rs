//! `Location` rewriting, so that players keep talking to the gateway — and never to anyone else.
//!
//! **Owns** the rules below. **May use:** `url` (the WHATWG URL Standard, the parsing browsers
//! use), std. Pure: takes the upstream's header value and what the gateway knows about names
//! (the answering upstream's origin, the gateway's own authorities, the public base URL) and
//! says what to send (`docs/api-rules.md`, §1.3):
//!
//! - a value is read as a browser would read it, against the upstream's origin (tabs and
//!   newlines removed, `\` as `/`, leading and trailing blanks trimmed, userinfo parsed);
//! - a relative reference (`/api/v1/sessions/{sid}`) naming the upstream is **kept** as it is,
//!   the shape Adobe's SDKs parse;
//! - an absolute value naming the upstream or the gateway itself is **rewritten** to the
//!   relative form (an internal host must never leak to players); with absolute Locations
//!   switched on, both become `public_url` + path;
//! - a value naming another origin is **foreign** and relayed untouched (the gateway never turns
//!   a Location into one that points elsewhere);
//! - what the gateway sends is checked as a browser would resolve it against the request: when
//!   it would leave the gateway's own origin (a path starting `//` or `/\` once made relative,
//!   a tab a parser strips), or when a value that cannot be read names the upstream, the
//!   outcome is **unsafe** and the caller answers 502 instead of relaying it.
//!
//! With several upstreams, the gateway then writes the owning upstream into the sid
//! (`mcapi::sid::tag_location`).

use url::Url;

/// What happened to one `Location` value; the label of `mediagate_location_rewrites_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Relative value kept unchanged.
    Kept,
    /// Value changed (absolute upstream → relative, or relative → absolute on `public_url`).
    Rewritten,
    /// Value naming a foreign origin, left untouched.
    Foreign,
    /// The value to send would not stay on the gateway's origin, or would leak the upstream's
    /// host: not relayed (502).
    Unsafe,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Kept,
        Outcome::Rewritten,
        Outcome::Foreign,
        Outcome::Unsafe,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Kept => "kept",
            Outcome::Rewritten => "rewritten",
            Outcome::Foreign => "foreign",
            Outcome::Unsafe => "unsafe",
        }
    }
}

/// How the gateway names itself to players.
#[derive(Clone, Debug, Default)]
pub struct Rewriter {
    /// `public_url` without a trailing slash, when absolute Locations are switched on.
    pub absolute_base: Option<String>,
    /// Authorities that name the gateway itself (from `public_url`), normalized.
    pub own_authorities: Vec<String>,
}

/// The upstream that answered: its scheme (`http` or `https`) and normalized authority.
#[derive(Clone, Copy, Debug)]
pub struct Upstream<'a> {
    pub scheme: &'a str,
    pub authority: &'a str,
}

/// The result of rewriting: the value to send and what happened.
#[derive(Debug, PartialEq, Eq)]
pub struct Rewritten {
    /// `None`: send the upstream's value as it came (foreign), or nothing at all (unsafe).
    pub value: Option<String>,
    pub outcome: Outcome,
}

impl Rewritten {
    fn new(value: String, outcome: Outcome) -> Rewritten {
        Rewritten {
            value: Some(value),
            outcome,
        }
    }

    fn untouched(outcome: Outcome) -> Rewritten {
        Rewritten {
            value: None,
            outcome,
        }
    }
}

/// Two unrelated pages a relative value is checked against: it stays on the gateway's origin
/// exactly when it resolves to each page's own origin (a value naming a host of its own would
/// land on that host from both).
const CHECK_BASES: [&str; 2] = [
    "http://home-a.invalid/api/v1/sessions",
    "https://home-b.invalid:8443/x/y",
];

impl Rewriter {
    /// Rewrites `value`, the upstream's `Location` (the bytes as received). `request_host` is
    /// the `Host` the player used to reach the gateway, when it sent one.
    pub fn rewrite(
        &self,
        value: &[u8],
        upstream: Upstream<'_>,
        request_host: Option<&str>,
    ) -> Rewritten {
        let names_upstream_raw = contains_ignore_case(value, upstream.authority.as_bytes());
        let Ok(text) = std::str::from_utf8(value) else {
            // Not text a browser reads the same way we do: relayed only when it cannot leak the
            // upstream's host.
            return Rewritten::untouched(if names_upstream_raw {
                Outcome::Unsafe
            } else {
                Outcome::Foreign
            });
        };
        if self.absolute_base.is_none() && is_plain_path(text) && !text.contains('\\') {
            // A path-absolute value (one `/`, then neither `/` nor `\`, no blank or control
            // anywhere): by the WHATWG rules it keeps the page's scheme and host whatever the
            // page, so it names the upstream and stays home. The parses below say the same, at
            // the cost of five URL parses: about 5 µs of a session start's 95 (perf, make bench).
            return Rewritten::new(text.to_owned(), Outcome::Kept);
        }
        let Some(base) = Url::parse(&format!("{}://{}/", upstream.scheme, upstream.authority)).ok()
        else {
            return Rewritten::untouched(Outcome::Unsafe);
        };
        let Ok(resolved) = base.join(text) else {
            return Rewritten::untouched(if names_upstream_raw {
                Outcome::Unsafe
            } else {
                Outcome::Foreign
            });
        };
        let authority = authority_of(&resolved);
        let names_us = resolved.scheme() == base.scheme() && authority == upstream.authority
            || is_web(&resolved)
                && (self.own_authorities.contains(&authority)
                    || request_host
                        .is_some_and(|h| normalize_authority(resolved.scheme(), h) == authority));
        if !names_us {
            return Rewritten::untouched(Outcome::Foreign);
        }
        let out = if is_plain_path(text) {
            match &self.absolute_base {
                Some(b) => Rewritten::new(format!("{b}{text}"), Outcome::Rewritten),
                None => Rewritten::new(text.to_owned(), Outcome::Kept),
            }
        } else {
            // The path, query and fragment as the browser reads them. `http://host?q` names
            // the root path (RFC 3986 §6.2.3): the relative form keeps its `/`.
            let mut relative = resolved.path().to_owned();
            if let Some(q) = resolved.query() {
                relative.push('?');
                relative.push_str(q);
            }
            if let Some(f) = resolved.fragment() {
                relative.push('#');
                relative.push_str(f);
            }
            let value = match &self.absolute_base {
                Some(b) => format!("{b}{relative}"),
                None => relative,
            };
            Rewritten::new(value, Outcome::Rewritten)
        };
        match &out.value {
            Some(v) if self.stays_home(v) => out,
            _ => Rewritten::untouched(Outcome::Unsafe),
        }
    }

    /// Whether a browser resolving `value` against any page of the gateway stays on the
    /// gateway's origin (`public_url`'s, in absolute mode).
    fn stays_home(&self, value: &str) -> bool {
        let same_origin = |home: &str| {
            Url::parse(home).is_ok_and(|home| {
                home.join(value).is_ok_and(|r| {
                    r.scheme() == home.scheme() && authority_of(&r) == authority_of(&home)
                })
            })
        };
        match &self.absolute_base {
            Some(base) => same_origin(base),
            None => CHECK_BASES.iter().all(|b| same_origin(b)),
        }
    }
}

/// `http` or `https`: the schemes an authority of the gateway can be named under.
fn is_web(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https")
}

/// A value that is a path and nothing else a browser could read as an authority: one `/`, then
/// anything but `/` or `\`, and no tab, newline or leading blank (which parsers strip).
fn is_plain_path(value: &str) -> bool {
    let b = value.as_bytes();
    b.first() == Some(&b'/')
        && !matches!(b.get(1), Some(b'/' | b'\\'))
        && !b.iter().any(|&c| c <= b' ')
}

/// `host[:port]` of a URL, lower-case, the scheme's default port left out (as
/// [`normalize_authority`] writes it).
fn authority_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Lower-cases an authority, drops userinfo and the scheme's default port, so that
/// `HTTP://Collector:80` and `collector` compare equal.
pub fn normalize_authority(scheme: &str, authority: &str) -> String {
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let authority = authority.to_ascii_lowercase();
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => Some(":443"),
        "http" => Some(":80"),
        _ => None,
    };
    match default_port {
        Some(port) if authority.ends_with(port) => authority[..authority.len() - port.len()].into(),
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str =
        "/api/v1/sessions/5d41402abc4b2a76b9719d911017c592aa6cd1b2e3f40567890abcdef0123456";
    const UP: Upstream = Upstream {
        scheme: "http",
        authority: "127.0.0.1:8081",
    };

    fn rewriter() -> Rewriter {
        Rewriter {
            absolute_base: None,
            own_authorities: vec!["collect.example.com".into()],
        }
    }

    fn rw(value: &str) -> Rewritten {
        rewriter().rewrite(value.as_bytes(), UP, None)
    }

    fn ok(value: &str, outcome: Outcome) -> Rewritten {
        Rewritten::new(value.into(), outcome)
    }

    #[test]
    fn plain_paths_take_the_short_way_to_the_same_answer() {
        for value in [
            "/api/v1/sessions/abc",
            "/a/..//b",
            "/x?y=//evil#//z",
            "/%2F%2Fevil",
            "/é",
        ] {
            assert_eq!(rw(value), ok(value, Outcome::Kept), "{value}");
        }
        // Not plain paths: the full check decides.
        for value in ["//evil.example/x", "/\\evil.example/x", "/\tx"] {
            assert_ne!(rw(value).outcome, Outcome::Kept, "{value}");
        }
    }

    #[test]
    fn relative_location_is_kept_exactly() {
        assert_eq!(rw(SID), ok(SID, Outcome::Kept));
    }

    #[test]
    fn absolute_upstream_location_becomes_relative() {
        let r = rw(&format!("http://127.0.0.1:8081{SID}"));
        assert_eq!(r, ok(SID, Outcome::Rewritten));
        let up = Upstream {
            scheme: "https",
            authority: "collector.internal",
        };
        let r = rewriter().rewrite(
            format!("HTTPS://collector.internal{SID}").as_bytes(),
            up,
            None,
        );
        assert_eq!(r, ok(SID, Outcome::Rewritten));
        let r = rewriter().rewrite(
            format!("https://Collector.Internal:443{SID}").as_bytes(),
            up,
            None,
        );
        assert_eq!(r, ok(SID, Outcome::Rewritten));
    }

    #[test]
    fn an_absolute_location_without_a_path_names_the_root() {
        for (from, to) in [
            ("http://127.0.0.1:8081", "/"),
            ("http://127.0.0.1:8081?next=1", "/?next=1"),
            ("http://127.0.0.1:8081#frag", "/#frag"),
        ] {
            assert_eq!(rw(from).value.as_deref(), Some(to), "{from}");
        }
    }

    #[test]
    fn gateway_own_authority_counts_as_ours() {
        let r = rewriter().rewrite(
            format!("https://collect.example.com{SID}").as_bytes(),
            UP,
            None,
        );
        assert_eq!(r.outcome, Outcome::Rewritten);
        let r = rewriter().rewrite(
            format!("http://gw.local:8080{SID}").as_bytes(),
            UP,
            Some("gw.local:8080"),
        );
        assert_eq!(r.outcome, Outcome::Rewritten);
    }

    #[test]
    fn foreign_location_is_untouched() {
        for v in [
            format!("https://elsewhere.example{SID}"),
            format!("//elsewhere.example{SID}"),
            "/\\elsewhere.example/x".to_owned(),
            "http://127.0.0.1:8081@evil.example/x".to_owned(),
            "https://127.0.0.1:8081/x".to_owned(),
            "javascript:alert(1)".to_owned(),
        ] {
            let r = rewriter().rewrite(v.as_bytes(), UP, Some("gw:8080"));
            assert_eq!(r, Rewritten::untouched(Outcome::Foreign), "{v}");
        }
    }

    #[test]
    fn rewrites_that_would_leave_the_gateway_are_unsafe() {
        for v in [
            "http://127.0.0.1:8081//evil.example/x",
            "http://127.0.0.1:8081/\\evil.example/x",
            "http://127.0.0.1:8081/\t/evil.example/x",
            "http://127.0.0.1:8081/\\/evil.example",
            "//127.0.0.1:8081//evil.example/x",
            "http://user:pw@127.0.0.1:8081//evil.example/x",
            " http://127.0.0.1:8081//evil.example",
            "http://127.0.0.1:8081:x/",
            // Found by the fuzzer: a name that happens to be the checker's own.
            "./\r\r//home-a.invalid/5",
            "http://127.0.0.1:8081//home-b.invalid:8443/x",
        ] {
            assert_eq!(rw(v), Rewritten::untouched(Outcome::Unsafe), "{v:?}");
        }
        // Not UTF-8, naming the upstream: it would leak the internal host.
        let mut raw = b"http://127.0.0.1:8081/\xff".to_vec();
        assert_eq!(
            rewriter().rewrite(&raw, UP, None),
            Rewritten::untouched(Outcome::Unsafe)
        );
        raw = b"https://elsewhere.example/\xff".to_vec();
        assert_eq!(
            rewriter().rewrite(&raw, UP, None),
            Rewritten::untouched(Outcome::Foreign)
        );
    }

    #[test]
    fn userinfo_naming_the_upstream_is_dropped() {
        let r = rw(&format!("http://someone@127.0.0.1:8081{SID}"));
        assert_eq!(r, ok(SID, Outcome::Rewritten));
    }

    #[test]
    fn absolute_mode_puts_public_url_in_front() {
        let r = Rewriter {
            absolute_base: Some("https://collect.example.com".into()),
            own_authorities: vec!["collect.example.com".into()],
        };
        let want = format!("https://collect.example.com{SID}");
        assert_eq!(
            r.rewrite(SID.as_bytes(), UP, None),
            ok(&want, Outcome::Rewritten)
        );
        let abs = format!("http://127.0.0.1:8081{SID}");
        assert_eq!(
            r.rewrite(abs.as_bytes(), UP, None),
            ok(&want, Outcome::Rewritten)
        );
        assert_eq!(
            r.rewrite(b"https://evil.example/x", UP, None).outcome,
            Outcome::Foreign
        );
        // On an absolute base a path starting `//` stays on the gateway's host.
        assert_eq!(
            r.rewrite(b"http://127.0.0.1:8081//evil.example/x", UP, None),
            ok(
                "https://collect.example.com//evil.example/x",
                Outcome::Rewritten
            )
        );
    }
}
