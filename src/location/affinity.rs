//! Stateless session affinity: the upstream that created a session is written into the session
//! id the gateway hands out, so every later event finds it again — across gateway restarts and
//! any number of gateway replicas, with no shared state.
//!
//! Outward sid = `<token>~<upstream sid>`, where the token is 8 lowercase hex characters derived
//! from the upstream's configured *name* (FNV-1a, 32 bits): stable across processes and
//! independent of the order of `[[upstream]]` entries. The result uses only `[A-Za-z0-9._~-]` and
//! keeps the shape Adobe's SDKs parse (no `/`). With a single upstream no token is added: sids
//! pass through unchanged.

/// The token of an upstream name.
pub fn token_for(name: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{hash:08x}")
}

/// The outward sid for `sid` created by the upstream with `token`.
pub fn encode(token: &str, sid: &str) -> String {
    format!("{token}~{sid}")
}

/// An outward sid split into its parts.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// No token: a sid handed out before affinity was switched on (one upstream then).
    Plain(&'a str),
    /// A token and the upstream's own sid.
    Owned { token: &'a str, sid: &'a str },
}

pub fn decode(outward: &str) -> Decoded<'_> {
    match outward.split_once('~') {
        Some((token, sid))
            if token.len() == 8
                && token
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                && !sid.is_empty() =>
        {
            Decoded::Owned { token, sid }
        }
        _ => Decoded::Plain(outward),
    }
}

/// Adds the token to a `Location` of the shape `[scheme://authority]/api/v1/sessions/{sid}`;
/// other values are returned unchanged (`None`).
pub fn tag_location(location: &str, token: &str) -> Option<String> {
    const MARK: &str = "/api/v1/sessions/";
    let at = location.find(MARK)? + MARK.len();
    let sid = &location[at..];
    if sid.is_empty() || sid.contains(['/', '?', '#']) {
        return None;
    }
    Some(format!("{}{}", &location[..at], encode(token, sid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "5d41402abc4b2a76b9719d911017c592aa6cd1b2e3f40567890abcdef0123456";

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
        let outward = encode(&t, SID);
        assert!(outward
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b)));
        assert_eq!(
            decode(&outward),
            Decoded::Owned {
                token: &t,
                sid: SID
            }
        );
        assert_eq!(decode(SID), Decoded::Plain(SID));
        assert_eq!(decode("zzzzzzzz~x"), Decoded::Plain("zzzzzzzz~x"));
        assert_eq!(decode("0123abcd~"), Decoded::Plain("0123abcd~"));
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
