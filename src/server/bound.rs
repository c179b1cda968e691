//! The listening report: once every listener of the process is accepting, one line on the
//! diagnostic log names each listener and its address, and, with `run --ready-file PATH`, a
//! JSON object `{"gateway": "127.0.0.1:8080", "admin": ..., "emulator": ...}` is written to PATH
//! (atomically: written to a temporary file, then renamed). With port 0 in the configuration
//! this is how a supervisor or a test learns the ports the kernel chose. Under systemd
//! (`NOTIFY_SOCKET`), that moment is also `READY=1` (`io::notify`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct Bound(Arc<Inner>);

struct Inner {
    expected: usize,
    ready_file: Option<PathBuf>,
    seen: Mutex<BTreeMap<&'static str, SocketAddr>>,
}

impl Bound {
    /// A report of `expected` listeners.
    pub fn new(expected: usize, ready_file: Option<PathBuf>) -> Bound {
        Bound(Arc::new(Inner {
            expected,
            ready_file,
            seen: Mutex::new(BTreeMap::new()),
        }))
    }

    /// Listener `name` accepts on `addr`.
    pub fn report(&self, name: &'static str, addr: SocketAddr) {
        let all = {
            let mut seen = self.0.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.insert(name, addr);
            (seen.len() == self.0.expected).then(|| seen.clone())
        };
        let Some(all) = all else {
            return;
        };
        let line: Vec<String> = all.iter().map(|(n, a)| format!("{n}={a}")).collect();
        log::info!("listening: {}", line.join(" "));
        crate::io::notify::ready();
        if let Some(path) = &self.0.ready_file {
            if let Err(e) = write_atomically(path, &all) {
                log::error!("cannot write the ready file {}: {e}", path.display());
            }
        }
    }
}

fn write_atomically(
    path: &std::path::Path,
    all: &BTreeMap<&'static str, SocketAddr>,
) -> std::io::Result<()> {
    let text: BTreeMap<&str, String> = all.iter().map(|(n, a)| (*n, a.to_string())).collect();
    let json = serde_json::to_vec(&text).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, path)
}
