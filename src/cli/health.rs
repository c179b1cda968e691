//! `mediagate health`: one `GET` to the admin listener (`/readyz` by default), exit 0 on 200 —
//! for a container's `HEALTHCHECK` on an image that has no curl (one `cli::http` exchange).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

pub fn health(addr: &str, path: &str, timeout: Duration) -> ExitCode {
    match probe(addr, path, timeout) {
        Ok(200) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("mediagate health: {addr}{path} answered {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("mediagate health: {addr}{path}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn probe(addr: &str, path: &str, timeout: Duration) -> std::io::Result<u16> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| std::io::Error::other("--addr: an IP address with a port"))?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    super::http::exchange(addr, request.as_bytes(), timeout, 4096).map(|(status, _)| status)
}
