//! What the pipeline tells data quality about a call (`docs/data-quality.md`): its violations
//! counted by the session's player and SDK, and the call itself written to the quarantine when
//! it was refused, forwarded with violations (report mode, sampled), or failed upstream (opt-in).
//! The entry is built off the answer's path only in the sense that matters: writing it is a
//! bounded queue's push, never a wait.
//!
//! **May use:** `quality`, `quarantine`, `tracker` (the labels of an events call's session),
//! `mcapi` (violations), the request's [`Exchange`] (allow-listed headers).

use super::context::RequestCtx;
use crate::quality::labels::UNKNOWN;
use crate::quarantine::{Call, Kind, Policy, Violation};
use crate::runtime::Runtime;
use crate::server::Exchange;
use mcapi::route;
use mcapi::{Endpoint, Severity};

/// The player and SDK labels of a call: a session start's own (`media.playerName`, the SDK),
/// an events call's session's (from the tracker).
pub(super) async fn labels(
    rt: &Runtime,
    ex: &Exchange<'_>,
    endpoint: Endpoint,
    player: Option<&str>,
    sdk: Option<&str>,
) -> (u16, u16) {
    match endpoint {
        Endpoint::Events => match (&rt.tracker, route::sid_of(ex.head.uri.path())) {
            (Some(tracker), Some(sid)) => tracker.labels_of(sid).await,
            _ => (UNKNOWN, UNKNOWN),
        },
        _ => (rt.quality.players.label(player), rt.quality.sdks.label(sdk)),
    }
}

/// Counts a body's validation errors by player and SDK.
pub(super) fn count_errors(
    rt: &Runtime,
    labels: (u16, u16),
    violations: &[mcapi::Violation],
    omitted: &[(mcapi::rules::Rule, Severity, u32)],
    now_ms: u64,
) {
    let q = &rt.quality;
    for v in violations.iter().filter(|v| v.severity == Severity::Error) {
        q.record(labels.0, labels.1, v.rule.as_str(), 1, now_ms);
    }
    for (rule, _, n) in omitted.iter().filter(|(_, s, _)| *s == Severity::Error) {
        q.record(labels.0, labels.1, rule.as_str(), u64::from(*n), now_ms);
    }
}

/// The violations of a body, as an entry lists them.
pub(super) fn violations_of(violations: &[mcapi::Violation]) -> Vec<Violation> {
    violations
        .iter()
        .filter(|v| v.severity == Severity::Error)
        .map(|v| Violation {
            path: v.path.clone(),
            rule: v.rule.as_str().to_owned(),
            detail: v.detail.clone(),
        })
        .collect()
}

/// One call to keep.
pub(super) struct Kept<'a> {
    pub kind: Kind,
    pub status: u16,
    pub labels: (u16, u16),
    pub violations: Vec<Violation>,
    /// The body as it would have been forwarded.
    pub body: &'a [u8],
    /// Where it went or would have gone upstream (`None`: the request's own path).
    pub upstream_path: Option<&'a str>,
    /// Refused by a session rule (not replayable).
    pub session_rule: bool,
}

/// Writes `kept` to the quarantine, when it is on (and, for upstream failures, asked for).
pub(super) fn keep(rt: &Runtime, ex: &Exchange<'_>, ctx: &RequestCtx, kept: Kept<'_>) {
    let Some(quarantine) = &rt.quarantine else {
        return;
    };
    if kept.kind == Kind::UpstreamFailed && !quarantine.keeps_upstream_failures() {
        return;
    }
    let settings = quarantine.settings();
    let head = &ex.head;
    let headers = settings
        .headers
        .iter()
        .filter_map(|name| {
            let value = head.headers.get(name.as_str())?;
            Some((
                name.clone(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ))
        })
        .collect();
    let path = head.uri.path_and_query().map_or("/", |p| p.as_str());
    let rules = super::rule_set(rt, ex);
    let handled = rules.privacy_params();
    let hash = |v: &str| rules.hash_value(v).unwrap_or_default();
    let has_secret = rules.hash_value("").is_some();
    let player = rt.quality.players.name(kept.labels.0);
    let sdk = rt.quality.sdks.name(kept.labels.1);
    let call = Call {
        kind: kept.kind,
        id: &ctx.request_id,
        time_ms: ctx.received_ms,
        route: ctx.route.template(),
        path,
        upstream_path: kept.upstream_path.unwrap_or(path),
        sid: route::sid_of(head.uri.path()),
        status: kept.status,
        player: &player,
        sdk: &sdk,
        violations: kept.violations,
        headers,
        body: kept.body,
        session_rule: kept.session_rule,
    };
    let policy = Policy {
        keep_identity: settings.keep_identity,
        keep_bodies: settings.keep_bodies,
        max_body_bytes: settings.max_body_bytes,
        handled: &handled,
        hashed: rules.hashed_params(),
        hash: has_secret.then_some(&hash as &(dyn Fn(&str) -> String + Sync)),
    };
    quarantine.keep(&call, &policy, &rt.quality);
}
