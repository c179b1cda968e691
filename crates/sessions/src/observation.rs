//! What a call tells the tracker: its kind, its player clock (`ts`, milliseconds) and playhead,
//! and, for a state event, which state. Protocol-neutral: the caller maps its API's events onto
//! these kinds.

/// The kind of a call, as far as sessions are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// The session started (its first call).
    Start = 0,
    Play,
    Ping,
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
    StateStart,
    StateEnd,
    /// The content played to its end (the session stays open).
    Complete,
    /// The session ends: nothing after it is processed.
    End,
    /// Anything else (errors, bitrate changes, QoE updates).
    Other,
}

impl Kind {
    pub const ALL: [Kind; 18] = [
        Kind::Start,
        Kind::Play,
        Kind::Ping,
        Kind::BufferStart,
        Kind::PauseStart,
        Kind::AdBreakStart,
        Kind::AdStart,
        Kind::AdComplete,
        Kind::AdSkip,
        Kind::AdBreakComplete,
        Kind::ChapterStart,
        Kind::ChapterComplete,
        Kind::ChapterSkip,
        Kind::StateStart,
        Kind::StateEnd,
        Kind::Complete,
        Kind::End,
        Kind::Other,
    ];

    pub fn from_u8(v: u8) -> Kind {
        Kind::ALL
            .get(usize::from(v))
            .copied()
            .unwrap_or(Kind::Other)
    }

    /// The name logs and the admin view use (the Media Collection API's event names).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Start => "sessionStart",
            Kind::Play => "play",
            Kind::Ping => "ping",
            Kind::BufferStart => "bufferStart",
            Kind::PauseStart => "pauseStart",
            Kind::AdBreakStart => "adBreakStart",
            Kind::AdStart => "adStart",
            Kind::AdComplete => "adComplete",
            Kind::AdSkip => "adSkip",
            Kind::AdBreakComplete => "adBreakComplete",
            Kind::ChapterStart => "chapterStart",
            Kind::ChapterComplete => "chapterComplete",
            Kind::ChapterSkip => "chapterSkip",
            Kind::StateStart => "stateStart",
            Kind::StateEnd => "stateEnd",
            Kind::Complete => "sessionComplete",
            Kind::End => "sessionEnd",
            Kind::Other => "other",
        }
    }
}

/// How the content is played: decides the playhead's range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Content {
    /// On demand: the playhead runs from 0 to the content's length.
    Vod = 0,
    /// Live or linear: the playhead is the second of the day (0 to 86 400).
    Live,
    Other,
}

impl Content {
    /// From a `media.contentType` value (case-insensitive).
    pub fn of(content_type: &str) -> Content {
        match content_type.to_ascii_lowercase().as_str() {
            "vod" | "dvod" | "ugc" | "aod" | "song" | "podcast" | "audiobook" => Content::Vod,
            "live" | "linear" | "radio" => Content::Live,
            _ => Content::Other,
        }
    }

    pub fn from_u8(v: u8) -> Content {
        match v {
            0 => Content::Vod,
            1 => Content::Live,
            _ => Content::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Content::Vod => "vod",
            Content::Live => "live",
            Content::Other => "other",
        }
    }
}

/// One call of a session.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observation {
    pub kind: Kind,
    /// The player's clock, milliseconds.
    pub ts: i64,
    /// Seconds (`NaN` when the call carries none).
    pub playhead: f64,
    /// For a state event: a hash of the state's name (0 otherwise).
    pub state: u32,
}

/// What the tracker keeps of a session's first call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Start {
    pub ts: i64,
    pub playhead: f64,
    pub content: Content,
    /// Seconds, when the content has a length.
    pub length: Option<f64>,
    /// Label numbers of the player and the SDK (the caller's, for per-player counts).
    pub player: u16,
    pub sdk: u16,
}

/// A state name's hash (FNV-1a): ten names at most per session, compared by hash.
pub fn state_hash(name: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.max(1)
}
