//! The upstream exchange: one HTTP/1.1 request to a collection backend, on a connection made by
//! pingora's transport connector (TCP or TLS) and kept in `idle_pool`, written in a
//! single `write` (header and body together), and its answer.
//!
//! mediagate holds the whole (validated, enriched) body before it contacts the upstream, so it
//! writes the request itself rather than through pingora's proxy loop, which flushes the header
//! alone first and cannot replay bodies above 64 KiB (notes/pingora.md). What pingora's loop would
//! have done is done here: hop-by-hop headers are stripped, `Host` is the upstream's authority,
//! framing is a `Content-Length`, and a request is sent again only in the one case where the
//! upstream cannot have read it (see [`Upstreams::send`]).

use bytes::{Buf, Bytes, BytesMut};
use pingora_core::connectors::TransportConnector;
use pingora_core::protocols::http::v1::client::HttpSession;
use pingora_core::protocols::Stream;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

use super::downstream::MAX_HEAD_BYTES;
use super::idle_pool::IdlePool;
use crate::config;
use crate::http1::answer::{self, AnswerFraming, AnswerHead};
use crate::http1::chunked::ChunkedDecoder;

/// Why an exchange failed; the `kind` label of `mediagate_upstream_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The connection could not be made (refused, unreachable, DNS).
    Connect,
    /// A connect, read or write timeout fired.
    Timeout,
    /// The TLS handshake failed.
    Tls,
    /// The connection was closed or reset mid-exchange.
    Reset,
    /// The upstream sent something that is not valid HTTP/1.
    Protocol,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::Tls => "tls",
            FailureKind::Reset => "reset",
            FailureKind::Protocol => "protocol",
        }
    }

    /// The status the client gets: 504 for timeouts, 502 otherwise.
    pub fn status(self) -> u16 {
        match self {
            FailureKind::Timeout => 504,
            _ => 502,
        }
    }

    fn of(e: &Error) -> FailureKind {
        use ErrorType::*;
        match e.etype() {
            ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout => {
                FailureKind::Timeout
            }
            TLSHandshakeFailure | TLSWantX509Lookup | InvalidCert | HandshakeError => {
                FailureKind::Tls
            }
            ConnectRefused | ConnectNoRoute | ConnectError | BindError | SocketError
            | ConnectProxyFailure => FailureKind::Connect,
            InvalidHTTPHeader | H1Error | H2Error | InvalidH2 | H2Downgrade => {
                FailureKind::Protocol
            }
            _ => FailureKind::Reset,
        }
    }
}

/// A failed exchange.
#[derive(Debug)]
pub struct Failure {
    pub kind: FailureKind,
    pub error: Box<Error>,
    /// True when the upstream did not read the request (see [`Upstreams::send`]): it may safely
    /// go to another upstream.
    pub unread: bool,
}

impl Failure {
    fn new(error: Box<Error>) -> Failure {
        Failure {
            kind: FailureKind::of(&error),
            error,
            unread: false,
        }
    }

    fn connecting(error: Box<Error>) -> Failure {
        Failure {
            unread: true,
            ..Failure::new(error)
        }
    }

    /// Whether the connection was reset (TCP RST) or found reset when writing.
    fn is_connection_reset(&self) -> bool {
        use std::io::ErrorKind::{BrokenPipe, ConnectionReset};
        self.error
            .root_cause()
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| matches!(e.kind(), ConnectionReset | BrokenPipe))
    }

    /// The upstream answered something that is not usable HTTP/1.
    pub fn protocol(what: &'static str) -> Failure {
        Failure::new(Error::explain(ErrorType::H1Error, what))
    }

    fn io(etype: ErrorType, e: std::io::Error) -> Failure {
        Failure::new(Error::because(etype, "upstream exchange", e))
    }

    fn timeout(etype: ErrorType) -> Failure {
        Failure::new(Error::explain(etype, "upstream exchange"))
    }
}

/// One configured upstream, resolved, with its connection pool.
pub struct Upstream {
    pub settings: config::Upstream,
    peer: HttpPeer,
    connector: TransportConnector,
    pub idle: IdlePool,
}

/// The upstreams.
pub struct Upstreams {
    pub list: Vec<Upstream>,
}

impl Upstreams {
    /// Resolves every upstream (DNS for host names) and builds its peer.
    /// `per_thread`: keep idle connections per worker thread (see [`IdlePool`]).
    pub fn new(
        settings: &[config::Upstream],
        pool_size: usize,
        per_thread: bool,
    ) -> Result<Upstreams, String> {
        let mut list = Vec::with_capacity(settings.len());
        for s in settings {
            let addr = s.resolve()?;
            let mut peer = HttpPeer::new(addr, s.tls, s.host.clone());
            let o = &mut peer.options;
            o.connection_timeout = Some(s.connect_timeout);
            o.total_connection_timeout = Some(s.connect_timeout + s.connect_timeout);
            o.read_timeout = Some(s.read_timeout);
            o.write_timeout = Some(s.write_timeout);
            o.idle_timeout = Some(s.idle_timeout);
            let mut options = pingora_core::connectors::ConnectorOptions::new(pool_size);
            options.ca_file = s.ca_file.clone();
            list.push(Upstream {
                settings: s.clone(),
                peer,
                connector: TransportConnector::new(Some(options)),
                idle: IdlePool::new(pool_size, s.idle_timeout, per_thread),
            });
        }
        Ok(Upstreams { list })
    }

    /// Sends `wire` (a serialized request, head and body) to upstream `index` in one write and
    /// reads the whole answer. `to_head`: the request is a HEAD (its answer has no body).
    /// `replayable`: its method is safe to send twice (GET, HEAD).
    ///
    /// Retry rule (README, "Retries — the exact rule"): a POST is sent again only where the
    /// upstream cannot have read it (RFC 9110 §9.2.2).
    /// - A pooled connection that received bytes or a close while it sat idle is not used.
    /// - When no connection can be made, or a connection is reset (TCP RST, or found reset
    ///   when writing) before a single answer byte, the upstream did not read the whole
    ///   request: the socket still held unread bytes of it when it went away (a keep-alive
    ///   connection it closed, a connection in the backlog of a process being killed). On a
    ///   pooled connection the request is sent once more on a new one; otherwise the failure
    ///   is [`Failure::unread`], and the caller may move the request to another upstream.
    /// - A pooled connection closed (FIN) before a single answer byte is sent again on a new
    ///   connection for GET and HEAD only: a POST may have been read and processed.
    ///
    /// Any other failure — a timeout, a close without an answer, a broken answer — is final.
    pub async fn send(
        &self,
        index: usize,
        wire: &[u8],
        to_head: bool,
        replayable: bool,
    ) -> Result<Answer, Failure> {
        let upstream = &self.list[index];
        if let Some(stream) = upstream.idle.take_quiet(still_quiet) {
            match exchange(upstream, stream, wire, to_head).await {
                Ok(answer) => return Ok(answer),
                Err((failure, false))
                    if failure.is_connection_reset()
                        || (replayable && failure.kind == FailureKind::Reset) =>
                {
                    log::debug!(
                        "upstream {}: pooled connection failed before an answer ({}), sending again on a new one",
                        upstream.settings.name,
                        failure.error
                    )
                }
                Err((failure, _)) => return Err(failure),
            }
        }
        let stream = upstream
            .connector
            .new_stream(&upstream.peer)
            .await
            .map_err(Failure::connecting)?;
        exchange(upstream, stream, wire, to_head)
            .await
            .map_err(|(failure, received)| {
                if !received && failure.is_connection_reset() {
                    Failure {
                        unread: true,
                        ..failure
                    }
                } else {
                    failure
                }
            })
    }
}

/// Whether a pooled connection is still quietly open: no byte and no close arrived while it
/// sat idle (a late answer, a 408 before an idle close, a FIN). Costs no system call when the
/// socket had no event since its last read drained it (tokio's cached readiness).
fn still_quiet(stream: &mut Stream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    let mut scratch = [0u8; 64];
    let mut buf = ReadBuf::new(&mut scratch);
    matches!(Pin::new(stream).poll_read(&mut cx, &mut buf), Poll::Pending)
}

/// An upstream's whole answer.
pub struct Answer {
    pub head: AnswerHead,
    pub body: Bytes,
}

/// An upstream answer (head and body) may take at most this many bytes; the collection API's
/// answers are empty or a few kilobytes (schemas).
const MAX_ANSWER_BYTES: usize = 16 << 20;
/// Informational answers (100 Continue and the like) skipped before the real one, at most.
const MAX_INTERIM: usize = 16;

/// Writes the request and reads the whole answer, then gives the connection back to the pool
/// when the answer allows it. On failure, also says whether any answer byte had arrived.
async fn exchange(
    upstream: &Upstream,
    mut stream: Stream,
    wire: &[u8],
    to_head: bool,
) -> Result<Answer, (Failure, bool)> {
    let s = &upstream.settings;
    let write = async {
        stream.write_all(wire).await?;
        stream.flush().await
    };
    match super::deadline::within(s.write_timeout, write).await {
        Some(Ok(())) => {}
        Some(Err(e)) => return Err((Failure::io(ErrorType::WriteError, e), false)),
        None => return Err((Failure::timeout(ErrorType::WriteTimedout), false)),
    }
    let mut reader = Reader {
        stream: &mut stream,
        buf: BytesMut::with_capacity(4096),
        timeout: s.read_timeout,
        received: false,
    };
    // Informational answers are never final (RFC 9110 §15.2): they are skipped, up to a bound.
    // A 101 was not asked for (no request carries Upgrade). Either way the connection is out of
    // step and is dropped, never relayed or pooled.
    let mut interim = 0;
    let (head, rest) = loop {
        let (head, rest) = reader.read_head(to_head).await?;
        if head.status == 101 {
            return Err((
                Failure::protocol("unsolicited 101 Switching Protocols"),
                true,
            ));
        }
        if (100..200).contains(&head.status) {
            interim += 1;
            if interim > MAX_INTERIM {
                return Err((Failure::protocol("too many informational answers"), true));
            }
            reader.buf = BytesMut::from(&rest[..]);
            continue;
        }
        break (head, rest);
    };
    let (body, clean) = match head.framing {
        AnswerFraming::None => (Bytes::new(), rest.is_empty()),
        AnswerFraming::Length(n) => {
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= MAX_ANSWER_BYTES)
                .ok_or_else(|| (Failure::protocol("answer body too large"), true))?;
            if rest.len() >= n {
                // The usual case: the body came with the head; share it.
                (rest.slice(..n), rest.len() == n)
            } else {
                reader.buf = BytesMut::from(&rest[..]);
                while reader.buf.len() < n {
                    reader.read_more().await?;
                }
                let body = reader.buf.split_to(n).freeze();
                (body, reader.buf.is_empty())
            }
        }
        AnswerFraming::Chunked => {
            let mut decoder = ChunkedDecoder::new();
            let mut body = BytesMut::new();
            reader.buf = BytesMut::from(&rest[..]);
            loop {
                let used = decoder
                    .decode(&reader.buf, &mut body)
                    .map_err(|e| (Failure::protocol(e.0), true))?;
                reader.buf.advance(used);
                if decoder.is_done() {
                    break;
                }
                if body.len() > MAX_ANSWER_BYTES {
                    return Err((Failure::protocol("answer body too large"), true));
                }
                reader.read_more().await?;
            }
            (body.freeze(), reader.buf.is_empty())
        }
        AnswerFraming::UntilClose => {
            reader.buf = BytesMut::from(&rest[..]);
            while reader.read_more_or_eof().await? {}
            (reader.buf.split().freeze(), false)
        }
    };
    // Bytes beyond the answer mean the stream is out of step: not reused.
    if head.keep_alive && clean {
        upstream.idle.put(stream);
    }
    Ok(Answer { head, body })
}

/// Reads an answer off an upstream connection.
struct Reader<'s> {
    stream: &'s mut Stream,
    buf: BytesMut,
    timeout: std::time::Duration,
    /// Whether any answer byte arrived (see the retry rule).
    received: bool,
}

impl Reader<'_> {
    async fn read_head(&mut self, to_head: bool) -> Result<(AnswerHead, Bytes), (Failure, bool)> {
        loop {
            if !self.buf.is_empty() {
                let data = self.buf.split().freeze();
                match answer::parse(&data, to_head) {
                    Ok(Some((head, len))) => return Ok((head, data.slice(len..))),
                    Ok(None) if data.len() > MAX_HEAD_BYTES => {
                        return Err((Failure::protocol("answer head too large"), true))
                    }
                    // Incomplete: keep the bytes (the buffer is the only owner again).
                    Ok(None) => {
                        self.buf = data
                            .try_into_mut()
                            .unwrap_or_else(|shared| BytesMut::from(&shared[..]))
                    }
                    Err(e) => return Err((Failure::protocol(e.0), true)),
                }
            }
            self.read_more().await?;
        }
    }

    /// Reads more; the connection closing here is a failure.
    async fn read_more(&mut self) -> Result<(), (Failure, bool)> {
        if self.read_more_or_eof().await? {
            Ok(())
        } else {
            Err((
                Failure::new(Error::explain(
                    ErrorType::ConnectionClosed,
                    "the upstream closed the connection before the whole answer",
                )),
                self.received,
            ))
        }
    }

    /// Reads more; `false` when the upstream closed the connection.
    async fn read_more_or_eof(&mut self) -> Result<bool, (Failure, bool)> {
        if self.buf.len() > MAX_ANSWER_BYTES {
            return Err((Failure::protocol("answer too large"), true));
        }
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(4096);
        }
        match tokio::time::timeout(self.timeout, self.stream.read_buf(&mut self.buf)).await {
            Ok(Ok(0)) => Ok(false),
            Ok(Ok(_)) => {
                self.received = true;
                Ok(true)
            }
            Ok(Err(e)) => Err((Failure::io(ErrorType::ReadError, e), self.received)),
            Err(_) => Err((Failure::timeout(ErrorType::ReadTimedout), self.received)),
        }
    }
}

/// How an active probe checks an upstream.
pub enum Probe<'a> {
    /// A TCP connect (TLS handshake included for https upstreams).
    Connect,
    /// `GET path`, expecting `status`.
    Http { path: &'a str, status: u16 },
}

impl Upstream {
    /// One active health probe on a new connection, bounded by `timeout`.
    pub async fn probe(
        &self,
        probe: &Probe<'_>,
        timeout: std::time::Duration,
    ) -> Result<(), String> {
        let attempt = async {
            let mut stream = self
                .connector
                .new_stream(&self.peer)
                .await
                .map_err(|e| e.to_string())?;
            let Probe::Http { path, status } = probe else {
                return Ok(());
            };
            let head = format!(
                "GET {path} HTTP/1.1\r\nhost: {}\r\nuser-agent: mediagate-health-check\r\nconnection: close\r\n\r\n",
                self.settings.authority
            );
            stream
                .write_all(head.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            stream.flush().await.map_err(|e| e.to_string())?;
            let mut session = HttpSession::new_with_options(stream, &self.peer);
            session.read_response().await.map_err(|e| e.to_string())?;
            match session.get_status().map(|s| s.as_u16()) {
                Some(got) if got == *status => Ok(()),
                got => Err(format!("answered {got:?}, expected {status}")),
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }
}
