//! The pure steps of a request, in the order the gateway takes them: where an events call goes
//! ([`owner_path`]), then — once the body is read — its verdict and the bytes to forward
//! ([`check`]: validation, then enrichment of what is forwarded). No I/O, no clock, no metrics:
//! what happened is returned ([`Prepared`]) and counted by the caller.

use bytes::Bytes;

use super::summary::{summarize, Summary};
use crate::config::Mode;
use enrich::{Applied, RuleSet};
use mcapi::{Endpoint, EventType, Policies, Severity, Violation};

/// The upstream path of an events call: the upstream's own sid, with the query kept.
pub fn owner_path(sid: &str, query: Option<&str>) -> String {
    const PREFIX: &str = "/api/v1/sessions/";
    const SUFFIX: &str = "/events";
    let query_len = query.map_or(0, |q| q.len() + 1);
    // One allocation, of the final size.
    let mut path = String::with_capacity(PREFIX.len() + sid.len() + SUFFIX.len() + query_len);
    path.push_str(PREFIX);
    path.push_str(sid);
    path.push_str(SUFFIX);
    if let Some(q) = query {
        path.push('?');
        path.push_str(q);
    }
    path
}

/// What to do with a checked body.
pub enum Decision {
    /// Forward these bytes (the body as received, or as enrichment rebuilt it).
    Forward(Bytes),
    /// Answer 400 with the body's errors (validation `enforce`); the bytes the gateway would
    /// have forwarded (enriched, when it is JSON), for the quarantine — empty unless asked for.
    Refuse(Bytes),
}

/// The verdict on one body and what enrichment did, for the answer, the metrics and the log.
pub struct Prepared {
    pub decision: Decision,
    /// The listed violations (errors and warnings), empty when validation is off.
    pub violations: Vec<Violation>,
    /// Violations found beyond the listed ones, by rule and severity.
    pub omitted: Vec<(mcapi::rules::Rule, Severity, u32)>,
    /// The body's events by type, with a `sessionStart`'s content type label (empty when the
    /// body is refused or not JSON).
    pub events: Vec<(Option<EventType>, Option<&'static str>)>,
    /// What enrichment did, when it ran.
    pub applied: Option<Applied>,
    /// Whether enrichment changed the body.
    pub rewritten: bool,
    /// What the session tracker learns from the body (empty unless asked for).
    pub summary: Summary,
    /// A session start's `media.playerName` and SDK (see `quality::labels::sdk_of`).
    pub player: Option<String>,
    pub sdk: Option<String>,
}

impl Prepared {
    /// The listed errors.
    pub fn errors(&self) -> impl Iterator<Item = &Violation> {
        self.violations
            .iter()
            .filter(|v| v.severity == Severity::Error)
    }

    /// Every error found, listed or not.
    pub fn error_count(&self) -> usize {
        let omitted: u32 = self
            .omitted
            .iter()
            .filter(|(_, s, _)| *s == Severity::Error)
            .map(|(_, _, n)| *n)
            .sum();
        self.errors().count() + omitted as usize
    }

    /// How many violations were found and not listed.
    pub fn omitted_count(&self) -> u64 {
        self.omitted.iter().map(|(_, _, n)| u64::from(*n)).sum()
    }
}

/// Validates `body` (unless `mode` is off) and, when it is to be forwarded and is JSON, enriches
/// it with `rules` in `ectx`; with `track`, summarizes it for the session tracker; with `keep`,
/// a refused body is enriched too (the quarantine keeps what would have been forwarded).
#[allow(clippy::too_many_arguments)]
pub fn check(
    endpoint: Endpoint,
    body: Bytes,
    mode: Mode,
    policies: &Policies,
    rules: &RuleSet,
    ectx: &enrich::Context<'_>,
    track: bool,
    keep: bool,
) -> Prepared {
    let checked = mcapi::check(endpoint, &body, policies, ectx.received_at_ms);
    let valid = checked.is_valid();
    let mcapi::Checked {
        text,
        document,
        violations,
        omitted,
    } = checked;
    let (violations, omitted) = if mode == Mode::Off {
        (Vec::new(), Vec::new())
    } else {
        (violations, omitted)
    };
    let (player, sdk) = document.as_ref().map_or((None, None), player_of);
    if mode == Mode::Enforce && !valid {
        let kept = match (&document, keep) {
            (_, false) => Bytes::new(),
            (Some(doc), true) => rules
                .enrich_body(text, doc, ectx)
                .map_or_else(|| body.clone(), |(new, _)| Bytes::from(new)),
            (None, true) => body.clone(),
        };
        return Prepared {
            decision: Decision::Refuse(kept),
            violations,
            omitted,
            events: Vec::new(),
            applied: None,
            rewritten: false,
            summary: Summary::default(),
            player,
            sdk,
        };
    }
    let (enriched, applied) = match &document {
        Some(doc) => match rules.enrich_body(text, doc, ectx) {
            Some((new, applied)) => (Some(new), Some(applied)),
            None => (None, None),
        },
        None => (None, None),
    };
    let events = document
        .iter()
        .flat_map(|doc| doc.events())
        .map(|event| {
            let content_type = (event.event_type == Some(EventType::SessionStart)).then(|| {
                event
                    .param_str("media.contentType")
                    .as_deref()
                    .map_or("other", mcapi::content_type_label)
            });
            (event.event_type, content_type)
        })
        .collect();
    // Summarized from the body as received: enrichment never touches what the tracker reads.
    let summary = match (&document, track) {
        (Some(doc), true) => summarize(doc),
        _ => Summary::default(),
    };
    drop(document);
    let rewritten = enriched.is_some();
    let body = enriched.map_or(body, Bytes::from);
    Prepared {
        decision: Decision::Forward(body),
        violations,
        omitted,
        events,
        applied,
        rewritten,
        summary,
        player,
        sdk,
    }
}

/// The player and SDK of a body's session start (none for other bodies).
fn player_of(doc: &mcapi::Document<'_>) -> (Option<String>, Option<String>) {
    let Some(start) = doc
        .events()
        .iter()
        .find(|e| e.event_type == Some(EventType::SessionStart))
    else {
        return (None, None);
    };
    let player = start.param_str("media.playerName").map(|p| p.into_owned());
    let sdk = crate::quality::labels::sdk_of(
        start.param_str("media.libraryVersion").as_deref(),
        start.param_str("media.sdkVersion").as_deref(),
    );
    (player, sdk)
}
