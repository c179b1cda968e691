//! A player's connection: reading request heads and bodies off the stream pingora accepted
//! (TCP or TLS), and writing answers, with the framing of [`crate::http1`].
//!
//! Memory: between requests a connection holds no buffer at all. The first read of a request
//! goes into a buffer on the stack of the poll (not of the future) and only the bytes that
//! arrived are copied to the heap; the head and a body that came with it are then shared slices
//! of that one allocation, which is given up when the answer is written.

use bytes::{Buf, Bytes, BytesMut};
use pingora_core::protocols::Stream;
use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};

use crate::http1::chunked::ChunkedDecoder;
use crate::http1::head::{self, Framing, HeadError, RequestHead, Version};
use crate::http1::response;

/// A request head (line and fields) may take at most this many bytes (more: 431).
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// What a read of a request's first bytes can take at once.
const FIRST_READ: usize = 4096;
/// Lingering close: how long, and how many unread body bytes at most, before closing.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

/// One client connection.
pub struct Conn {
    stream: Stream,
    /// Bytes received and not consumed yet (a pipelined next request); empty while idle.
    buf: BytesMut,
    pub peer: Option<IpAddr>,
}

/// Why no request head could be read.
pub enum HeadFailure {
    /// The client closed the connection (or it failed) between requests: nothing to answer.
    Closed,
    /// The head is incomplete after the read timeout (408).
    Timeout,
    /// The head is larger than [`MAX_HEAD_BYTES`] (431).
    TooLarge,
    Refused(HeadError),
}

/// Why a request body could not be read.
pub enum BodyFailure {
    /// More than the limit (413).
    TooLarge,
    /// Malformed chunked framing, or the client closed mid-body (400).
    Malformed(&'static str),
    /// Stalled (408).
    Timeout,
}

impl Conn {
    /// A connection accepted by pingora (its peer address from the socket digest).
    pub fn new(stream: Stream) -> Conn {
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().cloned())
            .and_then(|a| a.as_inet().map(|a| a.ip()));
        Conn::with_peer(stream, peer)
    }

    pub fn with_peer(stream: Stream, peer: Option<IpAddr>) -> Conn {
        Conn {
            stream,
            buf: BytesMut::new(),
            peer,
        }
    }

    /// Whether bytes of a next (pipelined) request are already here. Empty lines before a
    /// request are dropped first (RFC 9112 §2.2: a client may send a CRLF after a body).
    pub fn has_pending(&mut self) -> bool {
        self.skip_empty_lines();
        !self.buf.is_empty()
    }

    /// Waits until the first bytes of a request arrive (empty lines do not count). `false`: the
    /// client closed the connection, or it failed.
    pub async fn wait_for_request(&mut self) -> bool {
        while !self.has_pending() {
            let read = poll_fn(|cx| self.poll_first_bytes(cx)).await;
            if !read.is_ok_and(|n| n > 0) {
                return false;
            }
        }
        true
    }

    /// Drops CR and LF bytes at the start of the buffer.
    fn skip_empty_lines(&mut self) {
        let blank = self
            .buf
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        if blank == self.buf.len() {
            // Nothing but empty lines: an idle connection holds no buffer.
            self.buf = BytesMut::new();
        } else if blank > 0 {
            self.buf.advance(blank);
        }
    }

    fn poll_first_bytes(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut scratch = [MaybeUninit::<u8>::uninit(); FIRST_READ];
        let mut read = ReadBuf::uninit(&mut scratch);
        ready!(Pin::new(&mut *self.stream).poll_read(cx, &mut read))?;
        let got = read.filled();
        if !got.is_empty() {
            self.buf.reserve(FIRST_READ.max(got.len()));
            self.buf.extend_from_slice(got);
        }
        Poll::Ready(Ok(got.len()))
    }

    /// Reads until a whole head is here and parses it; the whole head must arrive within
    /// `timeout` of its first bytes (a client trickling a byte at a time gets 408 all the same).
    /// Returns the head and the bytes received after it.
    pub async fn read_head(
        &mut self,
        timeout: Duration,
    ) -> Result<(RequestHead, Bytes), HeadFailure> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut scanned = 0;
        loop {
            if let Some(end) = head_end(&self.buf, scanned) {
                if end > MAX_HEAD_BYTES {
                    return Err(HeadFailure::TooLarge);
                }
                let data = self.buf.split().freeze();
                return match head::parse(&data) {
                    Ok(Some((head, len))) => Ok((head, data.slice(len..))),
                    Ok(None) => Err(HeadFailure::Refused(HeadError::Malformed(
                        "malformed request head",
                    ))),
                    Err(e) => Err(HeadFailure::Refused(e)),
                };
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(HeadFailure::TooLarge);
            }
            scanned = self.buf.len().saturating_sub(3);
            match self.read_more(deadline).await {
                Ok(0) if self.buf.is_empty() => return Err(HeadFailure::Closed),
                Ok(0) => {
                    return Err(HeadFailure::Refused(HeadError::Malformed(
                        "connection closed inside the request head",
                    )))
                }
                Ok(_) => {}
                Err(Some(_)) => return Err(HeadFailure::Closed),
                Err(None) => return Err(HeadFailure::Timeout),
            }
        }
    }

    /// Reads more bytes into the buffer. `Err(None)`: the deadline passed.
    async fn read_more(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Result<usize, Option<io::Error>> {
        self.buf.reserve(FIRST_READ);
        match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(Some(e)),
            Err(_) => Err(None),
        }
    }

    /// Writes `bytes` (a whole answer, or a part of one) to the client.
    pub async fn send(&mut self, bytes: &[u8], timeout: Duration) -> io::Result<()> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match super::deadline::within(timeout, write).await {
            Some(result) => result,
            None => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "writing the answer timed out",
            )),
        }
    }

    /// Gives up the buffer's memory when nothing is pending (between requests).
    pub fn shed_buffer(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }

    /// Closes the connection (TLS close_notify included). With `linger`, the client may still
    /// be sending a body nobody read (e.g. after a 413): what it sends is read and dropped for a
    /// moment first, so that the close does not reset the connection before the client has read
    /// the answer (nginx's lingering close).
    pub async fn close(mut self, linger: bool) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.shutdown()).await;
        if linger {
            let drain = async {
                let mut scratch = [0u8; 4096];
                let mut left = LINGER_BYTES;
                while left > 0 {
                    match self.stream.read(&mut scratch).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => left = left.saturating_sub(n),
                    }
                }
            };
            let _ = tokio::time::timeout(LINGER_TIME, drain).await;
        }
    }
}

/// Where the head ends (the index after its empty line), searching from `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(offset) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + offset;
        match buf.get(nl + 1..nl + 3) {
            Some([b'\r', b'\n', ..]) => return Some(nl + 3),
            _ if buf.get(nl + 1) == Some(&b'\n') => return Some(nl + 2),
            _ => i = nl + 1,
        }
    }
    None
}

/// One request on a connection, from its head to its answer.
pub struct Exchange<'c> {
    conn: &'c mut Conn,
    pub head: RequestHead,
    /// Bytes received after the head, not yet claimed by the body.
    rest: Bytes,
    body_read: bool,
    keep_alive: bool,
    /// Whether any byte of an answer (a 100 Continue aside) has been handed to the stream.
    answer_started: bool,
    timeout: Duration,
}

impl<'c> Exchange<'c> {
    /// `shutting_down`: the answer closes the connection. `timeout` bounds each read and write.
    pub fn new(
        conn: &'c mut Conn,
        head: RequestHead,
        rest: Bytes,
        shutting_down: bool,
        timeout: Duration,
    ) -> Exchange<'c> {
        let keep_alive = head.keep_alive && !shutting_down;
        let mut ex = Exchange {
            conn,
            head,
            rest,
            body_read: false,
            keep_alive,
            answer_started: false,
            timeout,
        };
        if ex.head.framing == Framing::Empty {
            ex.finish_body();
        }
        ex
    }

    pub fn peer(&self) -> Option<IpAddr> {
        self.conn.peer
    }

    /// Whether the connection stays open after this answer: the client wants it, the body was
    /// read (so the next request starts where this one ends), and nothing went wrong.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive && self.body_read
    }

    /// Whether the request body was read to its end.
    pub fn body_was_read(&self) -> bool {
        self.body_read
    }

    /// The answer will close the connection.
    pub fn close_after(&mut self) {
        self.keep_alive = false;
    }

    pub fn version(&self) -> Version {
        self.head.version
    }

    /// Reads the whole body, at most `max` bytes. Answers `100 Continue` first when the client
    /// waits for it and the body is not here yet.
    pub async fn read_body(&mut self, max: usize) -> Result<Bytes, BodyFailure> {
        if self.body_read {
            return Ok(Bytes::new());
        }
        match self.head.framing {
            Framing::Empty => Ok(Bytes::new()),
            Framing::Length(n) if n > max as u64 => Err(BodyFailure::TooLarge),
            Framing::Length(n) => self.read_length(n as usize).await,
            Framing::Chunked => self.read_chunked(max).await,
        }
    }

    async fn read_length(&mut self, n: usize) -> Result<Bytes, BodyFailure> {
        if self.rest.len() >= n {
            // The usual case: the body came with the head; share it.
            let body = self.rest.split_to(n);
            self.finish_body();
            return Ok(body);
        }
        self.continue_if_expected().await?;
        let conn = &mut *self.conn;
        conn.buf.reserve(n);
        conn.buf.extend_from_slice(&self.rest);
        self.rest = Bytes::new();
        while conn.buf.len() < n {
            read_body_bytes(conn, self.timeout).await?;
        }
        let body = conn.buf.split_to(n).freeze();
        self.body_read = true;
        Ok(body)
    }

    async fn read_chunked(&mut self, max: usize) -> Result<Bytes, BodyFailure> {
        let mut decoder = ChunkedDecoder::new();
        let mut body = BytesMut::new();
        // Decoded from the connection's buffer, which holds whatever follows the body when
        // the decoder is done (a pipelined request).
        let rest = std::mem::take(&mut self.rest);
        self.conn.buf.extend_from_slice(&rest);
        loop {
            let used = decoder
                .decode(&self.conn.buf, &mut body)
                .map_err(|e| BodyFailure::Malformed(e.0))?;
            self.conn.buf.advance(used);
            if body.len() > max {
                return Err(BodyFailure::TooLarge);
            }
            if decoder.is_done() {
                break;
            }
            self.continue_if_expected().await?;
            read_body_bytes(self.conn, self.timeout).await?;
        }
        self.body_read = true;
        Ok(body.freeze())
    }

    /// The body is complete; what follows it in `rest` is the next request.
    fn finish_body(&mut self) {
        self.body_read = true;
        if !self.rest.is_empty() {
            self.conn.buf.extend_from_slice(&self.rest);
            self.rest = Bytes::new();
        }
    }

    async fn continue_if_expected(&mut self) -> Result<(), BodyFailure> {
        if self.head.expect_continue && self.head.version == Version::Http11 {
            self.head.expect_continue = false;
            self.conn
                .send(response::CONTINUE, self.timeout)
                .await
                .map_err(|_| BodyFailure::Malformed("the connection failed"))?;
        }
        Ok(())
    }

    /// Whether any byte of the answer has been written (or tried).
    pub fn answer_started(&self) -> bool {
        self.answer_started
    }

    /// Writes bytes of the answer.
    pub async fn send(&mut self, bytes: &[u8]) -> pingora_error::Result<()> {
        self.answer_started = true;
        self.conn.send(bytes, self.timeout).await.map_err(|e| {
            pingora_error::Error::because(
                pingora_error::ErrorType::WriteError,
                "writing the answer",
                e,
            )
        })
    }
}

async fn read_body_bytes(conn: &mut Conn, timeout: Duration) -> Result<(), BodyFailure> {
    // A stalled body: each read may take `timeout`.
    match conn.read_more(tokio::time::Instant::now() + timeout).await {
        Ok(0) => Err(BodyFailure::Malformed(
            "the connection closed inside the request body",
        )),
        Ok(_) => Ok(()),
        Err(Some(_)) => Err(BodyFailure::Malformed("the connection failed")),
        Err(None) => Err(BodyFailure::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::head_end;

    #[test]
    fn heads_end_at_the_empty_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nbody", 0), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\nbody", 0), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n", 0), None);
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r", 0), None);
        assert_eq!(head_end(b"", 0), None);
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\n", 40), None);
    }
}
