//! The command line's one HTTP/1.1 exchange (`health`, `quarantine replay`): a request written
//! whole on a new connection with `Connection: close`, the answer read to its end (at most
//! `limit` bytes), with `timeout` on the connect and on every read and write. Plain `std`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Sends `request` (head and body) to `addr`; the answer's status and body.
pub fn exchange(
    addr: SocketAddr,
    request: &[u8],
    timeout: Duration,
    limit: u64,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(request)?;
    let mut answer = Vec::new();
    s.take(limit).read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .filter(|_| text.starts_with("HTTP/1."))
        .ok_or_else(|| std::io::Error::other("the answer is not HTTP/1.x"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}
