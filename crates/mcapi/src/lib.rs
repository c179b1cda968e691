//! The Streaming Media Collection API, as data and pure functions: its routes ([`route`]), session
//! ids and their owner tokens ([`sid`]), the content types it takes ([`content_type`]), the CORS
//! headers of its answers ([`cors`]), the error body shape ([`error`]), its event types, the rule
//! tables ([`rules`]), the validation of one request body into typed violations ([`validate`])
//! and the JSON Schemas generated from the tables ([`schema`]).
//!
//! **Owns** every fact about the API; `docs/api-rules.md` is the account of the rules, and the
//! section numbers (§) in comments refer to it. **May use:** the `json` crate (one-pass
//! splitting), `serde`/`serde_json`, `http` (methods), std. No I/O, no clock (time is passed in),
//! no pingora, no tokio. The gateway, the emulator and `mediagate validate` all call [`check`],
//! so they agree on every verdict.

pub mod answer;
pub mod content_type;
pub mod cors;
pub mod error;
pub mod route;
pub mod rules;
pub mod schema;
pub mod sid;
pub mod validate;

use json::Object;
use serde::Serialize;

pub use validate::check;

/// The three POST endpoints that carry a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /api/v1/sessions`: one `sessionStart` object (or the deprecated downloaded array).
    Sessions,
    /// `POST /api/v1/sessions/{sid}/events`: one event object, any type but `sessionStart`.
    Events,
    /// `POST /api/v1/downloaded`: an array holding a whole offline session.
    Downloaded,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Sessions => "sessions",
            Endpoint::Events => "events",
            Endpoint::Downloaded => "downloaded",
        }
    }

    pub fn parse(s: &str) -> Option<Endpoint> {
        [Endpoint::Sessions, Endpoint::Events, Endpoint::Downloaded]
            .into_iter()
            .find(|e| e.as_str() == s)
    }
}

/// What to do with `params` keys that no rule names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownParams {
    /// Unknown keys are a violation (the 2018 schema's `additionalProperties: false`).
    #[default]
    Reject,
    /// Unknown keys are forwarded (counted as warnings).
    Allow,
}

/// What to do with the `params.media.errorId` / `params.media.errorSource` shape of `error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorParams {
    /// Forward, count as a warning (`docs/api-rules.md`, §3.2.8).
    #[default]
    Warn,
    /// Treat as a violation.
    Reject,
}

/// The configurable choices of the rule set (the rules `docs/api-rules.md` marks as inferred). `Default` is the documented
/// default of every `[validation]` key.
#[derive(Clone, Debug, PartialEq)]
pub struct Policies {
    pub unknown_params: UnknownParams,
    pub states_update: bool,
    pub error_params: ErrorParams,
    /// Reject a `playerTime.ts` older than this many milliseconds before `now` (none by default).
    pub ts_max_age_ms: Option<u64>,
    /// Reject a `playerTime.ts` more than this many milliseconds after `now` (none by default).
    pub ts_max_ahead_ms: Option<u64>,
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            unknown_params: UnknownParams::Reject,
            states_update: false,
            error_params: ErrorParams::Warn,
            ts_max_age_ms: None,
            ts_max_ahead_ms: None,
        }
    }
}

/// Every `eventType` the API defines, in the order of §3.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    SessionStart,
    Play,
    Ping,
    BitrateChange,
    BufferStart,
    PauseStart,
    AdBreakStart,
    AdStart,
    AdComplete,
    AdSkip,
    AdBreakComplete,
    ChapterStart,
    ChapterComplete,
    ChapterSkip,
    Error,
    SessionComplete,
    SessionEnd,
    StateStart,
    StateEnd,
    StatesUpdate,
}

impl EventType {
    pub const ALL: [EventType; 20] = [
        EventType::SessionStart,
        EventType::Play,
        EventType::Ping,
        EventType::BitrateChange,
        EventType::BufferStart,
        EventType::PauseStart,
        EventType::AdBreakStart,
        EventType::AdStart,
        EventType::AdComplete,
        EventType::AdSkip,
        EventType::AdBreakComplete,
        EventType::ChapterStart,
        EventType::ChapterComplete,
        EventType::ChapterSkip,
        EventType::Error,
        EventType::SessionComplete,
        EventType::SessionEnd,
        EventType::StateStart,
        EventType::StateEnd,
        EventType::StatesUpdate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SessionStart => "sessionStart",
            EventType::Play => "play",
            EventType::Ping => "ping",
            EventType::BitrateChange => "bitrateChange",
            EventType::BufferStart => "bufferStart",
            EventType::PauseStart => "pauseStart",
            EventType::AdBreakStart => "adBreakStart",
            EventType::AdStart => "adStart",
            EventType::AdComplete => "adComplete",
            EventType::AdSkip => "adSkip",
            EventType::AdBreakComplete => "adBreakComplete",
            EventType::ChapterStart => "chapterStart",
            EventType::ChapterComplete => "chapterComplete",
            EventType::ChapterSkip => "chapterSkip",
            EventType::Error => "error",
            EventType::SessionComplete => "sessionComplete",
            EventType::SessionEnd => "sessionEnd",
            EventType::StateStart => "stateStart",
            EventType::StateEnd => "stateEnd",
            EventType::StatesUpdate => "statesUpdate",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// Whether `customMetadata` may ride on this event type (§2.5).
    pub fn allows_custom_metadata(self) -> bool {
        matches!(
            self,
            EventType::SessionStart | EventType::AdStart | EventType::ChapterStart
        )
    }
}

/// The `media.contentType` values of §4.2 (compared lower-cased); anything else is `other`.
pub const CONTENT_TYPES: &[&str] = &[
    "vod",
    "live",
    "linear",
    "ugc",
    "dvod",
    "song",
    "podcast",
    "audiobook",
    "radio",
    "aod",
];

/// The bounded label for a `media.contentType` value.
pub fn content_type_label(value: &str) -> &'static str {
    CONTENT_TYPES
        .iter()
        .find(|c| c.eq_ignore_ascii_case(value))
        .copied()
        .unwrap_or("other")
}

/// The bounded label for an event type: its name, or `other`.
pub fn event_type_label(t: Option<EventType>) -> &'static str {
    t.map_or("other", EventType::as_str)
}

/// Whether a violation rejects the body or is only counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Violation {
    /// The last entry of a cut list: how many more violations were found.
    pub fn truncated(more: u64) -> Violation {
        Violation {
            path: String::new(),
            rule: rules::Rule::Truncated,
            detail: format!("{more} more violations were found and are not listed"),
            severity: Severity::Error,
            event_type: None,
        }
    }
}

/// One thing wrong with a body, addressed by a JSON Pointer. Serializes to the error object of
/// `docs/api-rules.md` (§1.6): `{"path", "rule", "detail"}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    pub path: String,
    pub rule: rules::Rule,
    pub detail: String,
    #[serde(skip)]
    pub severity: Severity,
    /// The event the violation is about (`None` when the body is not an event at all).
    #[serde(skip)]
    pub event_type: Option<EventType>,
}

/// One event object of a body, parsed into members, with the parts enrichment needs.
#[derive(Debug)]
pub struct Event<'a> {
    /// Position in a batch (0 for a single object).
    pub index: usize,
    pub object: Object<'a>,
    /// `None` when `eventType` is missing, not a string or not a known type.
    pub event_type: Option<EventType>,
    /// `params`, when present and an object.
    pub params: Option<Object<'a>>,
    /// `customMetadata`, when present and an object.
    pub custom_metadata: Option<Object<'a>>,
    /// `playerTime`, when present and an object.
    pub player_time: Option<Object<'a>>,
}

impl<'a> Event<'a> {
    /// A string parameter's value, when present and a string.
    pub fn param_str(&self, key: &str) -> Option<std::borrow::Cow<'a, str>> {
        self.params.as_ref()?.get(key).and_then(json::as_str)
    }

    /// A number parameter's value, when present, a number and finite.
    pub fn param_f64(&self, key: &str) -> Option<f64> {
        self.params
            .as_ref()?
            .get(key)
            .and_then(json::as_f64)
            .filter(|v| v.is_finite())
    }

    /// `playerTime.ts`, when it is an integer.
    pub fn ts(&self) -> Option<i64> {
        self.player_time.as_ref()?.get("ts").and_then(json::as_i64)
    }

    /// `playerTime.playhead`, when it is a finite number.
    pub fn playhead(&self) -> Option<f64> {
        self.player_time
            .as_ref()?
            .get("playhead")
            .and_then(json::as_f64)
            .filter(|v| v.is_finite())
    }
}

/// A body that parsed as JSON: one event object, or an array of them.
#[derive(Debug)]
pub enum Document<'a> {
    Single(Event<'a>),
    /// The object elements of an array body (elements that are not objects are left out).
    Batch(Vec<Event<'a>>),
}

impl<'a> Document<'a> {
    pub fn events(&self) -> &[Event<'a>] {
        match self {
            Document::Single(e) => std::slice::from_ref(e),
            Document::Batch(v) => v,
        }
    }

    pub fn events_mut(&mut self) -> &mut [Event<'a>] {
        match self {
            Document::Single(e) => std::slice::from_mut(e),
            Document::Batch(v) => v,
        }
    }
}

/// At most this many violations of a body are listed (the rest are only counted, by rule in
/// [`Checked::omitted`]), so that an error answer stays small whatever the body holds.
pub const MAX_LISTED: usize = 100;
/// ...and at most about this many bytes of paths and details.
pub const MAX_LISTED_BYTES: usize = 48 * 1024;

/// The outcome of [`check`]: the parsed document (when the body is JSON and an object or an
/// array) and the violations found, errors and warnings alike: the first ones listed (up to
/// [`MAX_LISTED`]), the others counted.
#[derive(Debug)]
pub struct Checked<'a> {
    pub text: &'a str,
    pub document: Option<Document<'a>>,
    pub violations: Vec<Violation>,
    /// Violations found beyond the listed ones: rule, severity and how many.
    pub omitted: Vec<(rules::Rule, Severity, u32)>,
}

impl Checked<'_> {
    pub fn is_valid(&self) -> bool {
        !self
            .violations
            .iter()
            .any(|v| v.severity == Severity::Error)
            && !self.omitted.iter().any(|(_, s, _)| *s == Severity::Error)
    }

    /// How many violations were found and not listed.
    pub fn omitted_count(&self) -> u64 {
        self.omitted.iter().map(|(_, _, n)| u64::from(*n)).sum()
    }

    pub fn errors(&self) -> impl Iterator<Item = &Violation> {
        self.violations
            .iter()
            .filter(|v| v.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Violation> {
        self.violations
            .iter()
            .filter(|v| v.severity == Severity::Warning)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_bounded_and_case_insensitive() {
        assert_eq!(content_type_label("VOD"), "vod");
        assert_eq!(content_type_label("Live"), "live");
        assert_eq!(content_type_label("my-own-type"), "other");
    }
}
