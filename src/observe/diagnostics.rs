//! The diagnostic log on standard error: `env_logger`'s format and filters (`[log] level`, which
//! `RUST_LOG` overrides), written through a [`LogSink`] so that a stalled stderr reader drops
//! lines (counted in `mediagate_diagnostic_log_dropped_total`) instead of stalling the thread
//! that logs.

use prometheus::IntCounter;
use std::sync::Arc;

use super::log_sink::{Destination, LogSink, SinkWriter};

/// Bytes of diagnostics waiting to be written, at most.
const CAPACITY: usize = 1 << 20;

/// Installs the logger (once per process; later calls keep the first). Returns the sink, to
/// be closed at exit.
pub fn init(level: &str, dropped: IntCounter) -> Option<Arc<LogSink>> {
    let sink = match LogSink::start("diagnostics", Destination::Stderr, CAPACITY, dropped) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("mediagate: cannot start the diagnostic log: {e}");
            return None;
        }
    };
    let env = env_logger::Env::default().default_filter_or(level);
    let installed = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .target(env_logger::Target::Pipe(Box::new(SinkWriter(sink.clone()))))
        .try_init();
    installed.is_ok().then_some(sink)
}
