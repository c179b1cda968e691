//! The hot-path series, resolved once: looking a labelled child up in a Prometheus vector
//! hashes its label values and takes a lock on every call, so the series every request touches
//! are fetched at start (or on first use, for `route × status`) and kept in plain arrays.
//! Series only invalid bodies touch (violations by rule) are looked up when needed.

use prometheus::{Histogram, IntCounter};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::metrics::Metrics;
use enrich::Applied;
use location::Outcome;
use mcapi::route::Route;
use mcapi::{EventType, Severity, Violation, CONTENT_TYPES};

const STATUSES: usize = 500; // 100..=599

pub struct Series {
    metrics: Arc<Metrics>,
    requests: Vec<OnceLock<IntCounter>>,
    duration: Vec<Histogram>,
    body_bytes: Vec<Histogram>,
    events: Vec<IntCounter>,
    sessions: Vec<IntCounter>,
    location: Vec<IntCounter>,
    body_rewrites: Vec<IntCounter>,
    /// Per rule set name: its counters in the order of [`enrich::Applied::counts`].
    enrichments: HashMap<String, Vec<IntCounter>>,
}

impl Series {
    /// `rule_sets`: the names of the enrichment rule sets.
    pub fn new<'a>(metrics: Arc<Metrics>, rule_sets: impl Iterator<Item = &'a str>) -> Series {
        let routes = Route::ALL.iter().map(|r| r.template());
        let actions = Applied::default().counts().map(|(action, _)| action);
        let m = &metrics;
        Series {
            requests: (0..Route::ALL.len() * STATUSES)
                .map(|_| OnceLock::new())
                .collect(),
            duration: routes
                .clone()
                .map(|r| m.request_duration.with_label_values(&[r]))
                .collect(),
            body_bytes: routes
                .clone()
                .map(|r| m.request_body_bytes.with_label_values(&[r]))
                .collect(),
            body_rewrites: routes
                .map(|r| m.body_rewrites.with_label_values(&[r]))
                .collect(),
            enrichments: rule_sets
                .map(|site| {
                    let counters = actions
                        .iter()
                        .map(|a| m.enrichments.with_label_values(&[site, a]))
                        .collect();
                    (site.to_owned(), counters)
                })
                .collect(),
            events: EventType::ALL
                .iter()
                .map(|t| t.as_str())
                .chain(["other"])
                .map(|t| m.events.with_label_values(&[t]))
                .collect(),
            sessions: CONTENT_TYPES
                .iter()
                .copied()
                .chain(["other"])
                .map(|c| m.sessions_started.with_label_values(&[c]))
                .collect(),
            location: Outcome::ALL
                .iter()
                .map(|o| m.location_rewrites.with_label_values(&[o.as_str()]))
                .collect(),
            metrics,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Counts one answered request, its duration and its body size.
    pub fn request(&self, route: Route, status: u16, seconds: f64, body_bytes: usize) {
        self.status(route, status);
        self.duration[route.index()].observe(seconds);
        if body_bytes > 0 {
            self.body_bytes[route.index()].observe(body_bytes as f64);
        }
    }

    /// Counts one answer in `mediagate_requests_total`.
    pub fn status(&self, route: Route, status: u16) {
        let slot = usize::from(status.wrapping_sub(100));
        if slot < STATUSES {
            self.requests[route.index() * STATUSES + slot]
                .get_or_init(|| {
                    self.metrics
                        .requests
                        .with_label_values(&[route.template(), status_label(status)])
                })
                .inc();
        } else {
            self.metrics
                .requests
                .with_label_values(&[route.template(), "other"])
                .inc();
        }
    }

    /// Counts the violations of one body (in every validation mode but off): the listed ones,
    /// and those found beyond the listed ones (by rule, with `other` as their event type).
    pub fn violations(
        &self,
        route: Route,
        violations: &[Violation],
        omitted: &[(mcapi::rules::Rule, Severity, u32)],
    ) {
        let listed = violations
            .iter()
            .map(|v| (v.rule, v.severity, v.event_type, 1));
        let counted = omitted.iter().map(|&(r, s, n)| (r, s, None, n));
        let m = &self.metrics;
        let route = route.template();
        for (rule, severity, event_type, n) in listed.chain(counted) {
            let n = u64::from(n);
            let rule = rule.as_str();
            let severity = match severity {
                Severity::Error => {
                    m.validation_failures
                        .with_label_values(&[route, rule])
                        .inc_by(n);
                    "error"
                }
                Severity::Warning => {
                    m.validation_warnings
                        .with_label_values(&[route, rule])
                        .inc_by(n);
                    "warning"
                }
            };
            let event = mcapi::event_type_label(event_type);
            m.violations_by_event
                .with_label_values(&[event, rule, severity])
                .inc_by(n);
        }
    }

    /// Counts a forwarded event (and, for a `sessionStart`, its content type label).
    pub fn event(&self, t: Option<EventType>, content_type: Option<&'static str>) {
        let i = t.and_then(|t| EventType::ALL.iter().position(|e| *e == t));
        self.events[i.unwrap_or(EventType::ALL.len())].inc();
        if let Some(label) = content_type {
            let i = CONTENT_TYPES.iter().position(|c| *c == label);
            self.sessions[i.unwrap_or(CONTENT_TYPES.len())].inc();
        }
    }

    /// Counts what enrichment rule set `site` did to one body, and whether the body changed.
    pub fn enrichment(&self, route: Route, site: &str, applied: &Applied, rewritten: bool) {
        let counters = self.enrichments.get(site);
        for (i, (action, n)) in applied.counts().into_iter().enumerate() {
            if n == 0 {
                continue;
            }
            match counters.and_then(|c| c.get(i)) {
                Some(counter) => counter.inc_by(u64::from(n)),
                None => self
                    .metrics
                    .enrichments
                    .with_label_values(&[site, action])
                    .inc_by(u64::from(n)),
            }
        }
        if rewritten {
            self.body_rewrites[route.index()].inc();
        }
    }

    pub fn location(&self, outcome: Outcome) {
        let i = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.location[i].inc();
    }
}

/// Status codes as static label values (allocated once, not per request).
pub fn status_label(status: u16) -> &'static str {
    static LABELS: OnceLock<Vec<&'static str>> = OnceLock::new();
    let labels = LABELS.get_or_init(|| {
        (100..600)
            .map(|s: u16| &*Box::leak(s.to_string().into_boxed_str()))
            .collect()
    });
    labels
        .get(usize::from(status.wrapping_sub(100)))
        .copied()
        .unwrap_or("other")
}
