//! The quarantine: what the gateway refused is kept, not thrown away (`docs/data-quality.md`).
//! Each refused call (validation or a session rule), a sample of the calls forwarded with
//! violations in `report` mode, and, opt-in, the calls that failed upstream become one JSON line
//! ([`entry`]) in a spool of files in `[quarantine] dir`, rotated by size and bounded in total
//! (the oldest file is dropped and counted). Written off the request path through a bounded
//! queue (`observe::log_sink`): a full queue or a stalled disk drops the entry and counts it; a
//! player is never made to wait. Flushed, within a bound, when the process exits. Read back by
//! `mediagate quarantine` ([`spool`]).
//!
//! **Owns** the spool's writer and its metrics. **May use:** `config` (`[quarantine]`),
//! `observe` (the log sink, metrics), `quality` (the examples the page lists), `io::clock`.

pub mod entry;
pub mod spool;

use prometheus::IntCounter;
use std::io;
use std::sync::Mutex;
use std::time::Duration;

use crate::config;
use crate::observe::log_sink::{Destination, LogSink};
use crate::observe::metrics::Metrics;
use crate::quality::{Example, Quality};
pub use entry::{Call, Kind, Policy, Violation};

pub struct Quarantine {
    settings: config::Quarantine,
    sink: LogSink,
    written: Vec<IntCounter>,
    sampled_out: IntCounter,
    dropped: IntCounter,
    /// Report-mode examples: a token bucket (tokens, at ms).
    samples: Mutex<(f64, u64)>,
}

impl Quarantine {
    /// Starts the spool's writer (the directory is created; the current file is opened by the
    /// writer thread, so that a stalled disk cannot hold the start either).
    pub fn start(settings: &config::Quarantine, metrics: &Metrics) -> io::Result<Quarantine> {
        let dropped = metrics
            .quarantine_dropped
            .with_label_values(&["queue_full"]);
        let sink = LogSink::start(
            "quarantine",
            Destination::Spool {
                dir: settings.dir.clone(),
                file_bytes: settings.file_bytes,
                max_bytes: settings.max_bytes,
                files_dropped: metrics.quarantine_files_dropped.clone(),
            },
            settings.queue_bytes,
            dropped.clone(),
        )?;
        Ok(Quarantine {
            settings: settings.clone(),
            sink,
            written: Kind::ALL
                .iter()
                .map(|k| metrics.quarantined.with_label_values(&[k.as_str()]))
                .collect(),
            sampled_out: metrics
                .quarantine_dropped
                .with_label_values(&["sampled_out"]),
            dropped,
            samples: Mutex::new((settings.report_samples_per_second.max(1.0), 0)),
        })
    }

    pub fn settings(&self) -> &config::Quarantine {
        &self.settings
    }

    /// Whether calls that failed upstream are kept.
    pub fn keeps_upstream_failures(&self) -> bool {
        self.settings.upstream_failures
    }

    /// Whether a report-mode example may be kept now (a flood is sampled).
    fn sample(&self, now_ms: u64) -> bool {
        let rate = self.settings.report_samples_per_second;
        if rate <= 0.0 {
            return false;
        }
        let mut b = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, at) = *b;
        let tokens = (tokens + now_ms.saturating_sub(at) as f64 * rate / 1000.0).min(rate.max(1.0));
        if tokens < 1.0 {
            *b = (tokens, now_ms);
            return false;
        }
        *b = (tokens - 1.0, now_ms);
        true
    }

    /// Keeps `call` (for the page too); `false` when it was dropped (sampled out, or the queue
    /// was full) — counted either way.
    pub fn keep(&self, call: &Call<'_>, policy: &Policy<'_>, quality: &Quality) -> bool {
        if call.kind == Kind::Reported && !self.sample(call.time_ms) {
            self.sampled_out.inc();
            return false;
        }
        let (line, replayable) = entry::build(call, policy);
        let kept = self.sink.line(|out| out.extend_from_slice(&line));
        if kept {
            if let Some(i) = Kind::ALL.iter().position(|k| *k == call.kind) {
                self.written[i].inc();
            }
            quality.example(Example {
                id: call.id.to_owned(),
                time_ms: call.time_ms,
                kind: call.kind.as_str(),
                route: call.route,
                rules: call.violations.iter().map(|v| v.rule.clone()).collect(),
                player: call.player.to_owned(),
                sdk: call.sdk.to_owned(),
                replayable,
                entry: String::from_utf8_lossy(&line).into_owned(),
            });
        }
        kept
    }

    /// Entries written and dropped so far (for `/quality`).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.written.iter().map(IntCounter::get).sum(),
            self.dropped.get(),
        )
    }

    /// Writes out what is queued, waiting at most `limit` (at exit).
    pub fn close(&self, limit: Duration) {
        self.sink.close(limit);
    }
}
