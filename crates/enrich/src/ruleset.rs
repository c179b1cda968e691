//! One set of body and header rules — `[enrich]` itself, or a `[[enrich.site]]` merged over it —
//! and how it edits a body.
//!
//! Edits touch only the objects they change: a `params` or `customMetadata` object is rebuilt
//! from its members (raw values copied byte for byte), a missing one is added to its event, and
//! everything else in the body is copied verbatim. A body no rule changes is not copied at all.

use http::{HeaderName, HeaderValue};
use ring::hmac;
use std::collections::BTreeMap;
use std::ops::Range;

use crate::file;
use crate::template::TemplateError;
use crate::{Context, Error, Template};
use json::Object;
use mcapi::{rules, Document, EventType, Policies};

/// A param value: a JSON literal from the file, or a template rendered to a JSON string.
#[derive(Clone, Debug)]
enum Value {
    Literal(Vec<u8>),
    Template(Template),
}

#[derive(Clone, Debug)]
struct ParamRule {
    key: String,
    value: Value,
    always: bool,
}

/// What a body edit did, for `mediagate_enrichments_total{site, action}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub params_set: u32,
    pub params_removed: u32,
    pub params_hashed: u32,
    pub custom_metadata_set: u32,
}

impl Applied {
    /// `(action label, count)` pairs.
    pub fn counts(&self) -> [(&'static str, u32); 4] {
        [
            ("param_set", self.params_set),
            ("param_removed", self.params_removed),
            ("param_hashed", self.params_hashed),
            ("custom_metadata_set", self.custom_metadata_set),
        ]
    }
}

/// `bytes` in lower-case hex (a hash is written 64 digits at a time: `format!` per byte cost a
/// microsecond per hashed param).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

pub struct RuleSet {
    pub name: String,
    params: Vec<ParamRule>,
    custom_metadata: Vec<(String, Template)>,
    remove: Vec<String>,
    hash: Vec<String>,
    hash_key: Option<hmac::Key>,
    pub(super) upstream_headers: Vec<(HeaderName, Template)>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The parts of `[enrich]` a site may amend.
pub struct Source<'a> {
    pub session_params: &'a file::SessionParams,
    pub custom_metadata: &'a BTreeMap<String, String>,
    pub privacy: &'a file::Privacy,
    pub upstream_headers: &'a BTreeMap<String, String>,
}

impl RuleSet {
    /// Compiles a rule set; `at` names the table in errors (e.g. `[enrich]`).
    pub fn compile(
        name: &str,
        at: &str,
        src: &Source,
        policies: &Policies,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<RuleSet, Error> {
        let mut params = Vec::new();
        let tables = [
            (&src.session_params.if_absent, false, "if_absent"),
            (&src.session_params.always, true, "always"),
        ];
        for (table, always, table_name) in tables {
            for (key, value) in table {
                let here = format!("{at} session_params.{table_name} \"{key}\"");
                let value =
                    compile_param(key, value, policies, env).map_err(|e| Error::new(&here, e))?;
                params.push(ParamRule {
                    key: key.clone(),
                    value,
                    always,
                });
            }
        }
        let mut custom_metadata = Vec::new();
        for (key, value) in src.custom_metadata {
            let here = format!("{at} custom_metadata \"{key}\"");
            rules::check_custom_metadata_key(key).map_err(|e| Error::new(&here, e))?;
            if rules::reserved_custom_metadata_prefix(key).is_some() {
                return Err(Error::new(&here, "the media. and a. prefixes are reserved"));
            }
            custom_metadata.push((
                key.clone(),
                Template::compile(value, env).map_err(|e| Error::new(&here, e))?,
            ));
        }
        let p = src.privacy;
        for key in &p.remove {
            if src.session_params.if_absent.contains_key(key) {
                return Err(Error::new(
                    format!("{at} privacy.remove \"{key}\""),
                    "also set by session_params.if_absent: a removed param is always absent, so set it with session_params.always",
                ));
            }
            let required =
                rules::known_params(EventType::SessionStart).any(|s| s.key == key && s.required);
            let reset = src.session_params.always.contains_key(key);
            if required && !reset {
                return Err(Error::new(
                    format!("{at} privacy.remove \"{key}\""),
                    "a required sessionStart param; removing it makes every session start invalid (set it with session_params.always instead)",
                ));
            }
        }
        for key in &p.hash {
            rules::check_param_value(
                EventType::SessionStart,
                key,
                &serde_json::Value::String("0".repeat(64)),
                policies,
            )
            .map_err(|e| Error::new(format!("{at} privacy.hash \"{key}\""), e))?;
        }
        // A secret without a hash list still keys the quarantine's hashing of identity params.
        let hash_key = match (&p.hash_secret, p.hash.is_empty()) {
            (None, true) => None,
            (None, false) => {
                return Err(Error::new(
                    format!("{at} privacy.hash_secret"),
                    "needed by privacy.hash",
                ))
            }
            (Some(secret), _) => {
                let key = format!("{at} privacy.hash_secret");
                let secret = Template::compile(secret, env).map_err(|e| Error::new(&key, e))?;
                let secret = secret
                    .as_constant()
                    .ok_or_else(|| Error::new(&key, "must not depend on the request"))?;
                if secret.len() < 16 {
                    return Err(Error::new(&key, "use at least 16 characters"));
                }
                Some(hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()))
            }
        };
        let mut upstream_headers = Vec::new();
        for (name, value) in src.upstream_headers {
            let here = format!("{at} upstream_headers \"{name}\"");
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::new(&here, "not a valid header name"))?;
            let template = Template::compile(value, env).map_err(|e| Error::new(&here, e))?;
            if let Some(c) = template.as_constant() {
                HeaderValue::from_str(c)
                    .map_err(|_| Error::new(&here, "not a valid header value"))?;
            }
            upstream_headers.push((header, template));
        }
        Ok(RuleSet {
            name: name.to_owned(),
            params,
            custom_metadata,
            remove: p.remove.clone(),
            hash: p.hash.clone(),
            hash_key,
            upstream_headers,
        })
    }

    /// The params the privacy rules remove or hash: what forwarding already handles.
    pub fn privacy_params(&self) -> Vec<String> {
        self.remove.iter().chain(&self.hash).cloned().collect()
    }

    /// The params `privacy.hash` hashes.
    pub fn hashed_params(&self) -> &[String] {
        &self.hash
    }

    /// `value` hashed as `privacy.hash` hashes it (HMAC-SHA256 with `hash_secret`, hex), when a
    /// secret is configured.
    pub fn hash_value(&self, value: &str) -> Option<String> {
        let key = self.hash_key.as_ref()?;
        Some(hex(hmac::sign(key, value.as_bytes()).as_ref()))
    }

    pub fn has_body_rules(&self) -> bool {
        !(self.params.is_empty()
            && self.custom_metadata.is_empty()
            && self.remove.is_empty()
            && self.hash.is_empty())
    }

    /// The enriched body, or `None` when no rule changes it (the original bytes are forwarded).
    pub fn enrich_body(
        &self,
        text: &str,
        doc: &Document,
        ctx: &Context,
    ) -> Option<(Vec<u8>, Applied)> {
        if !self.has_body_rules() {
            return None;
        }
        let mut applied = Applied::default();
        let mut edits: Vec<(Range<usize>, Vec<u8>)> = Vec::new();
        let metadata: Vec<(&str, String)> = self
            .custom_metadata
            .iter()
            .map(|(k, t)| (k.as_str(), t.render(ctx)))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        for event in doc.events() {
            let Some(event_type) = event.event_type else {
                continue;
            };
            let mut new_members: Vec<(&str, Vec<u8>)> = Vec::new();
            if event_type == EventType::SessionStart {
                match &event.params {
                    Some(params) => {
                        if let Some(new) = self.apply_params(params, ctx, &mut applied) {
                            edits.push((json::span_in(text, text_of(params)), new));
                        }
                    }
                    None if event.object.get("params").is_none() => {
                        let empty = Object {
                            raw: event.object.raw,
                            members: Vec::new(),
                        };
                        if let Some(new) = self.apply_params(&empty, ctx, &mut applied) {
                            new_members.push(("params", new));
                        }
                    }
                    None => {} // params present but not an object: invalid, left alone.
                }
            }
            if event_type.allows_custom_metadata() && !metadata.is_empty() {
                match &event.custom_metadata {
                    Some(cm) => {
                        if let Some(new) = set_members(cm, &metadata, &mut applied) {
                            edits.push((json::span_in(text, text_of(cm)), new));
                        }
                    }
                    None if event.object.get("customMetadata").is_none() => {
                        let empty = Object {
                            raw: event.object.raw,
                            members: Vec::new(),
                        };
                        if let Some(new) = set_members(&empty, &metadata, &mut applied) {
                            new_members.push(("customMetadata", new));
                        }
                    }
                    None => {}
                }
            }
            if !new_members.is_empty() {
                let span = json::span_in(text, text_of(&event.object));
                let close = span.end - 1;
                let mut insert = Vec::new();
                for (i, (name, value)) in new_members.iter().enumerate() {
                    if i > 0 || !event.object.is_empty() {
                        insert.push(b',');
                    }
                    json::write_str(&mut insert, name);
                    insert.push(b':');
                    insert.extend_from_slice(value);
                }
                edits.push((close..close, insert));
            }
        }
        if edits.is_empty() {
            return None;
        }
        Some((splice(text.as_bytes(), &mut edits), applied))
    }

    /// The rebuilt `params` object, or `None` when the rules change nothing.
    fn apply_params(
        &self,
        params: &Object,
        ctx: &Context,
        applied: &mut Applied,
    ) -> Option<Vec<u8>> {
        let mut out = ObjectWriter::with_capacity(text_of(params).len() + 64);
        let mut changed = false;
        for m in &params.members {
            let key: &str = &m.key;
            if self.remove.iter().any(|r| r == key) {
                applied.params_removed += 1;
                changed = true;
                continue;
            }
            if let Some(rule) = self.params.iter().find(|r| r.always && r.key == key) {
                let value = rule.render(ctx);
                if value != m.value.get().as_bytes() {
                    applied.params_set += 1;
                    changed = true;
                }
                out.member(key, &value);
                continue;
            }
            if let (Some(hash_key), true) = (&self.hash_key, self.hash.iter().any(|h| h == key)) {
                if let Some(value) = json::as_str(m.value) {
                    let tag = hmac::sign(hash_key, value.as_bytes());
                    let quoted = format!("\"{}\"", hex(tag.as_ref())).into_bytes();
                    out.member(key, &quoted);
                    applied.params_hashed += 1;
                    changed = true;
                    continue;
                }
            }
            out.member(key, m.value.get().as_bytes());
        }
        for rule in &self.params {
            let present = params.members.iter().any(|m| m.key == rule.key.as_str());
            // A removed param that an `always` rule sets gets the rule's value (the player's is
            // dropped); `check` refuses `if_absent` for a removed param.
            if !present || self.remove.contains(&rule.key) {
                out.member(&rule.key, &rule.render(ctx));
                applied.params_set += 1;
                changed = true;
            }
        }
        changed.then(|| out.finish())
    }
}

/// `customMetadata` with the given entries set; `None` when it already holds them.
fn set_members(obj: &Object, entries: &[(&str, String)], applied: &mut Applied) -> Option<Vec<u8>> {
    let mut out = ObjectWriter::with_capacity(text_of(obj).len() + 64);
    let mut changed = false;
    let quote = |v: &str| {
        let mut q = Vec::with_capacity(v.len() + 2);
        json::write_str(&mut q, v);
        q
    };
    for m in &obj.members {
        match entries.iter().find(|(k, _)| *k == m.key.as_ref()) {
            Some((_, v)) => {
                let value = quote(v);
                if value != m.value.get().as_bytes() {
                    applied.custom_metadata_set += 1;
                    changed = true;
                }
                out.member(&m.key, &value);
            }
            None => out.member(&m.key, m.value.get().as_bytes()),
        }
    }
    for (k, v) in entries {
        if !obj.members.iter().any(|m| m.key == *k) {
            out.member(k, &quote(v));
            applied.custom_metadata_set += 1;
            changed = true;
        }
    }
    changed.then(|| out.finish())
}

/// The whole text of an object.
fn text_of<'a>(obj: &Object<'a>) -> &'a str {
    obj.raw.get()
}

/// Writes `{"key":value,...}` from raw values.
struct ObjectWriter {
    out: Vec<u8>,
    first: bool,
}

impl ObjectWriter {
    fn with_capacity(n: usize) -> ObjectWriter {
        let mut out = Vec::with_capacity(n);
        out.push(b'{');
        ObjectWriter { out, first: true }
    }

    fn member(&mut self, key: &str, raw_value: &[u8]) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        json::write_str(&mut self.out, key);
        self.out.push(b':');
        self.out.extend_from_slice(raw_value);
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }
}

impl ParamRule {
    fn render(&self, ctx: &Context) -> Vec<u8> {
        match &self.value {
            Value::Literal(raw) => raw.clone(),
            Value::Template(t) => {
                let mut out = Vec::new();
                json::write_str(&mut out, &t.render(ctx));
                out
            }
        }
    }
}

fn compile_param(
    key: &str,
    value: &toml::Value,
    policies: &Policies,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Value, ParamError> {
    if let toml::Value::String(s) = value {
        let template = Template::compile(s, env)?;
        let probe = template.as_constant().unwrap_or("x").to_owned();
        rules::check_param_value(
            EventType::SessionStart,
            key,
            &serde_json::Value::String(probe),
            policies,
        )?;
        if let Some(c) = template.as_constant() {
            return Ok(Value::Literal(serde_json::to_vec(c)?));
        }
        return Ok(Value::Template(template));
    }
    let json_value = serde_json::to_value(value)?;
    rules::check_param_value(EventType::SessionStart, key, &json_value, policies)?;
    Ok(Value::Literal(serde_json::to_vec(&json_value)?))
}

/// Why a configured param value is refused.
#[derive(Debug, thiserror::Error)]
enum ParamError {
    #[error("{0}")]
    Template(#[from] TemplateError),
    #[error("{0}")]
    Value(#[from] rules::ValueError),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

/// Applies non-overlapping edits (byte range → replacement) to `input`.
fn splice(input: &[u8], edits: &mut [(Range<usize>, Vec<u8>)]) -> Vec<u8> {
    edits.sort_by_key(|(r, _)| r.start);
    let extra: usize = edits.iter().map(|(_, v)| v.len()).sum();
    let mut out = Vec::with_capacity(input.len() + extra);
    let mut at = 0;
    for (range, replacement) in edits.iter() {
        out.extend_from_slice(&input[at..range.start]);
        out.extend_from_slice(replacement);
        at = range.end;
    }
    out.extend_from_slice(&input[at..]);
    out
}
