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

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::config;

pub fn reload(path: &Path) -> ExitCode {
    match try_reload(path) {
        Ok(msg) => {
            println!("mediagate: {msg}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("mediagate reload: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn try_reload(path: &Path) -> Result<String, String> {
    let config =
        config::load(path).map_err(|e| format!("{e}; the running gateway is left untouched"))?;
    let pid_file = &config.server.pid_file;
    let old_pid = read_pid(pid_file)?;
    if !is_running(old_pid) {
        return Err(format!(
            "no process {old_pid} (from {pid_file}) is running; start one with `mediagate run`"
        ));
    }
    let sock = Path::new(&config.server.upgrade_sock);
    if sock.exists() {
        std::fs::remove_file(sock)
            .map_err(|e| format!("cannot remove the stale {}: {e}", sock.display()))?;
    }
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the mediagate binary: {e}"))?;
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
            .map_err(|e| format!("cannot start the new process: {e}"))?
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the new process exited ({status}) before taking over; the running gateway (pid {old_pid}) is left untouched"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("the new process did not get ready within 10 s; it was stopped and the running gateway (pid {old_pid}) is left untouched"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: kill(2) with a pid we read and SIGQUIT has no memory-safety preconditions.
    if unsafe { libc::kill(old_pid, libc::SIGQUIT) } != 0 {
        let _ = child.kill();
        return Err(format!(
            "cannot signal pid {old_pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(format!(
        "reloading: pid {old_pid} hands its sockets to pid {}",
        child.id()
    ))
}

fn read_pid(pid_file: &str) -> Result<i32, String> {
    let text = std::fs::read_to_string(pid_file)
        .map_err(|e| format!("cannot read the pid file {pid_file}: {e}; is mediagate running?"))?;
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{pid_file} does not hold a pid"))
}

fn is_running(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Writes this process's pid, so that `reload` and operators can find the process holding the
/// sockets. A failure is logged, not fatal.
pub fn write_pid_file(pid_file: &str) {
    if let Err(e) = std::fs::write(pid_file, format!("{}\n", std::process::id())) {
        log::warn!("cannot write the pid file {pid_file}: {e}");
    }
}
