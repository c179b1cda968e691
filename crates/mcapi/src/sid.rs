//! Session ids (§1.3): their format, and the owner token the gateway writes into the sids it
//! hands out when several upstreams share the traffic (stateless affinity).
//!
//! The backend mints 64 lowercase hex characters. With more than one upstream the gateway hands
//! out `<token>~<upstream sid>`, where the token is 8 lowercase hex characters derived from the
//! upstream's configured *name* (FNV-1a, 32 bits): stable across processes and replicas and
//! independent of the order of `[[upstream]]` entries. The result uses only `[A-Za-z0-9._~-]`
//! and keeps the shape Adobe's SDKs parse (no `/`). With a single upstream no token is added.

use serde::Deserialize;

/// `[validation] sid_format`: what an upstream's own sid must look like.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SidFormat {
    /// 64 lowercase hex characters (every sid the backend has been seen to mint).
    #[default]
    Strict,
    /// 1 to 256 characters of `[A-Za-z0-9._~-]`.
    Lenient,
}

/// Whether `sid` (an upstream's own) has the format.
pub fn is_well_formed(sid: &str, format: SidFormat) -> bool {
    match format {
        SidFormat::Strict => {
            sid.len() == 64 && sid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        }
        SidFormat::Lenient => of_chars(sid, 256),
    }
}

/// Whether a path segment can be an outward sid at all (its characters, at most 300): checked
/// when routing, before the owner is known.
pub fn is_outward(segment: &str) -> bool {
    of_chars(segment, 300)
}

/// 1 to `max` characters of `[A-Za-z0-9._~-]`, and not `.` or `..` (dot segments, which an
/// upstream normalising its paths would resolve: `/api/v1/sessions/../events`).
fn of_chars(sid: &str, max: usize) -> bool {
    (1..=max).contains(&sid.len())
        && sid != "."
        && sid != ".."
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

/// The token of an upstream name.
pub fn token_for(name: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{hash:08x}")
}

/// An outward sid, split into its owner token (when it has one) and the upstream's own sid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionId<'a> {
    pub token: Option<&'a str>,
    pub sid: &'a str,
}

/// Why an outward sid names no session the gateway can route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerError {
    /// The upstream's sid does not have the configured format.
    Malformed,
    /// The token names no configured upstream (forged, or a removed or renamed upstream).
    UnknownToken,
}

impl<'a> SessionId<'a> {
    /// Splits an outward sid. A sid without a well-formed token is *plain*: handed out before a
    /// second upstream was configured.
    pub fn parse(outward: &'a str) -> SessionId<'a> {
        match outward.split_once('~') {
            Some((token, sid))
                if token.len() == 8
                    && token
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                    && !sid.is_empty() =>
            {
                SessionId {
                    token: Some(token),
                    sid,
                }
            }
            _ => SessionId {
                token: None,
                sid: outward,
            },
        }
    }

    /// The outward sid of `sid` created by the upstream with `token`.
    pub fn encode(token: &str, sid: &str) -> String {
        format!("{token}~{sid}")
    }

    /// The owner of `outward` among upstreams whose tokens are `tokens` (in configuration
    /// order), and the upstream's own sid. With one upstream the sid passes through unchanged;
    /// a plain sid goes to the first upstream (sessions started before a second upstream was
    /// added keep working while the original upstream stays first).
    pub fn owner<T: AsRef<str>>(
        outward: &'a str,
        tokens: &[T],
        format: SidFormat,
    ) -> Result<(usize, &'a str), OwnerError> {
        let (index, sid) = if tokens.len() <= 1 {
            (0, outward)
        } else {
            let id = SessionId::parse(outward);
            match id.token {
                None => (0, id.sid),
                Some(token) => {
                    let index = tokens
                        .iter()
                        .position(|t| t.as_ref() == token)
                        .ok_or(OwnerError::UnknownToken)?;
                    (index, id.sid)
                }
            }
        };
        if !is_well_formed(sid, format) {
            return Err(OwnerError::Malformed);
        }
        Ok((index, sid))
    }
}

/// The outward sid a `Location` of the shape `[scheme://authority]/api/v1/sessions/{sid}`
/// names (the one players then use in their events path), when it has that shape.
pub fn sid_of_location(location: &[u8]) -> Option<&str> {
    const MARK: &str = "/api/v1/sessions/";
    let location = std::str::from_utf8(location).ok()?;
    let at = location.find(MARK)? + MARK.len();
    let sid = &location[at..];
    (!sid.is_empty() && !sid.contains(['/', '?', '#'])).then_some(sid)
}

/// Adds the token to a `Location` of the shape `[scheme://authority]/api/v1/sessions/{sid}`;
/// other values are left alone (`None`).
pub fn tag_location(location: &str, token: &str) -> Option<String> {
    const MARK: &str = "/api/v1/sessions/";
    let at = location.find(MARK)? + MARK.len();
    let sid = &location[at..];
    if sid.is_empty() || sid.contains(['/', '?', '#']) {
        return None;
    }
    Some(format!(
        "{}{}",
        &location[..at],
        SessionId::encode(token, sid)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "5d41402abc4b2a76b9719d911017c592aa6cd1b2e3f40567890abcdef0123456";

    #[test]
    fn formats() {
        assert!(is_well_formed(SID, SidFormat::Strict));
        assert!(!is_well_formed(&SID.to_uppercase(), SidFormat::Strict));
        assert!(!is_well_formed(&SID[1..], SidFormat::Strict));
        assert!(!is_well_formed("..", SidFormat::Lenient));
        assert!(!is_well_formed(".", SidFormat::Lenient));
        assert!(is_well_formed("...", SidFormat::Lenient));
        assert!(is_well_formed("1482236761294786918253", SidFormat::Lenient));
        assert!(is_well_formed("a.b_c~d-E", SidFormat::Lenient));
        assert!(!is_well_formed("a/b", SidFormat::Lenient));
        assert!(!is_well_formed("", SidFormat::Lenient));
        assert!(is_outward(&format!("0123abcd~{SID}")));
        assert!(!is_outward("a%2Fb"));
    }

    #[test]
    fn the_sid_of_a_location() {
        let loc = format!("http://gw:8080/api/v1/sessions/{SID}");
        assert_eq!(sid_of_location(loc.as_bytes()), Some(SID));
        assert_eq!(
            sid_of_location(format!("/api/v1/sessions/0123abcd~{SID}").as_bytes()),
            Some(format!("0123abcd~{SID}").as_str())
        );
        assert_eq!(sid_of_location(b"/api/v1/sessions/"), None);
        assert_eq!(sid_of_location(b"/api/v1/sessions/x/events"), None);
        assert_eq!(sid_of_location(b"/elsewhere/x"), None);
        assert_eq!(sid_of_location(b"\xff/api/v1/sessions/x"), None);
    }

    #[test]
    fn tokens_are_stable_and_distinct() {
        assert_eq!(token_for("a"), token_for("a"));
        assert_ne!(token_for("a"), token_for("b"));
        assert_eq!(token_for("").len(), 8);
        // FNV-1a reference value.
        assert_eq!(token_for("a"), "e40c292c");
    }

    #[test]
    fn round_trip() {
        let t = token_for("backend-1");
        let outward = SessionId::encode(&t, SID);
        assert!(outward
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b)));
        assert_eq!(
            SessionId::parse(&outward),
            SessionId {
                token: Some(&t),
                sid: SID
            }
        );
        let plain = |s| SessionId {
            token: None,
            sid: s,
        };
        assert_eq!(SessionId::parse(SID), plain(SID));
        assert_eq!(SessionId::parse("zzzzzzzz~x"), plain("zzzzzzzz~x"));
        assert_eq!(SessionId::parse("0123abcd~"), plain("0123abcd~"));
    }

    #[test]
    fn owners() {
        let tokens = [token_for("a"), token_for("b")];
        let b = SessionId::encode(&tokens[1], SID);
        assert_eq!(
            SessionId::owner(&b, &tokens, SidFormat::Strict),
            Ok((1, SID))
        );
        assert_eq!(
            SessionId::owner(SID, &tokens, SidFormat::Strict),
            Ok((0, SID))
        );
        let forged = SessionId::encode("0000ffff", SID);
        assert_eq!(
            SessionId::owner(&forged, &tokens, SidFormat::Strict),
            Err(OwnerError::UnknownToken)
        );
        assert_eq!(
            SessionId::owner(
                &SessionId::encode(&tokens[0], "x"),
                &tokens,
                SidFormat::Strict
            ),
            Err(OwnerError::Malformed)
        );
        // One upstream: the sid passes through, token-like prefix and all.
        let one = [token_for("a")];
        assert_eq!(
            SessionId::owner("x~y", &one, SidFormat::Lenient),
            Ok((0, "x~y"))
        );
    }

    #[test]
    fn locations_are_tagged_in_place() {
        let loc = format!("/api/v1/sessions/{SID}");
        let tagged = tag_location(&loc, "0123abcd").unwrap();
        assert_eq!(tagged, format!("/api/v1/sessions/0123abcd~{SID}"));
        // The JS SDK reads location.split("/")[4].
        assert_eq!(
            tagged.split('/').nth(4),
            Some(format!("0123abcd~{SID}").as_str())
        );
        let abs = tag_location(&format!("https://gw.example{loc}"), "0123abcd").unwrap();
        assert_eq!(
            abs,
            format!("https://gw.example/api/v1/sessions/0123abcd~{SID}")
        );
        assert_eq!(tag_location("/elsewhere", "0123abcd"), None);
        assert_eq!(tag_location("/api/v1/sessions/", "0123abcd"), None);
    }
}
