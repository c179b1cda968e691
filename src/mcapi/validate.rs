//! Validation of one request body against the rule table of `rules.rs`.
//!
//! This module owns the walk over a body: UTF-8 and JSON, the body kind each endpoint takes, the
//! envelope of every event (members, `playerTime`, `eventType` and its endpoint), `params`,
//! `qoeData` and `customMetadata` per event type, the batch rules, and the policies. It reports
//! every violation of a body (it never stops at the first one) and builds the [`Document`] that
//! enrichment works on.
//!
//! Paths are JSON Pointers: `""` for the body, `/params/media.length`, `/3/params/media.ad.id`
//! inside a batch. Conventions where the spec leaves the choice open:
//! - a missing `params` on a type that needs it is one `required` at `/params` (the detail lists
//!   the required keys); a present `params` missing a key gives `required` at `/params/<key>`;
//! - `batch_first` is at `/0`, `batch_session_start` at `/N/eventType`, `batch_order` at
//!   `/N/playerTime/ts`;
//! - when the body kind is wrong for the endpoint (an array on `/events`, an object on
//!   `/downloaded`), the only violation is `body_kind`: the rules of the endpoint cannot apply to
//!   the wrong kind, but the [`Document`] is still built for report mode.
//!
//! Cost: the body is parsed once by serde_json into borrowed raw values; objects are split into
//! members; known keys are found in sorted static tables and tracked in bitmasks; paths and
//! details are only built when a violation is recorded.

use super::json::{self, Kind, Object};
use super::rules::{self, EventSpec, KeySet, Rule, ValueType, DUPLICATE};
use super::{
    Checked, Document, Endpoint, Event, EventType, Policies, Severity, UnknownParams, Violation,
};
use serde_json::value::RawValue;
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
    };
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) => {
            let detail = format!(
                "the body is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            );
            v.error(String::new(), Rule::Json, detail);
            return v.finish("", None);
        }
    };
    let document = match serde_json::from_str::<&RawValue>(text) {
        Ok(raw) => v.document(endpoint, raw),
        Err(e) => {
            v.error(
                String::new(),
                Rule::Json,
                format!("the body is not valid JSON: {e}"),
            );
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
    player_time: Option<&'a RawValue>,
    event_type: Option<&'a RawValue>,
    params: Option<&'a RawValue>,
    qoe_data: Option<&'a RawValue>,
    custom_metadata: Option<&'a RawValue>,
}

impl<'a> Envelope<'a> {
    fn slot(&mut self, key: &str) -> Option<&mut Option<&'a RawValue>> {
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
        }
    }

    fn push(&mut self, path: String, rule: Rule, severity: Severity, detail: String) {
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

    fn document<'a>(&mut self, endpoint: Endpoint, raw: &'a RawValue) -> Option<Document<'a>> {
        match (Kind::of(raw), endpoint) {
            (Kind::Object, Endpoint::Sessions | Endpoint::Events) => {
                let event = build_event(raw, 0)?;
                self.current = event.event_type;
                self.event(&event, Place::Single(endpoint));
                if endpoint == Endpoint::Sessions
                    && event.event_type == Some(EventType::SessionStart)
                {
                    self.downloaded_flag(&event, None, false);
                }
                Some(Document::Single(event))
            }
            (Kind::Array, Endpoint::Sessions | Endpoint::Downloaded) => Some(Document::Batch(
                self.batch(raw, endpoint == Endpoint::Sessions),
            )),
            (kind, _) => {
                let expected = match endpoint {
                    Endpoint::Sessions => {
                        "a JSON object (one sessionStart event) or the deprecated array of a downloaded session"
                    }
                    Endpoint::Events => "a JSON object (one event)",
                    Endpoint::Downloaded => "a JSON array of events starting with sessionStart",
                };
                let detail = format!("expected {expected}, got {}", kind.article_name());
                self.error(String::new(), Rule::BodyKind, detail);
                unchecked_document(raw)
            }
        }
    }

    /// A batch: `/api/v1/downloaded`, or the deprecated array form of `/api/v1/sessions`.
    fn batch<'a>(&mut self, raw: &'a RawValue, deprecated: bool) -> Vec<Event<'a>> {
        let elements = json::parse_array(raw).unwrap_or_default();
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
            let event = build_event(element, i);
            self.current = event.as_ref().and_then(|e| e.event_type);
            let ts = match &event {
                Some(event) => self.event(event, Place::Element(i)),
                None => {
                    let detail =
                        format!("expected an event object, got {}", rules::describe(element));
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
            if let Some(event) = event {
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
        let path = path(at, &["params", "media.downloaded"], &[]);
        self.error(path, Rule::DownloadedFlag, detail.into());
    }

    /// Walks one event object; returns its `playerTime.ts` when that is a valid integer.
    fn event(&mut self, event: &Event<'_>, place: Place) -> Option<i64> {
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
            Some(raw) => self.player_time(raw, place),
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
            self.qoe_data(raw, at);
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
        raw: Option<&RawValue>,
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

    fn player_time(&mut self, raw: &RawValue, place: Place) -> Option<i64> {
        let at = place.index();
        let Some(object) = Object::parse(raw) else {
            let detail = format!(
                "expected an object {{\"playhead\": number, \"ts\": integer}}, got {}",
                rules::describe(raw)
            );
            self.error(path(at, &["playerTime"], &[]), Rule::Type, detail);
            return None;
        };
        let unknown = (
            Rule::UnknownMember,
            "unknown member: playerTime holds only playhead and ts",
        );
        rules::check_members(
            &object,
            &rules::PLAYER_TIME,
            unknown,
            &mut |sub, rule, d| self.error(path(at, &["playerTime"], sub), rule, d),
        );
        let ts = object.get("ts").and_then(json::as_i64)?;
        self.ts_window(ts, place);
        Some(ts)
    }

    /// The optional sanity window around `now_ms`. Batches carry offline sessions uploaded
    /// later, so only the "ahead" bound applies to them (spec §2.2).
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
        raw: Option<&RawValue>,
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
            let detail = format!("expected an object, got {}", rules::describe(raw));
            self.error(path(at, &["params"], &[]), Rule::Type, detail);
            return;
        };
        let Some(spec) = spec else {
            return;
        };
        let list = spec.params.unwrap_or(&[]);
        let mut seen = 0u64;
        let mut others = KeySet::default();
        for m in &params.members {
            let key: &str = &m.key;
            let here = |sub: &[&str]| path(at, &["params", key], sub);
            if let Some((i, p)) = rules::find(list, key) {
                let bit = 1u64 << (i % 64);
                if seen & bit != 0 {
                    self.error(here(&[]), Rule::DuplicateKey, DUPLICATE.into());
                } else {
                    seen |= bit;
                    p.ty.check(m.value, &mut |sub, rule, d| self.error(here(sub), rule, d));
                }
            } else if !others.insert(key) {
                self.error(here(&[]), Rule::DuplicateKey, DUPLICATE.into());
            } else if let Some((_, p)) = rules::find(spec.tolerated, key) {
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

    fn qoe_data(&mut self, raw: &RawValue, at: Option<usize>) {
        let Some(object) = Object::parse(raw) else {
            let detail = format!("expected an object, got {}", rules::describe(raw));
            self.error(path(at, &["qoeData"], &[]), Rule::Type, detail);
            return;
        };
        let unknown = (
            Rule::UnknownQoeKey,
            "unknown qoeData key (the keys are media.qoe.bitrate, media.qoe.droppedFrames, media.qoe.framesPerSecond, media.qoe.timeToStart, media.qoe.errorID and media.qoe.errorSource)",
        );
        rules::check_members(&object, &rules::QOE_DATA, unknown, &mut |sub, rule, d| {
            self.error(path(at, &["qoeData"], sub), rule, d)
        });
    }

    fn custom_metadata(&mut self, event: &Event<'_>, raw: &RawValue, at: Option<usize>) {
        let here = |sub: &[&str]| path(at, &["customMetadata"], sub);
        let Some(object) = &event.custom_metadata else {
            let detail = format!(
                "expected an object of strings, got {}",
                rules::describe(raw)
            );
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
                self.error(here(&[key]), Rule::CustomMetadataKey, detail);
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
    spec.params
        .unwrap_or(&[])
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

/// Builds the [`Event`] view of one raw object: `None` when it is not an object.
fn build_event(raw: &RawValue, index: usize) -> Option<Event<'_>> {
    let object = Object::parse(raw)?;
    let event_type = object
        .get("eventType")
        .and_then(json::as_str)
        .and_then(|s| EventType::parse(&s));
    let params = object.get("params").and_then(Object::parse);
    let custom_metadata = object.get("customMetadata").and_then(Object::parse);
    Some(Event {
        index,
        object,
        event_type,
        params,
        custom_metadata,
    })
}

/// The document of a body whose kind is wrong for its endpoint (not validated further).
fn unchecked_document(raw: &RawValue) -> Option<Document<'_>> {
    match Kind::of(raw) {
        Kind::Object => build_event(raw, 0).map(Document::Single),
        Kind::Array => {
            let elements = json::parse_array(raw)?;
            let events = elements
                .into_iter()
                .enumerate()
                .filter_map(|(i, e)| build_event(e, i))
                .collect();
            Some(Document::Batch(events))
        }
        _ => None,
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
