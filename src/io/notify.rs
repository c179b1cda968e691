//! systemd's readiness protocol (`sd_notify`, see `docs/operations.md#systemd`): when the
//! service manager set `NOTIFY_SOCKET`, state lines go to that datagram socket — `READY=1` with
//! `MAINPID=` once every listener accepts (a process started by an upgrade thereby becomes the
//! unit's main process), `RELOADING=1` and `READY=1` around an in-process reload, `STOPPING=1`
//! when a graceful shutdown starts. Without `NOTIFY_SOCKET` nothing is sent.
//!
//! Hand-written rather than a crate: one datagram per state over `std`'s `UnixDatagram`
//! (abstract `@` addresses through Linux's `SocketAddrExt`). A failure is logged, never fatal.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (newline-separated `KEY=VALUE` lines) to `$NOTIFY_SOCKET`, if there is one.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&path, state) {
        log::warn!("sd_notify to {}: {e}", path.to_string_lossy());
    }
}

fn send(path: &std::ffi::OsStr, state: &str) -> std::io::Result<usize> {
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)
        }
        None => socket.send_to(state.as_bytes(), path),
    }
}

/// Every listener accepts: this process is ready, and the unit's main process.
pub fn ready() {
    notify(&format!("MAINPID={}\nREADY=1", std::process::id()));
}

/// An in-process reload starts (systemd wants the monotonic clock with it, in µs).
pub fn reloading() {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
        .unwrap_or(0);
    notify(&format!("RELOADING=1\nMONOTONIC_USEC={now}"));
}

/// The reload is over (applied or not): ready again.
pub fn reloaded(status: &str) {
    notify(&format!("READY=1\nSTATUS={}", status.replace('\n', " ")));
}

/// A graceful shutdown starts.
pub fn stopping() {
    notify("STOPPING=1");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_reach_a_path_socket_and_an_abstract_one() {
        let dir = std::env::temp_dir().join(format!("notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("mediagate-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let abstract_server = UnixDatagram::bind_addr(&addr).unwrap();
        send(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let n = abstract_server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
