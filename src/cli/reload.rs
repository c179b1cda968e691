//! `mediagate reload [-c FILE]`: apply a new configuration without dropping a connection.
//!
//! 1. The new file is checked; if it fails, nothing else happens (the running gateway is left
//!    alone).
//! 2. A new process is started with `run --upgrade`; it resolves its upstreams, then waits on
//!    `upgrade_sock` for the listening sockets.
//! 3. Only once that socket exists (the new process is waiting) is `SIGQUIT` sent to the running
//!    process (read from `pid_file`), which hands its sockets over, stops accepting and finishes
//!    its in-flight requests. pingora's old process exits on `SIGQUIT` even if the hand-over
//!    fails, so this order is what keeps a bad start from taking the gateway down.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::config;

/// How long the new process may take to get ready (resolve its upstreams, wait for the sockets).
const READY_WITHIN: Duration = Duration::from_secs(10);

/// Why a reload did nothing (the running gateway is left untouched in every case but the last).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}; the running gateway is left untouched")]
    Config(#[from] config::ConfigError),
    #[error("cannot read the pid file {path}: {source}; is mediagate running?")]
    PidFile {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} does not hold a pid")]
    NoPid(String),
    #[error("no process {pid} (from {path}) is running; start one with `mediagate run`")]
    NotRunning { pid: i32, path: String },
    #[error("cannot remove the stale {}: {source}", path.display())]
    StaleSocket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the new process: {0}")]
    Spawn(std::io::Error),
    #[error("the new process exited ({status}) before taking over; the running gateway (pid {pid}) is left untouched")]
    ExitedEarly {
        status: std::process::ExitStatus,
        pid: i32,
    },
    #[error("the new process did not get ready within {} s; it was stopped and the running gateway (pid {pid}) is left untouched", READY_WITHIN.as_secs())]
    NotReady { pid: i32 },
    #[error("cannot signal pid {pid}: {source}")]
    Signal { pid: i32, source: nix::Error },
}

pub fn reload(path: &Path) -> ExitCode {
    match try_reload(path) {
        Ok(msg) => {
            println!("mediagate: {msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mediagate reload: {e}");
            ExitCode::FAILURE
        }
    }
}

fn try_reload(path: &Path) -> Result<String, ReloadError> {
    let config = config::load(path)?;
    let pid_file = &config.server.pid_file;
    let old_pid = read_pid(pid_file)?;
    if !is_running(old_pid) {
        return Err(ReloadError::NotRunning {
            pid: old_pid,
            path: pid_file.clone(),
        });
    }
    let sock = Path::new(&config.server.upgrade_sock);
    if sock.exists() {
        std::fs::remove_file(sock).map_err(|source| ReloadError::StaleSocket {
            path: sock.to_owned(),
            source,
        })?;
    }
    let exe = std::env::current_exe().map_err(ReloadError::Spawn)?;
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new(exe)
            .arg("run")
            .arg("-c")
            .arg(path)
            .arg("--upgrade")
            .stdin(Stdio::null())
            // Its own process group: a Ctrl-C on this terminal must not reach the new gateway.
            .process_group(0)
            .spawn()
            .map_err(ReloadError::Spawn)?
    };
    let deadline = Instant::now() + READY_WITHIN;
    while !sock.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(ReloadError::ExitedEarly {
                status,
                pid: old_pid,
            });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(ReloadError::NotReady { pid: old_pid });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if let Err(source) = kill(Pid::from_raw(old_pid), Signal::SIGQUIT) {
        let _ = child.kill();
        return Err(ReloadError::Signal {
            pid: old_pid,
            source,
        });
    }
    Ok(format!(
        "reloading: pid {old_pid} hands its sockets to pid {}",
        child.id()
    ))
}

fn read_pid(pid_file: &str) -> Result<i32, ReloadError> {
    let text = std::fs::read_to_string(pid_file).map_err(|source| ReloadError::PidFile {
        path: pid_file.to_owned(),
        source,
    })?;
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ReloadError::NoPid(pid_file.to_owned()))
}

/// Whether the process exists and may be signalled (signal 0 sends nothing).
fn is_running(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
}

/// Writes this process's pid, so that `reload` and operators can find the process holding the
/// sockets. A failure is logged, not fatal.
pub fn write_pid_file(pid_file: &str) {
    if let Err(e) = std::fs::write(pid_file, format!("{}\n", std::process::id())) {
        log::warn!("cannot write the pid file {pid_file}: {e}");
    }
}
