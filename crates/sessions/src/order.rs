//! The order calls are judged in: by `ts`, and for equal timestamps (a burst the SDK stamped
//! with one clock reading) by a precedence chosen so that the documented sequences and real SDK
//! traffic read as intended:
//!
//! - whatever closes something (an ad, a break, a chapter, a state) before whatever opens;
//! - among openers, the outer before the inner: `adBreakStart`, then `adStart`, then
//!   `chapterStart`, then `stateStart`;
//! - playback events (`play`, pings, buffering, pauses, the rest) after those;
//! - `sessionComplete`, then `sessionEnd`, last.
//!
//! A close that finds nothing open while its opener is in the same burst (`adStart` and
//! `adSkip` stamped alike) is judged after the burst's openers (see `Session::judge_group`).

use crate::observation::Kind;

/// The precedence of a kind among calls with the same `ts` (lower first).
pub fn rank(kind: Kind) -> u8 {
    match kind {
        Kind::Start => 0,
        Kind::AdComplete | Kind::AdSkip => 1,
        Kind::AdBreakComplete => 2,
        Kind::ChapterComplete | Kind::ChapterSkip => 3,
        Kind::StateEnd => 4,
        Kind::AdBreakStart => 5,
        Kind::AdStart => 6,
        Kind::ChapterStart => 7,
        Kind::StateStart => 8,
        Kind::Play | Kind::Ping | Kind::BufferStart | Kind::PauseStart | Kind::Other => 9,
        Kind::Complete => 10,
        Kind::End => 11,
    }
}

/// The opener a close needs, when the kind closes something.
pub fn opener_of(kind: Kind) -> Option<Kind> {
    match kind {
        Kind::AdComplete | Kind::AdSkip => Some(Kind::AdStart),
        Kind::AdBreakComplete => Some(Kind::AdBreakStart),
        Kind::ChapterComplete | Kind::ChapterSkip => Some(Kind::ChapterStart),
        Kind::StateEnd => Some(Kind::StateStart),
        _ => None,
    }
}
