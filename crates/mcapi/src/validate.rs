//! Validation of one request body against the rule table of `rules.rs`.
//!
//! This module owns the walk over a body: UTF-8 and JSON, the body kind each endpoint takes, the
//! envelope of every event (members, `playerTime`, `eventType` and its endpoint), `params`,
//! `qoeData` and `customMetadata` per event type, the batch rules, and the policies. It reports
//! every violation of a body (it never stops at the first one) and builds the [`Document`] that
//! enrichment works on.
//!
//! Paths are JSON Pointers: `""` for the body, `/params/media.length`, `/3/params/media.ad.id`
//! inside a batch. Conventions where the API leaves the choice open:
//! - a missing `params` on a type that needs it is one `required` at `/params` (the detail lists
//!   the required keys); a present `params` missing a key gives `required` at `/params/<key>`;
//! - `batch_first` is at `/0`, `batch_session_start` at `/N/eventType`, `batch_order` at
//!   `/N/playerTime/ts`;
//! - when the body kind is wrong for the endpoint (an array on `/events`, an object on
//!   `/downloaded`), the only violation is `body_kind`: the rules of the endpoint cannot apply to
//!   the wrong kind, but the [`Document`] is still built for report mode;
//! - `downloaded_flag` is at `/params/media.downloaded`, or at `/params` when there is no params
//!   object to hold the flag;
//! - an object the walk must read whose keys cannot all be decoded (a key holding an unpaired
//!   UTF-16 surrogate escape such as `"\udc00"`, which JSON's grammar allows and no string can
//!   hold) is a `type` violation at the object: at `""` for the body itself.
//!
//! Cost: the body is read in one pass (`json.rs`), which checks the grammar and splits the event
//! objects and their `playerTime`, `params`, `qoeData` and `customMetadata` into borrowed members
//! on the way; known keys are found in the static tables of `rules.rs` and tracked in bitmasks;
//! nothing is allocated per parameter; paths and details are only built when a violation is
//! recorded.

use super::rules::{self, EventSpec, KeySet, Rule, ValueType, DUPLICATE};
use super::{
    Checked, Document, Endpoint, Event, EventType, Policies, Severity, UnknownParams, Violation,
    MAX_LISTED, MAX_LISTED_BYTES,
};
use json::{Kind, Object, Parsed, Raw};
use std::fmt::Write;

/// Validates `body` sent to `endpoint` under `policies`; `now_ms` (Unix epoch milliseconds) is
/// only used by the optional `playerTime.ts` window. Never panics.
pub fn check<'a>(
    endpoint: Endpoint,
    body: &'a [u8],
    policies: &Policies,
    now_ms: u64,
) -> Checked<'a> {
    let mut v = Validator {
        policies,
        now_ms,
        current: None,
        violations: Vec::new(),
        listed_bytes: 0,
        omitted: Vec::new(),
    };
    let text = match json::utf8(body) {
        Ok(text) => text,
        Err(detail) => {
            v.error(String::new(), Rule::Json, detail.0);
            return v.finish("", None);
        }
    };
    let document = match json::parse_document(text, &ENVELOPE) {
        Ok(parsed) => v.document(endpoint, parsed),
        Err(detail) => {
            v.error(String::new(), Rule::Json, detail.0);
            None
        }
    };
    v.finish(text, document)
}

struct Validator<'p> {
    policies: &'p Policies,
    now_ms: u64,
    /// The type of the event being walked, stamped on its violations.
    current: Option<EventType>,
    violations: Vec<Violation>,
    /// Bytes of paths and details listed so far.
    listed_bytes: usize,
    omitted: Vec<(Rule, Severity, u32)>,
}

/// Where an event sits: decides the endpoint check, the path prefix and the ts window.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The whole body, sent to this endpoint.
    Single(Endpoint),
    /// Element N of a batch.
    Element(usize),
}

impl Place {
    fn index(self) -> Option<usize> {
        match self {
            Place::Single(_) => None,
            Place::Element(i) => Some(i),
        }
    }
}

/// The five envelope members of an event, first occurrence of each.
#[derive(Default)]
struct Envelope<'a> {
    player_time: Option<Raw<'a>>,
    event_type: Option<Raw<'a>>,
    params: Option<Raw<'a>>,
    qoe_data: Option<Raw<'a>>,
    custom_metadata: Option<Raw<'a>>,
}

/// An event with the envelope objects only the walk reads, split in the same pass as the body.
struct Split<'a> {
    event: Event<'a>,
    qoe_data: Option<Object<'a>>,
}

impl<'a> Envelope<'a> {
    fn slot(&mut self, key: &str) -> Option<&mut Option<Raw<'a>>> {
        match key {
            "playerTime" => Some(&mut self.player_time),
            "eventType" => Some(&mut self.event_type),
            "params" => Some(&mut self.params),
            "qoeData" => Some(&mut self.qoe_data),
            "customMetadata" => Some(&mut self.custom_metadata),
            _ => None,
        }
    }
}

impl Validator<'_> {
    fn finish<'a>(self, text: &'a str, document: Option<Document<'a>>) -> Checked<'a> {
        Checked {
            text,
            document,
            violations: self.violations,
            omitted: self.omitted,
        }
    }

    fn push(&mut self, path: String, rule: Rule, severity: Severity, detail: String) {
        self.listed_bytes += path.len() + detail.len();
        if self.violations.len() >= MAX_LISTED || self.listed_bytes > MAX_LISTED_BYTES {
            // Counted, not listed: a body with 80 000 duplicate keys gets a short answer.
            match self
                .omitted
                .iter_mut()
                .find(|(r, s, _)| *r == rule && *s == severity)
            {
                Some((_, _, n)) => *n = n.saturating_add(1),
                None => self.omitted.push((rule, severity, 1)),
            }
            return;
        }
        self.violations.push(Violation {
            path,
            rule,
            detail,
            severity,
            event_type: self.current,
        });
    }

    fn error(&mut self, path: String, rule: Rule, detail: String) {
        self.push(path, rule, Severity::Error, detail);
    }

    fn warn(&mut self, path: String, rule: Rule, detail: String) {
        self.push(path, rule, Severity::Warning, detail);
    }

    fn document<'a>(&mut self, endpoint: Endpoint, parsed: Parsed<'a, 4>) -> Option<Document<'a>> {
        match (parsed, endpoint) {
            (Parsed::Object(parts), Endpoint::Sessions | Endpoint::Events) => {
                let Some(split) = build_event(parts, 0) else {
                    // An object none of whose keys can be trusted: nothing else can be checked.
                    self.error(String::new(), Rule::Type, rules::UNDECODABLE_KEYS.into());
                    return None;
                };
                self.current = split.event.event_type;
                self.event(&split, Place::Single(endpoint));
                let event = split.event;
                if endpoint == Endpoint::Sessions
                    && event.event_type == Some(EventType::SessionStart)
                {
                    self.downloaded_flag(&event, None, false);
                }
                Some(Document::Single(event))
            }
            (Parsed::Array(_, elements), Endpoint::Sessions | Endpoint::Downloaded) => Some(
                Document::Batch(self.batch(elements, endpoint == Endpoint::Sessions)),
            ),
            (parsed, _) => {
                let kind = match &parsed {
                    Parsed::Object(_) => Kind::Object,
                    Parsed::Array(..) => Kind::Array,
                    Parsed::Scalar(raw) => raw.kind(),
                };
                let expected = match endpoint {
                    Endpoint::Sessions => {
                        "a JSON object (one sessionStart event) or the deprecated array of a downloaded session"
                    }
                    Endpoint::Events => "a JSON object (one event)",
                    Endpoint::Downloaded => "a JSON array of events starting with sessionStart",
                };
                let detail = format!("expected {expected}, got {}", kind.article_name());
                self.error(String::new(), Rule::BodyKind, detail);
                unchecked_document(parsed)
            }
        }
    }

    /// A batch: `/api/v1/downloaded`, or the deprecated array form of `/api/v1/sessions`.
    fn batch<'a>(&mut self, elements: Vec<EventParts<'a>>, deprecated: bool) -> Vec<Event<'a>> {
        if elements.is_empty() {
            self.error(
                String::new(),
                Rule::BatchEmpty,
                "a batch must hold a whole session: at least a sessionStart".into(),
            );
            return Vec::new();
        }
        let mut events = Vec::with_capacity(elements.len());
        let mut session_starts = 0usize;
        let mut previous_ts: Option<(usize, i64)> = None;
        for (i, element) in elements.into_iter().enumerate() {
            let raw = element.raw;
            let split = build_event(element, i);
            self.current = split.as_ref().and_then(|s| s.event.event_type);
            let ts = match &split {
                Some(split) => self.event(split, Place::Element(i)),
                None => {
                    let detail = rules::object_expected("an event object", raw);
                    self.error(path(Some(i), &[], &[]), Rule::Type, detail);
                    None
                }
            };
            if i == 0 && self.current != Some(EventType::SessionStart) {
                let detail = "the first event of a batch must be sessionStart".into();
                self.error(path(Some(0), &[], &[]), Rule::BatchFirst, detail);
            }
            if self.current == Some(EventType::SessionStart) {
                session_starts += 1;
                if session_starts > 1 {
                    let detail =
                        "a batch holds one session: only its first event is a sessionStart".into();
                    self.error(
                        path(Some(i), &["eventType"], &[]),
                        Rule::BatchSessionStart,
                        detail,
                    );
                }
            }
            if let Some(ts) = ts {
                if let Some((j, before)) = previous_ts.filter(|&(_, before)| ts < before) {
                    let detail = format!(
                        "ts {ts} is earlier than the ts {before} of element {j}: events must be in the order they happened"
                    );
                    self.error(
                        path(Some(i), &["playerTime", "ts"], &[]),
                        Rule::BatchOrder,
                        detail,
                    );
                }
                previous_ts = Some((i, ts));
            }
            if let Some(Split { event, .. }) = split {
                if deprecated && i == 0 && event.event_type == Some(EventType::SessionStart) {
                    self.downloaded_flag(&event, Some(0), true);
                }
                events.push(event);
            }
        }
        self.current = None;
        events
    }

    /// `media.downloaded`: must be `true` on element 0 of the deprecated array form
    /// (`want_true`), must not be `true` on a single-object sessionStart.
    fn downloaded_flag(&mut self, event: &Event<'_>, at: Option<usize>, want_true: bool) {
        let raw = event
            .params
            .as_ref()
            .and_then(|p| p.get("media.downloaded"));
        let value = raw.and_then(json::as_bool);
        let detail = match (want_true, raw, value) {
            (false, _, Some(true)) => {
                "true only in a downloaded batch: POST offline sessions as an array to /api/v1/downloaded"
            }
            (true, None, _) | (true, _, Some(false)) => {
                "the deprecated array form of /api/v1/sessions needs \"media.downloaded\": true on its sessionStart (or POST the batch to /api/v1/downloaded)"
            }
            _ => return,
        };
        // Without a params object the flag has no place of its own: point at `params`.
        let tokens: &[&str] = match event.params {
            Some(_) => &["params", "media.downloaded"],
            None => &["params"],
        };
        self.error(path(at, tokens, &[]), Rule::DownloadedFlag, detail.into());
    }

    /// Walks one event object; returns its `playerTime.ts` when that is a valid integer.
    fn event(&mut self, split: &Split<'_>, place: Place) -> Option<i64> {
        let event = &split.event;
        let at = place.index();
        let mut env = Envelope::default();
        for m in &event.object.members {
            match env.slot(&m.key) {
                Some(slot) if slot.is_some() => {
                    self.error(path(at, &[&m.key], &[]), Rule::DuplicateKey, DUPLICATE.into())
                }
                Some(slot) => *slot = Some(m.value),
                None => self.error(
                    path(at, &[&m.key], &[]),
                    Rule::UnknownMember,
                    "unknown member: an event has only playerTime, eventType, params, qoeData and customMetadata".into(),
                ),
            }
        }
        let spec = self.event_type(event, env.event_type, place);
        let ts = match env.player_time {
            Some(raw) => self.player_time(raw, split.event.player_time.as_ref(), place),
            None => {
                self.error(
                    path(at, &["playerTime"], &[]),
                    Rule::Required,
                    MISSING.into(),
                );
                None
            }
        };
        self.params(event, env.params, spec, at);
        if let Some(raw) = env.qoe_data {
            self.qoe_data(raw, split.qoe_data.as_ref(), at);
        }
        if let Some(raw) = env.custom_metadata {
            self.custom_metadata(event, raw, at);
        }
        ts
    }

    /// Checks `eventType`; returns the rules to apply to `params`, when they apply.
    fn event_type(
        &mut self,
        event: &Event<'_>,
        raw: Option<Raw<'_>>,
        place: Place,
    ) -> Option<&'static EventSpec> {
        let here = || path(place.index(), &["eventType"], &[]);
        let Some(raw) = raw else {
            self.error(here(), Rule::Required, MISSING.into());
            return None;
        };
        let Some(t) = event.event_type else {
            match json::as_str(raw) {
                None => {
                    let detail = format!("expected a string, got {}", rules::describe(raw));
                    self.error(here(), Rule::Type, detail);
                }
                Some(name) => {
                    let mut detail = format!("{} is not an event type", rules::shown(raw));
                    if let Some(hint) = rules::event_type_hint(&name) {
                        let _ = write!(detail, " ({hint})");
                    }
                    self.error(here(), Rule::EventType, detail);
                }
            }
            return None;
        };
        let spec = rules::event_spec(t);
        if let Place::Single(endpoint) = place {
            if spec.endpoint != endpoint {
                let detail = match endpoint {
                    Endpoint::Sessions => format!(
                        "{} is not accepted on /api/v1/sessions, which takes only sessionStart (send it to /api/v1/sessions/{{sid}}/events)",
                        t.as_str()
                    ),
                    _ => "sessionStart is not accepted on the events endpoint (POST it to /api/v1/sessions)".into(),
                };
                self.error(here(), Rule::Endpoint, detail);
            }
        }
        if spec.feature_flag && !self.policies.states_update {
            let detail = format!(
                "{} is switched off on this gateway (send stateStart / stateEnd events)",
                t.as_str()
            );
            self.error(here(), Rule::FeatureDisabled, detail);
            return None;
        }
        Some(spec)
    }

    fn player_time(
        &mut self,
        raw: Raw<'_>,
        object: Option<&Object<'_>>,
        place: Place,
    ) -> Option<i64> {
        let at = place.index();
        let Some(object) = object else {
            let detail =
                rules::object_expected("an object {\"playhead\": number, \"ts\": integer}", raw);
            self.error(path(at, &["playerTime"], &[]), Rule::Type, detail);
            return None;
        };
        let unknown = (
            Rule::UnknownMember,
            "unknown member: playerTime holds only playhead and ts",
        );
        rules::check_members(object, &rules::PLAYER_TIME, unknown, &mut |sub, rule, d| {
            self.error(path(at, &["playerTime"], sub), rule, d)
        });
        let ts = object.get("ts").and_then(json::as_i64)?;
        self.ts_window(ts, place);
        Some(ts)
    }

    /// The optional sanity window around `now_ms`. Batches carry offline sessions uploaded
    /// later, so only the "ahead" bound applies to them (§2.2).
    fn ts_window(&mut self, ts: i64, place: Place) {
        let (now, t) = (i128::from(self.now_ms), i128::from(ts));
        let here = || path(place.index(), &["playerTime", "ts"], &[]);
        if let (Some(age), Place::Single(_)) = (self.policies.ts_max_age_ms, place) {
            if t < now - i128::from(age) {
                let detail = format!(
                    "ts is {} ms before the gateway's clock (at most {age} ms allowed)",
                    now - t
                );
                self.error(here(), Rule::TsWindow, detail);
            }
        }
        if let Some(ahead) = self.policies.ts_max_ahead_ms {
            if t > now + i128::from(ahead) {
                let detail = format!(
                    "ts is {} ms after the gateway's clock (at most {ahead} ms allowed)",
                    t - now
                );
                self.error(here(), Rule::TsWindow, detail);
            }
        }
    }

    fn params(
        &mut self,
        event: &Event<'_>,
        raw: Option<Raw<'_>>,
        spec: Option<&'static EventSpec>,
        at: Option<usize>,
    ) {
        let name = self.current.map_or("", EventType::as_str);
        let Some(raw) = raw else {
            if let Some(spec) = spec.filter(|s| s.requires_params()) {
                let needs = if spec.any_of.is_empty() {
                    let keys: Vec<&str> = known_required(spec).collect();
                    keys.join(", ")
                } else {
                    format!("a non-empty {}", spec.any_of.join(" or "))
                };
                let detail =
                    format!("required member is missing: {name} needs params with {needs}");
                self.error(path(at, &["params"], &[]), Rule::Required, detail);
            }
            return;
        };
        let Some(params) = &event.params else {
            let detail = rules::object_expected("an object", raw);
            self.error(path(at, &["params"], &[]), Rule::Type, detail);
            return;
        };
        let Some(spec) = spec else {
            return;
        };
        let list = spec.param_list();
        let mut seen = 0u64;
        let mut others = KeySet::default();
        for m in &params.members {
            let key: &str = &m.key;
            let here = |sub: &[&str]| path(at, &["params", key], sub);
            if let Some((i, p)) = spec.param(key) {
                let bit = 1u64 << (i % 64);
                if seen & bit != 0 {
                    self.error(here(&[]), Rule::DuplicateKey, DUPLICATE.into());
                } else {
                    seen |= bit;
                    p.ty.check(m.value, &mut |sub, rule, d| self.error(here(sub), rule, d));
                }
            } else if !others.insert(key) {
                self.error(here(&[]), Rule::DuplicateKey, DUPLICATE.into());
            } else if let Some((_, p)) = spec.tolerated.find(key) {
                if spec.tolerates(self.policies) {
                    self.warn(
                        here(&[]),
                        Rule::ToleratedParam,
                        tolerated_detail(self.current, key),
                    );
                    p.ty.check(m.value, &mut |sub, rule, d| self.error(here(sub), rule, d));
                } else {
                    self.error(
                        here(&[]),
                        Rule::ParamsNotAllowed,
                        no_params_detail(name, key),
                    );
                }
            } else if spec.params.is_none() {
                self.error(
                    here(&[]),
                    Rule::ParamsNotAllowed,
                    no_params_detail(name, key),
                );
            } else {
                let severity = match self.policies.unknown_params {
                    UnknownParams::Reject => Severity::Error,
                    UnknownParams::Allow => Severity::Warning,
                };
                self.push(
                    here(&[]),
                    Rule::UnknownParam,
                    severity,
                    unknown_param_detail(name, key),
                );
            }
        }
        for (i, p) in list.iter().enumerate() {
            if p.required && seen & (1u64 << (i % 64)) == 0 {
                let detail = "required parameter is missing".into();
                self.error(path(at, &["params", p.key], &[]), Rule::Required, detail);
            }
        }
        let has_any = |k: &&str| params.get(k).is_some_and(rules::is_non_empty_array);
        if !spec.any_of.is_empty() && !spec.any_of.iter().any(has_any) {
            let detail = format!(
                "{name} needs at least one non-empty {}",
                spec.any_of.join(" or ")
            );
            self.error(path(at, &["params"], &[]), Rule::Required, detail);
        }
    }

    fn qoe_data(&mut self, raw: Raw<'_>, object: Option<&Object<'_>>, at: Option<usize>) {
        let Some(object) = object else {
            let detail = rules::object_expected("an object", raw);
            self.error(path(at, &["qoeData"], &[]), Rule::Type, detail);
            return;
        };
        let unknown = (
            Rule::UnknownQoeKey,
            "unknown qoeData key (the keys are media.qoe.bitrate, media.qoe.droppedFrames, media.qoe.framesPerSecond, media.qoe.timeToStart, media.qoe.errorID and media.qoe.errorSource)",
        );
        rules::check_members(object, &rules::QOE_DATA, unknown, &mut |sub, rule, d| {
            self.error(path(at, &["qoeData"], sub), rule, d)
        });
    }

    fn custom_metadata(&mut self, event: &Event<'_>, raw: Raw<'_>, at: Option<usize>) {
        let here = |sub: &[&str]| path(at, &["customMetadata"], sub);
        let Some(object) = &event.custom_metadata else {
            let detail = rules::object_expected("an object of strings", raw);
            self.error(here(&[]), Rule::Type, detail);
            return;
        };
        if object.is_empty() {
            return;
        }
        if let Some(t) = self.current {
            if !rules::event_spec(t).custom_metadata {
                let detail = format!(
                    "customMetadata is accepted only on sessionStart, adStart and chapterStart, not on {}",
                    t.as_str()
                );
                self.error(here(&[]), Rule::CustomMetadataNotAllowed, detail);
                return;
            }
        }
        let mut keys = KeySet::default();
        for m in &object.members {
            let key: &str = &m.key;
            if !keys.insert(key) {
                self.error(here(&[key]), Rule::DuplicateKey, DUPLICATE.into());
                continue;
            }
            if let Err(detail) = rules::check_custom_metadata_key(key) {
                self.error(here(&[key]), Rule::CustomMetadataKey, detail.0);
            } else if let Some((prefix, why)) = rules::reserved_custom_metadata_prefix(key) {
                let detail = format!("the \"{prefix}\" prefix {why}; choose another key");
                self.warn(here(&[key]), Rule::CustomMetadataReserved, detail);
            }
            ValueType::String.check(m.value, &mut |_, rule, d| {
                self.error(
                    here(&[key]),
                    rule,
                    format!("{d} (customMetadata values are strings)"),
                )
            });
        }
    }
}

const MISSING: &str = "required member is missing";

fn known_required(spec: &EventSpec) -> impl Iterator<Item = &'static str> {
    spec.param_list()
        .iter()
        .filter(|p| p.required)
        .map(|p| p.key)
}

fn tolerated_detail(event: Option<EventType>, key: &str) -> String {
    match (event, rules::owner_of_param(key)) {
        (Some(EventType::Error), _) => format!(
            "{key} in params is not documented for the API; forwarded (send media.qoe.errorID / media.qoe.errorSource in qoeData)"
        ),
        (_, Some(owner)) => format!("{key} is documented on {} only; forwarded", owner.as_str()),
        _ => format!("{key} is not documented here; forwarded"),
    }
}

fn no_params_detail(name: &str, key: &str) -> String {
    if key.starts_with("media.qoe.") {
        format!("{name} takes no parameters: QoE values belong in qoeData")
    } else if name == EventType::Error.as_str() {
        format!(
            "{name} takes no parameters: send media.qoe.errorID / media.qoe.errorSource in qoeData"
        )
    } else {
        format!("{name} takes no parameters (send no params, or an empty one)")
    }
}

fn unknown_param_detail(name: &str, key: &str) -> String {
    if key.starts_with("media.qoe.") {
        format!("not a parameter of {name}: QoE values belong in qoeData")
    } else if let Some(owner) = rules::owner_of_param(key) {
        format!(
            "not a parameter of {name} (it belongs on {})",
            owner.as_str()
        )
    } else {
        format!("not a parameter of {name}")
    }
}

/// Builds the [`Event`] view of one split element: `None` when it is not an object (or one whose
/// keys cannot be decoded).
/// The envelope members split one level further in the body's single pass, in the order of
/// [`EventParts::nested`]'s slots.
const ENVELOPE: json::Nested<'static, 4> = [
    ("playerTime", 4),
    ("params", 16),
    ("qoeData", 4),
    ("customMetadata", 4),
];

/// An event object as the body's single pass split it (see [`ENVELOPE`]).
type EventParts<'a> = json::SplitObject<'a, 4>;

fn build_event(parts: EventParts<'_>, index: usize) -> Option<Split<'_>> {
    let object = parts.object?;
    let [player_time, params, qoe_data, custom_metadata] = parts.nested;
    let event_type = object
        .get("eventType")
        .and_then(json::as_str)
        .and_then(|s| EventType::parse(&s));
    Some(Split {
        event: Event {
            index,
            object,
            event_type,
            params,
            custom_metadata,
            player_time,
        },
        qoe_data,
    })
}

/// The document of a body whose kind is wrong for its endpoint (not validated further).
fn unchecked_document(parsed: Parsed<'_, 4>) -> Option<Document<'_>> {
    match parsed {
        Parsed::Object(parts) => build_event(parts, 0).map(|s| Document::Single(s.event)),
        Parsed::Array(_, elements) => {
            let events = elements
                .into_iter()
                .enumerate()
                .filter_map(|(i, e)| build_event(e, i))
                .map(|s| s.event)
                .collect();
            Some(Document::Batch(events))
        }
        Parsed::Scalar(_) => None,
    }
}

/// A JSON Pointer: the batch index (if any), then `head`, then `sub`.
fn path(at: Option<usize>, head: &[&str], sub: &[&str]) -> String {
    let mut p = String::new();
    if let Some(i) = at {
        let _ = write!(p, "/{i}");
    }
    for token in head.iter().chain(sub) {
        json::pointer_push(&mut p, token);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorParams;

    /// 2026-01-15T20:00:00Z, the start of Fixture A.
    const NOW: u64 = 1_768_507_200_000;

    macro_rules! fx {
        ($name:literal) => {
            (
                $name,
                include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../tests/fixtures/",
                    $name
                )) as &[u8],
            )
        };
    }

    /// Every valid body of §7.1–§7.4, in session order.
    const VALID: &[(&str, &[u8])] = &[
        fx!("session-start.json"),
        fx!("ping.json"),
        fx!("vod/01-sessions-sessionStart.json"),
        fx!("vod/02-events-adBreakStart.json"),
        fx!("vod/03-events-adStart.json"),
        fx!("vod/04-events-ping.json"),
        fx!("vod/05-events-ping.json"),
        fx!("vod/06-events-adComplete.json"),
        fx!("vod/07-events-adStart.json"),
        fx!("vod/08-events-adSkip.json"),
        fx!("vod/09-events-adBreakComplete.json"),
        fx!("vod/10-events-play.json"),
        fx!("vod/11-events-chapterStart.json"),
        fx!("vod/12-events-ping.json"),
        fx!("vod/13-events-bitrateChange.json"),
        fx!("vod/14-events-stateStart.json"),
        fx!("vod/15-events-bufferStart.json"),
        fx!("vod/16-events-play.json"),
        fx!("vod/17-events-pauseStart.json"),
        fx!("vod/18-events-ping.json"),
        fx!("vod/19-events-play.json"),
        fx!("vod/20-events-ping.json"),
        fx!("vod/21-events-chapterComplete.json"),
        fx!("vod/22-events-adBreakStart.json"),
        fx!("vod/23-events-adStart.json"),
        fx!("vod/24-events-ping.json"),
        fx!("vod/25-events-adComplete.json"),
        fx!("vod/26-events-adBreakComplete.json"),
        fx!("vod/27-events-chapterStart.json"),
        fx!("vod/28-events-ping.json"),
        fx!("vod/29-events-error.json"),
        fx!("vod/30-events-stateEnd.json"),
        fx!("vod/31-events-chapterComplete.json"),
        fx!("vod/32-events-sessionComplete.json"),
        fx!("vod/33-events-sessionEnd.json"),
        fx!("live/01-sessions-sessionStart.json"),
        fx!("live/02-events-play.json"),
        fx!("live/03-events-ping.json"),
        fx!("live/04-events-ping.json"),
        fx!("live/05-events-pauseStart.json"),
        fx!("live/06-events-ping.json"),
        fx!("live/07-events-play.json"),
        fx!("live/08-events-ping.json"),
        fx!("live/09-events-sessionEnd.json"),
        fx!("resume/01-sessions-sessionStart.json"),
        fx!("resume/02-events-play.json"),
        fx!("downloaded/01-downloaded-batch.json"),
    ];

    type Expected = &'static [(Rule, &'static str)];

    /// The invalid cases of §7.5 with the exact errors expected (warnings aside).
    const INVALID: &[((&str, &[u8]), Expected)] = &[
        (
            fx!("invalid/x01-sessions.json"),
            &[(Rule::Required, "/params/media.channel")],
        ),
        (
            fx!("invalid/x02-sessions.json"),
            &[(Rule::Type, "/params/media.length")],
        ),
        (
            fx!("invalid/x03-sessions.json"),
            &[(Rule::Type, "/params/analytics.enableSSL")],
        ),
        (
            fx!("invalid/x04-sessions.json"),
            &[(Rule::Required, "/params/visitor.marketingCloudOrgId")],
        ),
        (
            fx!("invalid/x05-sessions.json"),
            &[(Rule::Endpoint, "/eventType")],
        ),
        (
            fx!("invalid/x06-sessions.json"),
            &[(Rule::Required, "/params")],
        ),
        (
            fx!("invalid/x07-sessions.json"),
            &[(Rule::Type, "/playerTime/ts")],
        ),
        (
            fx!("invalid/x08-sessions.json"),
            &[(Rule::Type, "/playerTime/ts")],
        ),
        (
            fx!("invalid/x09-sessions.json"),
            &[(Rule::Required, "/playerTime/ts")],
        ),
        (
            fx!("invalid/x10-sessions.json"),
            &[(Rule::UnknownMember, "/sessionId")],
        ),
        (
            fx!("invalid/x11-sessions.json"),
            &[(Rule::UnknownParam, "/params/media.colour")],
        ),
        (
            fx!("invalid/x12-sessions.json"),
            &[(Rule::Type, "/customMetadata/episodeNumber")],
        ),
        (
            fx!("invalid/x13-sessions.json"),
            &[(Rule::CustomMetadataKey, "/customMetadata/content-tier")],
        ),
        (
            fx!("invalid/x14-sessions.json"),
            &[(Rule::DownloadedFlag, "/params/media.downloaded")],
        ),
        (fx!("invalid/x15-sessions.txt"), &[(Rule::Json, "")]),
        (
            fx!("invalid/x16-sessions.json"),
            &[(Rule::UnknownQoeKey, "/qoeData/bitrate")],
        ),
        (
            fx!("invalid/x17-events.json"),
            &[(Rule::ParamsNotAllowed, "/params/media.id")],
        ),
        (
            fx!("invalid/x18-events.json"),
            &[(Rule::CustomMetadataNotAllowed, "/customMetadata")],
        ),
        (
            fx!("invalid/x19-events.json"),
            &[(Rule::Required, "/params/media.ad.podSecond")],
        ),
        (
            fx!("invalid/x20-events.json"),
            &[(Rule::Required, "/params/media.ad.playerName")],
        ),
        (
            fx!("invalid/x21-events.json"),
            &[(Rule::Type, "/params/media.ad.podPosition")],
        ),
        (
            fx!("invalid/x22-events.json"),
            &[(Rule::Type, "/params/media.chapter.index")],
        ),
        (
            fx!("invalid/x23-events.json"),
            &[(Rule::Required, "/params/media.state.name")],
        ),
        (
            fx!("invalid/x24-events.json"),
            &[(Rule::Pattern, "/params/media.state.name")],
        ),
        (
            fx!("invalid/x25-events.json"),
            &[(Rule::EventType, "/eventType")],
        ),
        (
            fx!("invalid/x26-events.json"),
            &[(Rule::EventType, "/eventType")],
        ),
        (
            fx!("invalid/x27-events.json"),
            &[(Rule::Endpoint, "/eventType")],
        ),
        (
            fx!("invalid/x28-events.json"),
            &[(Rule::Enum, "/qoeData/media.qoe.errorSource")],
        ),
        (fx!("invalid/x36-events.json"), &[(Rule::BodyKind, "")]),
        (
            fx!("invalid/x37-downloaded.json"),
            &[(Rule::BatchFirst, "/0")],
        ),
        (
            fx!("invalid/x38-sessions.json"),
            &[(Rule::DownloadedFlag, "/0/params/media.downloaded")],
        ),
        (
            fx!("invalid/x39-events.json"),
            &[(Rule::Minimum, "/playerTime/playhead")],
        ),
    ];

    /// The endpoint a fixture goes to, from its name (`NN-<endpoint>-...`, `xNN-<endpoint>.json`).
    fn endpoint_of(name: &str) -> Endpoint {
        let file = name.rsplit('/').next().unwrap();
        let word = file.split(['-', '.']).nth(1).unwrap();
        Endpoint::parse(word).unwrap_or_else(|| panic!("{name}: no endpoint in the name"))
    }

    fn run(endpoint: Endpoint, body: &[u8]) -> Checked<'_> {
        check(endpoint, body, &Policies::default(), NOW)
    }

    fn with(policies: Policies, endpoint: Endpoint, body: &str) -> Vec<(Rule, String, Severity)> {
        let checked = check(endpoint, body.as_bytes(), &policies, NOW);
        let mut v: Vec<_> = checked
            .violations
            .into_iter()
            .map(|v| (v.rule, v.path, v.severity))
            .collect();
        v.sort_by(|a, b| (a.1.as_str(), a.0.as_str()).cmp(&(b.1.as_str(), b.0.as_str())));
        v
    }

    /// (rule, path) of every error, sorted by path.
    fn errors(endpoint: Endpoint, body: &str) -> Vec<(Rule, String)> {
        with(Policies::default(), endpoint, body)
            .into_iter()
            .filter(|v| v.2 == Severity::Error)
            .map(|v| (v.0, v.1))
            .collect()
    }

    fn e(list: &[(Rule, &str)]) -> Vec<(Rule, String)> {
        list.iter().map(|(r, p)| (*r, p.to_string())).collect()
    }

    const PING: &str = r#"{"playerTime":{"playhead":10,"ts":1768507230254},"eventType":"ping"}"#;

    /// A fixture by name, from either table.
    fn bytes(name: &str) -> &'static [u8] {
        let mut all = VALID.iter().chain(INVALID.iter().map(|f| &f.0));
        all.find(|f| f.0 == name).map(|f| f.1).expect(name)
    }

    fn text(name: &str) -> String {
        String::from_utf8(bytes(name).to_vec()).unwrap()
    }

    fn session_start() -> String {
        text("vod/01-sessions-sessionStart.json")
    }

    #[test]
    fn every_valid_fixture_passes_on_its_endpoint() {
        for (name, body) in VALID {
            let endpoint = if name.contains('/') {
                endpoint_of(name)
            } else if name.starts_with("ping") {
                Endpoint::Events
            } else {
                Endpoint::Sessions
            };
            let checked = run(endpoint, body);
            assert!(
                checked.violations.is_empty(),
                "{name}: {:#?}",
                checked.violations
            );
            let events = checked.document.as_ref().expect(name).events();
            assert!(
                !events.is_empty() && events.iter().all(|e| e.event_type.is_some()),
                "{name}"
            );
        }
    }

    #[test]
    fn fixture_tables_cover_every_file() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");
        let listed: Vec<&str> = VALID
            .iter()
            .map(|f| f.0)
            .chain(INVALID.iter().map(|f| f.0 .0))
            .collect();
        for sub in ["vod", "live", "resume", "downloaded", "invalid"] {
            for entry in std::fs::read_dir(format!("{dir}/{sub}")).unwrap() {
                let name = format!("{sub}/{}", entry.unwrap().file_name().to_string_lossy());
                assert!(
                    listed.contains(&name.as_str()),
                    "{name} is not in a test table"
                );
            }
        }
    }

    #[test]
    fn every_invalid_case_is_rejected_with_the_expected_errors() {
        for ((name, body), expected) in INVALID {
            let checked = run(endpoint_of(name), body);
            let mut got: Vec<_> = checked.errors().map(|v| (v.rule, v.path.clone())).collect();
            got.sort_by(|a, b| a.1.cmp(&b.1));
            assert_eq!(got, e(expected), "{name}: {:#?}", checked.violations);
            assert!(!checked.is_valid(), "{name}");
            for v in checked.errors() {
                assert!(!v.detail.is_empty(), "{name}");
            }
        }
    }

    #[test]
    fn details_say_what_to_fix() {
        let detail = |name: &str| {
            let ((n, body), _) = INVALID.iter().find(|c| c.0 .0.contains(name)).unwrap();
            let c = run(endpoint_of(n), body);
            let d = c.errors().next().unwrap().detail.clone();
            d
        };
        assert_eq!(
            detail("x02"),
            "expected a number, got the string \"1800.5\""
        );
        assert_eq!(detail("x03"), "expected a boolean, got the string \"true\"");
        assert_eq!(
            detail("x07"),
            "expected an integer, got the string \"<timestamp>\""
        );
        assert_eq!(
            detail("x08"),
            "expected an integer, got the number 1768507200000.5"
        );
        assert_eq!(detail("x01"), "required parameter is missing");
        assert_eq!(
            detail("x25"),
            "\"pause\" is not an event type (use \"pauseStart\")"
        );
        assert_eq!(
            detail("x26"),
            "\"seekStart\" is not an event type (use \"pauseStart\")"
        );
        assert_eq!(detail("x39"), "must be >= 0, got -1");
        assert!(detail("x28").contains("\"cdn\""));
        assert!(detail("x27").contains("/api/v1/sessions"));
        assert!(detail("x06").contains("media.channel"));
        assert!(detail("x15").starts_with("the body is not valid JSON"));
        let long = format!(
            r#"{{"playerTime":{{"playhead":"{}","ts":1}},"eventType":"ping"}}"#,
            "9".repeat(50)
        );
        let c = run(Endpoint::Events, long.as_bytes());
        assert_eq!(c.violations[0].detail, "expected a number, got a string");
    }

    #[test]
    fn violations_carry_the_event_type() {
        let c = run(Endpoint::Events, bytes("invalid/x21-events.json"));
        assert_eq!(c.violations[0].event_type, Some(EventType::AdStart));
        let c = run(Endpoint::Events, br#"{"eventType":"pause"}"#);
        assert!(c.violations.iter().all(|v| v.event_type.is_none()));
        let c = run(Endpoint::Downloaded, bytes("invalid/x37-downloaded.json"));
        assert_eq!(c.violations[0].event_type, Some(EventType::Play));
    }

    #[test]
    fn unknown_params_follow_the_policy() {
        let body = text("invalid/x11-sessions.json");
        let allow = Policies {
            unknown_params: UnknownParams::Allow,
            ..Policies::default()
        };
        let got = with(allow.clone(), Endpoint::Sessions, &body);
        assert_eq!(
            got,
            [(
                Rule::UnknownParam,
                "/params/media.colour".into(),
                Severity::Warning
            )]
        );
        // Allow never extends to types documented with no params, nor to misplaced keys' types.
        let ping = r#"{"playerTime":{"playhead":1,"ts":1},"eventType":"ping","params":{"x":1}}"#;
        assert_eq!(with(allow, Endpoint::Events, ping)[0].2, Severity::Error);
        let misplaced = body.replace("media.colour", "media.ad.id");
        let c = run(Endpoint::Sessions, misplaced.as_bytes());
        assert!(c.violations[0].detail.contains("belongs on adStart"));
        let qoe = body.replace("media.colour", "media.qoe.bitrate");
        let c = run(Endpoint::Sessions, qoe.as_bytes());
        assert!(c.violations[0].detail.contains("qoeData"));
    }

    #[test]
    fn empty_params_are_tolerated_on_every_type() {
        for t in EventType::ALL {
            if rules::event_spec(t).requires_params() {
                continue;
            }
            let body = format!(
                r#"{{"playerTime":{{"playhead":1,"ts":1}},"eventType":"{}","params":{{}},"qoeData":{{}},"customMetadata":{{}}}}"#,
                t.as_str()
            );
            assert_eq!(errors(Endpoint::Events, &body), [], "{t:?}");
        }
    }

    const STATES_UPDATE: &str = r#"{"eventType":"statesUpdate","playerTime":{"playhead":0,"ts":1768507245000},
        "params":{"statesEnd":[{"media.state.name":"mute"}],
                  "statesStart":[{"media.state.name":"fullScreen"},{"media.state.name":"closedCaptioning"}]}}"#;

    #[test]
    fn states_update_is_behind_a_feature_flag() {
        assert_eq!(
            errors(Endpoint::Events, STATES_UPDATE),
            e(&[(Rule::FeatureDisabled, "/eventType")])
        );
        let on = Policies {
            states_update: true,
            ..Policies::default()
        };
        assert_eq!(with(on.clone(), Endpoint::Events, STATES_UPDATE), []);
        let cases: &[(&str, &[(Rule, &str)])] = &[
            (r#"{}"#, &[(Rule::Required, "/params")]),
            (
                r#"{"statesStart":[],"statesEnd":[]}"#,
                &[(Rule::Required, "/params")],
            ),
            (
                r#"{"statesStart":[{"media.state.name":"mute"}],"statesEnd":[]}"#,
                &[],
            ),
            (
                r#"{"statesStart":[{"media.state.name":"full screen"},7,{"name":"x"}]}"#,
                &[
                    (Rule::Pattern, "/params/statesStart/0/media.state.name"),
                    (Rule::Type, "/params/statesStart/1"),
                    (Rule::Required, "/params/statesStart/2/media.state.name"),
                    (Rule::UnknownMember, "/params/statesStart/2/name"),
                ],
            ),
            (
                r#"{"statesEnd":{"media.state.name":"mute"},"media.state.name":"mute"}"#,
                &[
                    (Rule::Required, "/params"),
                    (Rule::UnknownParam, "/params/media.state.name"),
                    (Rule::Type, "/params/statesEnd"),
                ],
            ),
        ];
        for (params, expected) in cases {
            let body = format!(
                r#"{{"eventType":"statesUpdate","playerTime":{{"playhead":0,"ts":1}},"params":{params}}}"#
            );
            let got: Vec<_> = with(on.clone(), Endpoint::Events, &body)
                .into_iter()
                .map(|v| (v.0, v.1))
                .collect();
            assert_eq!(got, e(expected), "{params}");
        }
        let missing = r#"{"eventType":"statesUpdate","playerTime":{"playhead":0,"ts":1}}"#;
        assert_eq!(with(on, Endpoint::Events, missing)[0].1, "/params");
    }

    const ERROR_PARAMS: &str = r#"{"playerTime":{"playhead":787.242,"ts":1768508100000},"eventType":"error",
        "params":{"media.errorId":"HLS_SEGMENT_404","media.errorSource":"player"}}"#;

    #[test]
    fn error_params_follow_the_policy() {
        let warn = with(Policies::default(), Endpoint::Events, ERROR_PARAMS);
        assert_eq!(
            warn,
            [
                (
                    Rule::ToleratedParam,
                    "/params/media.errorId".into(),
                    Severity::Warning
                ),
                (
                    Rule::ToleratedParam,
                    "/params/media.errorSource".into(),
                    Severity::Warning
                ),
            ]
        );
        let bad_value = ERROR_PARAMS.replace("\"player\"", "\"cdn\"");
        assert_eq!(
            errors(Endpoint::Events, &bad_value),
            e(&[(Rule::Enum, "/params/media.errorSource")])
        );
        let reject = Policies {
            error_params: ErrorParams::Reject,
            ..Policies::default()
        };
        let got = with(reject, Endpoint::Events, ERROR_PARAMS);
        assert_eq!(got.len(), 2);
        assert!(got
            .iter()
            .all(|v| v.0 == Rule::ParamsNotAllowed && v.2 == Severity::Error));
        let other = ERROR_PARAMS.replace("media.errorId", "media.errorCode");
        assert_eq!(
            errors(Endpoint::Events, &other),
            e(&[(Rule::ParamsNotAllowed, "/params/media.errorCode")])
        );
        let bare = r#"{"playerTime":{"playhead":1,"ts":1},"eventType":"error"}"#;
        assert_eq!(with(Policies::default(), Endpoint::Events, bare), []);
    }

    #[test]
    fn pod_friendly_name_on_ad_start_is_a_warning() {
        let body = text("vod/03-events-adStart.json").replace(
            "\"media.ad.id\"",
            "\"media.ad.podFriendlyName\": \"preroll\", \"media.ad.id\"",
        );
        let c = check(Endpoint::Events, body.as_bytes(), &Policies::default(), NOW);
        assert!(c.is_valid(), "{:#?}", c.violations);
        let w: Vec<_> = c.warnings().map(|v| (v.rule, v.path.as_str())).collect();
        assert_eq!(
            w,
            [(Rule::ToleratedParam, "/params/media.ad.podFriendlyName")]
        );
        let typed = body.replace("\"preroll\"", "1");
        assert_eq!(
            errors(Endpoint::Events, &typed),
            e(&[(Rule::Type, "/params/media.ad.podFriendlyName")])
        );
    }

    #[test]
    fn ts_window_applies_only_when_configured() {
        let at = |ts: i64| PING.replace("1768507230254", &ts.to_string());
        assert_eq!(errors(Endpoint::Events, &at(1)), []);
        let window = Policies {
            ts_max_age_ms: Some(60_000),
            ts_max_ahead_ms: Some(1_000),
            ..Policies::default()
        };
        let got = |ts: i64| with(window.clone(), Endpoint::Events, &at(ts));
        assert_eq!(got(NOW as i64 - 60_000), []);
        assert_eq!(got(NOW as i64 + 1_000), []);
        assert_eq!(got(NOW as i64 - 60_001)[0].0, Rule::TsWindow);
        assert_eq!(got(NOW as i64 + 1_001)[0].1, "/playerTime/ts");
        assert_eq!(got(i64::MIN)[0].0, Rule::TsWindow);
        assert_eq!(got(i64::MAX)[0].0, Rule::TsWindow);
        // Offline batches are uploaded later: only the "ahead" bound applies to them.
        let batch = VALID.last().unwrap().1;
        let c = check(Endpoint::Downloaded, batch, &window, NOW);
        assert!(c.violations.is_empty(), "{:#?}", c.violations);
        let c = check(Endpoint::Downloaded, batch, &window, 1_000_000);
        assert_eq!(c.violations.len(), 8);
    }

    #[test]
    fn duplicate_keys_are_found_in_every_object() {
        let body = r#"{"playerTime":{"playhead":1,"ts":1,"ts":2},"eventType":"adStart","eventType":"adStart",
            "params":{"media.ad.id":"a","media.ad.length":1,"media.ad.podPosition":1,"media.ad.playerName":"p",
                      "media.ad.id":"b","media.ad.podFriendlyName":"x","media.ad.podFriendlyName":"y"},
            "qoeData":{"media.qoe.bitrate":1,"media.qoe.bitrate":2},
            "customMetadata":{"k":"v","k":"w"}}"#;
        assert_eq!(
            errors(Endpoint::Events, body),
            e(&[
                (Rule::DuplicateKey, "/customMetadata/k"),
                (Rule::DuplicateKey, "/eventType"),
                (Rule::DuplicateKey, "/params/media.ad.id"),
                (Rule::DuplicateKey, "/params/media.ad.podFriendlyName"),
                (Rule::DuplicateKey, "/playerTime/ts"),
                (Rule::DuplicateKey, "/qoeData/media.qoe.bitrate"),
            ])
        );
        // A huge object stays linear: 20 000 keys, each twice.
        let keys: Vec<String> = (0..20_000)
            .map(|i| format!("\"k{}\":\"v\"", i % 10_000))
            .collect();
        let body = format!(
            r#"{{"playerTime":{{"playhead":1,"ts":1}},"eventType":"sessionStart","customMetadata":{{{}}}}}"#,
            keys.join(",")
        );
        let c = run(Endpoint::Events, body.as_bytes());
        let listed = c.errors().filter(|v| v.rule == Rule::DuplicateKey).count();
        let counted: u32 = c
            .omitted
            .iter()
            .filter(|(r, s, _)| *r == Rule::DuplicateKey && *s == Severity::Error)
            .map(|(_, _, n)| *n)
            .sum();
        // Every one is found; the first ones are listed, the rest counted.
        assert!(listed <= MAX_LISTED, "{listed}");
        assert_eq!(listed + counted as usize, 10_000);
        assert!(!c.is_valid());
    }

    #[test]
    fn an_error_list_stays_short_whatever_the_body_holds() {
        // Long keys: the byte bound cuts the list before the count does.
        let keys: Vec<String> = (0..300)
            .map(|i| format!("\"{}{i}\":1", "k".repeat(2000)))
            .collect();
        let body = format!(
            r#"{{"playerTime":{{"playhead":1,"ts":1}},"eventType":"ping","params":{{{}}}}}"#,
            keys.join(",")
        );
        let c = run(Endpoint::Events, body.as_bytes());
        let listed_bytes: usize = c
            .violations
            .iter()
            .map(|v| v.path.len() + v.detail.len())
            .sum();
        assert!(listed_bytes <= MAX_LISTED_BYTES, "{listed_bytes}");
        assert_eq!(c.violations.len() as u64 + c.omitted_count(), 300);
    }

    #[test]
    fn numbers_must_be_finite_and_integers_must_fit() {
        let ss = session_start();
        let body = ss.replace("1800.5", "1e400");
        assert_eq!(
            errors(Endpoint::Sessions, &body),
            e(&[(Rule::Finite, "/params/media.length")])
        );
        let body = ss.replace("1800.5", "-1e400");
        assert_eq!(
            errors(Endpoint::Sessions, &body),
            e(&[(Rule::Finite, "/params/media.length")])
        );
        let body = PING.replace("1768507230254", "99999999999999999999");
        assert_eq!(
            errors(Endpoint::Events, &body),
            e(&[(Rule::Finite, "/playerTime/ts")])
        );
        let body = PING.replace("1768507230254", "1e3");
        assert_eq!(
            errors(Endpoint::Events, &body),
            e(&[(Rule::Type, "/playerTime/ts")])
        );
        let body = PING.replace("1768507230254", "-5");
        assert_eq!(errors(Endpoint::Events, &body), []);
        let body = PING.replace("\"playhead\":10", "\"playhead\":-0.0");
        assert_eq!(errors(Endpoint::Events, &body), []);
        let body = PING.replace("\"playhead\":10", "\"playhead\":1e400");
        assert_eq!(
            errors(Endpoint::Events, &body),
            e(&[(Rule::Finite, "/playerTime/playhead")])
        );
        let qoe = r#"{"playerTime":{"playhead":1,"ts":1},"eventType":"ping",
            "qoeData":{"media.qoe.bitrate":-1,"media.qoe.droppedFrames":2.5,"media.qoe.errorID":""}}"#;
        assert_eq!(
            errors(Endpoint::Events, qoe),
            e(&[
                (Rule::Minimum, "/qoeData/media.qoe.bitrate"),
                (Rule::Type, "/qoeData/media.qoe.droppedFrames"),
                (Rule::MinLength, "/qoeData/media.qoe.errorID"),
            ])
        );
    }

    #[test]
    fn null_is_never_a_value() {
        let ss = session_start();
        let cases: &[(&str, &str, &str)] = &[
            ("1800.5", "null", "/params/media.length"),
            ("\"acme-web\"", "null", "/params/media.channel"),
            (
                "\"analytics.enableSSL\": true",
                "\"analytics.enableSSL\": null",
                "/params/analytics.enableSSL",
            ),
            (
                "\"playerTime\": {\"playhead\": 0, \"ts\": 1768507200000}",
                "\"playerTime\": null",
                "/playerTime",
            ),
            (
                "\"playhead\": 0",
                "\"playhead\": null",
                "/playerTime/playhead",
            ),
            (
                "\"eventType\": \"sessionStart\"",
                "\"eventType\": null",
                "/eventType",
            ),
            (
                "{\n    \"media.qoe.timeToStart\": 0\n  }",
                "null",
                "/qoeData",
            ),
            (
                "\"media.qoe.timeToStart\": 0",
                "\"media.qoe.timeToStart\": null",
                "/qoeData/media.qoe.timeToStart",
            ),
            ("\"premium\"", "null", "/customMetadata/contentTier"),
        ];
        for (from, to, path) in cases {
            assert!(ss.contains(from), "{from}");
            let body = ss.replacen(from, to, 1);
            let got = errors(Endpoint::Sessions, &body);
            assert_eq!(got, e(&[(Rule::Type, path)]), "{to} at {path}");
        }
        let params_null = ss.replacen("\"params\": {", "\"params\": null, \"x\": {", 1);
        let got = errors(Endpoint::Sessions, &params_null);
        assert_eq!(
            got,
            e(&[(Rule::Type, "/params"), (Rule::UnknownMember, "/x")])
        );
        let cm = ss.replacen(
            "\"customMetadata\": {",
            "\"customMetadata\": null, \"y\": {",
            1,
        );
        assert_eq!(
            errors(Endpoint::Sessions, &cm)[0],
            (Rule::Type, "/customMetadata".into())
        );
    }

    #[test]
    fn all_violations_are_reported_at_once() {
        let ss = session_start()
            .replace("1800.5", "\"1800.5\"")
            .replace(
                "\"analytics.enableSSL\": true",
                "\"analytics.enableSSL\": \"true\"",
            )
            .replace("\"media.channel\": \"acme-web\",", "");
        assert_eq!(
            errors(Endpoint::Sessions, &ss),
            e(&[
                (Rule::Type, "/params/analytics.enableSSL"),
                (Rule::Required, "/params/media.channel"),
                (Rule::Type, "/params/media.length"),
            ])
        );
        let body = r#"{"playerTime":{"playhead":-1},"eventType":"play","params":{"a":1},"qoeData":{"bitrate":1},"customMetadata":{"a":"b"},"extra":0}"#;
        assert_eq!(
            errors(Endpoint::Sessions, body),
            e(&[
                (Rule::CustomMetadataNotAllowed, "/customMetadata"),
                (Rule::Endpoint, "/eventType"),
                (Rule::UnknownMember, "/extra"),
                (Rule::ParamsNotAllowed, "/params/a"),
                (Rule::Minimum, "/playerTime/playhead"),
                (Rule::Required, "/playerTime/ts"),
                (Rule::UnknownQoeKey, "/qoeData/bitrate"),
            ])
        );
        assert_eq!(
            errors(Endpoint::Events, "{}"),
            e(&[
                (Rule::Required, "/eventType"),
                (Rule::Required, "/playerTime")
            ])
        );
    }

    #[test]
    fn body_kinds_per_endpoint() {
        let c = run(Endpoint::Downloaded, PING.as_bytes());
        assert_eq!(c.violations[0].rule, Rule::BodyKind);
        assert!(matches!(c.document, Some(Document::Single(_))));
        let c = run(Endpoint::Events, bytes("invalid/x36-events.json"));
        assert!(matches!(&c.document, Some(Document::Batch(v)) if v.len() == 2));
        for body in ["42", "\"x\"", "null", "true"] {
            for endpoint in [Endpoint::Sessions, Endpoint::Events, Endpoint::Downloaded] {
                let c = run(endpoint, body.as_bytes());
                assert!(c.document.is_none());
                assert_eq!(c.violations.len(), 1);
                assert_eq!(
                    (c.violations[0].rule, c.violations[0].path.as_str()),
                    (Rule::BodyKind, "")
                );
            }
        }
        let c = run(Endpoint::Events, b"\xff{}");
        assert_eq!((c.text, c.violations[0].rule), ("", Rule::Json));
        assert!(c.document.is_none());
        let c = run(Endpoint::Events, b" {\"a\": ");
        assert_eq!((c.text, c.violations[0].rule), (" {\"a\": ", Rule::Json));
        assert_eq!(run(Endpoint::Events, b"").violations[0].rule, Rule::Json);
    }

    #[test]
    fn downloaded_batches() {
        let batch = VALID.last().unwrap().1;
        // Also valid on the deprecated array form of /sessions: it carries media.downloaded: true.
        let c = run(Endpoint::Sessions, batch);
        assert!(c.violations.is_empty(), "{:#?}", c.violations);
        let Some(Document::Batch(events)) = &c.document else {
            panic!()
        };
        assert_eq!(events.len(), 8);
        assert_eq!(events[7].index, 7);
        assert_eq!(events[7].event_type, Some(EventType::SessionComplete));
        assert!(events[0].custom_metadata.is_some() && events[0].params.is_some());
        assert_eq!(
            events[0].param_str("media.id").as_deref(),
            Some("pod-ep-118")
        );
        // Without the flag it is valid on /downloaded only.
        let no_flag = bytes("invalid/x38-sessions.json");
        assert!(run(Endpoint::Downloaded, no_flag).violations.is_empty());
        let flag_false = std::str::from_utf8(batch)
            .unwrap()
            .replace("\"media.downloaded\": true", "\"media.downloaded\": false");
        assert_eq!(
            errors(Endpoint::Sessions, &flag_false),
            e(&[(Rule::DownloadedFlag, "/0/params/media.downloaded")])
        );

        let start = r#"{"eventType":"sessionStart","playerTime":{"playhead":0,"ts":10},"params":{"analytics.trackingServer":"t","analytics.reportSuite":"r","visitor.marketingCloudOrgId":"o","media.id":"i","media.length":1,"media.contentType":"vod","media.playerName":"p","media.channel":"c"}}"#;
        let ev = |t: &str, ts: i64| {
            format!(r#"{{"eventType":"{t}","playerTime":{{"playhead":0,"ts":{ts}}}}}"#)
        };
        let batch = |items: &[String]| format!("[{}]", items.join(","));
        assert_eq!(
            errors(Endpoint::Downloaded, "[]"),
            e(&[(Rule::BatchEmpty, "")])
        );
        assert_eq!(
            errors(Endpoint::Downloaded, "[ ]"),
            e(&[(Rule::BatchEmpty, "")])
        );
        let body = batch(&[
            start.into(),
            ev("play", 11),
            ev("ping", 10),
            ev("ping", 12),
            ev("ping", 12),
        ]);
        assert_eq!(
            errors(Endpoint::Downloaded, &body),
            e(&[(Rule::BatchOrder, "/2/playerTime/ts")])
        );
        let body = batch(&[start.into(), ev("play", 11), start.replace("10}", "12}")]);
        assert_eq!(
            errors(Endpoint::Downloaded, &body),
            e(&[(Rule::BatchSessionStart, "/2/eventType")])
        );
        let body = batch(&["7".into(), start.into(), ev("pause", 11), ev("play", 12)]);
        assert_eq!(
            errors(Endpoint::Downloaded, &body),
            e(&[
                (Rule::BatchFirst, "/0"),
                (Rule::Type, "/0"),
                (Rule::EventType, "/2/eventType"),
            ])
        );
        let c = run(Endpoint::Downloaded, body.as_bytes());
        let Some(Document::Batch(events)) = &c.document else {
            panic!()
        };
        assert_eq!(
            events.iter().map(|e| e.index).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let body = batch(&[
            start.into(),
            r#"{"eventType":"adStart","playerTime":{"playhead":0,"ts":11},"params":{}}"#.into(),
        ]);
        assert_eq!(
            errors(Endpoint::Downloaded, &body),
            e(&[
                (Rule::Required, "/1/params/media.ad.id"),
                (Rule::Required, "/1/params/media.ad.length"),
                (Rule::Required, "/1/params/media.ad.playerName"),
                (Rule::Required, "/1/params/media.ad.podPosition"),
            ])
        );
        // A single-object sessionStart on /sessions must not claim to be downloaded; false is fine.
        let ss = session_start().replace(
            "\"media.streamType\"",
            "\"media.downloaded\": false, \"media.streamType\"",
        );
        assert_eq!(errors(Endpoint::Sessions, &ss), []);
    }

    #[test]
    fn custom_metadata_and_customer_ids() {
        let ss = session_start().replace(
            "\"subscriptionPlan\": \"annual\"",
            "\"subscriptionPlan\": \"annual\", \"media.tier\": \"x\", \"a.b\": \"y\", \"a/b\": \"z\"",
        );
        let got = with(Policies::default(), Endpoint::Sessions, &ss);
        assert_eq!(
            got,
            [
                (
                    Rule::CustomMetadataReserved,
                    "/customMetadata/a.b".into(),
                    Severity::Warning
                ),
                (
                    Rule::CustomMetadataKey,
                    "/customMetadata/a~1b".into(),
                    Severity::Error
                ),
                (
                    Rule::CustomMetadataReserved,
                    "/customMetadata/media.tier".into(),
                    Severity::Warning
                ),
            ]
        );
        let live = text("live/01-sessions-sessionStart.json");
        let ids = live.replace(
            r#""crmId": {"id": "cust-4411", "authState": 1}"#,
            r#""crmId": {"id": 4411, "authState": 3, "x": 1}, "b": "c", "d": {}"#,
        );
        assert_eq!(
            errors(Endpoint::Sessions, &ids),
            e(&[
                (Rule::Type, "/params/visitor.customerIDs/b"),
                (Rule::Enum, "/params/visitor.customerIDs/crmId/authState"),
                (Rule::Type, "/params/visitor.customerIDs/crmId/id"),
                (Rule::UnknownMember, "/params/visitor.customerIDs/crmId/x"),
                (Rule::Required, "/params/visitor.customerIDs/d/authState"),
                (Rule::Required, "/params/visitor.customerIDs/d/id"),
            ])
        );
    }

    #[test]
    fn event_type_and_endpoint_rules() {
        let with_type = |t: &str| PING.replace("\"ping\"", t);
        assert_eq!(
            errors(Endpoint::Events, &with_type("7")),
            e(&[(Rule::Type, "/eventType")])
        );
        let cased = with_type("\"Ping\"");
        let c = run(Endpoint::Events, cased.as_bytes());
        assert!(c.violations[0].detail.contains("case-sensitive"));
        let long = format!("\"{}\"", "z".repeat(100));
        let long = with_type(&long);
        let c = run(Endpoint::Events, long.as_bytes());
        assert_eq!(c.violations[0].detail, "the value is not an event type");
        assert_eq!(
            errors(Endpoint::Sessions, PING),
            e(&[(Rule::Endpoint, "/eventType")])
        );
        let escaped = with_type("\"p\\u0069ng\"");
        assert_eq!(errors(Endpoint::Events, &escaped), []);
    }

    #[test]
    fn envelope_slots_match_the_rule_table() {
        let mut env = Envelope::default();
        for member in rules::ENVELOPE_MEMBERS {
            assert!(env.slot(member).is_some(), "{member}");
        }
        assert!(env.slot("sessionId").is_none());
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        let body = r#"{"playerTime":{"playhead":1,"ts":1},"eventType":"ping","a/b~c":1}"#;
        assert_eq!(
            errors(Endpoint::Events, body),
            e(&[(Rule::UnknownMember, "/a~1b~0c")])
        );
    }

    #[test]
    fn hostile_input_never_panics() {
        let deep = "[".repeat(100_000);
        assert_eq!(
            run(Endpoint::Downloaded, deep.as_bytes()).violations[0].rule,
            Rule::Json
        );
        let nested = format!(
            r#"{{"playerTime":{{"playhead":1,"ts":1}},"eventType":"ping","x":{}1{}}}"#,
            "[{\"a\":".repeat(60),
            "}]".repeat(60)
        );
        assert_eq!(
            errors(Endpoint::Events, &nested),
            e(&[(Rule::UnknownMember, "/x")])
        );
        let ids = format!(
            r#"{{"playerTime":{{"playhead":1,"ts":1}},"eventType":"stateStart","params":{{"media.state.name":{}1{}}}}}"#,
            "[".repeat(120),
            "]".repeat(120)
        );
        assert_eq!(
            errors(Endpoint::Events, &ids),
            e(&[(Rule::Type, "/params/media.state.name")])
        );
        // Every prefix and a few byte flips of every fixture.
        let mut bodies: Vec<&[u8]> = VALID.iter().map(|f| f.1).collect();
        bodies.extend(INVALID.iter().map(|f| f.0 .1));
        let mut policies = Policies::default();
        for (n, body) in bodies.iter().enumerate() {
            policies.states_update = n % 2 == 0;
            for end in 0..body.len() {
                for endpoint in [Endpoint::Sessions, Endpoint::Events, Endpoint::Downloaded] {
                    let _ = check(endpoint, &body[..end], &policies, NOW);
                }
            }
            let mut flipped = body.to_vec();
            for i in (0..flipped.len()).step_by(7) {
                flipped[i] ^= [0x20u8, 0x01, 0x80, 0x0f][i % 4];
                let _ = check(Endpoint::Sessions, &flipped, &policies, NOW);
            }
        }
    }

    #[test]
    fn keys_no_string_can_hold_are_never_waved_through() {
        // A body whose own keys cannot be decoded used to be valid with no document.
        let body = r#"{"\udc00": 1, "playerTime": {"playhead": 1, "ts": 1}, "eventType": "ping"}"#;
        let c = run(Endpoint::Events, body.as_bytes());
        assert_eq!(c.violations.len(), 1);
        assert_eq!(
            (c.violations[0].rule, c.violations[0].path.as_str()),
            (Rule::Type, "")
        );
        assert!(c.document.is_none());
        // Nor are customer IDs (they used to pass unchecked).
        let ids = session_start().replace(
            "\"media.id\":",
            "\"visitor.customerIDs\": {\"\\ud800\": {\"id\": \"x\", \"authState\": 9}}, \"media.id\":",
        );
        assert_eq!(
            errors(Endpoint::Sessions, &ids),
            e(&[(Rule::Type, "/params/visitor.customerIDs")])
        );
        // Where the walk reads an object, the detail says what is wrong with it.
        let pt = PING.replace("\"playhead\"", "\"\\udfff\": 0, \"playhead\"");
        let c = run(Endpoint::Events, pt.as_bytes());
        assert_eq!(c.violations[0].path, "/playerTime");
        assert_eq!(c.violations[0].detail, rules::UNDECODABLE_KEYS);
        // A paired surrogate escape is an ordinary key.
        let paired = PING.replace("\"playhead\"", "\"\\ud83d\\ude00\": 0, \"playhead\"");
        assert_eq!(
            errors(Endpoint::Events, &paired),
            e(&[(Rule::UnknownMember, "/playerTime/\u{1f600}")])
        );
        // Deeper down, where no rule reads, such keys are forwarded as before.
        let deep = PING.replace("\"ping\"", "\"ping\", \"params\": {}");
        let allow = Policies {
            unknown_params: UnknownParams::Allow,
            ..Policies::default()
        };
        let ss = session_start().replace(
            "\"media.id\":",
            "\"media.extra\": {\"\\udc00\": 1}, \"media.id\":",
        );
        assert!(check(Endpoint::Sessions, ss.as_bytes(), &allow, NOW).is_valid());
        assert!(run(Endpoint::Events, deep.as_bytes()).is_valid());
    }

    #[test]
    fn the_downloaded_flag_points_at_params_when_there_is_none() {
        let start = r#"[{"eventType":"sessionStart","playerTime":{"playhead":0,"ts":10}}]"#;
        assert_eq!(
            errors(Endpoint::Sessions, start),
            e(&[
                (Rule::DownloadedFlag, "/0/params"),
                (Rule::Required, "/0/params")
            ])
        );
    }

    /// `cargo test --release --lib mcapi::validate::tests::speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn speed() {
        let time = |name: &str, endpoint: Endpoint, body: &[u8]| {
            let p = Policies::default();
            let n = 200_000;
            let t = std::time::Instant::now();
            for _ in 0..n {
                let c = check(endpoint, std::hint::black_box(body), &p, NOW);
                assert!(c.violations.is_empty());
            }
            println!("{name}: {:.0} ns", t.elapsed().as_nanos() as f64 / n as f64);
        };
        time(
            "session-start.json",
            Endpoint::Sessions,
            bytes("session-start.json"),
        );
        time("ping.json", Endpoint::Events, bytes("ping.json"));
        time(
            "vod sessionStart",
            Endpoint::Sessions,
            bytes("vod/01-sessions-sessionStart.json"),
        );
        time(
            "downloaded batch",
            Endpoint::Downloaded,
            VALID.last().unwrap().1,
        );
    }
}
