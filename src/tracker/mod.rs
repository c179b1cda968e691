//! Session tracking in the request path (`docs/sessions.md`): the pure session state machine
//! (`sessions`) kept in a store ([`memory`] or [`redis`]), with its findings counted and logged.
//!
//! Three moments per events call: [`Tracker::before`] (the gate: refuse a call to a closed
//! session, judge the playhead), [`Tracker::after`] (the upstream's answer: a 2xx updates the
//! state, a 404 or 410 closes it — nothing else touches it), and, on the tracker's own time,
//! the runtime's sweeper (`runtime::services`: calls whose reorder window passed, expiry). A session start is
//! [`Tracker::started`] once the upstream's 201 names the session.
//!
//! Never a player's failure: a store that errs or is slow past `store_timeout_ms` lets the call
//! go on unjudged (counted), and a session that missed an update is marked unknown, so stale
//! state never produces a false violation.
//!
//! **Owns** the stores, the schedule and the session metrics. **May use:** `config`
//! (`[sessions]`), `observe::metrics`, `quality` (findings by player, label names for the Redis
//! store's bytes), `sessions`, the `redis` client, tokio (time).

pub mod key;
pub mod memory;
mod redis;
mod schedule;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use self::redis::StoreError;
use crate::config::{self, UnknownSessions};
use crate::observe::metrics::Metrics;
use crate::quality::labels::UNKNOWN;
use crate::quality::Quality;
use key::Key;
use memory::Memory;
use prometheus::{Histogram, IntCounter, IntGauge};
use schedule::Schedule;
use sessions::session::View;
use sessions::{Closed, Finding, Gate, Mode, Observation, Rule, Session, Settings, Start};

/// Sessions whose next look is scheduled, at most (beyond, a session's waiting calls are judged
/// by its next call or its close instead).
const SCHEDULE_CAP: usize = 1_000_000;
/// Sessions waiting to be marked unknown after a failed update, at most.
const TAINT_CAP: usize = 100_000;

/// What the gate decided for an events call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it upstream (judged, or unjudged when the session is unknown or the store failed).
    Forward,
    /// Answer it here: `session_closed` (410) or `playhead_range` (400).
    Refuse(Rule),
    /// The session is unknown and `[sessions] unknown_sessions = "reject"`: answer 404.
    RejectUnknown,
}

/// What [`Tracker::before`] hands to [`Tracker::after`].
pub struct Ticket {
    /// The session's player and SDK labels (unknown when the session is).
    pub labels: (u16, u16),
    sid: String,
    observations: Vec<Observation>,
    /// The memory store's key, and the slot the gate found the session in (a hint).
    key: Option<(Key, Option<u32>)>,
    /// What the Redis store held at the gate (spares a read when nothing changed since).
    read: Option<redis::Read>,
}

/// A store and what is scheduled on it: kept across in-process reloads while the store's keys
/// (`store`, `redis_url`, `redis_ca_file`, `key_prefix`, `store_timeout_ms`, `max_sessions`)
/// stay the same.
pub struct Backend {
    store: Store,
    spec: (config::Store, Duration, usize),
    /// Sessions that missed an update, to be marked unknown once the store answers again.
    to_taint: Mutex<HashSet<String>>,
}

/// A store. The Redis one has the sessions due for a look (expiries, and the reorder windows of
/// closed sessions); the memory store is swept instead (`Tracker::sweep`).
enum Store {
    Memory(Memory),
    Redis(Box<redis::Redis>, Schedule<String>),
}

impl Backend {
    fn new(cfg: &config::Sessions, quality: &Arc<Quality>) -> Result<Backend, String> {
        let cap = SCHEDULE_CAP.min(cfg.max_sessions.max(1024));
        let store = match &cfg.store {
            config::Store::Memory => Store::Memory(Memory::new(cfg.max_sessions)),
            config::Store::Redis {
                url,
                key_prefix,
                ca_file,
            } => Store::Redis(
                Box::new(redis::Redis::new(
                    url,
                    key_prefix,
                    ca_file.as_deref(),
                    cfg.store_timeout,
                    quality.clone(),
                )?),
                Schedule::new(cap),
            ),
        };
        Ok(Backend {
            store,
            spec: spec_of(cfg),
            to_taint: Mutex::new(HashSet::new()),
        })
    }
}

fn spec_of(cfg: &config::Sessions) -> (config::Store, Duration, usize) {
    (cfg.store.clone(), cfg.store_timeout, cfg.max_sessions)
}

/// The session metrics, resolved once.
struct Handles {
    judged: IntCounter,
    unknown: IntCounter,
    refused: IntCounter,
    started: IntCounter,
    /// By rule (in `Rule::ALL` order), reported and refused.
    violations: Vec<[IntCounter; 2]>,
    store_errors: Vec<IntCounter>,
    closed: Vec<IntCounter>,
    evicted: IntCounter,
    duration: Histogram,
    events: Histogram,
    read_time: Histogram,
    update_time: Histogram,
    active: IntGauge,
    schedule_full: IntCounter,
}

impl Handles {
    fn new(m: &Metrics) -> Handles {
        let calls = |o: &str| m.session_calls.with_label_values(&[o]);
        Handles {
            judged: calls("judged"),
            unknown: calls("unknown"),
            refused: calls("refused"),
            started: m.sessions_tracked.clone(),
            violations: Rule::ALL
                .iter()
                .map(|r| {
                    [
                        m.session_violations
                            .with_label_values(&[r.as_str(), "reported"]),
                        m.session_violations
                            .with_label_values(&[r.as_str(), "refused"]),
                    ]
                })
                .collect(),
            store_errors: crate::observe::metrics::SESSION_STORE_ERRORS
                .iter()
                .map(|k| m.session_store_errors.with_label_values(&[k]))
                .collect(),
            closed: Closed::REASONS
                .iter()
                .map(|r| m.sessions_closed.with_label_values(&[r.as_str()]))
                .collect(),
            evicted: m.sessions_evicted.clone(),
            duration: m.session_duration.with_label_values(&[] as &[&str]),
            events: m.session_events.with_label_values(&[] as &[&str]),
            read_time: m.session_store_duration.with_label_values(&["read"]),
            update_time: m.session_store_duration.with_label_values(&["update"]),
            active: m.sessions_active.clone(),
            schedule_full: m.session_schedule_full.clone(),
        }
    }

    fn store_error(&self, e: StoreError) {
        let i = crate::observe::metrics::SESSION_STORE_ERRORS
            .iter()
            .position(|k| *k == e.as_str())
            .unwrap_or(0);
        if let Some(c) = self.store_errors.get(i) {
            c.inc();
        }
    }
}

/// The tracker of one configuration generation (its rules and policies); the store it uses may
/// be shared with the generations before it.
pub struct Tracker {
    /// Findings are counted by the session's player and SDK too.
    quality: Arc<Quality>,
    backend: Arc<Backend>,
    settings: Settings,
    unknown: UnknownSessions,
    handles: Arc<Handles>,
}

/// What one operation did to a session.
#[derive(Default)]
struct Effects {
    findings: Vec<Finding>,
    /// The session's player and SDK labels.
    labels: (u16, u16),
    /// It closed now: why, how long it lasted (ms) and how many calls it had.
    closed: Option<(Closed, u64, u32)>,
    /// When to look at it again.
    next: Option<u64>,
    /// Closed longer than the retention: forget it.
    forget: bool,
}

/// Which session an update is for: its sid, with the memory store's key and slot hint when the
/// gate found them.
enum Known<'a> {
    Ticket(&'a str, Option<(Key, Option<u32>)>),
}

impl std::fmt::Display for Known<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Known::Ticket(sid, _) = self;
        f.write_str(sid)
    }
}

enum Op<'a> {
    Accept(&'a [Observation]),
    Gone,
    Settle,
    Taint,
}

/// `op` on `s` at `now_ms`.
fn apply(s: &mut Session, op: &Op<'_>, now_ms: u64, st: &Settings) -> Effects {
    let mut fx = Effects {
        labels: (s.player, s.sdk),
        ..Effects::default()
    };
    let was_open = !s.is_marked_closed();
    match op {
        Op::Accept(observations) => {
            for o in *observations {
                s.accept(o, now_ms, st, &mut fx.findings);
            }
        }
        Op::Gone => s.gone(now_ms, st, &mut fx.findings),
        Op::Settle => fx.forget = s.settle(now_ms, st, &mut fx.findings).forget,
        Op::Taint => s.taint(),
    }
    if was_open {
        if let Some((reason, at)) = s.closed_at(now_ms, st).filter(|_| s.is_marked_closed()) {
            fx.closed = Some((reason, at.saturating_sub(s.started_ms()), s.events()));
        }
    }
    // The calls of an open session that wait for their window are judged by its next call, its
    // expiry, or (memory store) the sweep: a look of its own for each would cost the store as
    // much again. With Redis, the expiry gets a look; once closed, the end of the window does.
    fx.next = s.open_until(st).or_else(|| s.next_due(st));
    fx
}

impl Tracker {
    /// The tracker of `cfg`, on `reuse`'s store when its keys are the same (an in-process
    /// reload keeps the sessions).
    pub fn new(
        cfg: &config::Sessions,
        metrics: &Metrics,
        reuse: Option<&Arc<Backend>>,
        quality: Arc<Quality>,
    ) -> Result<Tracker, String> {
        let backend = match reuse {
            Some(b) if b.spec == spec_of(cfg) => b.clone(),
            _ => Arc::new(Backend::new(cfg, &quality)?),
        };
        Ok(Tracker {
            quality,
            backend,
            settings: cfg.settings.clone(),
            unknown: cfg.unknown_sessions,
            handles: Arc::new(Handles::new(metrics)),
        })
    }

    pub fn backend(&self) -> &Arc<Backend> {
        &self.backend
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn expiry_scheduled(&self) -> bool {
        matches!(self.backend.store, Store::Redis(..))
    }

    /// The upstream created session `sid` (its 201 named it) with `start`.
    pub async fn started(&self, sid: &str, start: &Start, now_ms: u64) {
        let session = Session::new(start, now_ms);
        self.handles.started.inc();
        match &self.backend.store {
            Store::Memory(m) => {
                self.handles.active.inc();
                if let Some((_, evicted)) = m.insert(Key::of(sid), session) {
                    self.handles.evicted.inc();
                    if !evicted.is_marked_closed() {
                        self.handles.active.dec();
                    }
                }
            }
            Store::Redis(r, due) => {
                let t = Instant::now();
                let absent = redis::Read {
                    session: None,
                    bytes: Vec::new(),
                };
                let next = session.open_until(&self.settings);
                let done = r
                    .update(sid, Some(absent), &self.settings, |s| {
                        *s = Some(session.clone());
                    })
                    .await;
                self.handles.update_time.observe(t.elapsed().as_secs_f64());
                match done {
                    Ok(()) => self.schedule(due, &sid.to_owned(), next),
                    Err(e) => self.handles.store_error(e),
                }
            }
        }
    }

    /// Before an events call goes upstream: whether it may.
    pub async fn before(
        &self,
        sid: &str,
        observations: Vec<Observation>,
        now_ms: u64,
    ) -> (Verdict, Ticket) {
        let mut findings = Vec::new();
        let st = &self.settings;
        let mut labels = (UNKNOWN, UNKNOWN);
        let gate = |s: &Session, findings: &mut Vec<Finding>, labels: &mut (u16, u16)| {
            *labels = (s.player, s.sdk);
            if s.is_tainted() {
                return None;
            }
            let refused = observations
                .iter()
                .map(|o| s.gate(o, now_ms, st, findings))
                .fold(
                    Gate::Forward,
                    |acc, g| if acc == Gate::Forward { g } else { acc },
                );
            Some(refused)
        };
        // None: unknown (absent, tainted or unreadable); Some(absent): whether it is absent.
        let mut key = None;
        let (gated, absent, read) = match &self.backend.store {
            Store::Memory(m) => {
                let k = Key::of(sid);
                let ((gated, absent), slot) = m.read(&k, |s| match s {
                    Some(s) => (gate(s, &mut findings, &mut labels), false),
                    None => (None, true),
                });
                key = Some((k, slot));
                (gated, absent, None)
            }
            Store::Redis(r, _) => {
                let t = Instant::now();
                let read = r.read(sid).await;
                self.handles.read_time.observe(t.elapsed().as_secs_f64());
                match read {
                    Ok(read) => {
                        let gated = read
                            .session
                            .as_ref()
                            .and_then(|s| gate(s, &mut findings, &mut labels));
                        (gated, read.session.is_none(), Some(read))
                    }
                    Err(e) => {
                        self.handles.store_error(e);
                        (None, false, None)
                    }
                }
            }
        };
        let verdict = match gated {
            None => {
                self.handles.unknown.inc();
                if absent && self.unknown == UnknownSessions::Reject {
                    Verdict::RejectUnknown
                } else {
                    Verdict::Forward
                }
            }
            Some(Gate::Refuse(rule)) => {
                self.handles.refused.inc();
                Verdict::Refuse(rule)
            }
            Some(Gate::Forward) => {
                self.handles.judged.inc();
                Verdict::Forward
            }
        };
        let refused = match verdict {
            Verdict::Refuse(rule) => Some(rule),
            _ => None,
        };
        self.found(&sid, labels, &findings, refused, now_ms);
        let ticket = Ticket {
            labels,
            sid: sid.to_owned(),
            observations,
            key,
            read,
        };
        (verdict, ticket)
    }

    /// The upstream answered `status` to the call of `ticket`.
    pub async fn after(&self, ticket: Ticket, status: u16) {
        let op = match status {
            200..=299 => Op::Accept(&ticket.observations),
            404 | 410 => Op::Gone,
            _ => return,
        };
        let at = Known::Ticket(&ticket.sid, ticket.key);
        self.update(at, ticket.read, &op, unix_ms()).await;
    }

    /// The call of `ticket` may or may not have reached the upstream (the exchange failed, or its
    /// answer could not be relayed): the session is marked unknown.
    pub async fn uncertain(&self, ticket: Ticket) {
        let at = Known::Ticket(&ticket.sid, ticket.key);
        self.update(at, ticket.read, &Op::Taint, unix_ms()).await;
    }

    /// On the tracker's own time: settles up to `max` sessions due for a look at `now_ms` (for
    /// the runtime's sweeper, and benchmarks).
    pub async fn settle_due(&self, now_ms: u64, max: usize) {
        if let Store::Redis(_, due) = &self.backend.store {
            for sid in due.take_due(now_ms, max) {
                self.update(Known::Ticket(&sid, None), None, &Op::Settle, now_ms)
                    .await;
            }
        }
    }

    /// `op` on one session, wherever it is kept; its effects counted.
    async fn update(&self, at: Known<'_>, known: Option<redis::Read>, op: &Op<'_>, now_ms: u64) {
        let st = &self.settings;
        match &self.backend.store {
            Store::Memory(m) => {
                let (key, hint) = match at {
                    Known::Ticket(_, Some(kh)) => kh,
                    Known::Ticket(sid, None) => (Key::of(sid), None),
                };
                let Some(fx) = m.update(&key, hint, |s| apply(s, op, now_ms, st)) else {
                    return;
                };
                self.count(&at, &fx);
                if fx.forget {
                    m.remove(&key);
                }
            }
            Store::Redis(r, due) => {
                let Known::Ticket(sid, _) = at;
                let t = Instant::now();
                let done = r
                    .update(sid, known, st, |s| {
                        let fx = s.as_mut().map(|s| apply(s, op, now_ms, st));
                        if fx.as_ref().is_some_and(|fx| fx.forget) {
                            *s = None;
                        }
                        fx
                    })
                    .await;
                self.handles.update_time.observe(t.elapsed().as_secs_f64());
                match done {
                    Ok(Some(fx)) => {
                        self.count(&at, &fx);
                        if !fx.forget {
                            self.schedule(due, &sid.to_owned(), fx.next);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.handles.store_error(e);
                        if !matches!(op, Op::Settle | Op::Taint) {
                            self.missed(sid);
                        }
                    }
                }
            }
        }
    }

    /// Counts and logs what an operation did.
    fn count(&self, at: &Known<'_>, fx: &Effects) {
        self.found(at, fx.labels, &fx.findings, None, unix_ms());
        if let Some((reason, duration_ms, events)) = fx.closed {
            self.closed(reason, duration_ms, events);
        }
    }

    fn schedule<K: std::hash::Hash + Eq + Ord + Clone>(
        &self,
        due: &Schedule<K>,
        id: &K,
        at: Option<u64>,
    ) {
        if let Some(at) = at {
            if !due.at(id, at) {
                self.handles.schedule_full.inc();
            }
        }
    }

    fn closed(&self, reason: Closed, duration_ms: u64, events: u32) {
        if let Some(i) = Closed::REASONS.iter().position(|r| *r == reason) {
            self.handles.closed[i].inc();
        }
        self.handles.duration.observe(duration_ms as f64 / 1000.0);
        self.handles.events.observe(f64::from(events));
        if !self.expiry_scheduled() {
            self.handles.active.dec();
        }
    }

    /// Counts and logs findings (by the session's player and SDK `labels` too); `refused`: the
    /// rule that refused the call.
    fn found(
        &self,
        sid: &dyn std::fmt::Display,
        labels: (u16, u16),
        findings: &[Finding],
        refused: Option<Rule>,
        now_ms: u64,
    ) {
        for f in findings {
            self.quality
                .record(labels.0, labels.1, f.rule.as_str(), 1, now_ms);
            let i = Rule::ALL.iter().position(|r| *r == f.rule).unwrap_or(0);
            let was_refused =
                refused == Some(f.rule) && self.settings.mode(f.rule) == Mode::Enforce;
            self.handles.violations[i][usize::from(was_refused)].inc();
            // Counted above and by player; a line per finding at `info` would let one broken
            // player flood the diagnostic log (and cost every such call a formatted line).
            log::debug!(
                "session {sid}: {} ({} at ts {}){}",
                f.rule.as_str(),
                f.kind.as_str(),
                f.ts,
                if was_refused { ", refused" } else { "" }
            );
        }
    }

    /// A session missed an update (the store failed): it must not be judged again.
    fn missed(&self, sid: &str) {
        let mut to_taint = self
            .backend
            .to_taint
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if to_taint.len() < TAINT_CAP {
            to_taint.insert(sid.to_owned());
        }
    }

    /// Marks the sessions that missed an update unknown, once the store answers.
    pub(crate) async fn mark_missed(&self) {
        let Store::Redis(r, _) = &self.backend.store else {
            return;
        };
        if !r.is_up() {
            return;
        }
        let batch: Vec<String> = {
            let mut to_taint = self
                .backend
                .to_taint
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let batch: Vec<String> = to_taint.iter().take(256).cloned().collect();
            for sid in &batch {
                to_taint.remove(sid);
            }
            batch
        };
        for sid in batch {
            let st = &self.settings;
            let done = r
                .update(&sid, None, st, |s| {
                    if let Some(s) = s.as_mut() {
                        s.taint();
                    }
                })
                .await;
            if let Err(e) = done {
                self.handles.store_error(e);
                self.missed(&sid);
                return;
            }
        }
    }

    /// Expiry and forgetting in the memory store (the Redis store schedules its expiries and
    /// lets keys expire); the active gauge recounted.
    pub fn sweep(&self, now_ms: u64) {
        let Store::Memory(m) = &self.backend.store else {
            return;
        };
        let st = &self.settings;
        let mut open = 0i64;
        let mut done = Vec::new();
        m.sweep(|key, s| {
            let fx = apply(s, &Op::Settle, now_ms, st);
            open += i64::from(!s.is_marked_closed());
            let keep = !fx.forget;
            if !fx.findings.is_empty() || fx.closed.is_some() {
                done.push((key.to_string(), fx));
            }
            keep
        });
        for (sid, fx) in done {
            self.found(&sid, fx.labels, &fx.findings, None, now_ms);
            if let Some((reason, duration_ms, events)) = fx.closed {
                if let Some(i) = Closed::REASONS.iter().position(|r| *r == reason) {
                    self.handles.closed[i].inc();
                }
                self.handles.duration.observe(duration_ms as f64 / 1000.0);
                self.handles.events.observe(f64::from(events));
            }
        }
        self.handles.active.set(open);
    }

    /// The Redis store's count of open sessions, into the gauge.
    pub(crate) async fn count_open(&self, now_ms: u64) {
        let Store::Redis(r, _) = &self.backend.store else {
            return;
        };
        if !r.is_up() {
            return;
        }
        match r.count_open(now_ms).await {
            Ok(n) => self.handles.active.set(n),
            Err(e) => self.handles.store_error(e),
        }
    }

    /// How often the memory store is swept (expiries, forgetting, and the calls whose reorder
    /// window passed): twice the window (at least half a second), or a quarter of the shortest
    /// timeout when that is sooner, within 0.1–10 s. A sweep reads the slabs in order (about
    /// 20 ms per million sessions).
    pub(crate) fn sweep_interval(&self) -> Duration {
        let st = &self.settings;
        let shortest = st
            .idle_timeout_ms
            .min(st.playhead_timeout_ms)
            .min(st.closed_retention_ms);
        let by_window = st.reorder_window_ms.max(250) * 2;
        Duration::from_millis(by_window.min(shortest / 4).clamp(100, 10_000))
    }

    /// The player and SDK labels of session `sid` (for a call refused before the gate);
    /// unknown when the tracker does not know it or the store fails.
    pub async fn labels_of(&self, sid: &str) -> (u16, u16) {
        let unknown = (UNKNOWN, UNKNOWN);
        match &self.backend.store {
            Store::Memory(m) => {
                m.read(&Key::of(sid), |s| s.map_or(unknown, |s| (s.player, s.sdk)))
                    .0
            }
            Store::Redis(r, _) => match r.read(sid).await {
                Ok(read) => read.session.map_or(unknown, |s| (s.player, s.sdk)),
                Err(e) => {
                    self.handles.store_error(e);
                    unknown
                }
            },
        }
    }

    /// The state of session `sid` (the admin listener's `/sessions/{sid}`).
    pub async fn view(&self, sid: &str) -> Result<Option<View>, StoreError> {
        let now = unix_ms();
        match &self.backend.store {
            Store::Memory(m) => Ok(m
                .read(&Key::of(sid), |s| s.map(|s| s.view(now, &self.settings)))
                .0),
            Store::Redis(r, _) => Ok(r
                .read(sid)
                .await?
                .session
                .map(|s| s.view(now, &self.settings))),
        }
    }

    /// Which store, for the admin view.
    pub fn store_name(&self) -> &'static str {
        match self.backend.store {
            Store::Memory(..) => "memory",
            Store::Redis(..) => "redis",
        }
    }
}

pub use crate::io::clock::unix_ms;
