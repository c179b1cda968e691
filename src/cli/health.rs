//! `mediagate health`: one `GET` to the admin listener (`/readyz` by default), exit 0 on 200 —
//! for a container's `HEALTHCHECK` on an image that has no curl. Plain HTTP/1.1 on `std`, with a
//! deadline on every step.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
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
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )?;
    let mut head = Vec::new();
    s.take(4096).read_to_end(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    text.strip_prefix("HTTP/1.")
        .and_then(|t| t.get(2..5))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP/1 answer"))
}
