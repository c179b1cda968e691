//! Which `Content-Type` a JSON body may come with (§1.4).

use serde::Deserialize;

/// `[validation] content_type`.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ContentTypePolicy {
    /// No content type, `application/json` (any parameters, also `+json` suffixes), and the
    /// types older browser SDKs send for a string body (`text/plain`,
    /// `application/x-www-form-urlencoded`); the body must still parse as JSON.
    #[default]
    Lenient,
    /// `application/json` with any parameters.
    Strict,
}

/// Whether a request's `Content-Type` (`None`: absent) is accepted for a JSON body.
pub fn accepted(value: Option<&[u8]>, policy: ContentTypePolicy) -> bool {
    let Some(value) = value else {
        return policy == ContentTypePolicy::Lenient;
    };
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let is = |t: &str| essence.eq_ignore_ascii_case(t);
    match policy {
        ContentTypePolicy::Strict => is("application/json"),
        ContentTypePolicy::Lenient => {
            is("application/json")
                || is("text/plain")
                || is("application/x-www-form-urlencoded")
                || structured_json(essence.as_bytes())
        }
    }
}

/// `application/<subtype>+json` (compared as bytes: the value may hold any UTF-8).
fn structured_json(essence: &[u8]) -> bool {
    const TYPE: &[u8] = b"application/";
    const SUFFIX: &[u8] = b"+json";
    essence.len() >= TYPE.len() + SUFFIX.len()
        && essence[..TYPE.len()].eq_ignore_ascii_case(TYPE)
        && essence[essence.len() - SUFFIX.len()..].eq_ignore_ascii_case(SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        use ContentTypePolicy::*;
        let ok = |v: Option<&str>, p| accepted(v.map(str::as_bytes), p);
        assert!(ok(None, Lenient));
        assert!(ok(Some("application/json"), Lenient));
        assert!(ok(Some("Application/JSON; charset=UTF-8"), Strict));
        assert!(ok(Some("text/plain;charset=UTF-8"), Lenient));
        assert!(ok(Some("application/x-www-form-urlencoded"), Lenient));
        assert!(ok(Some("application/vnd.api+json"), Lenient));
        assert!(!ok(Some("application/xml"), Lenient));
        assert!(!ok(Some("multipart/form-data; boundary=x"), Lenient));
        assert!(!ok(Some("text/plain"), Strict));
        assert!(!ok(None, Strict));
        // Multi-byte characters where the `+json` suffix would start: refused, no panic.
        assert!(!ok(Some("aaaaa\u{e9}1234"), Lenient));
        assert!(!ok(Some("application/\u{e9}json"), Lenient));
        assert!(ok(Some("application/\u{e9}+json"), Lenient));
    }
}
