//! A borrowed, span-preserving view of a JSON document, built in one pass. Knows nothing of
//! any API: which members to split is the caller's choice.
//!
//! **Owns:** the JSON grammar (RFC 8259, exactly the language serde_json accepts — see the
//! differential tests), splitting objects into `(key, raw value)` members that borrow from the
//! text, number and string literal decoding, JSON Pointers (RFC 6901) and string escaping.
//! **May use:** `serde`/`serde_json` (error messages for text that is not JSON, escapes), std.
//!
//! No `serde_json::Value` tree is ever built. A document is read once by the `Scanner` below,
//! which checks the grammar and, while it is at it, splits the top-level object (or each object
//! element of a top-level array) into members and, inside each, the first occurrence of the
//! member names the caller lists (see [`parse_document`]). Every other value is only skipped
//! over and kept as a [`Raw`] span, so a value nobody looks inside is scanned once and never
//! again. Leaves are classified by their first byte.
//!
//! Because every raw value is a slice of the text, its byte range is known, so a caller can
//! replace one object and copy the rest verbatim.
//!
//! Why hand-written rather than serde_json's borrowed `RawValue` maps (the first version): one
//! pass serves both the grammar check and the split, and replacing the maps cut the validation
//! of the documentation's 624-byte `sessionStart` from 1.52 to 0.72 µs and of a ping from 349
//! to 221 ns (criterion, `make bench-micro`, commit 1f6b42b).
//! What it is checked against: serde_json itself, on hand-picked cases, every prefix and byte
//! flip of the API fixtures, and the JSONTestSuite corpus in the fuzz targets.
//!
//! Only texts that are not JSON take serde_json's parser, for its error message.

use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// The text of one JSON value: a slice of a document whose grammar was checked (by the
/// `Scanner`, or by serde_json for a [`RawValue`]). Only this module makes one from a `str`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a>(&'a str);

impl<'a> Raw<'a> {
    /// The value's JSON text, exactly as in the body.
    #[inline]
    pub fn get(self) -> &'a str {
        self.0
    }

    #[inline]
    pub fn kind(self) -> Kind {
        Kind::of(self)
    }
}

impl fmt::Debug for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Raw({})", self.0)
    }
}

impl<'a> From<&'a RawValue> for Raw<'a> {
    #[inline]
    fn from(raw: &'a RawValue) -> Raw<'a> {
        Raw(raw.get())
    }
}

impl<'a> From<&'a Box<RawValue>> for Raw<'a> {
    #[inline]
    fn from(raw: &'a Box<RawValue>) -> Raw<'a> {
        Raw(raw.get())
    }
}

/// The JSON type of a raw value, read from its first byte (the grammar was checked).
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
    #[inline]
    pub fn of<'a>(raw: impl Into<Raw<'a>>) -> Kind {
        match raw.into().0.as_bytes().first() {
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
    /// The decoded key: borrowed from the body when it has no escapes.
    pub key: Cow<'a, str>,
    pub value: Raw<'a>,
}

/// A JSON object split into its members; `raw` is the whole object text.
#[derive(Debug)]
pub struct Object<'a> {
    pub raw: Raw<'a>,
    pub members: Vec<Member<'a>>,
}

impl<'a> Object<'a> {
    /// Splits `raw` into members. Returns `None` when `raw` is not an object, or when one of its
    /// keys cannot be decoded to a string (an unpaired UTF-16 surrogate escape such as
    /// `"\udc00"`, which JSON's grammar allows but Unicode text cannot hold).
    pub fn parse(raw: impl Into<Raw<'a>>) -> Option<Object<'a>> {
        let raw = raw.into();
        if raw.kind() != Kind::Object {
            return None;
        }
        let mut s = Scanner::new(raw.0);
        let members = s.members(8).ok()??;
        Some(Object { raw, members })
    }

    /// The value of the first member named `key`.
    pub fn get(&self, key: &str) -> Option<Raw<'a>> {
        self.members.iter().find(|m| m.key == key).map(|m| m.value)
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// Why a text is not one JSON document: a sentence saying where it stops being JSON (the
/// detail of the API's `json` violation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotJson(pub String);

impl fmt::Display for NotJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotJson {}

/// Splits a raw array into its elements. Returns `None` when `raw` is not an array.
pub fn parse_array<'a>(raw: impl Into<Raw<'a>>) -> Option<Vec<Raw<'a>>> {
    let raw = raw.into();
    if raw.kind() != Kind::Array {
        return None;
    }
    let mut s = Scanner::new(raw.0);
    let mut elements = Vec::new();
    s.elements(|s| {
        elements.push(s.value()?);
        Ok(())
    })
    .ok()?;
    Some(elements)
}

/// Parses a whole body: checks UTF-8 and the JSON grammar, returns the top-level raw value.
pub fn parse_body(body: &[u8]) -> Result<Raw<'_>, NotJson> {
    let text = utf8(body)?;
    let mut s = Scanner::new(text);
    s.ws();
    let value = s.value().and_then(|v| s.end().map(|()| v));
    value.map_err(|Syntax| not_json(text))
}

/// The body as text, or the detail of the `json` violation when it is not UTF-8.
pub fn utf8(body: &[u8]) -> Result<&str, NotJson> {
    std::str::from_utf8(body).map_err(|e| {
        NotJson(format!(
            "the body is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// The detail of the `json` violation of a text that is not JSON: serde_json's message (line,
/// column and what was expected). Only called once the scanner has refused the text.
#[cold]
fn not_json(text: &str) -> NotJson {
    NotJson(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
        Err(e) => format!("the body is not valid JSON: {e}"),
        // The scanner and serde_json agree on every input (tested); refuse rather than guess.
        Ok(_) => "the body is not valid JSON".into(),
    })
}

/// Which members of an object [`parse_document`] splits one level further: up to `N` member
/// names, each with the number of members its object is expected to hold (a capacity hint).
pub type Nested<'n, const N: usize> = [(&'n str, usize); N];

/// An object split in one pass: its members and, for the first occurrence of each member name
/// the caller listed, that member's members when it is an object.
#[derive(Debug)]
pub struct SplitObject<'a, const N: usize> {
    pub raw: Raw<'a>,
    /// `None` when `raw` is not an object or a key cannot be decoded (see [`Object::parse`]).
    pub object: Option<Object<'a>>,
    /// Slot `i` holds the first member named `nested[i].0` when that member is an object whose
    /// keys can all be decoded; `None` otherwise (absent, another kind, or undecodable).
    pub nested: [Option<Object<'a>>; N],
}

impl<'a, const N: usize> SplitObject<'a, N> {
    fn not_an_object(raw: Raw<'a>) -> SplitObject<'a, N> {
        SplitObject {
            raw,
            object: None,
            nested: std::array::from_fn(|_| None),
        }
    }
}

/// A document that is JSON, split in one pass.
#[derive(Debug)]
pub enum Parsed<'a, const N: usize> {
    /// An object, split.
    Object(SplitObject<'a, N>),
    /// An array (its text) and its elements, each split when it is an object.
    Array(Raw<'a>, Vec<SplitObject<'a, N>>),
    /// A string, number, boolean or null.
    Scalar(Raw<'a>),
}

/// Checks `text` as one JSON document and splits it (see [`Parsed`]): the top-level object, or
/// each object element of a top-level array, with the members named in `nested` split one level
/// further. The error is a sentence saying where the text stops being JSON.
pub fn parse_document<'a, const N: usize>(
    text: &'a str,
    nested: &Nested<'_, N>,
) -> Result<Parsed<'a, N>, NotJson> {
    let mut s = Scanner::new(text);
    s.ws();
    let parsed = match s.peek() {
        Some(b'{') => s.split_object(nested).map(Parsed::Object),
        Some(b'[') => {
            let start = s.pos;
            let mut objects = Vec::new();
            s.elements(|s| {
                let object = match s.peek() {
                    Some(b'{') => s.split_object(nested)?,
                    _ => SplitObject::not_an_object(s.value()?),
                };
                objects.push(object);
                Ok(())
            })
            .map(|()| Parsed::Array(Raw(&text[start..s.pos]), objects))
        }
        _ => s.value().map(Parsed::Scalar),
    };
    parsed
        .and_then(|p| s.end().map(|()| p))
        .map_err(|Syntax| not_json(text))
}

/// The string a raw JSON string denotes, borrowed when it has no escapes.
pub fn as_str<'a>(raw: impl Into<Raw<'a>>) -> Option<Cow<'a, str>> {
    let text = raw.into().0;
    if Kind::of(Raw(text)) != Kind::String {
        return None;
    }
    let inner = &text[1..text.len() - 1];
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// The value of a raw JSON number as `f64` (infinite when the literal overflows, e.g. `1e400`).
pub fn as_f64<'a>(raw: impl Into<Raw<'a>>) -> Option<f64> {
    let raw = raw.into();
    if raw.kind() != Kind::Number {
        return None;
    }
    raw.0.parse::<f64>().ok()
}

/// True when a raw number is an integer literal in JSON Schema draft 4's sense (no fraction, no
/// exponent).
pub fn is_integer_literal<'a>(raw: impl Into<Raw<'a>>) -> bool {
    let raw = raw.into();
    raw.kind() == Kind::Number && !raw.0.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

/// The value of a raw integer literal, when it fits an `i64`.
pub fn as_i64<'a>(raw: impl Into<Raw<'a>>) -> Option<i64> {
    let raw = raw.into();
    if raw.kind() != Kind::Number {
        return None;
    }
    // A number's grammar was checked: `-?digits`, then a fraction or exponent (not an integer
    // literal) when anything but a digit follows. Accumulating downwards reaches i64::MIN.
    let (negative, digits) = match raw.0.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        all => (false, all),
    };
    let mut value: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(b - b'0'))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

pub fn as_bool<'a>(raw: impl Into<Raw<'a>>) -> Option<bool> {
    match raw.into().0 {
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
    if !token.contains(['~', '/']) {
        path.push_str(token);
        return;
    }
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

/// Writes `s` as a JSON string literal, escaped as serde_json escapes (`"`, `\\` and control
/// characters; nothing else).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        // serde_json's escaping; writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
        return;
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// Whether `bytes` holds a quote, a backslash or a control character.
#[inline]
fn needs_escape(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        if special_bytes(word) != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b == b'"' || b == b'\\' || b < 0x20)
}

/// The text is not JSON (the scanner stops at the first error; serde_json words it).
#[derive(Debug)]
struct Syntax;

type Scan<T> = Result<T, Syntax>;

/// A JSON reader over a `str`, accepting exactly the grammar serde_json accepts (RFC 8259, with
/// no nesting limit when a value is skipped, as serde_json's `ignore_value`).
struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Scanner<'a> {
        Scanner { text, pos: 0 }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    #[inline(always)]
    fn ws(&mut self) {
        let bytes = self.text.as_bytes();
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    #[inline(always)]
    fn eat(&mut self, byte: u8) -> Scan<()> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Syntax)
        }
    }

    /// Only whitespace is left.
    fn end(&mut self) -> Scan<()> {
        self.ws();
        if self.pos == self.text.len() {
            Ok(())
        } else {
            Err(Syntax)
        }
    }

    /// Skips the value at `pos` (whitespace already skipped) and returns its text.
    #[inline]
    fn value(&mut self) -> Scan<Raw<'a>> {
        let start = self.pos;
        match self.peek() {
            Some(b'{' | b'[') => self.container()?,
            Some(_) => self.scalar()?,
            None => return Err(Syntax),
        }
        Ok(Raw(&self.text[start..self.pos]))
    }

    #[inline]
    fn scalar(&mut self) -> Scan<()> {
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => Err(Syntax),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Scan<()> {
        if self.text.as_bytes()[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Syntax)
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Scan<()> {
        let bytes = self.text.as_bytes();
        let mut i = self.pos;
        let digits = |mut i: usize| {
            while let Some(b'0'..=b'9') = bytes.get(i) {
                i += 1;
            }
            i
        };
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        match bytes.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = digits(i + 1),
            _ => return Err(Syntax),
        }
        if bytes.get(i) == Some(&b'.') {
            let after = digits(i + 1);
            if after == i + 1 {
                return Err(Syntax);
            }
            i = after;
        }
        if let Some(b'e' | b'E') = bytes.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = bytes.get(i) {
                i += 1;
            }
            let after = digits(i);
            if after == i {
                return Err(Syntax);
            }
            i = after;
        }
        self.pos = i;
        Ok(())
    }

    /// Skips the string literal at `pos` (on its opening quote); returns whether it holds an
    /// escape. Control characters are refused; escapes are checked for form only (a `\u` escape
    /// needs four hex digits; which code unit it names is not checked, as serde_json).
    #[inline(always)]
    fn string(&mut self) -> Scan<bool> {
        let bytes = self.text.as_bytes();
        let mut i = self.pos + 1;
        let mut escaped = false;
        loop {
            // Find the next quote, backslash or control character, eight bytes at a time.
            let special = loop {
                if let Some(chunk) = bytes.get(i..i + 8) {
                    let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
                    let found = special_bytes(word);
                    if found != 0 {
                        i += (found.trailing_zeros() / 8) as usize;
                        break bytes[i];
                    }
                    i += 8;
                } else {
                    match bytes.get(i) {
                        None => return Err(Syntax),
                        Some(&b) if b == b'"' || b == b'\\' || b < 0x20 => break b,
                        Some(_) => i += 1,
                    }
                }
            };
            match special {
                b'"' => {
                    self.pos = i + 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    escaped = true;
                    match bytes.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                        Some(b'u') => match bytes.get(i + 2..i + 6) {
                            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => i += 6,
                            _ => return Err(Syntax),
                        },
                        _ => return Err(Syntax),
                    }
                }
                _ => return Err(Syntax),
            }
        }
    }

    /// Skips the array or object at `pos`, however deep, without recursion.
    fn container(&mut self) -> Scan<()> {
        let mut nesting = Nesting::default();
        // Invariant at the top of the loop: `pos` is on a value (whitespace skipped).
        loop {
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    let object = open == b'{';
                    nesting.push(object);
                    self.pos += 1;
                    self.ws();
                    if self.peek() == Some(if object { b'}' } else { b']' }) {
                        self.pos += 1;
                        nesting.pop();
                    } else {
                        if object {
                            self.key_colon()?;
                        }
                        continue;
                    }
                }
                _ => self.scalar()?,
            }
            // After a value: a comma and the next element, or closing brackets.
            loop {
                if nesting.depth == 0 {
                    return Ok(());
                }
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.ws();
                        if nesting.is_object() {
                            self.key_colon()?;
                        }
                        break;
                    }
                    Some(b'}') if nesting.is_object() => {
                        self.pos += 1;
                        nesting.pop();
                    }
                    Some(b']') if !nesting.is_object() => {
                        self.pos += 1;
                        nesting.pop();
                    }
                    _ => return Err(Syntax),
                }
            }
        }
    }

    /// Skips `"key" :` and the whitespace after it.
    #[inline]
    fn key_colon(&mut self) -> Scan<()> {
        if self.peek() != Some(b'"') {
            return Err(Syntax);
        }
        self.string()?;
        self.colon()
    }

    #[inline]
    fn colon(&mut self) -> Scan<()> {
        self.ws();
        self.eat(b':')?;
        self.ws();
        Ok(())
    }

    /// Reads the key at `pos`; `None` when it cannot be decoded to a `str`.
    #[inline]
    fn key(&mut self) -> Scan<Option<Cow<'a, str>>> {
        if self.peek() != Some(b'"') {
            return Err(Syntax);
        }
        let start = self.pos;
        if !self.string()? {
            return Ok(Some(Cow::Borrowed(&self.text[start + 1..self.pos - 1])));
        }
        let literal = &self.text[start..self.pos];
        Ok(serde_json::from_str::<String>(literal).ok().map(Cow::Owned))
    }

    /// Walks the array at `pos`, calling `element` on each element (whitespace skipped).
    fn elements(&mut self, mut element: impl FnMut(&mut Self) -> Scan<()>) -> Scan<()> {
        self.eat(b'[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            element(self)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.ws();
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Syntax),
            }
        }
    }

    /// Walks the object at `pos`, calling `member` with each key (`None` when it cannot be
    /// decoded) with `pos` on the value; `member` must move past the value.
    #[inline]
    fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, Option<Cow<'a, str>>) -> Scan<()>,
    ) -> Scan<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let key = self.key()?;
            self.colon()?;
            member(self, key)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Syntax),
            }
        }
    }

    /// Splits the object at `pos` into members; `None` when a key cannot be decoded.
    fn members(&mut self, capacity: usize) -> Scan<Option<Vec<Member<'a>>>> {
        let mut members = Vec::with_capacity(capacity);
        let mut decodable = true;
        self.object(|s, key| {
            let value = s.value()?;
            match key {
                Some(key) => members.push(Member { key, value }),
                None => decodable = false,
            }
            Ok(())
        })?;
        Ok(decodable.then_some(members))
    }

    /// Splits the object at `pos`, and the first occurrence of each member named in `nested`
    /// (see [`SplitObject`]).
    fn split_object<const N: usize>(&mut self, nested: &Nested<'_, N>) -> Scan<SplitObject<'a, N>> {
        let start = self.pos;
        let mut split = SplitObject::not_an_object(Raw(""));
        let mut members = Vec::with_capacity(8);
        let mut decodable = true;
        // Which listed names have been seen (a later occurrence is never read inside).
        let mut seen = [false; N];
        self.object(|s, key| {
            let Some(key) = key else {
                decodable = false;
                return s.value().map(drop);
            };
            let slot = nested.iter().position(|(name, _)| *name == key);
            let value = match slot {
                Some(i) if !seen[i] && s.peek() == Some(b'{') => {
                    // The first occurrence, an object: split it now rather than rescan it later.
                    seen[i] = true;
                    let start = s.pos;
                    let inner = s.members(nested[i].1)?;
                    let raw = Raw(&s.text[start..s.pos]);
                    split.nested[i] = inner.map(|members| Object { raw, members });
                    raw
                }
                Some(i) => {
                    seen[i] = true;
                    s.value()?
                }
                None => s.value()?,
            };
            members.push(Member { key, value });
            Ok(())
        })?;
        split.raw = Raw(&self.text[start..self.pos]);
        if decodable {
            split.object = Some(Object {
                raw: split.raw,
                members,
            });
        }
        Ok(split)
    }
}

/// Which bytes of `word` are `"`, `\` or control characters: the high bit of each such byte, and
/// possibly of bytes above the lowest one (only the lowest is used).
#[inline(always)]
fn special_bytes(word: u64) -> u64 {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (control | quote | backslash) & HIGH
}

/// The open brackets of a skipped value, one bit each (1 for an object), spilling to the heap
/// past 64 levels.
#[derive(Default)]
struct Nesting {
    depth: usize,
    top: u64,
    spilled: Vec<u64>,
}

impl Nesting {
    #[inline]
    fn push(&mut self, object: bool) {
        if self.depth > 0 && self.depth.is_multiple_of(64) {
            self.spilled.push(self.top);
            self.top = 0;
        }
        let bit = 1u64 << (self.depth % 64);
        if object {
            self.top |= bit;
        } else {
            self.top &= !bit;
        }
        self.depth += 1;
    }

    #[inline]
    fn pop(&mut self) {
        self.depth -= 1;
        if self.depth > 0 && self.depth.is_multiple_of(64) {
            self.top = self.spilled.pop().unwrap_or(0);
        }
    }

    #[inline]
    fn is_object(&self) -> bool {
        self.depth > 0 && (self.top >> ((self.depth - 1) % 64)) & 1 == 1
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

    /// The member names the tests split (those of the Media Collection API's events).
    const NESTED: Nested<'static, 4> = [
        ("playerTime", 4),
        ("params", 16),
        ("qoeData", 4),
        ("customMetadata", 4),
    ];

    /// What the scanner says of `text`, next to what serde_json says.
    fn agree(text: &str) {
        let ours = parse_document(text, &NESTED);
        let theirs = serde_json::from_str::<&RawValue>(text);
        assert_eq!(ours.is_ok(), theirs.is_ok(), "{text:?}: {ours:?}");
        match (ours, theirs) {
            (Ok(parsed), Ok(raw)) => {
                let top = match &parsed {
                    Parsed::Object(parts) => parts.raw,
                    Parsed::Array(raw, _) => *raw,
                    Parsed::Scalar(raw) => *raw,
                };
                assert_eq!(top.get(), raw.get(), "{text:?}");
                assert_eq!(parse_body(text.as_bytes()).unwrap(), top);
                // The one-pass split equals the split of the parts, member by member.
                let objects: Vec<&SplitObject<4>> = match &parsed {
                    Parsed::Object(parts) => vec![parts],
                    Parsed::Array(_, objects) => objects.iter().collect(),
                    Parsed::Scalar(_) => vec![],
                };
                for parts in objects {
                    same_split(parts, text);
                }
            }
            (Err(ours), Err(theirs)) => {
                assert_eq!(ours.0, format!("the body is not valid JSON: {theirs}"));
            }
            _ => unreachable!(),
        }
    }

    /// The members of `parts` are those serde_json's map deserializer sees.
    fn same_split(parts: &SplitObject<4>, text: &str) {
        let expected = serde_members(parts.raw.get());
        let got = parts.object.as_ref().map(|o| {
            o.members
                .iter()
                .map(|m| (m.key.to_string(), m.value.get().to_owned()))
                .collect::<Vec<_>>()
        });
        assert_eq!(got, expected, "{text:?}");
        let object = parts.object.as_ref();
        for ((name, _), nested) in NESTED.iter().zip(&parts.nested) {
            let first = object.and_then(|o| o.get(name));
            let reparsed = first.and_then(Object::parse);
            assert_eq!(
                nested.as_ref().map(|o| (o.raw, o.members.len())),
                reparsed.as_ref().map(|o| (o.raw, o.members.len())),
                "{name} of {text:?}"
            );
        }
    }

    fn serde_members(text: &str) -> Option<Vec<(String, String)>> {
        // Keys decoded to `String` (refusing unpaired surrogates), values kept raw.
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<(String, String)>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    let v: &RawValue = map.next_value()?;
                    out.push((k, v.get().to_owned()));
                }
                Ok(out)
            }
        }
        use serde::Deserializer as _;
        serde_json::Deserializer::from_str(text)
            .deserialize_map(V)
            .ok()
    }

    #[test]
    fn the_scanner_accepts_what_serde_json_accepts() {
        let cases = [
            "{}",
            " { } ",
            "[]",
            "[ ]",
            "0",
            "-0",
            "-0.5e-3",
            "1E+9",
            "12.",
            "01",
            "-",
            "1e",
            "1.e1",
            ".5",
            "+1",
            "\"\"",
            "\"a\\u00e9\\n\\/\"",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u12g4\"",
            "\"tab\there\"",
            "\"\u{7f}\u{e9}\u{1f600}\"",
            "\"\\ud800\"",
            "{\"\\ud800\": 1}",
            "{\"\\ud83d\\ude00\": 1}",
            "{\"a\" 1}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{,}",
            "[1,]",
            "[,1]",
            "[1 2]",
            "{\"a\":1}}",
            "{\"a\":1} x",
            "{\"a\":[1,{\"b\":[]}],\"c\":{\"d\":{\"e\":null}}}",
            "{\"params\": 1, \"params\": {\"a\": 1}}",
            "{\"params\": {\"\\udc00\": 1}, \"params\": {}}",
            "{\"playerTime\":{\"playhead\":1,\"ts\":2},\"eventType\":\"ping\"}",
            "[{\"eventType\":\"a\"}, 7, [], {\"qoeData\":{}}]",
            "[[[[]]]]",
            "[[[[]]]",
            "tru",
            "true",
            "nul",
            "nulll",
            "falsey",
            "",
            "   ",
            "{\"a\":1,\"a\":2}",
            "{\"a\"\n:\r1\t}",
        ];
        for case in cases {
            agree(case);
        }
        let deep = format!("{}1{}", "[{\"a\":".repeat(200), "}]".repeat(200));
        agree(&deep);
        agree(&deep[..deep.len() - 1]);
        agree(&"[".repeat(10_000));
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        agree(&deep);
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(4999));
        agree(&deep);
        let mixed = format!("{}{}", "[{\"k\":".repeat(100), "0}]".repeat(99) + "0]]");
        agree(&mixed);
    }

    #[test]
    fn the_scanner_agrees_on_every_prefix_and_byte_flip_of_the_fixtures() {
        // The API's fixtures, kept with the binary's tests.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");
        let mut files = Vec::new();
        for sub in ["", "/vod", "/live", "/resume", "/downloaded", "/invalid"] {
            for entry in std::fs::read_dir(format!("{dir}{sub}")).unwrap() {
                let path = entry.unwrap().path();
                if path.is_file() && path.extension().is_some_and(|e| e != "md") {
                    files.push(std::fs::read(path).unwrap());
                }
            }
        }
        assert!(files.len() > 60);
        let flips = [
            b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b' ', b'0', b'e', b'\n',
        ];
        for (n, body) in files.iter().enumerate() {
            let Ok(text) = std::str::from_utf8(body) else {
                continue;
            };
            agree(text);
            for end in (0..text.len()).filter(|&e| text.is_char_boundary(e)) {
                agree(&text[..end]);
            }
            let mut bytes = body.clone();
            for i in (n % 5..bytes.len()).step_by(5) {
                let old = bytes[i];
                bytes[i] = flips[(i + n) % flips.len()];
                if let Ok(text) = std::str::from_utf8(&bytes) {
                    agree(text);
                }
                bytes[i] = old;
            }
        }
    }

    #[test]
    fn undecodable_keys_make_an_object_unsplittable() {
        let raw = parse_body(br#"{"a": {"\udc00": 1}, "b": 2}"#).unwrap();
        let obj = Object::parse(raw).unwrap();
        assert!(Object::parse(obj.members[0].value).is_none());
        assert_eq!(as_i64(obj.get("b").unwrap()), Some(2));
        let Ok(Parsed::Object(parts)) = parse_document(r#"{"\ud800": 1}"#, &NESTED) else {
            panic!()
        };
        assert!(parts.object.is_none());
    }

    #[test]
    fn integers_and_escaping_agree_with_std_and_serde_json() {
        for text in [
            "0",
            "-0",
            "7",
            "-7",
            "1509045336653",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
            "1.0",
            "1e3",
            "-1E-3",
            "\"1\"",
        ] {
            let raw: &RawValue = serde_json::from_str(text).unwrap();
            let expected = if is_integer_literal(raw) {
                text.parse::<i64>().ok()
            } else {
                None
            };
            assert_eq!(as_i64(raw), expected, "{text}");
        }
        for s in [
            "",
            "media.id",
            "a\"b",
            "back\\slash",
            "tab\there",
            "\u{1}",
            "\u{1f}",
            " ",
            "\u{7f}",
            "é ü 😀",
            "exactly8",
            "sixteen-bytes-ok",
            "long key with a quote at the end of it\"",
            "/solidus/",
        ] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn nesting_spills_past_64_levels() {
        let mut n = Nesting::default();
        let pattern = |i: usize| i.is_multiple_of(3) || i % 7 == 1;
        for i in 0..300 {
            n.push(pattern(i));
            assert_eq!(n.is_object(), pattern(i));
        }
        for i in (0..300).rev() {
            assert_eq!(n.is_object(), pattern(i), "{i}");
            n.pop();
        }
        assert_eq!(n.depth, 0);
    }
}
