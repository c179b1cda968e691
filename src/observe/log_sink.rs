//! A log destination that never makes its writers wait: lines are appended to a bounded
//! in-memory buffer under a short lock, and a thread of its own writes them out — standard
//! output, standard error or a file — every 100 ms, or at once when 64 KiB have gathered. When
//! the destination stalls (a full pipe nobody reads, a slow `docker logs`, a stuck journald),
//! only that thread blocks: the buffer fills to its bound, and further lines are dropped and
//! counted, never waited for. A file destination is reopened on request (`SIGUSR1`, after
//! logrotate moved it). A spool destination (the quarantine) is a directory of files rotated by
//! size and bounded in total, its current file opened by the writer thread itself.
//!
//! At a graceful exit `run` closes the sink: what is pending is written, within a bound, so a
//! stalled reader cannot keep the process from exiting either.

use prometheus::IntCounter;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Written out at once when this much has gathered.
const FLUSH_AT: usize = 64 * 1024;
/// Otherwise written out this often.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// A thread's scratch buffer for formatting a line is kept up to this size between lines.
const SCRATCH_KEPT: usize = 16 * 1024;

/// Where the lines go.
#[derive(Clone, Debug)]
pub enum Destination {
    Stdout,
    Stderr,
    /// Appended to; reopened on [`LogSink::reopen`].
    File(PathBuf),
    /// `dir/quarantine.jsonl`, renamed to `quarantine-<ms>-<n>.jsonl` once it holds
    /// `file_bytes`; the oldest renamed files are deleted (and counted) while all of them hold
    /// more than `max_bytes`.
    Spool {
        dir: PathBuf,
        file_bytes: u64,
        max_bytes: u64,
        files_dropped: IntCounter,
    },
}

/// The spool's current file.
pub const SPOOL_CURRENT: &str = "quarantine.jsonl";

pub struct LogSink {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// The written-out signal `close` waits on.
    drained: Condvar,
    capacity: usize,
    dropped: IntCounter,
}

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    /// Lines in `pending` (for counting drops when a write fails).
    lines: u64,
    /// The writer holds a block it has not finished writing.
    writing: bool,
    reopen: bool,
    stop: bool,
}

impl LogSink {
    /// Starts the writer thread. `capacity` bounds the bytes waiting to be written; `dropped`
    /// counts the lines that did not fit (or could not be written). Fails when a file
    /// destination cannot be opened.
    pub fn start(
        name: &str,
        destination: Destination,
        capacity: usize,
        dropped: IntCounter,
    ) -> io::Result<LogSink> {
        let mut out = Output::open(destination)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            drained: Condvar::new(),
            capacity,
            dropped,
        });
        let thread_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || thread_shared.run(&mut out))?;
        Ok(LogSink {
            shared,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Appends one line written by `write` (a newline is added). Returns `false` when the
    /// buffer was full and the line was dropped (and counted).
    pub fn line(&self, write: impl FnOnce(&mut Vec<u8>)) -> bool {
        // The line is formatted into this thread's scratch buffer first, so that the lock is
        // held for a copy only, not while another worker formats its own line.
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut line) => {
                line.clear();
                write(&mut line);
                let kept = self.append(&line);
                if line.capacity() > SCRATCH_KEPT {
                    *line = Vec::new();
                }
                kept
            }
            // Only if `write` itself logged a line on this thread.
            Err(_) => {
                let mut line = Vec::new();
                write(&mut line);
                self.append(&line)
            }
        })
    }

    /// Appends one formatted line (and its newline) under the lock.
    fn append(&self, line: &[u8]) -> bool {
        let mut state = self.shared.lock();
        if state.pending.len() >= self.shared.capacity || state.stop {
            drop(state);
            self.shared.dropped.inc();
            return false;
        }
        let before = state.pending.len();
        state.pending.extend_from_slice(line);
        state.pending.push(b'\n');
        state.lines += 1;
        // Written out early once a good part of the buffer is used (a small buffer must not
        // fill before the writer wakes).
        let at = FLUSH_AT.min(self.shared.capacity / 2);
        let crossed = before < at && state.pending.len() >= at;
        drop(state);
        if crossed {
            self.shared.wake.notify_one();
        }
        true
    }

    /// Asks the writer to reopen a file destination (after logrotate moved it).
    pub fn reopen(&self) {
        self.shared.lock().reopen = true;
        self.shared.wake.notify_one();
    }

    /// Writes out what is pending and stops the writer, waiting at most `limit` for it.
    pub fn close(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        {
            let mut state = self.shared.lock();
            state.stop = true;
            self.shared.wake.notify_one();
            while !state.pending.is_empty() || state.writing {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    // The destination is stalled: leave the writer blocked, and exit anyway.
                    return;
                }
                state = match self.shared.drained.wait_timeout(state, left) {
                    Ok((s, _)) => s,
                    Err(p) => p.into_inner().0,
                };
            }
        }
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The writer thread.
    fn run(&self, out: &mut Output) {
        let mut block = Vec::with_capacity(FLUSH_AT);
        loop {
            let (lines, reopen, stop) = {
                let mut state = self.lock();
                state.writing = false;
                self.drained.notify_all();
                if state.pending.len() < FLUSH_AT.min(self.capacity / 2)
                    && !state.reopen
                    && !state.stop
                {
                    state = match self.wake.wait_timeout(state, FLUSH_EVERY) {
                        Ok((s, _)) => s,
                        Err(p) => p.into_inner().0,
                    };
                }
                std::mem::swap(&mut block, &mut state.pending);
                let lines = std::mem::take(&mut state.lines);
                state.writing = !block.is_empty();
                let reopen = std::mem::take(&mut state.reopen);
                (lines, reopen, state.stop)
            };
            if reopen {
                out.reopen();
            }
            if !block.is_empty() {
                if out.write(&block).is_err() {
                    // Nowhere to write (a closed stdout, a full disk): the lines are lost.
                    self.dropped.inc_by(lines);
                }
                block.clear();
                if block.capacity() > 4 * FLUSH_AT {
                    block = Vec::with_capacity(FLUSH_AT);
                }
            }
            if stop && lines == 0 {
                let mut state = self.lock();
                if state.pending.is_empty() {
                    state.writing = false;
                    self.drained.notify_all();
                    return;
                }
            }
        }
    }
}

/// The open destination (only the writer thread touches it).
struct Output {
    destination: Destination,
    file: Option<File>,
    /// Bytes in the spool's current file.
    size: u64,
    /// Renamed spool files so far (their names' tie-breaker).
    rotated: u64,
    /// A spool write failed part-way: the file may end in a torn line, to be ended before the
    /// next block (the reader skips it) so that it does not swallow the next entry.
    torn: bool,
}

impl Output {
    fn open(destination: Destination) -> io::Result<Output> {
        let file = match &destination {
            Destination::File(path) => Some(append(path)?),
            Destination::Spool { dir, .. } => {
                // Payloads: readable by the gateway's user only (directories it creates, files).
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
                if !std::fs::metadata(dir)?.is_dir() {
                    return Err(io::Error::other(format!(
                        "{} is not a directory",
                        dir.display()
                    )));
                }
                None
            }
            _ => None,
        };
        Ok(Output {
            destination,
            file,
            size: 0,
            rotated: 0,
            torn: false,
        })
    }

    fn reopen(&mut self) {
        if let Destination::File(path) = &self.destination {
            match append(path) {
                Ok(f) => self.file = Some(f),
                Err(e) => log::error!("cannot reopen {}: {e}", path.display()),
            }
        }
    }

    fn write(&mut self, block: &[u8]) -> io::Result<()> {
        match (&self.destination, &mut self.file) {
            (Destination::Stdout, _) => {
                let mut out = io::stdout().lock();
                out.write_all(block)?;
                out.flush()
            }
            (Destination::Stderr, _) => io::stderr().lock().write_all(block),
            (Destination::File(_), Some(file)) => file.write_all(block),
            (Destination::File(_), None) => Err(io::Error::other("no file open")),
            (Destination::Spool { .. }, _) => self.spool(block),
        }
    }

    fn spool(&mut self, block: &[u8]) -> io::Result<()> {
        let Destination::Spool {
            dir,
            file_bytes,
            max_bytes,
            files_dropped,
        } = &self.destination
        else {
            return Err(io::Error::other("not a spool"));
        };
        let current = dir.join(SPOOL_CURRENT);
        if self.file.is_none() {
            let f = append_private(&current)?;
            self.size = f.metadata().map_or(0, |m| m.len());
            self.file = Some(f);
        }
        if self.size > 0 && self.size + block.len() as u64 > *file_bytes {
            self.file = None;
            self.rotated += 1;
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let name = format!("quarantine-{ms:013}-{:06}.jsonl", self.rotated % 1_000_000);
            std::fs::rename(&current, dir.join(name))?;
            prune(dir, *max_bytes, files_dropped);
            let f = append_private(&current)?;
            self.size = 0;
            self.file = Some(f);
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("no file open"))?;
        if self.torn {
            file.write_all(b"\n")?;
            self.torn = false;
        }
        if let Err(e) = file.write_all(block) {
            self.torn = true;
            log::warn!("quarantine: writing to {}: {e}", current.display());
            return Err(e);
        }
        self.size += block.len() as u64;
        Ok(())
    }
}

/// Deletes the oldest rotated spool files while the rotated ones hold more than `max_bytes`.
fn prune(dir: &std::path::Path, max_bytes: u64, dropped: &IntCounter) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(String, u64)> = read
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let rotated = name.starts_with("quarantine-") && name.ends_with(".jsonl");
            rotated.then(|| (name, e.metadata().map_or(0, |m| m.len())))
        })
        .collect();
    files.sort();
    let mut total: u64 = files.iter().map(|(_, n)| n).sum();
    for (name, size) in files {
        if total <= max_bytes {
            break;
        }
        if std::fs::remove_file(dir.join(&name)).is_ok() {
            dropped.inc();
            total -= size;
        }
    }
}

fn append(path: &std::path::Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// A spool file: created readable and writable by the gateway's user only.
fn append_private(path: &std::path::Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> IntCounter {
        IntCounter::new("t", "t").unwrap()
    }

    #[test]
    fn a_spool_rotates_by_size_and_drops_the_oldest_beyond_its_total() {
        let dir = std::env::temp_dir().join(format!("log-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let files_dropped = counter();
        let mut out = Output::open(Destination::Spool {
            dir: dir.clone(),
            file_bytes: 100,
            max_bytes: 250,
            files_dropped: files_dropped.clone(),
        })
        .unwrap();
        assert!(dir.is_dir(), "created at start");
        assert!(
            !dir.join(SPOOL_CURRENT).exists(),
            "opened by the first write"
        );
        let block = [b'x'; 59].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        for _ in 0..10 {
            out.write(&block).unwrap();
        }
        let mut rotated: Vec<(String, u64)> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .filter(|(n, _)| n.starts_with("quarantine-"))
            .collect();
        rotated.sort();
        // 60-byte blocks, 100-byte files: one block per file; 9 rotated, 4 of them fit 250 bytes.
        assert_eq!(rotated.len(), 4, "{rotated:?}");
        assert!(rotated.iter().all(|(_, n)| *n == 60));
        assert_eq!(files_dropped.get(), 5);
        assert_eq!(
            std::fs::metadata(dir.join(SPOOL_CURRENT)).unwrap().len(),
            60
        );
        // Names sort in the order written.
        let names: Vec<&String> = rotated.iter().map(|(n, _)| n).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn lines_reach_the_file_and_a_full_buffer_drops_and_counts() {
        let dir = std::env::temp_dir().join(format!("log-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let dropped = counter();
        let sink = LogSink::start(
            "t",
            Destination::File(path.clone()),
            1 << 20,
            dropped.clone(),
        )
        .unwrap();
        for i in 0..1000 {
            assert!(sink.line(|out| out.extend_from_slice(format!("line {i}").as_bytes())));
        }
        // Rotated away: the next lines go to a new file once reopened.
        let moved = dir.join("access.log.1");
        sink.close(Duration::from_secs(5));
        std::fs::rename(&path, &moved).unwrap();
        let text = std::fs::read_to_string(&moved).unwrap();
        assert_eq!(text.lines().count(), 1000);
        assert_eq!(text.lines().last(), Some("line 999"));
        assert_eq!(dropped.get(), 0);

        // A closed sink (like a full one) drops and counts.
        assert!(!sink.line(|out| out.push(b'x')));
        assert_eq!(dropped.get(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn reopen_follows_a_rotation() {
        let dir = std::env::temp_dir().join(format!("log-sink-r-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        let sink =
            LogSink::start("t", Destination::File(path.clone()), 1 << 20, counter()).unwrap();
        sink.line(|o| o.extend_from_slice(b"before"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&path)
            .unwrap_or_default()
            .is_empty()
        {
            assert!(Instant::now() < deadline, "the first line was not written");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::fs::rename(&path, dir.join("a.log.1")).unwrap();
        sink.reopen();
        sink.line(|o| o.extend_from_slice(b"after"));
        sink.close(Duration::from_secs(5));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("a.log.1")).unwrap(),
            "before\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
