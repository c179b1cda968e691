//! The rules of the Streaming Media Collection API, as data.
//!
//! This module owns:
//! - [`Rule`], the stable identifiers of violations (error bodies, metric labels, README);
//! - the parameter table of every event type ([`event_spec`], [`known_params`]) and the tables of
//!   the envelope (`playerTime`, `qoeData`), from §2–§4 and §8 of `docs/api-rules.md`;
//! - [`ValueType`], the JSON type and constraints of one value, and its check;
//! - small look-ups other code needs: [`check_param_value`], [`check_custom_metadata_key`],
//!   [`event_type_hint`].
//!
//! Walking a whole body, applying the policies and addressing violations is `validate.rs`'s job.
//! Every check here works on borrowed [`Raw`] values and allocates only when it reports.

use super::{Endpoint, ErrorParams, EventType, Policies, UnknownParams};
use json::{Kind, Object, Raw};
use serde::{Serialize, Serializer};
#[cfg(test)]
use serde_json::value::RawValue;
use std::collections::HashSet;
use std::fmt;

macro_rules! rules {
    ($($variant:ident => $name:literal, $desc:literal;)*) => {
        /// A stable, short identifier of what a violation breaks. Serializes as its name
        /// ([`Rule::as_str`]); the names label metrics and are listed in the README.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Rule {
            $(#[doc = $desc] $variant,)*
        }

        impl Rule {
            /// Every rule, in the order of the README table.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant,)*];

            /// The snake_case name used in error bodies and metric labels.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Rule::$variant => $name,)*
                }
            }

            /// One line for the README.
            pub fn description(self) -> &'static str {
                match self {
                    $(Rule::$variant => $desc,)*
                }
            }
        }
    };
}

rules! {
    Json => "json", "The body is not UTF-8 or not JSON.";
    BodyKind => "body_kind", "The body is not the JSON kind the endpoint takes (an object for sessions and events, an array for downloaded).";
    DuplicateKey => "duplicate_key", "A key appears twice in the same object.";
    UnknownMember => "unknown_member", "A member the envelope does not define (top level, playerTime, customer IDs, state objects).";
    Required => "required", "A required member or parameter is missing.";
    Type => "type", "A value has the wrong JSON type (string for a number, fraction for an integer, null, ...).";
    Finite => "finite", "A number is out of range: it overflows a double (e.g. 1e400) or an integer does not fit 64 bits.";
    Minimum => "minimum", "A number is below its minimum (e.g. a negative playhead).";
    MinLength => "min_length", "A string that must not be empty is empty.";
    Enum => "enum", "A value is not one of the allowed values (e.g. errorSource not player/external).";
    Pattern => "pattern", "A string does not match its pattern (e.g. a state name).";
    EventType => "event_type", "eventType is not an event type of the API (incl. SDK-only names such as pause or seekStart).";
    Endpoint => "endpoint", "The event type is not accepted on this endpoint (e.g. play on /sessions, sessionStart on /events).";
    UnknownParam => "unknown_param", "A parameter the event type does not define (error, or warning when unknown params are allowed).";
    ParamsNotAllowed => "params_not_allowed", "A non-empty params on an event type documented with no parameters.";
    UnknownQoeKey => "unknown_qoe_key", "A qoeData key that is not a QoE key of the API.";
    CustomMetadataNotAllowed => "custom_metadata_not_allowed", "customMetadata on an event type other than sessionStart, adStart and chapterStart.";
    CustomMetadataKey => "custom_metadata_key", "A customMetadata key that does not match ^[a-zA-Z0-9_.]+$.";
    CustomMetadataReserved => "custom_metadata_reserved", "Warning: a customMetadata key starting with the reserved media. or a. prefix.";
    DownloadedFlag => "downloaded_flag", "media.downloaded: true on a single sessionStart, or missing/false on the deprecated array form of /sessions.";
    BatchEmpty => "batch_empty", "A batch (array body) holds no event.";
    BatchFirst => "batch_first", "The first element of a batch is not a sessionStart.";
    BatchSessionStart => "batch_session_start", "A batch holds more than one sessionStart.";
    BatchOrder => "batch_order", "playerTime.ts decreases from one batch element to the next.";
    FeatureDisabled => "feature_disabled", "statesUpdate while it is switched off in the validation policies.";
    TsWindow => "ts_window", "playerTime.ts is outside the configured sanity window around the gateway's clock.";
    ToleratedParam => "tolerated_param", "Warning: an undocumented parameter real traffic carries (podFriendlyName on adStart, media.errorId/errorSource on error).";
    SessionClosed => "session_closed", "Not a check of the body: a session rule (docs/sessions.md) refused a call to a session that ended or expired (410).";
    PlayheadRange => "playhead_range", "Not a check of the body: a session rule (docs/sessions.md) refused a playhead outside the session's range (400, when enforced).";
    Truncated => "truncated", "Not a check: the last entry of a list of violations that was cut short, saying how many more were found.";
}

impl Rule {
    /// The rule named `name` (the inverse of [`Rule::as_str`]).
    pub fn parse(name: &str) -> Option<Rule> {
        Rule::ALL.iter().copied().find(|r| r.as_str() == name)
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON type and constraints of one value. `null` never matches any of them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueType {
    /// Any string.
    String,
    /// A string of at least one character.
    NonEmptyString,
    /// A finite number (integer or fraction), at least `min` when given.
    Number {
        min: Option<f64>,
    },
    /// An integer literal (no fraction, no exponent) that fits an `i64`, at least `min` when given.
    Integer {
        min: Option<i64>,
    },
    Boolean,
    /// A string, one of the listed values.
    StringEnum(&'static [&'static str]),
    /// An integer, one of the listed values.
    IntegerEnum(&'static [i64]),
    /// A player state name: `^[a-zA-Z0-9_.]{1,64}$`.
    StateName,
    /// `visitor.customerIDs`: `{"<idType>": {"id": string, "authState": 0|1|2}, ...}`.
    CustomerIds,
    /// `statesStart` / `statesEnd`: an array of objects exactly `{"media.state.name": <state name>}`.
    StateList,
}

/// The pattern of [`ValueType::StateName`], for messages and docs.
pub const STATE_NAME_PATTERN: &str = "^[a-zA-Z0-9_.]{1,64}$";
/// The pattern of customMetadata keys (§2.5), for messages and docs.
pub const CUSTOM_METADATA_KEY_PATTERN: &str = "^[a-zA-Z0-9_.]+$";

impl ValueType {
    /// The JSON Schema `type` of the value.
    pub fn json_type(self) -> &'static str {
        match self {
            ValueType::String
            | ValueType::NonEmptyString
            | ValueType::StringEnum(_)
            | ValueType::StateName => "string",
            ValueType::Number { .. } => "number",
            ValueType::Integer { .. } | ValueType::IntegerEnum(_) => "integer",
            ValueType::Boolean => "boolean",
            ValueType::CustomerIds => "object",
            ValueType::StateList => "array",
        }
    }

    fn kind(self) -> Kind {
        match self {
            ValueType::String
            | ValueType::NonEmptyString
            | ValueType::StringEnum(_)
            | ValueType::StateName => Kind::String,
            ValueType::Number { .. } | ValueType::Integer { .. } | ValueType::IntegerEnum(_) => {
                Kind::Number
            }
            ValueType::Boolean => Kind::Bool,
            ValueType::CustomerIds => Kind::Object,
            ValueType::StateList => Kind::Array,
        }
    }

    /// What a detail message says was expected ("expected a number, ...").
    fn expected(self) -> &'static str {
        match self {
            ValueType::String | ValueType::StringEnum(_) | ValueType::StateName => "a string",
            ValueType::NonEmptyString => "a non-empty string",
            ValueType::Number { .. } => "a number",
            ValueType::Integer { .. } | ValueType::IntegerEnum(_) => "an integer",
            ValueType::Boolean => "a boolean",
            ValueType::CustomerIds => "an object of customer IDs",
            ValueType::StateList => "an array of state objects",
        }
    }

    /// Checks `raw`; each problem is reported as (pointer tokens below `raw`, rule, detail).
    /// Returns true when nothing was reported.
    pub fn check(self, raw: Raw<'_>, report: &mut Report<'_>) -> bool {
        if Kind::of(raw) != self.kind() {
            report(
                &[],
                Rule::Type,
                format!("expected {}, got {}", self.expected(), describe(raw)),
            );
            return false;
        }
        match self {
            ValueType::CustomerIds => check_customer_ids(raw, report),
            ValueType::StateList => check_state_list(raw, report),
            leaf => match leaf.check_leaf(raw) {
                Ok(()) => true,
                Err((rule, detail)) => {
                    report(&[], rule, detail);
                    false
                }
            },
        }
    }

    /// The checks of a scalar whose JSON kind is already right.
    fn check_leaf(self, raw: Raw<'_>) -> Result<(), (Rule, String)> {
        match self {
            ValueType::NonEmptyString if raw.get().len() <= 2 => {
                Err((Rule::MinLength, "must not be an empty string".into()))
            }
            ValueType::Number { min } => {
                let v = match json::as_f64(raw) {
                    Some(v) if v.is_finite() => v,
                    _ => return Err((Rule::Finite, out_of_range(raw, "a finite double"))),
                };
                match min {
                    Some(m) if v < m => Err((Rule::Minimum, below(m, raw))),
                    _ => Ok(()),
                }
            }
            ValueType::Integer { min } => {
                let v = integer(raw)?;
                match min {
                    Some(m) if v < m => Err((Rule::Minimum, below(m, raw))),
                    _ => Ok(()),
                }
            }
            ValueType::IntegerEnum(values) => {
                let v = integer(raw)?;
                if values.contains(&v) {
                    Ok(())
                } else {
                    let list: Vec<String> = values.iter().map(i64::to_string).collect();
                    Err((
                        Rule::Enum,
                        format!("must be one of {}, got {}", list.join(", "), raw.get()),
                    ))
                }
            }
            ValueType::StringEnum(values) => match json::as_str(raw) {
                Some(s) if values.contains(&&*s) => Ok(()),
                _ => {
                    let list: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
                    Err((
                        Rule::Enum,
                        format!("must be one of {}, got {}", list.join(", "), describe(raw)),
                    ))
                }
            },
            ValueType::StateName => match json::as_str(raw) {
                Some(s) if is_state_name(&s) => Ok(()),
                _ => Err((
                    Rule::Pattern,
                    format!(
                        "{} does not match {STATE_NAME_PATTERN} (1 to 64 letters, digits, '_' or '.')",
                        shown(raw)
                    ),
                )),
            },
            _ => Ok(()),
        }
    }
}

/// Human names for README tables: `number >= 0`, `string (player|external)`, ...
impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ValueType::String => f.write_str("string"),
            ValueType::NonEmptyString => f.write_str("non-empty string"),
            ValueType::Number { min: None } => f.write_str("number"),
            ValueType::Number { min: Some(m) } => write!(f, "number >= {m}"),
            ValueType::Integer { min: None } => f.write_str("integer"),
            ValueType::Integer { min: Some(m) } => write!(f, "integer >= {m}"),
            ValueType::Boolean => f.write_str("boolean"),
            ValueType::StringEnum(v) => write!(f, "string ({})", v.join("|")),
            ValueType::IntegerEnum(v) => {
                let list: Vec<String> = v.iter().map(i64::to_string).collect();
                write!(f, "integer ({})", list.join("|"))
            }
            ValueType::StateName => write!(f, "string {STATE_NAME_PATTERN}"),
            ValueType::CustomerIds => {
                f.write_str("object {<idType>: {id: string, authState: 0|1|2}}")
            }
            ValueType::StateList => write!(f, "array of {{\"media.state.name\": state name}}"),
        }
    }
}

/// Where a value check reports: (pointer tokens below the checked value, rule, detail).
pub type Report<'r> = dyn FnMut(&[&str], Rule, String) + 'r;

/// One documented key of an object (a parameter, a `playerTime` or `qoeData` member).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamSpec {
    pub key: &'static str,
    pub ty: ValueType,
    pub required: bool,
}

/// The documented keys of one object, in the documentation's order, with a look-up compiled from the same
/// list (a chain of comparisons against constant strings, which the compiler turns into length
/// checks and word compares: no hashing, no call per candidate).
pub struct Table {
    pub params: &'static [ParamSpec],
    position: fn(&str) -> Option<usize>,
}

impl Table {
    /// The entry for `key` and its position in [`Table::params`].
    pub fn find(&self, key: &str) -> Option<(usize, &'static ParamSpec)> {
        let i = (self.position)(key)?;
        self.params.get(i).map(|p| (i, p))
    }
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.params).finish()
    }
}

/// `table!(NAME = ["key": TYPE, required; "key": TYPE; ...])` defines a [`Table`].
macro_rules! table {
    ($(#[$doc:meta])* $vis:vis $name:ident = [$($key:literal: $ty:expr $(, $req:ident)?;)*]) => {
        $(#[$doc])*
        $vis static $name: Table = Table {
            params: &[$(ParamSpec { key: $key, ty: $ty, required: table!(@req $($req)?) }),*],
            position: {
                #[allow(unused_assignments, unused_mut, unused_variables)]
                fn position(key: &str) -> Option<usize> {
                    let mut i = 0usize;
                    $(
                        if key == $key {
                            return Some(i);
                        }
                        i += 1;
                    )*
                    None
                }
                position
            },
        };
        const _: () = assert!($name.params.len() <= 64, "seen-sets are u64 bitmasks");
    };
    (@req required) => { true };
    (@req) => { false };
}

const STR: ValueType = ValueType::String;
/// Required identity/routing strings are non-empty: an empty report suite or media id is never
/// meaningful (the JS SDK substitutes "unknown" rather than send an empty player name).
const NES: ValueType = ValueType::NonEmptyString;
const BOOL: ValueType = ValueType::Boolean;
const NUM_GE0: ValueType = ValueType::Number { min: Some(0.0) };
const INT_GE0: ValueType = ValueType::Integer { min: Some(0) };
const INT: ValueType = ValueType::Integer { min: None };
const ERROR_SOURCE: ValueType = ValueType::StringEnum(&["player", "external"]);

/// The members of an event object (§2.1); nothing else is allowed at the top level.
pub const ENVELOPE_MEMBERS: [&str; 5] = [
    "playerTime",
    "eventType",
    "params",
    "qoeData",
    "customMetadata",
];

table! {
    /// `playerTime`, exactly `{playhead, ts}` (§2.2).
    pub PLAYER_TIME = [
        "playhead": NUM_GE0, required;
        "ts": INT, required;
    ]
}

table! {
    /// The keys of `qoeData` (§2.4), all optional, allowed on every event type.
    pub QOE_DATA = [
        "media.qoe.bitrate": INT_GE0;
        "media.qoe.droppedFrames": INT_GE0;
        "media.qoe.framesPerSecond": INT_GE0;
        "media.qoe.timeToStart": INT_GE0;
        "media.qoe.errorID": NES;
        "media.qoe.errorSource": ERROR_SOURCE;
    ]
}

table! {
    /// `sessionStart` params (§4.1, §8).
    SESSION_START = [
        // Analytics
        "analytics.trackingServer": NES, required;
        "analytics.reportSuite": NES, required;
        "analytics.enableSSL": BOOL;
        "analytics.visitorId": STR;
        "analytics.aid": STR;
        "analytics.optOutServerSideForwarding": BOOL;
        "analytics.optOutShare": BOOL;
        // Visitor / identity
        "visitor.marketingCloudOrgId": NES, required;
        "visitor.marketingCloudUserId": STR;
        "visitor.aamLocationHint": INT;
        "visitor.customerIDs": ValueType::CustomerIds;
        "appInstallationId": STR;
        // Core content
        "media.id": NES, required;
        "media.length": NUM_GE0, required;
        "media.contentType": NES, required;
        "media.playerName": NES, required;
        "media.channel": NES, required;
        "media.name": STR;
        "media.streamType": STR;
        "media.resume": BOOL;
        "media.downloaded": BOOL;
        "media.sdkVersion": STR;
        "media.libraryVersion": STR;
        "media.publisher": STR;
        // Standard content metadata
        "media.show": STR;
        "media.season": STR;
        "media.episode": STR;
        "media.assetId": STR;
        "media.genre": STR;
        "media.firstAirDate": STR;
        "media.firstDigitalDate": STR;
        "media.rating": STR;
        "media.originator": STR;
        "media.network": STR;
        "media.showType": STR;
        "media.adLoad": STR;
        "media.pass.mvpd": STR;
        "media.pass.auth": STR;
        "media.dayPart": STR;
        "media.feed": STR;
        "media.streamFormat": STR;
        "media.artist": STR;
        "media.album": STR;
        "media.label": STR;
        "media.author": STR;
        "media.station": STR;
    ]
}

table! {
    /// `adBreakStart` params (§3.2.3).
    AD_BREAK_START = [
        "media.ad.podIndex": INT_GE0, required;
        "media.ad.podSecond": NUM_GE0, required;
        "media.ad.podFriendlyName": STR;
    ]
}

table! {
    /// `adStart` params (§3.2.4).
    AD_START = [
        "media.ad.id": NES, required;
        "media.ad.length": NUM_GE0, required;
        "media.ad.podPosition": INT_GE0, required;
        "media.ad.playerName": NES, required;
        "media.ad.name": STR;
        "media.ad.advertiser": STR;
        "media.ad.campaignId": STR;
        "media.ad.creativeId": STR;
        "media.ad.siteId": STR;
        "media.ad.creativeURL": STR;
        "media.ad.placementId": STR;
    ]
}

table! {
    /// `chapterStart` params (§3.2.5).
    CHAPTER_START = [
        "media.chapter.index": INT_GE0, required;
        "media.chapter.offset": NUM_GE0, required;
        "media.chapter.length": NUM_GE0, required;
        "media.chapter.friendlyName": STR;
    ]
}

table! {
    /// `stateStart` / `stateEnd` params (§3.2.6), and one element of `statesStart` /
    /// `statesEnd` (§3.2.10).
    pub STATE = [
        "media.state.name": ValueType::StateName, required;
    ]
}

table! {
    /// `statesUpdate` params (§3.2.10); at least one of the two is a non-empty array.
    STATES_UPDATE = [
        "statesStart": ValueType::StateList;
        "statesEnd": ValueType::StateList;
    ]
}

table! {
    /// One entry of `visitor.customerIDs` (§4.1).
    pub CUSTOMER_ID = [
        "id": STR, required;
        "authState": ValueType::IntegerEnum(&[0, 1, 2]), required;
    ]
}

table! {
    /// `adStart` carries `media.ad.podFriendlyName` in real traffic (§3.2.4).
    AD_START_TOLERATED = [
        "media.ad.podFriendlyName": STR;
    ]
}

table! {
    /// The params shape of `error` on the 2026 Experience League page (§3.2.8).
    ERROR_TOLERATED = [
        "media.errorId": NES;
        "media.errorSource": ERROR_SOURCE;
    ]
}

table! {
    NOTHING = []
}

/// Which policy decides whether an event type's `tolerated` params are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tolerance {
    /// Always forwarded with a `tolerated_param` warning.
    Always,
    /// Forwarded with a warning under [`ErrorParams::Warn`], `params_not_allowed` under Reject.
    ErrorParams,
}

/// The rules of one event type.
#[derive(Debug)]
pub struct EventSpec {
    /// The single-object endpoint that takes this type (any type may ride in a batch).
    pub endpoint: Endpoint,
    /// The documented params; `None` for types documented with no params (a non-empty
    /// `params` is then `params_not_allowed`; `params: {}` is tolerated).
    pub params: Option<&'static Table>,
    /// When not empty, at least one of these params must be a non-empty array (statesUpdate).
    pub any_of: &'static [&'static str],
    /// Undocumented params that real traffic carries (see [`Tolerance`]).
    pub tolerated: &'static Table,
    pub tolerance: Tolerance,
    /// Whether `customMetadata` may ride on this type (§2.5).
    pub custom_metadata: bool,
    /// Accepted only when [`Policies::states_update`] is on.
    pub feature_flag: bool,
}

const fn no_params(custom_metadata: bool) -> EventSpec {
    EventSpec {
        endpoint: Endpoint::Events,
        params: None,
        any_of: &[],
        tolerated: &NOTHING,
        tolerance: Tolerance::Always,
        custom_metadata,
        feature_flag: false,
    }
}

const fn with_params(table: &'static Table, custom_metadata: bool) -> EventSpec {
    EventSpec {
        params: Some(table),
        ..no_params(custom_metadata)
    }
}

static SPEC_SESSION_START: EventSpec = EventSpec {
    endpoint: Endpoint::Sessions,
    ..with_params(&SESSION_START, true)
};
static SPEC_NONE: EventSpec = no_params(false);
static SPEC_AD_BREAK_START: EventSpec = with_params(&AD_BREAK_START, false);
static SPEC_AD_START: EventSpec = EventSpec {
    tolerated: &AD_START_TOLERATED,
    ..with_params(&AD_START, true)
};
static SPEC_CHAPTER_START: EventSpec = with_params(&CHAPTER_START, true);
static SPEC_STATE: EventSpec = with_params(&STATE, false);
static SPEC_STATES_UPDATE: EventSpec = EventSpec {
    any_of: &["statesStart", "statesEnd"],
    feature_flag: true,
    ..with_params(&STATES_UPDATE, false)
};
static SPEC_ERROR: EventSpec = EventSpec {
    tolerated: &ERROR_TOLERATED,
    tolerance: Tolerance::ErrorParams,
    ..no_params(false)
};

/// The rules of `event`.
pub fn event_spec(event: EventType) -> &'static EventSpec {
    match event {
        EventType::SessionStart => &SPEC_SESSION_START,
        EventType::AdBreakStart => &SPEC_AD_BREAK_START,
        EventType::AdStart => &SPEC_AD_START,
        EventType::ChapterStart => &SPEC_CHAPTER_START,
        EventType::StateStart | EventType::StateEnd => &SPEC_STATE,
        EventType::StatesUpdate => &SPEC_STATES_UPDATE,
        EventType::Error => &SPEC_ERROR,
        EventType::Play
        | EventType::Ping
        | EventType::BitrateChange
        | EventType::BufferStart
        | EventType::PauseStart
        | EventType::AdComplete
        | EventType::AdSkip
        | EventType::AdBreakComplete
        | EventType::ChapterComplete
        | EventType::ChapterSkip
        | EventType::SessionComplete
        | EventType::SessionEnd => &SPEC_NONE,
    }
}

impl EventSpec {
    /// The documented params (empty for types documented with none).
    pub fn param_list(&self) -> &'static [ParamSpec] {
        self.params.map_or(&[], |t| t.params)
    }

    /// The documented param `key`, with its position in [`EventSpec::param_list`].
    pub fn param(&self, key: &str) -> Option<(usize, &'static ParamSpec)> {
        self.params?.find(key)
    }

    /// Whether the tolerated params are accepted (with a warning) under `policies`.
    pub fn tolerates(&self, policies: &Policies) -> bool {
        match self.tolerance {
            Tolerance::Always => true,
            Tolerance::ErrorParams => policies.error_params == ErrorParams::Warn,
        }
    }

    /// Whether a body of this type must carry `params`.
    pub fn requires_params(&self) -> bool {
        !self.any_of.is_empty() || self.param_list().iter().any(|p| p.required)
    }
}

/// The documented params of `event`, in the documentation's order: key, [`ValueType`] (`json_type()` for
/// a JSON Schema, `Display` for docs) and whether it is required. The undocumented shapes that
/// are tolerated with a warning are `event_spec(event).tolerated`; the envelope tables are
/// [`PLAYER_TIME`] and [`QOE_DATA`].
pub fn known_params(event: EventType) -> impl Iterator<Item = &'static ParamSpec> {
    event_spec(event).param_list().iter()
}

/// The event type whose documented params include `key`, for "belongs on ..." hints.
pub fn owner_of_param(key: &str) -> Option<EventType> {
    EventType::ALL
        .into_iter()
        .find(|&e| event_spec(e).param(key).is_some())
}

/// Event names that SDK APIs use but the wire does not (§2.3), with what to send instead.
pub static SDK_ONLY_EVENT_TYPES: &[(&str, &str)] = &[
    ("pause", "use \"pauseStart\""),
    ("resume", "use \"play\""),
    (
        "bufferComplete",
        "use \"play\": the next play ends the buffering",
    ),
    (
        "bufferResume",
        "use \"play\": the next play ends the buffering",
    ),
    (
        "bufferEnd",
        "use \"play\": the next play ends the buffering",
    ),
    ("seekStart", "use \"pauseStart\""),
    ("seekComplete", "use \"play\""),
    ("complete", "use \"sessionComplete\""),
    ("contentComplete", "use \"sessionComplete\""),
    (
        "adBreakSkip",
        "send \"adSkip\" for the current ad, then \"adBreakComplete\"",
    ),
    ("qoeUpdate", "send QoE values in the qoeData of any event"),
    ("playheadUpdate", "use \"ping\""),
];

/// What to send instead of the unknown event type `name`, when there is a good guess.
pub fn event_type_hint(name: &str) -> Option<String> {
    if let Some((_, hint)) = SDK_ONLY_EVENT_TYPES.iter().find(|(n, _)| *n == name) {
        return Some((*hint).to_string());
    }
    EventType::ALL
        .into_iter()
        .find(|e| e.as_str().eq_ignore_ascii_case(name))
        .map(|e| format!("event types are case-sensitive: use \"{}\"", e.as_str()))
}

/// Why a value a configured rule would put into a body is refused (a sentence naming the key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueError(pub String);

impl std::fmt::Display for ValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ValueError {}

/// customMetadata key prefixes that are reserved (a warning, §2.5), with the reason.
pub static RESERVED_CUSTOM_METADATA_PREFIXES: &[(&str, &str)] = &[
    ("media.", "collides with the standard media.* fields"),
    ("a.", "is reserved by Adobe"),
];

/// Checks a customMetadata key against `^[a-zA-Z0-9_.]+$`. A reserved prefix is only a warning
/// and passes here (see [`reserved_custom_metadata_prefix`]).
pub fn check_custom_metadata_key(key: &str) -> Result<(), ValueError> {
    if !key.is_empty() && key.bytes().all(is_name_byte) {
        Ok(())
    } else {
        Err(ValueError(format!(
            "customMetadata key {} does not match {CUSTOM_METADATA_KEY_PATTERN} (letters, digits, '_' and '.' only)",
            quote(key)
        )))
    }
}

/// The reserved prefix `key` starts with and why it is reserved.
pub fn reserved_custom_metadata_prefix(key: &str) -> Option<(&'static str, &'static str)> {
    RESERVED_CUSTOM_METADATA_PREFIXES
        .iter()
        .copied()
        .find(|(prefix, _)| key.starts_with(prefix))
}

/// Whether `(key, value)` is allowed in the `params` of `event` under `policies` — as a value a
/// configured enrichment rule would add, so `media.downloaded: true` is refused (it turns an
/// online sessionStart into a 400) and a tolerated shape is allowed only when it is forwarded.
pub fn check_param_value(
    event: EventType,
    key: &str,
    value: &serde_json::Value,
    policies: &Policies,
) -> Result<(), ValueError> {
    let spec = event_spec(event);
    let name = event.as_str();
    if spec.feature_flag && !policies.states_update {
        return Err(ValueError(format!(
            "{name} is switched off in the validation policies"
        )));
    }
    let ty = if let Some((_, p)) = spec.param(key) {
        p.ty
    } else if let Some((_, p)) = spec.tolerated.find(key) {
        if !spec.tolerates(policies) {
            return Err(ValueError(format!(
                "{key}: not accepted in the params of {name}"
            )));
        }
        p.ty
    } else if spec.params.is_none() {
        return Err(ValueError(format!("{key}: {name} takes no parameters")));
    } else if policies.unknown_params == UnknownParams::Allow {
        return Ok(());
    } else {
        return Err(ValueError(format!("{key}: not a parameter of {name}")));
    };
    if event == EventType::SessionStart && key == "media.downloaded" && *value == true {
        return Err(ValueError(format!(
            "{key}: true is only valid in a downloaded batch, never on a single sessionStart"
        )));
    }
    let raw =
        serde_json::value::to_raw_value(value).map_err(|e| ValueError(format!("{key}: {e}")))?;
    let mut first: Option<String> = None;
    ty.check(Raw::from(&raw), &mut |sub, _rule, detail| {
        if first.is_none() {
            let mut path = key.to_string();
            for t in sub {
                path.push('/');
                path.push_str(t);
            }
            first = Some(format!("{path}: {detail}"));
        }
    });
    first.map_or(Ok(()), |detail| Err(ValueError(detail)))
}

/// Checks the members of `object` against `table`: each known member's value, duplicates,
/// missing required members; an unknown key is reported as `unknown` (rule, detail).
pub fn check_members(
    object: &Object<'_>,
    table: &Table,
    unknown: (Rule, &str),
    report: &mut Report<'_>,
) {
    let mut seen = 0u64;
    let mut others = KeySet::default();
    for m in &object.members {
        let key: &str = &m.key;
        match table.find(key) {
            Some((i, p)) => {
                let bit = 1u64 << (i % 64);
                if seen & bit != 0 {
                    report(&[key], Rule::DuplicateKey, DUPLICATE.into());
                } else {
                    seen |= bit;
                    p.ty.check(m.value, &mut |sub, rule, detail| {
                        report(&prefixed(key, sub), rule, detail)
                    });
                }
            }
            None if !others.insert(key) => report(&[key], Rule::DuplicateKey, DUPLICATE.into()),
            None => report(&[key], unknown.0, unknown.1.into()),
        }
    }
    for (i, p) in table.params.iter().enumerate() {
        if p.required && seen & (1u64 << (i % 64)) == 0 {
            report(
                &[p.key],
                Rule::Required,
                "required member is missing".into(),
            );
        }
    }
}

/// The detail of a `duplicate_key` violation.
pub const DUPLICATE: &str = "duplicate key: each key may appear only once";

/// The detail of a `type` violation on an object one of whose keys is an unpaired UTF-16
/// surrogate escape (such as `"\udc00"`): JSON's grammar allows it, no string can hold it.
pub const UNDECODABLE_KEYS: &str =
    "expected an object with string keys, got an object with a key that is not Unicode text (an unpaired surrogate escape)";

fn check_customer_ids(raw: Raw<'_>, report: &mut Report<'_>) -> bool {
    let Some(ids) = Object::parse(raw) else {
        // An object (the kind was checked) with a key no string can hold.
        report(
            &[],
            Rule::Type,
            object_expected("an object of customer IDs", raw),
        );
        return false;
    };
    let mut ok = true;
    let mut names = KeySet::default();
    for m in &ids.members {
        let name: &str = &m.key;
        let mut sub = |tokens: &[&str], rule, detail| {
            ok = false;
            report(&prefixed(name, tokens), rule, detail)
        };
        if !names.insert(name) {
            sub(&[], Rule::DuplicateKey, DUPLICATE.into());
        } else if let Some(entry) = Object::parse(m.value) {
            let unknown = (
                Rule::UnknownMember,
                "unknown member (an entry is {\"id\", \"authState\"})",
            );
            check_members(&entry, &CUSTOMER_ID, unknown, &mut sub);
        } else {
            let detail =
                object_expected("an object {\"id\": string, \"authState\": 0|1|2}", m.value);
            sub(&[], Rule::Type, detail);
        }
    }
    ok
}

fn check_state_list(raw: Raw<'_>, report: &mut Report<'_>) -> bool {
    let Some(items) = json::parse_array(raw) else {
        return false;
    };
    let mut ok = true;
    for (i, item) in items.into_iter().enumerate() {
        let index = i.to_string();
        let mut sub = |tokens: &[&str], rule, detail| {
            ok = false;
            report(&prefixed(&index, tokens), rule, detail)
        };
        if let Some(state) = Object::parse(item) {
            let unknown = (
                Rule::UnknownMember,
                "unknown member (a state is {\"media.state.name\": name})",
            );
            check_members(&state, &STATE, unknown, &mut sub);
        } else {
            let detail = object_expected("an object {\"media.state.name\": name}", item);
            sub(&[], Rule::Type, detail);
        }
    }
    ok
}

fn prefixed<'t>(head: &'t str, tail: &[&'t str]) -> Vec<&'t str> {
    let mut v = Vec::with_capacity(tail.len() + 1);
    v.push(head);
    v.extend_from_slice(tail);
    v
}

/// Whether `raw` is an array with at least one element.
pub fn is_non_empty_array<'a>(raw: impl Into<Raw<'a>>) -> bool {
    let raw = raw.into();
    Kind::of(raw) == Kind::Array
        && raw
            .get()
            .get(1..)
            .unwrap_or("")
            .trim_start()
            .as_bytes()
            .first()
            != Some(&b']')
}

/// A set of keys for duplicate detection: a linear scan up to 16 keys, hashed beyond, so a huge
/// object stays linear. Costs nothing until the first insert.
#[derive(Default)]
pub struct KeySet<'k> {
    few: Vec<&'k str>,
    many: Option<HashSet<&'k str>>,
}

impl<'k> KeySet<'k> {
    const FEW: usize = 16;

    /// Adds `key`; false when it was already there.
    pub fn insert(&mut self, key: &'k str) -> bool {
        if let Some(set) = &mut self.many {
            return set.insert(key);
        }
        if self.few.contains(&key) {
            return false;
        }
        if self.few.len() < Self::FEW {
            self.few.push(key);
        } else {
            let mut set: HashSet<&str> = self.few.drain(..).collect();
            set.insert(key);
            self.many = Some(set);
        }
        true
    }
}

/// Whether `s` is a valid player state name (`^[a-zA-Z0-9_.]{1,64}$`).
pub fn is_state_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(is_name_byte)
}

fn is_name_byte(b: u8) -> bool {
    NAME_BYTES[usize::from(b)]
}

/// `[a-zA-Z0-9_.]`, as a table: one load per byte.
static NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'.';
        b += 1;
    }
    table
};

/// Values longer than this many bytes of JSON text are described by type, not quoted.
const QUOTE_MAX: usize = 40;

/// Describes a value for a detail message: `the string "1800.5"`, `the number 1.5`, `null`,
/// `an object`; long values by their type only.
pub fn describe<'a>(raw: impl Into<Raw<'a>>) -> String {
    let raw = raw.into();
    let text = raw.get();
    match Kind::of(raw) {
        Kind::Null => "null".into(),
        Kind::Bool => format!("the boolean {text}"),
        Kind::Number if text.len() <= QUOTE_MAX => format!("the number {text}"),
        Kind::String if text.len() <= QUOTE_MAX + 2 => format!("the string {text}"),
        kind => kind.article_name().into(),
    }
}

/// The detail of a `type` violation where an object was expected: `expected <what>, got ...`,
/// or [`UNDECODABLE_KEYS`] when `raw` is an object that could not be split.
pub fn object_expected(what: &str, raw: Raw<'_>) -> String {
    if raw.kind() == Kind::Object {
        UNDECODABLE_KEYS.into()
    } else {
        format!("expected {what}, got {}", describe(raw))
    }
}

/// A string value as JSON text when short, else `the value`.
pub fn shown<'a>(raw: impl Into<Raw<'a>>) -> &'a str {
    let text = raw.into().get();
    if text.len() <= QUOTE_MAX + 2 {
        text
    } else {
        "the value"
    }
}

/// A key quoted as JSON for a message, or `(long key)`.
fn quote(s: &str) -> String {
    if s.len() <= QUOTE_MAX {
        serde_json::to_string(s).unwrap_or_default()
    } else {
        "(long key)".into()
    }
}

fn integer(raw: Raw<'_>) -> Result<i64, (Rule, String)> {
    if let Some(v) = json::as_i64(raw) {
        return Ok(v);
    }
    if !json::is_integer_literal(raw) {
        return Err((
            Rule::Type,
            format!("expected an integer, got {}", describe(raw)),
        ));
    }
    Err((Rule::Finite, out_of_range(raw, "a 64-bit integer")))
}

fn out_of_range(raw: Raw<'_>, what: &str) -> String {
    let text = raw.get();
    if text.len() <= QUOTE_MAX {
        format!("the number {text} is out of range (must fit {what})")
    } else {
        format!("the number is out of range (must fit {what})")
    }
}

fn below<T: fmt::Display>(min: T, raw: Raw<'_>) -> String {
    let text = raw.get();
    if text.len() <= QUOTE_MAX {
        format!("must be >= {min}, got {text}")
    } else {
        format!("must be >= {min}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all_tables() -> Vec<(&'static str, &'static Table)> {
        let mut tables: Vec<(&str, &Table)> = vec![
            ("playerTime", &PLAYER_TIME),
            ("qoeData", &QOE_DATA),
            ("customerIDs entry", &CUSTOMER_ID),
        ];
        for e in EventType::ALL {
            let spec = event_spec(e);
            tables.extend(spec.params.map(|t| (e.as_str(), t)));
            tables.push((e.as_str(), spec.tolerated));
        }
        tables
    }

    #[test]
    fn tables_have_unique_keys_and_their_lookup_agrees() {
        for (name, table) in all_tables() {
            let mut keys = HashSet::new();
            for (i, p) in table.params.iter().enumerate() {
                assert!(keys.insert(p.key), "{name}: {} twice", p.key);
                assert_eq!(
                    table.find(p.key).map(|(j, _)| j),
                    Some(i),
                    "{name}: {}",
                    p.key
                );
                assert_eq!(table.find(&p.key[1..]), None);
            }
            assert_eq!(table.find(""), None);
        }
        assert_eq!(SESSION_START.params.len(), 46);
    }

    #[test]
    fn rule_names_are_unique_snake_case_and_serialize_as_their_name() {
        let mut names = HashSet::new();
        for &rule in Rule::ALL {
            let name = rule.as_str();
            assert!(names.insert(name), "{name} twice");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert_eq!(serde_json::to_string(&rule).unwrap(), format!("\"{name}\""));
            assert_eq!(Rule::parse(name), Some(rule));
            assert!(!rule.description().is_empty() && !rule.description().contains('\n'));
        }
        assert_eq!(Rule::ALL.len(), 30);
        assert_eq!(Rule::parse("nope"), None);
    }

    #[test]
    fn event_table_matches_the_spec_overview() {
        for e in EventType::ALL {
            let spec = event_spec(e);
            assert_eq!(spec.custom_metadata, e.allows_custom_metadata(), "{e:?}");
            let sessions = e == EventType::SessionStart;
            assert_eq!(spec.endpoint == Endpoint::Sessions, sessions, "{e:?}");
            assert_eq!(spec.feature_flag, e == EventType::StatesUpdate);
        }
        let mut required: Vec<&str> = known_params(EventType::SessionStart)
            .filter(|p| p.required)
            .map(|p| p.key)
            .collect();
        required.sort_unstable();
        assert_eq!(
            required,
            [
                "analytics.reportSuite",
                "analytics.trackingServer",
                "media.channel",
                "media.contentType",
                "media.id",
                "media.length",
                "media.playerName",
                "visitor.marketingCloudOrgId"
            ]
        );
        assert_eq!(known_params(EventType::Ping).count(), 0);
        assert!(event_spec(EventType::Ping).params.is_none());
        assert!(event_spec(EventType::StatesUpdate).requires_params());
        assert!(!event_spec(EventType::Play).requires_params());
        assert_eq!(owner_of_param("media.ad.id"), Some(EventType::AdStart));
        assert_eq!(owner_of_param("media.colour"), None);
    }

    #[test]
    fn value_types_display_for_docs() {
        let shown: Vec<String> = known_params(EventType::AdStart)
            .map(|p| format!("{} {} {}", p.key, p.ty, p.ty.json_type()))
            .collect();
        assert!(shown.contains(&"media.ad.length number >= 0 number".to_string()));
        assert!(shown.contains(&"media.ad.podPosition integer >= 0 integer".to_string()));
        assert_eq!(
            QOE_DATA.params[5].ty.to_string(),
            "string (player|external)"
        );
        assert_eq!(CUSTOMER_ID.params[1].ty.to_string(), "integer (0|1|2)");
    }

    #[test]
    fn check_param_value_explains_what_is_wrong() {
        let p = Policies::default();
        let ok = |e, k, v: serde_json::Value| check_param_value(e, k, &v, &p).map_err(|e| e.0);
        let ss = EventType::SessionStart;
        assert_eq!(ok(ss, "media.length", json!(1800.5)), Ok(()));
        assert_eq!(
            ok(ss, "media.length", json!("1800.5")),
            Err("media.length: expected a number, got the string \"1800.5\"".into())
        );
        assert_eq!(
            ok(ss, "media.length", json!(-1)),
            Err("media.length: must be >= 0, got -1".into())
        );
        assert!(ok(ss, "analytics.enableSSL", json!("true")).is_err());
        assert!(ok(ss, "media.id", json!("")).unwrap_err().contains("empty"));
        assert!(ok(ss, "media.downloaded", json!(true)).is_err());
        assert_eq!(ok(ss, "media.downloaded", json!(false)), Ok(()));
        assert_eq!(ok(ss, "visitor.aamLocationHint", json!(9)), Ok(()));
        assert!(ok(ss, "visitor.aamLocationHint", json!(9.5)).is_err());
        assert_eq!(
            ok(
                ss,
                "visitor.customerIDs",
                json!({"crm": {"id": "x", "authState": 1}})
            ),
            Ok(())
        );
        assert_eq!(
            ok(
                ss,
                "visitor.customerIDs",
                json!({"crm": {"id": "x", "authState": 3}})
            ),
            Err("visitor.customerIDs/crm/authState: must be one of 0, 1, 2, got 3".into())
        );
        assert!(ok(ss, "media.colour", json!("blue")).is_err());
        assert!(ok(EventType::Ping, "media.id", json!("x")).is_err());
        assert_eq!(
            ok(EventType::AdStart, "media.ad.podFriendlyName", json!("pre")),
            Ok(())
        );
        assert_eq!(
            ok(EventType::Error, "media.errorSource", json!("player")),
            Ok(())
        );
        assert!(ok(EventType::Error, "media.errorSource", json!("cdn")).is_err());
        assert!(ok(
            EventType::StateStart,
            "media.state.name",
            json!("full screen")
        )
        .is_err());
        assert!(ok(EventType::StatesUpdate, "statesStart", json!([])).is_err());

        let lenient = Policies {
            unknown_params: UnknownParams::Allow,
            error_params: ErrorParams::Reject,
            states_update: true,
            ..Policies::default()
        };
        let ok =
            |e, k, v: serde_json::Value| check_param_value(e, k, &v, &lenient).map_err(|e| e.0);
        assert_eq!(ok(ss, "media.colour", json!("blue")), Ok(()));
        assert!(ok(EventType::Error, "media.errorSource", json!("player")).is_err());
        let states = json!([{"media.state.name": "mute"}]);
        assert_eq!(ok(EventType::StatesUpdate, "statesStart", states), Ok(()));
        assert_eq!(
            ok(
                EventType::StatesUpdate,
                "statesEnd",
                json!([{"name": "mute"}])
            ),
            Err(
                "statesEnd/0/name: unknown member (a state is {\"media.state.name\": name})".into()
            )
        );
    }

    #[test]
    fn custom_metadata_keys_and_state_names() {
        assert_eq!(check_custom_metadata_key("content_tier.v2"), Ok(()));
        assert!(check_custom_metadata_key("content-tier").is_err());
        assert!(check_custom_metadata_key("").is_err());
        assert!(check_custom_metadata_key("é").is_err());
        assert_eq!(check_custom_metadata_key("media.x"), Ok(()));
        assert_eq!(
            reserved_custom_metadata_prefix("media.x").map(|r| r.0),
            Some("media.")
        );
        assert_eq!(
            reserved_custom_metadata_prefix("a.b").map(|r| r.0),
            Some("a.")
        );
        assert_eq!(reserved_custom_metadata_prefix("ab"), None);
        assert!(is_state_name("fullScreen") && is_state_name("a.b_c9"));
        assert!(is_state_name(&"x".repeat(64)) && !is_state_name(&"x".repeat(65)));
        assert!(!is_state_name("") && !is_state_name("full screen!"));
    }

    #[test]
    fn event_type_hints() {
        assert_eq!(
            event_type_hint("pause").as_deref(),
            Some("use \"pauseStart\"")
        );
        assert_eq!(
            event_type_hint("seekComplete").as_deref(),
            Some("use \"play\"")
        );
        assert!(event_type_hint("Ping").unwrap().contains("case-sensitive"));
        assert_eq!(event_type_hint("launch"), None);
        for (name, _) in SDK_ONLY_EVENT_TYPES {
            assert_eq!(EventType::parse(name), None, "{name} is a real event type");
        }
    }

    #[test]
    fn key_set_spills_to_a_hash_set() {
        let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        let mut set = KeySet::default();
        for k in &keys {
            assert!(set.insert(k));
        }
        for k in &keys {
            assert!(!set.insert(k));
        }
    }

    #[test]
    fn describe_quotes_short_values_only() {
        let raw = |s: &str| serde_json::from_str::<&RawValue>(s).unwrap().to_owned();
        assert_eq!(describe(&raw("\"1800.5\"")), "the string \"1800.5\"");
        assert_eq!(
            describe(&raw(&format!("\"{}\"", "x".repeat(41)))),
            "a string"
        );
        assert_eq!(describe(&raw("1.5")), "the number 1.5");
        assert_eq!(describe(&raw("null")), "null");
        assert_eq!(describe(&raw("true")), "the boolean true");
        assert_eq!(describe(&raw("[1]")), "an array");
        assert!(is_non_empty_array(&raw("[ 1 ]")));
        assert!(!is_non_empty_array(&raw("[ ]")));
        assert!(!is_non_empty_array(&raw("{}")));
    }
}
