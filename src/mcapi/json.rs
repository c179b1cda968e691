//! A borrowed, span-preserving view of a JSON request body.
//!
//! Validation and enrichment never build a `serde_json::Value` tree: the body is checked once by
//! serde_json's grammar, objects are split into `(key, raw value)` members that borrow from the
//! body, and leaves are classified by their first byte. Because every raw value is a slice of the
//! body, its byte range is known, so enrichment can replace one object and copy the rest verbatim.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// The JSON type of a raw value, read from its first byte (the grammar was checked by serde_json).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    pub fn of(raw: &RawValue) -> Kind {
        match raw.get().as_bytes().first() {
            Some(b'n') => Kind::Null,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'"') => Kind::String,
            Some(b'[') => Kind::Array,
            Some(b'{') => Kind::Object,
            _ => Kind::Number,
        }
    }

    /// The name used in error details ("expected a number, got a string").
    pub fn article_name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }
}

/// One `"key": value` member of an object, in document order.
#[derive(Debug)]
pub struct Member<'a> {
    pub key: Cow<'a, str>,
    pub value: &'a RawValue,
}

/// A JSON object split into its members; `raw` is the whole object text.
#[derive(Debug)]
pub struct Object<'a> {
    pub raw: &'a RawValue,
    pub members: Vec<Member<'a>>,
}

impl<'a> Object<'a> {
    /// Splits `raw` into members. Returns `None` when `raw` is not an object.
    pub fn parse(raw: &'a RawValue) -> Option<Object<'a>> {
        if Kind::of(raw) != Kind::Object {
            return None;
        }
        let mut de = serde_json::Deserializer::from_str(raw.get());
        let members = de.deserialize_map(MembersVisitor).ok()?;
        Some(Object { raw, members })
    }

    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members.iter().find(|m| m.key == key).map(|m| m.value)
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// Splits a raw array into its elements. Returns `None` when `raw` is not an array.
pub fn parse_array(raw: &RawValue) -> Option<Vec<&RawValue>> {
    if Kind::of(raw) != Kind::Array {
        return None;
    }
    let mut de = serde_json::Deserializer::from_str(raw.get());
    de.deserialize_seq(ElementsVisitor).ok()
}

/// Parses a whole body: checks UTF-8 and the JSON grammar, returns the top-level raw value.
pub fn parse_body(body: &[u8]) -> Result<&RawValue, String> {
    let text = std::str::from_utf8(body).map_err(|e| {
        format!(
            "the body is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )
    })?;
    serde_json::from_str::<&RawValue>(text).map_err(|e| format!("the body is not valid JSON: {e}"))
}

/// The string a raw JSON string denotes, borrowed when it has no escapes.
pub fn as_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if Kind::of(raw) != Kind::String {
        return None;
    }
    let inner = &text[1..text.len() - 1];
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// The value of a raw JSON number as `f64` (infinite when the literal overflows, e.g. `1e400`).
pub fn as_f64(raw: &RawValue) -> Option<f64> {
    if Kind::of(raw) != Kind::Number {
        return None;
    }
    raw.get().parse::<f64>().ok()
}

/// True when a raw number is an integer literal in JSON Schema draft 4's sense (no fraction, no
/// exponent).
pub fn is_integer_literal(raw: &RawValue) -> bool {
    Kind::of(raw) == Kind::Number && !raw.get().bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

/// The value of a raw integer literal, when it fits an `i64`.
pub fn as_i64(raw: &RawValue) -> Option<i64> {
    if !is_integer_literal(raw) {
        return None;
    }
    raw.get().parse::<i64>().ok()
}

pub fn as_bool(raw: &RawValue) -> Option<bool> {
    match raw.get() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The byte range of `part` inside `whole`; `part` must be a slice of `whole`.
pub fn span_in(whole: &str, part: &str) -> Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    debug_assert!(start + part.len() <= whole.len());
    start..start + part.len()
}

/// Appends one reference token to a JSON Pointer (RFC 6901: `~` → `~0`, `/` → `~1`).
pub fn pointer_push(path: &mut String, token: &str) {
    path.push('/');
    for c in token.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
}

/// Builds a JSON Pointer from reference tokens.
pub fn pointer(tokens: &[&str]) -> String {
    let mut path = String::new();
    for t in tokens {
        pointer_push(&mut path, t);
    }
    path
}

/// Writes `s` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's escaping; writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Vec<Member<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            members.push(Member { key, value });
        }
        Ok(members)
    }
}

struct ElementsVisitor;

impl<'de> Visitor<'de> for ElementsVisitor {
    type Value = Vec<&'de RawValue>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut elements = Vec::with_capacity(seq.size_hint().unwrap_or(8));
        while let Some(e) = seq.next_element::<&'de RawValue>()? {
            elements.push(e);
        }
        Ok(elements)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_borrow_from_the_body_and_keep_their_spans() {
        let body = br#" {"a": 1, "b\u0041": "x\ny", "c": {"d": [1,2]}} "#;
        let raw = parse_body(body).unwrap();
        let obj = Object::parse(raw).unwrap();
        assert_eq!(obj.members.len(), 3);
        assert!(matches!(obj.members[0].key, Cow::Borrowed("a")));
        assert_eq!(obj.members[1].key, "bA");
        assert_eq!(as_str(obj.members[1].value).unwrap(), "x\ny");
        let text = std::str::from_utf8(body).unwrap();
        let span = span_in(text, obj.get("c").unwrap().get());
        assert_eq!(&text[span], r#"{"d": [1,2]}"#);
    }

    #[test]
    fn numbers_are_classified_lexically() {
        fn n(s: &str) -> &RawValue {
            serde_json::from_str(s).unwrap()
        }
        assert!(is_integer_literal(n("12")));
        assert!(!is_integer_literal(n("12.0")));
        assert!(!is_integer_literal(n("1e3")));
        assert_eq!(as_f64(n("1e400")), Some(f64::INFINITY));
        assert_eq!(as_i64(n("99999999999999999999")), None);
        assert_eq!(Kind::of(n("\"1\"")), Kind::String);
    }

    #[test]
    fn pointers_escape_tilde_and_slash() {
        assert_eq!(pointer(&["params", "media.length"]), "/params/media.length");
        assert_eq!(pointer(&["3", "a/b~c"]), "/3/a~1b~0c");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(parse_body(b"\xff").is_err());
        assert!(parse_body(b"{").is_err());
        assert!(parse_body(b"").is_err());
        assert!(Object::parse(parse_body(b"[1]").unwrap()).is_none());
    }
}
