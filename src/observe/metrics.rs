//! The Prometheus registry and every series mediagate exports (`docs/metrics.md` lists them).
//!
//! Label values are always bounded: routes by template, event types from the API's list plus
//! `other`, content types from the API's list (§4.2) plus `other`, rules from the rule table,
//! upstreams by configured name. Names follow Prometheus conventions (base units, `_total`,
//! `_seconds`, `_bytes`); `mediagate_requests_total`, `mediagate_request_duration_seconds`,
//! `mediagate_validation_failures_total` and `mediagate_upstream_healthy` are fixed because
//! dashboards depend on them.

use prometheus::{
    exponential_buckets, Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use mcapi::{EventType, CONTENT_TYPES};

/// The `kind` label values of `mediagate_session_store_errors_total`.
pub const SESSION_STORE_ERRORS: [&str; 4] = ["timeout", "unavailable", "corrupt", "conflict"];

/// The `result` label values of `mediagate_config_reloads_total`.
pub const RELOAD_RESULTS: [&str; 3] = ["ok", "failed", "upgrade_needed"];

/// The `reason` label values of `mediagate_load_shed_total`.
pub const LOAD_SHED_REASONS: [&str; 3] = ["inflight_body_bytes", "rate_limit", "max_connections"];

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub request_body_bytes: HistogramVec,
    pub validation_failures: IntCounterVec,
    pub validation_warnings: IntCounterVec,
    pub violations_by_event: IntCounterVec,
    pub events: IntCounterVec,
    pub sessions_started: IntCounterVec,
    pub upstream_duration: HistogramVec,
    pub upstream_errors: IntCounterVec,
    pub upstream_healthy: IntGaugeVec,
    pub location_rewrites: IntCounterVec,
    pub body_rewrites: IntCounterVec,
    pub enrichments: IntCounterVec,
    pub inflight: IntGauge,
    pub inflight_body_bytes: IntGauge,
    pub access_log_dropped: IntCounter,
    pub diagnostics_dropped: IntCounter,
    pub load_shed: IntCounterVec,
    pub connections_open: IntGauge,
    pub headers_dropped: IntCounterVec,
    pub sessions_active: IntGauge,
    pub session_violations: IntCounterVec,
    pub session_store_errors: IntCounterVec,
    pub session_calls: IntCounterVec,
    pub sessions_closed: IntCounterVec,
    pub sessions_evicted: IntCounter,
    pub sessions_tracked: IntCounter,
    pub session_schedule_full: IntCounter,
    pub config_reloads: IntCounterVec,
    pub session_duration: HistogramVec,
    pub session_events: HistogramVec,
    pub session_store_duration: HistogramVec,
    pub violations_by_player: IntCounterVec,
    pub quarantined: IntCounterVec,
    pub quarantine_dropped: IntCounterVec,
    pub quarantine_files_dropped: IntCounter,
    pub build_info: IntGaugeVec,
    pub start_time: Gauge,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let latency = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let c = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let histogram = |name: &str,
                         help: &str,
                         labels: &[&str],
                         buckets: Vec<f64>|
         -> Result<HistogramVec, prometheus::Error> {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)?;
            registry.register(Box::new(h.clone()))?;
            Ok(h)
        };
        let requests = counter(
            "mediagate_requests_total",
            "Requests answered, by route template and HTTP status.",
            &["route", "status"],
        )?;
        let request_duration = histogram(
            "mediagate_request_duration_seconds",
            "Time from the request header to the end of the answer, by route template.",
            &["route"],
            latency.clone(),
        )?;
        let request_body_bytes = histogram(
            "mediagate_request_body_bytes",
            "Size of request bodies as received, by route template.",
            &["route"],
            exponential_buckets(64.0, 4.0, 9)?,
        )?;
        let validation_failures = counter(
            "mediagate_validation_failures_total",
            "Validation errors found in request bodies (counted in every mode but off), by route and rule.",
            &["route", "rule"],
        )?;
        let validation_warnings = counter(
            "mediagate_validation_warnings_total",
            "Tolerated deviations forwarded with a warning, by route and rule.",
            &["route", "rule"],
        )?;
        let violations_by_event = counter(
            "mediagate_validation_violations_by_event_total",
            "Validation errors and warnings by event type and rule.",
            &["event_type", "rule", "severity"],
        )?;
        let events = counter(
            "mediagate_events_total",
            "Events forwarded upstream, by event type (the API's types plus other).",
            &["event_type"],
        )?;
        let sessions_started = counter(
            "mediagate_sessions_started_total",
            "sessionStart events forwarded, by lower-cased media.contentType (the API's list plus other).",
            &["content_type"],
        )?;
        let upstream_duration = histogram(
            "mediagate_upstream_duration_seconds",
            "Time from sending the request upstream to the end of the upstream's answer.",
            &["upstream"],
            latency,
        )?;
        let upstream_errors = counter(
            "mediagate_upstream_errors_total",
            "Failed upstream exchanges, by upstream and kind (connect, timeout, reset, protocol, tls).",
            &["upstream", "kind"],
        )?;
        let upstream_healthy = IntGaugeVec::new(
            Opts::new(
                "mediagate_upstream_healthy",
                "1 when the upstream is considered healthy, else 0.",
            ),
            &["upstream"],
        )?;
        registry.register(Box::new(upstream_healthy.clone()))?;
        let location_rewrites = counter(
            "mediagate_location_rewrites_total",
            "Location headers seen on upstream answers, by outcome (kept, rewritten, foreign, unsafe: not relayed, 502).",
            &["outcome"],
        )?;
        let body_rewrites = counter(
            "mediagate_body_enrichments_total",
            "Request bodies changed by enrichment before forwarding, by route.",
            &["route"],
        )?;
        let enrichments = counter(
            "mediagate_enrichments_total",
            "Enrichment actions applied to bodies, by rule set (site or default) and action (param_set, param_removed, param_hashed, custom_metadata_set).",
            &["site", "action"],
        )?;
        let inflight = IntGauge::new("mediagate_inflight_requests", "Requests being processed.")?;
        registry.register(Box::new(inflight.clone()))?;
        let inflight_body_bytes = IntGauge::new(
            "mediagate_inflight_body_bytes",
            "Request body bytes received and held now, by all requests together (bounded by [server] max_inflight_body_bytes).",
        )?;
        registry.register(Box::new(inflight_body_bytes.clone()))?;
        let access_log_dropped = IntCounter::new(
            "mediagate_access_log_dropped_total",
            "Access log lines dropped because the log's reader did not keep up (its buffer was full).",
        )?;
        registry.register(Box::new(access_log_dropped.clone()))?;
        let diagnostics_dropped = IntCounter::new(
            "mediagate_diagnostic_log_dropped_total",
            "Diagnostic log lines (stderr) dropped because their reader did not keep up.",
        )?;
        registry.register(Box::new(diagnostics_dropped.clone()))?;
        let load_shed = counter(
            "mediagate_load_shed_total",
            "Requests and connections refused to protect the gateway, by reason (inflight_body_bytes: 503, rate_limit: 429, max_connections: times accepting paused at the cap).",
            &["reason"],
        )?;
        let connections_open = IntGauge::new(
            "mediagate_connections_open",
            "Players' connections open now.",
        )?;
        registry.register(Box::new(connections_open.clone()))?;
        let headers_dropped = counter(
            "mediagate_headers_dropped_total",
            "Request header fields not forwarded upstream, by reason (underscore: a name with '_').",
            &["reason"],
        )?;
        let sessions_active = IntGauge::new(
            "mediagate_sessions_active",
            "Tracked sessions that are open (memory store: this process's; redis: every replica's, from the store).",
        )?;
        registry.register(Box::new(sessions_active.clone()))?;
        let session_violations = counter(
            "mediagate_session_violations_total",
            "Session rules broken, by rule and action (reported: the call went on; refused: the gateway answered it).",
            &["rule", "action"],
        )?;
        let session_store_errors = counter(
            "mediagate_session_store_errors_total",
            "Session store operations that failed, by kind (timeout, unavailable, corrupt, conflict); the call went on unjudged.",
            &["kind"],
        )?;
        let session_calls = counter(
            "mediagate_session_calls_total",
            "Calls on sessions, by outcome (judged: a tracked session; unknown: never seen start, forgotten, or missed an update; refused: answered by a session rule).",
            &["outcome"],
        )?;
        let sessions_closed = counter(
            "mediagate_sessions_closed_total",
            "Tracked sessions that closed, by reason (session_end, idle_timeout, playhead_timeout, upstream_gone).",
            &["reason"],
        )?;
        let sessions_evicted = IntCounter::new(
            "mediagate_sessions_evicted_total",
            "Tracked sessions dropped because [sessions] max_sessions was reached (they become unknown).",
        )?;
        registry.register(Box::new(sessions_evicted.clone()))?;
        let sessions_tracked = IntCounter::new(
            "mediagate_sessions_tracked_total",
            "Sessions the tracker started following (the upstream's 201 named them).",
        )?;
        registry.register(Box::new(sessions_tracked.clone()))?;
        let session_schedule_full = IntCounter::new(
            "mediagate_session_schedule_full_total",
            "Looks the tracker could not schedule (over a million sessions waiting): their calls are judged by the session's next call or close instead.",
        )?;
        registry.register(Box::new(session_schedule_full.clone()))?;
        let config_reloads = counter(
            "mediagate_config_reloads_total",
            "In-process configuration reloads (SIGHUP), by result (ok; failed: the file failed the check; upgrade_needed: keys that need new sockets changed). Nothing changes unless ok.",
            &["result"],
        )?;
        let session_duration = histogram(
            "mediagate_session_duration_seconds",
            "How long tracked sessions lasted, from their start to their close.",
            &[],
            vec![
                10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0,
            ],
        )?;
        let session_events = histogram(
            "mediagate_session_events",
            "Calls per tracked session, counted when it closes.",
            &[],
            exponential_buckets(1.0, 4.0, 9)?,
        )?;
        let session_store_duration = histogram(
            "mediagate_session_store_duration_seconds",
            "Time of session store operations, by operation (read, update).",
            &["op"],
            vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1,
            ],
        )?;
        let violations_by_player = counter(
            "mediagate_violations_by_player_total",
            "Validation failures and session-rule violations by the session's player (media.playerName) and SDK (family and major version), labels bounded by [quality] max_label_values (then \"other\").",
            &["player", "sdk", "rule"],
        )?;
        let quarantined = counter(
            "mediagate_quarantined_total",
            "Calls written to the quarantine spool, by kind (refused: never reached the upstream; reported: forwarded with violations, a sample; upstream_failed: 502/503/504, opt-in).",
            &["kind"],
        )?;
        let quarantine_dropped = counter(
            "mediagate_quarantine_dropped_total",
            "Calls the quarantine did not write, by reason (queue_full: the spool's writer did not keep up or the disk stalled; sampled_out: report-mode examples above report_samples_per_second).",
            &["reason"],
        )?;
        let quarantine_files_dropped = IntCounter::new(
            "mediagate_quarantine_files_dropped_total",
            "Rotated quarantine files deleted, oldest first, to keep the spool within [quarantine] max_bytes.",
        )?;
        registry.register(Box::new(quarantine_files_dropped.clone()))?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "mediagate_build_info",
                "Always 1; labels carry the build's version and git commit.",
            ),
            &["version", "commit"],
        )?;
        registry.register(Box::new(build_info.clone()))?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("MEDIAGATE_COMMIT")])
            .set(1);
        let start_time = Gauge::new(
            "mediagate_start_time_seconds",
            "Unix time at which this process started.",
        )?;
        registry.register(Box::new(start_time.clone()))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        start_time.set(now);

        let metrics = Metrics {
            registry,
            requests,
            request_duration,
            request_body_bytes,
            validation_failures,
            validation_warnings,
            violations_by_event,
            events,
            sessions_started,
            upstream_duration,
            upstream_errors,
            upstream_healthy,
            location_rewrites,
            body_rewrites,
            enrichments,
            inflight,
            inflight_body_bytes,
            access_log_dropped,
            diagnostics_dropped,
            load_shed,
            connections_open,
            headers_dropped,
            sessions_active,
            session_violations,
            session_store_errors,
            session_calls,
            sessions_closed,
            sessions_evicted,
            sessions_tracked,
            session_schedule_full,
            config_reloads,
            session_duration,
            session_events,
            session_store_duration,
            violations_by_player,
            quarantined,
            quarantine_dropped,
            quarantine_files_dropped,
            build_info,
            start_time,
        };
        metrics.touch_bounded_series();
        Ok(metrics)
    }

    /// Creates the bounded series at zero so that dashboards and `rate()` see them from the start.
    fn touch_bounded_series(&self) {
        for t in EventType::ALL {
            self.events.with_label_values(&[t.as_str()]);
        }
        self.events
            .with_label_values(&[mcapi::event_type_label(None)]);
        for c in CONTENT_TYPES.iter().chain(&["other"]) {
            self.sessions_started.with_label_values(&[c]);
        }
        for o in location::Outcome::ALL {
            self.location_rewrites.with_label_values(&[o.as_str()]);
        }
        for reason in LOAD_SHED_REASONS {
            self.load_shed.with_label_values(&[reason]);
        }
        self.headers_dropped.with_label_values(&["underscore"]);
        for rule in sessions::Rule::ALL {
            self.session_violations
                .with_label_values(&[rule.as_str(), "reported"]);
            if !rule.order_sensitive() {
                self.session_violations
                    .with_label_values(&[rule.as_str(), "refused"]);
            }
        }
        for result in RELOAD_RESULTS {
            self.config_reloads.with_label_values(&[result]);
        }
        for kind in SESSION_STORE_ERRORS {
            self.session_store_errors.with_label_values(&[kind]);
        }
        for outcome in ["judged", "unknown", "refused"] {
            self.session_calls.with_label_values(&[outcome]);
        }
        for reason in sessions::Closed::REASONS {
            self.sessions_closed.with_label_values(&[reason.as_str()]);
        }
        for kind in ["refused", "reported", "upstream_failed"] {
            self.quarantined.with_label_values(&[kind]);
        }
        for reason in ["queue_full", "sampled_out"] {
            self.quarantine_dropped.with_label_values(&[reason]);
        }
    }

    /// The text exposition of every series.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec only fails on invalid metric families, which we never build.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_names_are_exported() {
        let m = Metrics::new().unwrap();
        m.requests
            .with_label_values(&["/api/v1/sessions", "201"])
            .inc();
        m.request_duration
            .with_label_values(&["/api/v1/sessions"])
            .observe(0.001);
        m.validation_failures
            .with_label_values(&["/api/v1/sessions", "type"])
            .inc();
        m.upstream_healthy.with_label_values(&["local"]).set(1);
        let text = String::from_utf8(m.render()).unwrap();
        for name in [
            "mediagate_requests_total{route=\"/api/v1/sessions\",status=\"201\"} 1",
            "mediagate_request_duration_seconds_bucket{route=\"/api/v1/sessions\"",
            "mediagate_validation_failures_total{route=\"/api/v1/sessions\",rule=\"type\"} 1",
            "mediagate_upstream_healthy{upstream=\"local\"} 1",
            "mediagate_events_total{event_type=\"ping\"} 0",
            "mediagate_build_info{commit=",
        ] {
            assert!(text.contains(name), "missing {name}");
        }
    }
}
