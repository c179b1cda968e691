//! `Location` rewriting for session-creation answers, so that players keep talking to the gateway.
//!
//! **Owns** the rules below. **May use:** std only. Pure: takes the upstream's header value and
//! what the gateway knows about names (the answering upstream's authority, the gateway's own
//! authorities, the public base URL) and says what to send (`docs/api-rules.md`, "Location"):
//! - a relative value (`/api/v1/sessions/{sid}`) is kept as it is, the shape Adobe's SDKs parse;
//! - an absolute value whose authority is the upstream's or the gateway's own is rewritten to the
//!   relative form (an internal host must never leak to clients);
//! - with absolute Locations switched on, both become `public_url` + path;
//! - any other authority is foreign and left untouched (never an open redirect).
//!
//! With several upstreams, the gateway then writes the owning upstream into the sid
//! (`mcapi::sid::tag_location`).

/// What happened to one `Location` value; the label of `mediagate_location_rewrites_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Relative value kept unchanged.
    Kept,
    /// Value changed (absolute upstream → relative, or relative → absolute on `public_url`).
    Rewritten,
    /// Absolute value naming a foreign host, left untouched.
    Foreign,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Kept, Outcome::Rewritten, Outcome::Foreign];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Kept => "kept",
            Outcome::Rewritten => "rewritten",
            Outcome::Foreign => "foreign",
        }
    }
}

/// How the gateway names itself to clients.
#[derive(Clone, Debug, Default)]
pub struct Rewriter {
    /// `public_url` without a trailing slash, when absolute Locations are switched on.
    pub absolute_base: Option<String>,
    /// Authorities that name the gateway itself (from `public_url`), normalized.
    pub own_authorities: Vec<String>,
}

/// The result of rewriting: the value to send and what happened.
#[derive(Debug, PartialEq, Eq)]
pub struct Rewritten {
    pub value: String,
    pub outcome: Outcome,
}

impl Rewriter {
    /// Rewrites `value`, the upstream's `Location`. `upstream_authority` is the authority of the
    /// upstream that answered (normalized by [`normalize_authority`]); `request_host` is the
    /// `Host` the client used to reach the gateway, when it sent one.
    pub fn rewrite(
        &self,
        value: &str,
        upstream_authority: &str,
        request_host: Option<&str>,
    ) -> Rewritten {
        let Some((scheme, authority, path)) = split_absolute(value) else {
            return self.relative(value);
        };
        let authority = normalize_authority(scheme, authority);
        let names_us = authority == upstream_authority
            || self.own_authorities.contains(&authority)
            || request_host.is_some_and(|h| normalize_authority(scheme, h) == authority);
        if !names_us {
            return Rewritten {
                value: value.to_owned(),
                outcome: Outcome::Foreign,
            };
        }
        // `http://host?q` and `http://host#f` name the root path (RFC 3986 §6.2.3): keep the
        // `/`, or the relative form would resolve against the request's own path.
        let root = if path.starts_with('/') { "" } else { "/" };
        let value = match &self.absolute_base {
            Some(base) => format!("{base}{root}{path}"),
            None => format!("{root}{path}"),
        };
        Rewritten {
            value,
            outcome: Outcome::Rewritten,
        }
    }

    fn relative(&self, value: &str) -> Rewritten {
        match &self.absolute_base {
            Some(base) if value.starts_with('/') => Rewritten {
                value: format!("{base}{value}"),
                outcome: Outcome::Rewritten,
            },
            _ => Rewritten {
                value: value.to_owned(),
                outcome: Outcome::Kept,
            },
        }
    }
}

/// Splits `scheme://authority/path?query` (or scheme-relative `//authority/path`) into its parts.
/// Returns `None` for a relative reference.
fn split_absolute(value: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = if let Some(rest) = value.strip_prefix("//") {
        ("", rest)
    } else {
        let (scheme, rest) = value.split_once("://")?;
        let valid_scheme = !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !valid_scheme {
            return None;
        }
        (scheme, rest)
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    Some((scheme, authority, path))
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

    fn rewriter() -> Rewriter {
        Rewriter {
            absolute_base: None,
            own_authorities: vec!["collect.example.com".into()],
        }
    }

    #[test]
    fn relative_location_is_kept_exactly() {
        let r = rewriter().rewrite(SID, "127.0.0.1:8081", None);
        assert_eq!(
            r,
            Rewritten {
                value: SID.into(),
                outcome: Outcome::Kept
            }
        );
    }

    #[test]
    fn absolute_upstream_location_becomes_relative() {
        let up = normalize_authority("http", "127.0.0.1:8081");
        let r = rewriter().rewrite(&format!("http://127.0.0.1:8081{SID}"), &up, None);
        assert_eq!(
            r,
            Rewritten {
                value: SID.into(),
                outcome: Outcome::Rewritten
            }
        );
        let up = normalize_authority("https", "Collector.Internal:443");
        let r = rewriter().rewrite(&format!("HTTPS://collector.internal{SID}"), &up, None);
        assert_eq!(r.outcome, Outcome::Rewritten);
        assert_eq!(r.value, SID);
    }

    #[test]
    fn an_absolute_location_without_a_path_names_the_root() {
        let up = normalize_authority("http", "127.0.0.1:8081");
        for (from, to) in [
            ("http://127.0.0.1:8081", "/"),
            ("http://127.0.0.1:8081?next=1", "/?next=1"),
            ("http://127.0.0.1:8081#frag", "/#frag"),
        ] {
            assert_eq!(rewriter().rewrite(from, &up, None).value, to, "{from}");
        }
    }

    #[test]
    fn gateway_own_authority_counts_as_ours() {
        let r = rewriter().rewrite(&format!("https://collect.example.com{SID}"), "x:1", None);
        assert_eq!(r.outcome, Outcome::Rewritten);
        let r = rewriter().rewrite(
            &format!("http://gw.local:8080{SID}"),
            "x:1",
            Some("gw.local:8080"),
        );
        assert_eq!(r.outcome, Outcome::Rewritten);
    }

    #[test]
    fn foreign_location_is_untouched() {
        let v = format!("https://elsewhere.example{SID}");
        let r = rewriter().rewrite(&v, "127.0.0.1:8081", Some("gw:8080"));
        assert_eq!(
            r,
            Rewritten {
                value: v,
                outcome: Outcome::Foreign
            }
        );
        let v = format!("//elsewhere.example{SID}");
        assert_eq!(
            rewriter().rewrite(&v, "127.0.0.1:8081", None).outcome,
            Outcome::Foreign
        );
    }

    #[test]
    fn absolute_mode_puts_public_url_in_front() {
        let r = Rewriter {
            absolute_base: Some("https://collect.example.com".into()),
            own_authorities: vec!["collect.example.com".into()],
        };
        let out = r.rewrite(SID, "up:1", None);
        assert_eq!(out.value, format!("https://collect.example.com{SID}"));
        let out = r.rewrite(&format!("http://up:1{SID}"), "up:1", None);
        assert_eq!(out.value, format!("https://collect.example.com{SID}"));
        assert_eq!(
            r.rewrite("https://evil.example/x", "up:1", None).outcome,
            Outcome::Foreign
        );
    }

    #[test]
    fn userinfo_cannot_smuggle_a_foreign_host_in() {
        let r = rewriter().rewrite(
            "http://127.0.0.1:8081@evil.example/x",
            "127.0.0.1:8081",
            None,
        );
        assert_eq!(r.outcome, Outcome::Foreign);
    }
}
