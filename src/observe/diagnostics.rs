//! The diagnostic log on standard error: `env_logger`'s format and filters (`[log] level`, which
//! `RUST_LOG` overrides). While the server runs, lines go through a [`LogSink`] so that a stalled
//! stderr reader drops lines (counted in `mediagate_diagnostic_log_dropped_total`) instead of
//! stalling the thread that logs; before and after (start-up checks, the last words before an
//! exit) they are written at once, so that nothing said then is lost.

use arc_swap::ArcSwap;
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
    let logger = build(level, sink);
    let max = logger.filter();
    let swappable = LOGGER.get_or_init(|| Swappable(ArcSwap::from_pointee(logger)));
    if log::set_logger(swappable).is_ok() {
        log::set_max_level(max);
    }
}

/// The `env_logger` of `level` (`RUST_LOG` wins when set), writing to `sink`.
fn build(level: &str, sink: Arc<LogSink>) -> env_logger::Logger {
    let env = env_logger::Env::default().default_filter_or(level);
    env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .target(env_logger::Target::Pipe(Box::new(Writer(sink))))
        .build()
}

/// Changes the level (`[log] level`, on an in-process reload). `Err`: why it stays.
pub fn set_level(level: &str) -> Result<(), String> {
    if std::env::var_os("RUST_LOG").is_some() {
        return Err("RUST_LOG is set and decides the level".into());
    }
    let (Some(sink), Some(swappable)) = (SINK.get(), LOGGER.get()) else {
        return Err("the diagnostic log is not running".into());
    };
    let logger = build(level, sink.clone());
    log::set_max_level(logger.filter());
    swappable.0.store(Arc::new(logger));
    Ok(())
}

/// The installed logger, replaced whole when the level changes.
static LOGGER: OnceLock<Swappable> = OnceLock::new();

struct Swappable(ArcSwap<env_logger::Logger>);

impl log::Log for Swappable {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.0.load().enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        self.0.load().log(record)
    }

    fn flush(&self) {
        self.0.load().flush()
    }
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
