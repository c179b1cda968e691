//! A player's connection ([`Conn`]) and one request on it ([`Exchange`]): reading request heads
//! and bodies off the stream (TCP or TLS) with the codec of `http1`, and writing answers.
//!
//! Memory: between requests a connection holds no buffer at all. The first read of a request
//! goes into a buffer on the stack of the poll (not of the future) and only the bytes that
//! arrived are copied to the heap; the head and a body that came with it are then shared slices
//! of that one allocation, which is given up when the answer is written. A body that did not
//! come with its head grows with the bytes that arrive, never with what its head declares.

use bytes::{Buf, Bytes, BytesMut};
use http1::head::{self, HeadError, RequestHead, Version};
use http1::limits::REQUEST_HEAD_BYTES;
use http1::{response, BodyReader, Framing};
use pingora_core::protocols::Stream;
use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};

use super::budget::{BodyBudget, Held};
use super::ConnSettings;
use crate::io::body::{self, ReadError};
use crate::io::deadline;

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
    /// The head is larger than [`REQUEST_HEAD_BYTES`] (431).
    TooLarge,
    Refused(HeadError),
}

impl HeadFailure {
    /// The status and message of the answer, when there is anyone to answer.
    pub fn answer(&self) -> Option<(u16, &'static str)> {
        match self {
            HeadFailure::Closed => None,
            HeadFailure::Timeout => Some((408, "timed out reading the request head")),
            HeadFailure::TooLarge => Some((431, "request head too large")),
            HeadFailure::Refused(e) => Some((e.status(), e.message())),
        }
    }
}

/// Why a request body could not be read.
pub enum BodyFailure {
    /// More than the limit (413).
    TooLarge,
    /// Malformed chunked framing, or the client closed mid-body (400).
    Malformed(&'static str),
    /// Stalled, or not whole within the body timeout (408).
    Timeout,
    /// Holding it would cross the budget of body bytes held by all requests (503).
    Overloaded,
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
        let limits = body::Limits {
            per_read: timeout,
            whole: Some(tokio::time::Instant::now() + timeout),
        };
        let mut scanned = 0;
        loop {
            if let Some(end) = head::end_of_head(&self.buf, scanned) {
                if end > REQUEST_HEAD_BYTES {
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
            if self.buf.len() > REQUEST_HEAD_BYTES {
                return Err(HeadFailure::TooLarge);
            }
            scanned = self.buf.len().saturating_sub(3);
            match body::read_more(&mut *self.stream, &mut self.buf, limits).await {
                Ok(0) if self.buf.is_empty() => return Err(HeadFailure::Closed),
                Ok(0) => {
                    return Err(HeadFailure::Refused(HeadError::Malformed(
                        "connection closed inside the request head",
                    )))
                }
                Ok(_) => {}
                Err(ReadError::Timeout) => return Err(HeadFailure::Timeout),
                Err(_) => return Err(HeadFailure::Closed),
            }
        }
    }

    /// Writes `bytes` (a whole answer, or a part of one) to the client.
    pub async fn send(&mut self, bytes: &[u8], timeout: Duration) -> io::Result<()> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match deadline::within(timeout, write).await {
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

fn body_failure(e: ReadError) -> BodyFailure {
    match e {
        ReadError::TooLarge => BodyFailure::TooLarge,
        ReadError::Malformed(why) => BodyFailure::Malformed(why),
        ReadError::Truncated => {
            BodyFailure::Malformed("the connection closed inside the request body")
        }
        ReadError::Timeout => BodyFailure::Timeout,
        ReadError::Refused => BodyFailure::Overloaded,
        ReadError::Io(_) => BodyFailure::Malformed("the connection failed"),
    }
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
    body_timeout: Duration,
}

impl<'c> Exchange<'c> {
    /// `shutting_down`: the answer closes the connection. `settings` bound each read and write,
    /// and the whole body.
    pub fn new(
        conn: &'c mut Conn,
        head: RequestHead,
        rest: Bytes,
        shutting_down: bool,
        settings: &ConnSettings,
    ) -> Exchange<'c> {
        let keep_alive = head.keep_alive && !shutting_down;
        let mut ex = Exchange {
            conn,
            head,
            rest,
            body_read: false,
            keep_alive,
            answer_started: false,
            timeout: settings.read_timeout,
            body_timeout: settings.body_timeout,
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

    /// A request header's value, when present.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.headers.get(name).map(|v| v.as_bytes())
    }

    /// Reads the whole body, at most `max` bytes. Answers `100 Continue` first when the client
    /// waits for it and the body is not here yet.
    pub async fn read_body(&mut self, max: usize) -> Result<Bytes, BodyFailure> {
        self.read_body_held(max, None).await.map(|(body, _)| body)
    }

    /// [`Exchange::read_body`], holding the body's bytes in `budget` as they arrive; the
    /// holding is given back when the returned [`Held`] is dropped (when the request ends).
    pub async fn read_body_within<'b>(
        &mut self,
        max: usize,
        budget: &'b BodyBudget,
    ) -> Result<(Bytes, Held<'b>), BodyFailure> {
        let (body, held) = self.read_body_held(max, Some(budget)).await?;
        Ok((body, held.unwrap_or_else(|| budget.holding())))
    }

    async fn read_body_held<'b>(
        &mut self,
        max: usize,
        budget: Option<&'b BodyBudget>,
    ) -> Result<(Bytes, Option<Held<'b>>), BodyFailure> {
        let mut held = budget.map(BodyBudget::holding);
        let mut admit = |n: usize| held.as_mut().is_none_or(|h| h.grow(n));
        if self.body_read {
            return Ok((Bytes::new(), None));
        }
        let started = tokio::time::Instant::now();
        let mut reader =
            BodyReader::new(self.head.framing, max).map_err(|_| BodyFailure::TooLarge)?;
        if let Framing::Length(n) = self.head.framing {
            // `n <= max` (the reader checked it), so it fits a usize.
            let n = n as usize;
            if self.rest.len() >= n {
                // The usual case: the body came with the head; share it.
                if !admit(n) {
                    return Err(BodyFailure::Overloaded);
                }
                let body = self.rest.split_to(n);
                self.finish_body();
                return Ok((body, held));
            }
        }
        // The rest of the body is read through the connection's buffer, which holds whatever
        // follows the body once it is done (a pipelined request).
        let rest = std::mem::take(&mut self.rest);
        if !admit(rest.len()) {
            return Err(BodyFailure::Overloaded);
        }
        self.conn.buf.extend_from_slice(&rest);
        match reader.feed(&mut self.conn.buf) {
            Ok(http1::Step::Done(body)) => {
                self.body_read = true;
                return Ok((body, held));
            }
            Ok(http1::Step::NeedMore) => {}
            // Broken or too large already: answered without a 100 Continue.
            Err(e) => return Err(body_failure(ReadError::from(e))),
        }
        self.continue_if_expected().await?;
        let limits = body::Limits {
            per_read: self.timeout,
            whole: Some(started + self.body_timeout),
        };
        let stream = &mut *self.conn.stream;
        let body = body::read(stream, &mut self.conn.buf, &mut reader, limits, &mut admit)
            .await
            .map_err(body_failure)?;
        self.body_read = true;
        Ok((body, held))
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
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.answer_started = true;
        self.conn.send(bytes, self.timeout).await
    }
}
