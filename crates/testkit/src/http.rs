//! A tiny HTTP/1.1 client over `std::net::TcpStream` for integration tests: send a request on a
//! (reusable, keep-alive) connection and parse the status, headers and body of the answer
//! (`Content-Length`, chunked, or no body). Every read and write has a timeout, so a test fails
//! instead of hanging.
//!

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long any single read, write or connect may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed response.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, in received order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One client connection; requests sent on it reuse it (keep-alive).
pub struct Conn {
    stream: TcpStream,
    authority: String,
    /// Bytes read past the end of the previous response.
    buf: Vec<u8>,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            authority: addr.to_string(),
            buf: Vec::new(),
        })
    }

    /// Sends a request and reads its final response (1xx responses are skipped). Adds `Host`
    /// and `Content-Length` unless `headers` sets them (or sets `Transfer-Encoding`).
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        self.write_head(method, path, headers, body.len())?;
        self.write_raw(body)?;
        loop {
            let r = self.read_response(method)?;
            if !(100..200).contains(&r.status) {
                return Ok(r);
            }
        }
    }

    /// POSTs a JSON body on this connection.
    pub fn post_json(&mut self, path: &str, body: &[u8]) -> io::Result<Response> {
        self.send("POST", path, &[("Content-Type", "application/json")], body)
    }

    /// Writes a request line and headers (with the defaults of [`Conn::send`]), no body.
    pub fn write_head(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body_len: usize,
    ) -> io::Result<()> {
        let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        if !has("host") {
            head.push_str(&format!("Host: {}\r\n", self.authority));
        }
        let sends_body = body_len > 0 || matches!(method, "POST" | "PUT" | "PATCH");
        if sends_body && !has("content-length") && !has("transfer-encoding") {
            head.push_str(&format!("Content-Length: {body_len}\r\n"));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        self.write_raw(head.as_bytes())
    }

    /// A second handle on the socket (to write from another thread).
    pub fn try_clone_stream(&self) -> io::Result<TcpStream> {
        self.stream.try_clone()
    }

    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Reads one response (a 1xx included) to a request made with `method`.
    pub fn read_response(&mut self, method: &str) -> io::Result<Response> {
        let head_end = self.fill_until(|buf| find(buf, b"\r\n\r\n").map(|i| i + 4))?;
        let head: Vec<u8> = self.buf.drain(..head_end).collect();
        let (status, headers) = parse_head(&head)?;
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        let no_body = (100..200).contains(&status) || status == 204 || status == 304;
        if no_body || method.eq_ignore_ascii_case("HEAD") {
            return Ok(response);
        }
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            response.body = self.read_chunked()?;
        } else if let Some(len) = response.header("content-length") {
            let len: usize = len
                .trim()
                .parse()
                .map_err(|_| invalid(format!("bad content-length {len:?}")))?;
            self.fill_until(|buf| (buf.len() >= len).then_some(len))?;
            response.body = self.buf.drain(..len).collect();
        } else {
            // Close-delimited.
            let mut rest = Vec::new();
            self.stream.read_to_end(&mut rest)?;
            self.buf.extend_from_slice(&rest);
            response.body = std::mem::take(&mut self.buf);
        }
        Ok(response)
    }

    /// True when the server has closed the connection (reads EOF within `wait`).
    pub fn is_closed_by_peer(&mut self, wait: Duration) -> bool {
        let _ = self.stream.set_read_timeout(Some(wait));
        let mut byte = [0u8; 1];
        let closed = matches!(self.stream.read(&mut byte), Ok(0));
        let _ = self.stream.set_read_timeout(Some(IO_TIMEOUT));
        closed
    }

    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = self.fill_until(|buf| find(buf, b"\r\n").map(|i| i + 2))?;
            let line: Vec<u8> = self.buf.drain(..line_end).collect();
            let line = String::from_utf8_lossy(&line);
            let size_text = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let end = self.fill_until(|buf| find(buf, b"\r\n").map(|i| i + 2))?;
                    let empty = end == 2;
                    self.buf.drain(..end);
                    if empty {
                        return Ok(body);
                    }
                }
            }
            self.fill_until(|buf| (buf.len() >= size + 2).then_some(size + 2))?;
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
        }
    }

    /// Reads until `done(buf)` returns `Some(n)`; returns `n`.
    fn fill_until(&mut self, done: impl Fn(&[u8]) -> Option<usize>) -> io::Result<usize> {
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(n) = done(&self.buf) {
                return Ok(n);
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "response too slow"));
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before the response was complete",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Sends one request on a fresh connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    Conn::connect(addr)?.send(method, path, headers, body)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn parse_head(head: &[u8]) -> io::Result<(u16, Vec<(String, String)>)> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(invalid(format!("bad status line {status_line:?}")));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    Ok((status, headers))
}
