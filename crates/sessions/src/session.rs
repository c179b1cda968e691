//! One session's state and what each call does to it.
//!
//! Three moments per call: [`Session::gate`] before the call goes upstream (refuse a call to a
//! closed session; a playhead out of range), [`Session::accept`] once the upstream accepted it
//! (state is only ever updated from accepted calls, so a refused or failed call never corrupts
//! it), and [`Session::settle`] on the tracker's own time (expiry, and the calls whose reorder
//! window has passed). Order-sensitive rules are judged in `ts` order (`order`): a call waits in
//! `pending` until the reorder window has passed since it arrived, and is then judged with the
//! calls before it.

use serde::Serialize;

use crate::observation::{Content, Kind, Observation, Start};
use crate::order::{opener_of, rank};
use crate::rules::{Mode, Rule, Settings};

/// States a session may hold (an 11th is dropped by the backend).
pub const MAX_STATES: usize = 10;
/// Calls waiting for their reorder window, at most; beyond it the oldest is judged at once.
const MAX_PENDING: usize = 64;

const BREAK: u8 = 1;
const AD: u8 = 2;
const CHAPTER: u8 = 4;
const PLAYING: u8 = 8;
const TAINTED: u8 = 16;

/// Why a session closed (serialized as [`Closed::as_str`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Closed {
    Open = 0,
    /// An end event.
    Ended,
    /// No call for the idle timeout.
    Idle,
    /// No playhead movement for the playhead timeout.
    Stalled,
    /// The upstream answered 404 or 410: it no longer has the session.
    Gone,
}

impl Closed {
    pub const REASONS: [Closed; 4] = [Closed::Ended, Closed::Idle, Closed::Stalled, Closed::Gone];

    /// The `reason` label of `mediagate_sessions_closed_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::Open => "open",
            Closed::Ended => "session_end",
            Closed::Idle => "idle_timeout",
            Closed::Stalled => "playhead_timeout",
            Closed::Gone => "upstream_gone",
        }
    }

    pub fn from_u8(v: u8) -> Closed {
        match v {
            1 => Closed::Ended,
            2 => Closed::Idle,
            3 => Closed::Stalled,
            4 => Closed::Gone,
            _ => Closed::Open,
        }
    }
}

impl Serialize for Closed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What the gate decides for a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Send it upstream.
    Forward,
    /// Refuse it: `session_closed` (410) or `playhead_range` (400).
    Refuse(Rule),
}

/// A rule a call broke, judged now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    /// The call that broke it.
    pub kind: Kind,
    pub ts: i64,
}

/// A call waiting for its reorder window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pending {
    pub ts: i64,
    pub arrival_ms: u64,
    pub kind: Kind,
    pub state: u32,
}

/// The calls waiting for their reorder window: no allocation while there is none (most
/// sessions, most of the time), one pointer in the session either way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
// Boxed on purpose: 8 bytes in every session instead of a `Vec`'s 24, for an allocation only
// while calls wait (`make bench-sessions` measures the store's bytes per session).
#[allow(clippy::box_collection)]
pub(crate) struct Queue(Option<Box<Vec<Pending>>>);

impl Queue {
    pub fn push(&mut self, p: Pending) {
        self.0.get_or_insert_with(Default::default).push(p);
    }

    /// Takes the first `n` calls; the queue lets its allocation go when it is left empty.
    pub fn take_front(&mut self, n: usize) -> Vec<Pending> {
        let Some(v) = self.0.as_mut() else {
            return Vec::new();
        };
        let front: Vec<Pending> = v.drain(..n.min(v.len())).collect();
        if v.is_empty() {
            self.0 = None;
        }
        front
    }

    pub fn sort(&mut self) {
        if let Some(v) = self.0.as_mut() {
            v.sort_by_key(|p| (p.ts, rank(p.kind)));
        }
    }

    pub fn clear(&mut self) {
        self.0 = None;
    }
}

impl From<Vec<Pending>> for Queue {
    fn from(v: Vec<Pending>) -> Queue {
        Queue((!v.is_empty()).then(|| Box::new(v)))
    }
}

impl std::ops::Deref for Queue {
    type Target = [Pending];

    fn deref(&self) -> &[Pending] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

/// The states a session started (by name hash) and which are open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct States {
    pub names: Vec<u32>,
    /// Bit `i`: `names[i]` is open.
    pub open: u16,
}

/// One session: 104 bytes, more only while it has states or calls waiting.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub(crate) started_ms: u64,
    pub(crate) last_call_ms: u64,
    pub(crate) moved_ms: u64,
    /// When it closed (0: open); for an expiry, when the timeout ran out.
    pub(crate) closed_ms: u64,
    /// The `ts` of the last call judged in order.
    pub(crate) last_ts: i64,
    /// The `ts` of the closing call (`i64::MIN` when no call closed it).
    pub(crate) close_ts: i64,
    pub(crate) last_ping_ts: i64,
    /// The `ts` of the last call while playing (for gaps).
    pub(crate) last_beat_ts: i64,
    pub(crate) playhead: f32,
    /// `NaN`: no length.
    pub(crate) length: f32,
    pub(crate) events: u32,
    pub(crate) content: Content,
    pub(crate) flags: u8,
    pub(crate) closed: Closed,
    /// Label numbers of the player and SDK (see [`Start`]).
    pub player: u16,
    pub sdk: u16,
    pub(crate) states: Option<Box<States>>,
    pub(crate) pending: Queue,
}

/// What [`Session::settle`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// The session closed now (by expiry), for this reason.
    pub closed: Option<Closed>,
    /// Closed longer ago than the retention: forget it.
    pub forget: bool,
}

impl Session {
    /// A session whose first call was `start`, at `now_ms`.
    pub fn new(start: &Start, now_ms: u64) -> Session {
        Session {
            started_ms: now_ms,
            last_call_ms: now_ms,
            moved_ms: now_ms,
            closed_ms: 0,
            last_ts: start.ts,
            close_ts: i64::MIN,
            last_ping_ts: i64::MIN,
            last_beat_ts: i64::MIN,
            playhead: if start.playhead.is_finite() {
                start.playhead as f32
            } else {
                0.0
            },
            length: start.length.map_or(f32::NAN, |l| l as f32),
            events: 1,
            content: start.content,
            flags: 0,
            closed: Closed::Open,
            player: start.player,
            sdk: start.sdk,
            states: None,
            pending: Queue::default(),
        }
    }

    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    fn set(&mut self, flag: u8, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }

    /// A session that missed an update (a store failure) is never judged again: its state may
    /// be stale, and stale state must not produce a false violation.
    pub fn taint(&mut self) {
        self.set(TAINTED, true);
        self.pending.clear();
    }

    pub fn is_tainted(&self) -> bool {
        self.has(TAINTED)
    }

    /// How many calls were accepted (the first included).
    pub fn events(&self) -> u32 {
        self.events
    }

    /// When the session's last call was accepted, milliseconds since the epoch.
    pub fn last_call_ms(&self) -> u64 {
        self.last_call_ms
    }

    /// Whether the session was closed (by a call, or marked expired by `settle`).
    pub fn is_marked_closed(&self) -> bool {
        self.closed != Closed::Open
    }

    /// Why it closed, once marked.
    pub fn close_reason(&self) -> Closed {
        self.closed
    }

    /// When the session started, milliseconds since the epoch.
    pub fn started_ms(&self) -> u64 {
        self.started_ms
    }

    /// Whether and why the session is closed at `now_ms` (an expiry counts even before
    /// [`Session::settle`] has marked it), and since when.
    pub fn closed_at(&self, now_ms: u64, s: &Settings) -> Option<(Closed, u64)> {
        if self.closed != Closed::Open {
            return Some((self.closed, self.closed_ms));
        }
        let idle_until = self.last_call_ms.saturating_add(s.idle_timeout_ms);
        let stalled_until = self.moved_ms.saturating_add(s.playhead_timeout_ms);
        if now_ms >= idle_until.min(stalled_until) {
            return Some(if idle_until <= stalled_until {
                (Closed::Idle, idle_until)
            } else {
                (Closed::Stalled, stalled_until)
            });
        }
        None
    }

    /// Until when the session stays open if nothing else happens (`None`: it is closed).
    pub fn open_until(&self, s: &Settings) -> Option<u64> {
        if self.closed != Closed::Open {
            return None;
        }
        let idle_until = self.last_call_ms.saturating_add(s.idle_timeout_ms);
        let stalled_until = self.moved_ms.saturating_add(s.playhead_timeout_ms);
        Some(idle_until.min(stalled_until))
    }

    /// Before the call goes upstream: whether to refuse it. Findings judged here (counted in
    /// `report` and `enforce`) go to `out`.
    pub fn gate(
        &self,
        obs: &Observation,
        now_ms: u64,
        s: &Settings,
        out: &mut Vec<Finding>,
    ) -> Gate {
        if self.is_tainted() {
            return Gate::Forward;
        }
        let finding = |rule| Finding {
            rule,
            kind: obs.kind,
            ts: obs.ts,
        };
        if let Some((_, closed_ms)) = self.closed_at(now_ms, s) {
            // Safe under reordering: a call is certainly later than the close when its player
            // clock says so, or when it arrives after the reorder window.
            let later =
                obs.ts > self.close_ts || now_ms > closed_ms.saturating_add(s.reorder_window_ms);
            if later && s.judged(Rule::SessionClosed) {
                out.push(finding(Rule::SessionClosed));
                if s.mode(Rule::SessionClosed) == Mode::Enforce {
                    return Gate::Refuse(Rule::SessionClosed);
                }
            }
            return Gate::Forward;
        }
        if s.judged(Rule::PlayheadRange) && obs.playhead.is_finite() {
            let p = obs.playhead;
            let out_of_range = match self.content {
                Content::Live => !(0.0..86_400.0).contains(&p),
                Content::Vod => {
                    self.length.is_finite() && p > f64::from(self.length) + s.playhead_tolerance
                }
                Content::Other => false,
            };
            if out_of_range {
                out.push(finding(Rule::PlayheadRange));
                if s.mode(Rule::PlayheadRange) == Mode::Enforce {
                    return Gate::Refuse(Rule::PlayheadRange);
                }
            }
        }
        Gate::Forward
    }

    /// The upstream accepted the call (2xx): its effects, and the order-sensitive rules of the
    /// calls whose reorder window has passed.
    pub fn accept(&mut self, obs: &Observation, now_ms: u64, s: &Settings, out: &mut Vec<Finding>) {
        if self.is_tainted() {
            return;
        }
        self.events = self.events.saturating_add(1);
        self.expire(now_ms, s, out);
        if self.closed == Closed::Open {
            self.last_call_ms = now_ms;
            if obs.playhead.is_finite() && (obs.playhead as f32 - self.playhead).abs() > 0.001 {
                self.playhead = obs.playhead as f32;
                self.moved_ms = now_ms;
            }
            if obs.kind == Kind::End {
                self.close(Closed::Ended, now_ms);
                self.close_ts = obs.ts;
            }
        }
        if self.pending.len() >= MAX_PENDING {
            self.judge_next_group(s, out);
        }
        self.pending.push(Pending {
            ts: obs.ts,
            arrival_ms: now_ms,
            kind: obs.kind,
            state: obs.state,
        });
        self.judge_due(now_ms, s, out);
    }

    /// The upstream answered 404 or 410: it no longer has the session.
    pub fn gone(&mut self, now_ms: u64, s: &Settings, out: &mut Vec<Finding>) {
        if self.closed == Closed::Open {
            self.close(Closed::Gone, now_ms);
            self.judge_all(s, out);
        }
    }

    /// On the tracker's own time: expiry, and the calls whose reorder window has passed.
    pub fn settle(&mut self, now_ms: u64, s: &Settings, out: &mut Vec<Finding>) -> Settled {
        let mut settled = Settled {
            closed: self.expire(now_ms, s, out),
            forget: false,
        };
        self.judge_due(now_ms, s, out);
        settled.forget = self.closed != Closed::Open
            && now_ms > self.closed_ms.saturating_add(s.closed_retention_ms);
        settled
    }

    /// When [`Session::settle`] next has calls to judge (the earliest end of a reorder window).
    pub fn next_due(&self, s: &Settings) -> Option<u64> {
        self.pending
            .iter()
            .map(|p| p.arrival_ms.saturating_add(s.reorder_window_ms))
            .min()
    }

    /// Whether calls wait for their reorder window.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Marks an expired session closed; returns why, when it closed now.
    fn expire(&mut self, now_ms: u64, s: &Settings, out: &mut Vec<Finding>) -> Option<Closed> {
        if self.closed != Closed::Open {
            return None;
        }
        let (reason, at) = self.closed_at(now_ms, s)?;
        self.close(reason, at);
        self.judge_all(s, out);
        Some(reason)
    }

    fn close(&mut self, reason: Closed, at_ms: u64) {
        self.closed = reason;
        self.closed_ms = at_ms.max(1);
    }

    /// Judges every waiting call (the session closed: nothing later will explain them), then
    /// whether it closed with a break open.
    fn judge_all(&mut self, s: &Settings, out: &mut Vec<Finding>) {
        while !self.pending.is_empty() {
            self.judge_next_group(s, out);
        }
        self.unclosed_break(Kind::End, self.last_ts, s, out);
    }

    fn unclosed_break(&mut self, kind: Kind, ts: i64, s: &Settings, out: &mut Vec<Finding>) {
        if self.has(BREAK) {
            self.set(BREAK, false);
            self.set(AD, false);
            if s.judged(Rule::AdBreakUnclosed) {
                out.push(Finding {
                    rule: Rule::AdBreakUnclosed,
                    kind,
                    ts,
                });
            }
        }
    }

    /// Judges, in order, the calls at the front whose window has passed.
    fn judge_due(&mut self, now_ms: u64, s: &Settings, out: &mut Vec<Finding>) {
        self.sort_pending();
        loop {
            let Some(first) = self.pending.first() else {
                return;
            };
            let ts = first.ts;
            let due = self
                .pending
                .iter()
                .take_while(|p| p.ts == ts)
                .all(|p| now_ms >= p.arrival_ms.saturating_add(s.reorder_window_ms));
            if !due {
                return;
            }
            self.judge_next_group(s, out);
        }
    }

    fn sort_pending(&mut self) {
        self.pending.sort();
    }

    /// Judges the calls that share the earliest `ts`.
    fn judge_next_group(&mut self, s: &Settings, out: &mut Vec<Finding>) {
        self.sort_pending();
        let Some(first) = self.pending.first() else {
            return;
        };
        let ts = first.ts;
        let n = self.pending.iter().take_while(|p| p.ts == ts).count();
        let group = self.pending.take_front(n);
        self.judge_group(&group, s, out);
    }

    /// One burst of calls with the same `ts`: a close whose opener comes in the same burst and
    /// is not open yet (an ad started and skipped at once) is judged after the openers.
    fn judge_group(&mut self, group: &[Pending], s: &Settings, out: &mut Vec<Finding>) {
        let mut deferred: Vec<Pending> = Vec::new();
        for p in group {
            let defer = opener_of(p.kind).is_some_and(|opener| {
                !self.is_open(p.kind, p.state)
                    && group.iter().any(|q| {
                        q.kind == opener && (opener != Kind::StateStart || q.state == p.state)
                    })
            });
            if defer {
                deferred.push(*p);
            } else {
                self.judge(p, s, out);
            }
        }
        for p in &deferred {
            self.judge(p, s, out);
        }
    }

    /// Whether what a close closes is open now.
    fn is_open(&self, close: Kind, state: u32) -> bool {
        match close {
            Kind::AdComplete | Kind::AdSkip => self.has(AD),
            Kind::AdBreakComplete => self.has(BREAK),
            Kind::ChapterComplete | Kind::ChapterSkip => self.has(CHAPTER),
            Kind::StateEnd => self.state_index(state).is_some_and(|i| self.state_open(i)),
            _ => true,
        }
    }

    fn state_index(&self, state: u32) -> Option<usize> {
        self.states.as_ref()?.names.iter().position(|n| *n == state)
    }

    fn state_open(&self, i: usize) -> bool {
        self.states
            .as_ref()
            .is_some_and(|st| st.open & (1 << i) != 0)
    }

    /// One call, in order.
    fn judge(&mut self, p: &Pending, s: &Settings, out: &mut Vec<Finding>) {
        if p.ts < self.last_ts {
            // Arrived later than the window allows: its place in the order is lost, so the
            // order-sensitive rules cannot judge it.
            report(out, s, Rule::TsBackwards, p);
            return;
        }
        self.last_ts = p.ts;
        let playing = self.has(PLAYING);
        if playing && self.last_beat_ts != i64::MIN && p.ts - self.last_beat_ts > s.ping_gap_ms {
            report(out, s, Rule::PingGap, p);
        }
        match p.kind {
            Kind::AdBreakStart => {
                if self.has(BREAK) {
                    report(out, s, Rule::AdBreakNested, p);
                }
                self.flags |= BREAK;
                self.flags &= !AD;
            }
            Kind::AdStart => {
                if !self.has(BREAK) {
                    report(out, s, Rule::AdOutsideBreak, p);
                }
                if self.has(AD) {
                    report(out, s, Rule::AdOverlap, p);
                }
                self.flags |= AD;
            }
            Kind::AdComplete | Kind::AdSkip => {
                if !self.has(BREAK) {
                    report(out, s, Rule::AdOutsideBreak, p);
                }
                self.flags &= !AD;
            }
            Kind::AdBreakComplete => {
                self.flags &= !(BREAK | AD);
            }
            Kind::ChapterStart => {
                if self.has(CHAPTER) {
                    report(out, s, Rule::ChapterOverlap, p);
                }
                self.flags |= CHAPTER;
            }
            Kind::ChapterComplete | Kind::ChapterSkip => self.flags &= !CHAPTER,
            Kind::StateStart => {
                let states = self.states.get_or_insert_with(Box::default);
                match states.names.iter().position(|n| *n == p.state) {
                    Some(i) => states.open |= 1 << i,
                    None if states.names.len() >= MAX_STATES => report(out, s, Rule::StateLimit, p),
                    None => {
                        states.names.push(p.state);
                        states.open |= 1 << (states.names.len() - 1);
                    }
                }
            }
            Kind::StateEnd => match self.state_index(p.state) {
                Some(i) if self.state_open(i) => {
                    if let Some(st) = self.states.as_mut() {
                        st.open &= !(1 << i);
                    }
                }
                _ => report(out, s, Rule::StateNotStarted, p),
            },
            Kind::Ping => {
                if self.last_ping_ts != i64::MIN && p.ts - self.last_ping_ts < s.ping_burst_ms {
                    report(out, s, Rule::PingBurst, p);
                }
                self.last_ping_ts = p.ts;
            }
            Kind::Play => self.flags |= PLAYING,
            Kind::PauseStart | Kind::BufferStart => self.flags &= !PLAYING,
            Kind::End => {
                self.flags &= !PLAYING;
                self.unclosed_break(p.kind, p.ts, s, out);
            }
            Kind::Start | Kind::Complete | Kind::Other => {}
        }
        self.last_beat_ts = if self.has(PLAYING) { p.ts } else { i64::MIN };
    }

    /// What the admin listener shows of the session at `now_ms`.
    pub fn view(&self, now_ms: u64, s: &Settings) -> View {
        let (closed, closed_ms) = self
            .closed_at(now_ms, s)
            .map_or((Closed::Open, None), |(c, at)| (c, Some(at)));
        View {
            started_ms: self.started_ms,
            last_call_ms: self.last_call_ms,
            playhead_moved_ms: self.moved_ms,
            closed,
            closed_ms,
            close_ts: (self.close_ts != i64::MIN).then_some(self.close_ts),
            last_ts: self.last_ts,
            content: self.content.as_str(),
            length: self.length.is_finite().then_some(millis(self.length)),
            playhead: millis(self.playhead),
            events: self.events,
            ad_break_open: self.has(BREAK),
            ad_open: self.has(AD),
            chapter_open: self.has(CHAPTER),
            playing: self.has(PLAYING),
            states: self.states.as_ref().map_or(0, |st| st.names.len()),
            states_open: self
                .states
                .as_ref()
                .map_or(0, |st| st.open.count_ones() as usize),
            waiting: self.pending.len(),
            unknown: self.is_tainted(),
        }
    }
}

/// An `f32` of seconds as the `f64` its millisecond rounding reads as (60.393333 for 60.39333).
fn millis(v: f32) -> f64 {
    (f64::from(v) * 1000.0).round() / 1000.0
}

/// Counts `rule` against call `p` when the rule is judged.
fn report(out: &mut Vec<Finding>, s: &Settings, rule: Rule, p: &Pending) {
    if s.judged(rule) {
        out.push(Finding {
            rule,
            kind: p.kind,
            ts: p.ts,
        });
    }
}

/// A session as the admin listener shows it.
#[derive(Clone, Debug, Serialize)]
pub struct View {
    pub started_ms: u64,
    pub last_call_ms: u64,
    pub playhead_moved_ms: u64,
    pub closed: Closed,
    pub closed_ms: Option<u64>,
    pub close_ts: Option<i64>,
    pub last_ts: i64,
    pub content: &'static str,
    /// Seconds, to the millisecond (kept as `f32`).
    pub length: Option<f64>,
    pub playhead: f64,
    pub events: u32,
    pub ad_break_open: bool,
    pub ad_open: bool,
    pub chapter_open: bool,
    pub playing: bool,
    pub states: usize,
    pub states_open: usize,
    /// Calls waiting for their reorder window.
    pub waiting: usize,
    /// Missed an update: no longer judged.
    pub unknown: bool,
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
