//! The hot-path series, resolved once: looking a labelled child up in a Prometheus vector
//! hashes its label values and takes a lock on every call, so the series every request touches
//! are fetched at start (or on first use, for `route × status`) and kept in plain arrays.

use prometheus::{Histogram, IntCounter};
use std::collections::HashMap;
use std::sync::OnceLock;

use super::routes::Route;
use crate::enrich::Applied;
use crate::location::Outcome;
use crate::mcapi::EventType;
use crate::metrics::{Metrics, CONTENT_TYPES};

const STATUSES: usize = 500; // 100..=599

pub struct Series {
    requests: Vec<OnceLock<IntCounter>>,
    duration: Vec<Histogram>,
    body_bytes: Vec<Histogram>,
    upstream_duration: Vec<Histogram>,
    events: Vec<IntCounter>,
    sessions: Vec<IntCounter>,
    location: Vec<IntCounter>,
    body_rewrites: Vec<IntCounter>,
    /// Per rule set name: its counters in the order of [`crate::enrich::Applied::counts`].
    enrichments: HashMap<String, Vec<IntCounter>>,
}

impl Series {
    /// `rule_sets`: the names of the enrichment rule sets.
    pub fn new<'a>(
        metrics: &Metrics,
        upstream_names: &[&str],
        rule_sets: impl Iterator<Item = &'a str>,
    ) -> Series {
        let routes = Route::ALL.iter().map(|r| r.template());
        let actions = Applied::default().counts().map(|(action, _)| action);
        Series {
            requests: (0..Route::ALL.len() * STATUSES)
                .map(|_| OnceLock::new())
                .collect(),
            duration: routes
                .clone()
                .map(|r| metrics.request_duration.with_label_values(&[r]))
                .collect(),
            body_bytes: routes
                .clone()
                .map(|r| metrics.request_body_bytes.with_label_values(&[r]))
                .collect(),
            body_rewrites: routes
                .map(|r| metrics.body_rewrites.with_label_values(&[r]))
                .collect(),
            enrichments: rule_sets
                .map(|site| {
                    let counters = actions
                        .iter()
                        .map(|a| metrics.enrichments.with_label_values(&[site, a]))
                        .collect();
                    (site.to_owned(), counters)
                })
                .collect(),
            upstream_duration: upstream_names
                .iter()
                .map(|n| metrics.upstream_duration.with_label_values(&[n]))
                .collect(),
            events: EventType::ALL
                .iter()
                .map(|t| t.as_str())
                .chain(["other"])
                .map(|t| metrics.events.with_label_values(&[t]))
                .collect(),
            sessions: CONTENT_TYPES
                .iter()
                .copied()
                .chain(["other"])
                .map(|c| metrics.sessions_started.with_label_values(&[c]))
                .collect(),
            location: Outcome::ALL
                .iter()
                .map(|o| metrics.location_rewrites.with_label_values(&[o.as_str()]))
                .collect(),
        }
    }

    /// Counts one request; `status_label` is the status as text (or `other`).
    pub fn count_request(&self, metrics: &Metrics, route: Route, status: u16, status_label: &str) {
        let slot = usize::from(status.wrapping_sub(100));
        if slot >= STATUSES {
            metrics
                .requests
                .with_label_values(&[route.template(), status_label])
                .inc();
            return;
        }
        self.requests[route_index(route) * STATUSES + slot]
            .get_or_init(|| {
                metrics
                    .requests
                    .with_label_values(&[route.template(), status_label])
            })
            .inc();
    }

    pub fn duration(&self, route: Route) -> &Histogram {
        &self.duration[route_index(route)]
    }

    pub fn body_bytes(&self, route: Route) -> &Histogram {
        &self.body_bytes[route_index(route)]
    }

    pub fn upstream_duration(&self, upstream: usize) -> &Histogram {
        &self.upstream_duration[upstream]
    }

    pub fn event(&self, t: Option<EventType>) -> &IntCounter {
        let i = t.and_then(|t| EventType::ALL.iter().position(|e| *e == t));
        &self.events[i.unwrap_or(EventType::ALL.len())]
    }

    /// `content_type` is a label from [`crate::metrics::content_type_label`].
    pub fn session(&self, content_type: &str) -> &IntCounter {
        let i = CONTENT_TYPES.iter().position(|c| *c == content_type);
        &self.sessions[i.unwrap_or(CONTENT_TYPES.len())]
    }

    pub fn body_rewrite(&self, route: Route) -> &IntCounter {
        &self.body_rewrites[route_index(route)]
    }

    /// Counts what enrichment rule set `site` did to one body.
    pub fn count_enrichment(&self, metrics: &Metrics, site: &str, applied: &Applied) {
        let counters = self.enrichments.get(site);
        for (i, (action, n)) in applied.counts().into_iter().enumerate() {
            if n == 0 {
                continue;
            }
            match counters.and_then(|c| c.get(i)) {
                Some(counter) => counter.inc_by(u64::from(n)),
                None => metrics
                    .enrichments
                    .with_label_values(&[site, action])
                    .inc_by(u64::from(n)),
            }
        }
    }

    pub fn location(&self, outcome: Outcome) -> &IntCounter {
        let i = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        &self.location[i]
    }
}

fn route_index(route: Route) -> usize {
    Route::ALL.iter().position(|r| *r == route).unwrap_or(0)
}
