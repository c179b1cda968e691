//! The diagnostic log on standard error: `env_logger`'s format and filters (`[log] level`, which
//! `RUST_LOG` overrides). While the server runs, lines go through a [`LogSink`] so that a stalled
//! stderr reader drops lines (counted in `mediagate_diagnostic_log_dropped_total`) instead of
//! stalling the thread that logs; before and after (start-up checks, the last words before an
//! exit) they are written at once, so that nothing said then is lost.

use prometheus::IntCounter;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::log_sink::{Destination, LogSink};

/// Bytes of diagnostics waiting to be written, at most.
const CAPACITY: usize = 1 << 20;

/// The process's diagnostic log, once [`init`] ran.
static SINK: OnceLock<Arc<LogSink>> = OnceLock::new();
/// Whether lines go through the sink (`true`) or straight to stderr.
static BUFFERED: AtomicBool = AtomicBool::new(false);

/// Installs the logger (once per process; later calls keep the first). Lines are written at
/// once until [`buffered`] switches them to the sink.
pub fn init(level: &str, dropped: IntCounter) {
    let sink = match LogSink::start("diagnostics", Destination::Stderr, CAPACITY, dropped) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("mediagate: cannot start the diagnostic log: {e}");
            return;
        }
    };
    if SINK.set(sink.clone()).is_err() {
        return;
    }
    let env = env_logger::Env::default().default_filter_or(level);
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .target(env_logger::Target::Pipe(Box::new(Writer(sink))))
        .try_init();
}

/// Lines go through the sink from now on (the server is running).
pub fn buffered() {
    BUFFERED.store(true, Ordering::Relaxed);
}

/// Writes out what is pending (within `limit`) and writes later lines at once: before the
/// process exits.
pub fn flush(limit: Duration) {
    BUFFERED.store(false, Ordering::Relaxed);
    if let Some(sink) = SINK.get() {
        sink.close(limit);
    }
}

/// Logs `message` as an error, writes the log out and exits with `code`.
pub fn exit(code: i32, message: &str) -> ! {
    log::error!("{message}");
    flush(Duration::from_secs(2));
    std::process::exit(code)
}

/// One record per `write` call (env_logger writes each formatted record whole).
struct Writer(Arc<LogSink>);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if BUFFERED.load(Ordering::Relaxed) {
            let text = buf.strip_suffix(b"\n").unwrap_or(buf);
            // A record that does not fit is dropped whole (and counted), never waited for.
            self.0.line(|out| out.extend_from_slice(text));
        } else {
            let _ = std::io::stderr().lock().write_all(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
