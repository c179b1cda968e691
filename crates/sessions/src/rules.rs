//! The session rules, their stable names (they label `mediagate_session_violations_total` and
//! are listed in `docs/sessions.md`), their modes, and the tracker's settings.

use serde::Deserialize;

macro_rules! rules {
    ($($variant:ident => $name:literal, $order:literal, $default:ident, $desc:literal;)*) => {
        /// A session rule.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Rule {
            $(#[doc = $desc] $variant,)*
        }

        impl Rule {
            pub const ALL: &'static [Rule] = &[$(Rule::$variant,)*];

            /// The stable name.
            pub fn as_str(self) -> &'static str {
                match self { $(Rule::$variant => $name,)* }
            }

            /// Judged in `ts` order after the reorder window: such a rule can only report (a
            /// player is never refused for what a late call may yet explain).
            pub fn order_sensitive(self) -> bool {
                match self { $(Rule::$variant => $order,)* }
            }

            /// The mode a rule has when the configuration says nothing.
            pub fn default_mode(self) -> Mode {
                match self { $(Rule::$variant => Mode::$default,)* }
            }

            pub fn description(self) -> &'static str {
                match self { $(Rule::$variant => $desc,)* }
            }

            pub fn parse(name: &str) -> Option<Rule> {
                Rule::ALL.iter().copied().find(|r| r.as_str() == name)
            }
        }
    };
}

rules! {
    SessionClosed => "session_closed", false, Enforce, "A call to a session that ended (sessionEnd), expired (no call for the idle timeout, or no playhead movement for the playhead timeout) or is gone upstream; the backend drops it. Enforced: answered 410 by the gateway.";
    PlayheadRange => "playhead_range", false, Report, "A playhead out of range: a live session's outside 0 <= playhead < 86400, an on-demand one's beyond the content's length plus the tolerance. Enforced: 400.";
    AdOutsideBreak => "ad_outside_break", true, Report, "adStart, adComplete or adSkip with no ad break open: the backend ignores the ad and credits its time to the content.";
    AdBreakUnclosed => "ad_break_unclosed", true, Report, "The session closed with an ad break still open.";
    AdBreakNested => "ad_break_nested", true, Report, "adBreakStart while an ad break is open.";
    AdOverlap => "ad_overlap", true, Report, "adStart while an ad is open.";
    ChapterOverlap => "chapter_overlap", true, Report, "chapterStart while a chapter is open.";
    StateNotStarted => "state_not_started", true, Report, "stateEnd for a state that is not open.";
    StateLimit => "state_limit", true, Report, "An 11th distinct state in a session: the backend drops it.";
    TsBackwards => "ts_backwards", true, Report, "playerTime.ts earlier than a call already judged: it arrived later than the reorder window allows.";
    PingGap => "ping_gap", true, Off, "More than 60 s between two calls while the content plays (pings are due every 10 s). Off by default: documented example sequences leave pings out.";
    PingBurst => "ping_burst", true, Report, "Two pings less than 0.5 s apart (a player running two heartbeat timers).";
}

/// What a rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Not judged.
    Off,
    /// Judged, counted and logged; the call goes on.
    Report,
    /// Judged, counted, and the call is refused (only rules that are not order-sensitive).
    Enforce,
}

/// The tracker's settings (`[sessions]`), milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    modes: Vec<Mode>,
    /// No call for this long: the session expired.
    pub idle_timeout_ms: u64,
    /// No playhead movement for this long: the session expired.
    pub playhead_timeout_ms: u64,
    /// Calls are judged in `ts` order this long after they arrived.
    pub reorder_window_ms: u64,
    /// How long a closed session is remembered (after that it is unknown).
    pub closed_retention_ms: u64,
    /// Seconds an on-demand playhead may run past the content's length.
    pub playhead_tolerance: f64,
    /// A gap between calls longer than this while playing is a `ping_gap`.
    pub ping_gap_ms: i64,
    /// Two pings closer than this are a `ping_burst`.
    pub ping_burst_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            modes: Rule::ALL.iter().map(|r| r.default_mode()).collect(),
            idle_timeout_ms: 600_000,
            playhead_timeout_ms: 1_800_000,
            reorder_window_ms: 2_000,
            closed_retention_ms: 3_600_000,
            playhead_tolerance: 10.0,
            ping_gap_ms: 60_000,
            ping_burst_ms: 500,
        }
    }
}

/// Why a mode cannot be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CannotEnforce(pub Rule);

impl Settings {
    pub fn mode(&self, rule: Rule) -> Mode {
        Rule::ALL
            .iter()
            .position(|r| *r == rule)
            .and_then(|i| self.modes.get(i))
            .copied()
            .unwrap_or(Mode::Off)
    }

    /// Sets a rule's mode; an order-sensitive rule cannot be enforced.
    pub fn set_mode(&mut self, rule: Rule, mode: Mode) -> Result<(), CannotEnforce> {
        if mode == Mode::Enforce && rule.order_sensitive() {
            return Err(CannotEnforce(rule));
        }
        if let Some(i) = Rule::ALL.iter().position(|r| *r == rule) {
            self.modes[i] = mode;
        }
        Ok(())
    }

    /// Whether `rule` is judged at all.
    pub fn judged(&self, rule: Rule) -> bool {
        self.mode(rule) != Mode::Off
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_order_sensitive_rules_cannot_be_enforced() {
        let names: Vec<&str> = Rule::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "session_closed",
                "playhead_range",
                "ad_outside_break",
                "ad_break_unclosed",
                "ad_break_nested",
                "ad_overlap",
                "chapter_overlap",
                "state_not_started",
                "state_limit",
                "ts_backwards",
                "ping_gap",
                "ping_burst"
            ]
        );
        let mut s = Settings::default();
        assert_eq!(s.mode(Rule::SessionClosed), Mode::Enforce);
        assert_eq!(s.mode(Rule::PlayheadRange), Mode::Report);
        assert_eq!(s.mode(Rule::PingGap), Mode::Off);
        assert_eq!(
            s.set_mode(Rule::AdOverlap, Mode::Enforce),
            Err(CannotEnforce(Rule::AdOverlap))
        );
        assert!(s.set_mode(Rule::PlayheadRange, Mode::Enforce).is_ok());
        assert_eq!(s.mode(Rule::PlayheadRange), Mode::Enforce);
        for r in Rule::ALL {
            assert_eq!(Rule::parse(r.as_str()), Some(*r));
            assert!(r.order_sensitive() || matches!(r, Rule::SessionClosed | Rule::PlayheadRange));
        }
    }
}
