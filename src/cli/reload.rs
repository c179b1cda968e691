//! `mediagate reload [-c FILE] [--upgrade]`: apply a new configuration without dropping a
//! connection.
//!
//! 1. The new file is checked; if it fails, nothing else happens (the running gateway is left
//!    alone).
//! 2. In process, when it can: the running process wrote its file's path and its process keys
//!    (`runtime::reload::process_keys`) next to its pid file. If this is the same file and those
//!    keys are unchanged, `SIGHUP` makes it reload itself (tracked sessions and connections are
//!    kept), and its outcome is read back from `<pid_file>.reload`.
//! 3. Otherwise (or with `--upgrade`), by a new process: it is started with `run --upgrade`; it
//!    resolves its upstreams, then waits on `upgrade_sock` for the listening sockets. Only once
//!    that socket exists (the new process is waiting) is `SIGQUIT` sent to the running process,
//!    which hands its sockets over, stops accepting and finishes its in-flight requests.
//!    pingora's old process exits on `SIGQUIT` even if the hand-over fails, so this order is what
//!    keeps a bad start from taking the gateway down. Memory-store sessions do not survive it.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::config;
use crate::runtime::reload::{keys_file, keys_text, result_file};

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
    #[error("pid {pid}: {message}")]
    InProcess { pid: i32, message: String },
    #[error("pid {pid} did not report its reload within {} s (see its log)", IN_PROCESS_WITHIN.as_secs())]
    NoReport { pid: i32 },
}

/// How long the running process may take to report an in-process reload.
const IN_PROCESS_WITHIN: Duration = Duration::from_secs(20);

pub fn reload(path: &Path, upgrade: bool) -> ExitCode {
    match try_reload(path, upgrade) {
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

fn try_reload(path: &Path, force_upgrade: bool) -> Result<String, ReloadError> {
    let config = config::load(path)?;
    let pid_file = &config.server.pid_file;
    let old_pid = read_pid(pid_file)?;
    if !is_running(old_pid) {
        return Err(ReloadError::NotRunning {
            pid: old_pid,
            path: pid_file.clone(),
        });
    }
    let why = match force_upgrade {
        true => "--upgrade asks for a new process".to_owned(),
        false => match in_process_blocker(path, &config, old_pid) {
            None => return in_process(old_pid, pid_file),
            Some(why) => why,
        },
    };
    println!("mediagate: reloading by a new process: {why}");
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

/// Why the running process `pid` cannot take this file in process (`None`: it can).
fn in_process_blocker(path: &Path, config: &config::Config, pid: i32) -> Option<String> {
    let keys_path = keys_file(&config.server.pid_file);
    // Written once the process watches SIGHUP (before that the signal would end it): a process
    // that just started may take a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let running = loop {
        let text = std::fs::read_to_string(&keys_path).unwrap_or_default();
        if let Some((writer, rest)) = text.split_once('\n') {
            if writer.trim() == pid.to_string() {
                break rest.to_owned();
            }
        }
        if Instant::now() > deadline {
            return Some(format!(
                "{} does not describe pid {pid} (it does not reload in process)",
                keys_path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let wanted = keys_text(&path, config);
    let (running_path, running_keys) = running.split_once('\n').unwrap_or((&running, ""));
    let (wanted_path, wanted_keys) = wanted.split_once('\n').unwrap_or((&wanted, ""));
    if running_path != wanted_path {
        return Some(format!(
            "the running process reads {running_path}, not {wanted_path}"
        ));
    }
    let changed: Vec<&str> = running_keys
        .lines()
        .zip(wanted_keys.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.split('\t').next().unwrap_or(a))
        .collect();
    if changed.is_empty() && running_keys.lines().count() == wanted_keys.lines().count() {
        return None;
    }
    Some(format!(
        "{} changed (only a new process can apply {})",
        changed.join(", "),
        if changed.len() == 1 { "it" } else { "them" }
    ))
}

/// Sends `SIGHUP` and waits for the process to report the outcome.
fn in_process(pid: i32, pid_file: &str) -> Result<String, ReloadError> {
    let report = result_file(pid_file);
    let attempt = |text: &str| text.split_whitespace().next().map(str::to_owned);
    let before = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| attempt(&t));
    kill(Pid::from_raw(pid), Signal::SIGHUP)
        .map_err(|source| ReloadError::Signal { pid, source })?;
    let deadline = Instant::now() + IN_PROCESS_WITHIN;
    loop {
        if let Ok(text) = std::fs::read_to_string(&report) {
            if attempt(&text).is_some() && attempt(&text) != before {
                let mut lines = text.lines();
                let result = lines
                    .next()
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap_or("");
                let message = lines.next().unwrap_or("").to_owned();
                return match result {
                    "ok" => Ok(format!(
                        "pid {pid} {message} (sessions and connections kept)"
                    )),
                    _ => Err(ReloadError::InProcess { pid, message }),
                };
            }
        }
        if Instant::now() > deadline {
            return Err(ReloadError::NoReport { pid });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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
