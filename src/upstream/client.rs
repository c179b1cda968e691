//! The exchange with one upstream: an HTTP/1.1 request on a connection made by pingora's
//! transport connector (TCP or TLS) and kept in the member's idle pool, written in a single
//! `write` (head and body together), and its whole answer, read with the codec of `http1` and
//! the body loop of `io::body`. Active HTTP probes go through the same reader.
//!
//! mediagate holds the whole (validated, enriched) body before it contacts the upstream, so it
//! writes the request itself rather than through pingora's proxy loop, which flushes the header
//! alone first and cannot replay bodies above 64 KiB. What pingora's loop would have done is done
//! here: hop-by-hop headers are stripped (by the caller's head), `Host` is the upstream's
//! authority, framing is a `Content-Length`, and a request is sent again only in the one case
//! where the upstream cannot have read it (see [`send`]).

use bytes::{Bytes, BytesMut};
use http1::answer::{self, AnswerHead};
use http1::limits::{ANSWER_BODY_BYTES, ANSWER_HEAD_BYTES, ANSWER_INTERIM};
use http1::{BodyReader, Framing};
use pingora_core::protocols::Stream;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

use super::failure::Failure;
use super::Member;
use crate::io::body::{self, ReadError};
use crate::io::deadline;

/// An upstream's whole answer.
pub struct Answer {
    pub head: AnswerHead,
    pub body: Bytes,
}

/// Sends `wire` (a serialized request, head and body) to `member` in one write and reads the
/// whole answer. `to_head`: the request is a HEAD (its answer has no body). `replayable`: its
/// method is safe to send twice (GET, HEAD).
///
/// Retry rule (`docs/operations.md`, "Retries — the exact rule"): a POST is sent again only
/// where the upstream cannot have read it (RFC 9110 §9.2.2).
/// - A pooled connection that received bytes or a close while it sat idle is not used.
/// - When no connection can be made, or a connection is reset (TCP RST, or found reset when
///   writing) before a single answer byte, the upstream did not read the whole request: the
///   socket still held unread bytes of it when it went away (a keep-alive connection it
///   closed, a connection in the backlog of a process being killed). On a pooled connection the
///   request is sent once more on a new one; otherwise the failure is [`Failure::unread`], and
///   the caller may move the request to another upstream.
/// - A pooled connection closed (FIN) before a single answer byte is sent again on a new
///   connection for GET and HEAD only: a POST may have been read and processed.
///
/// Any other failure — a timeout, a close without an answer, a broken answer — is final.
pub(super) async fn send(
    member: &Member,
    wire: &[u8],
    to_head: bool,
    replayable: bool,
) -> Result<Answer, Failure> {
    if let Some(stream) = member.idle.take_quiet(still_quiet) {
        match exchange(member, stream, wire, to_head).await {
            Ok(answer) => return Ok(answer),
            Err((failure, false))
                if failure.is_connection_reset()
                    || (replayable && failure.kind == super::FailureKind::Reset) =>
            {
                log::debug!(
                    "upstream {}: pooled connection failed before an answer ({failure}), sending again on a new one",
                    member.settings.name,
                )
            }
            Err((failure, _)) => return Err(failure),
        }
    }
    let stream = member
        .connector
        .new_stream(&member.peer)
        .await
        .map_err(Failure::connecting)?;
    exchange(member, stream, wire, to_head)
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

/// Whether a pooled connection is still quietly open: no byte and no close arrived while it
/// sat idle (a late answer, a 408 before an idle close, a FIN). Costs no system call when the
/// socket had no event since its last read drained it (tokio's cached readiness).
fn still_quiet(stream: &mut Stream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    let mut scratch = [0u8; 64];
    let mut buf = ReadBuf::new(&mut scratch);
    matches!(Pin::new(stream).poll_read(&mut cx, &mut buf), Poll::Pending)
}

/// Writes the request and reads the whole answer, then gives the connection back to the pool
/// when the answer allows it. On failure, also says whether any answer byte had arrived.
async fn exchange(
    member: &Member,
    mut stream: Stream,
    wire: &[u8],
    to_head: bool,
) -> Result<Answer, (Failure, bool)> {
    let s = &member.settings;
    write(&mut stream, wire, s.write_timeout)
        .await
        .map_err(|f| (f, false))?;
    let mut reader = Reader::new(&mut stream, s.read_timeout);
    // Informational answers are never final (RFC 9110 §15.2): they are skipped, up to a bound.
    // A 101 was not asked for (no request carries Upgrade). Either way the connection is out of
    // step and is dropped, never relayed or pooled.
    let mut interim = 0;
    let head = loop {
        let head = reader.read_head(to_head).await?;
        if head.status == 101 {
            return Err((
                Failure::protocol("unsolicited 101 Switching Protocols"),
                true,
            ));
        }
        if (100..200).contains(&head.status) {
            interim += 1;
            if interim > ANSWER_INTERIM {
                return Err((Failure::protocol("too many informational answers"), true));
            }
            continue;
        }
        break head;
    };
    let body = reader.read_body(head.framing).await?;
    // Bytes beyond the answer mean the stream is out of step: not reused.
    let clean = reader.buf.is_empty() && head.framing != Framing::UntilClose;
    if head.keep_alive && clean {
        member.idle.put(stream);
    }
    Ok(Answer { head, body })
}

async fn write(stream: &mut Stream, wire: &[u8], timeout: Duration) -> Result<(), Failure> {
    let write = async {
        stream.write_all(wire).await?;
        stream.flush().await
    };
    match deadline::within(timeout, write).await {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(Failure::io("writing the request", e)),
        None => Err(Failure::timeout("writing the request")),
    }
}

/// Reads an answer off an upstream connection.
struct Reader<'s> {
    stream: &'s mut Stream,
    buf: BytesMut,
    limits: body::Limits,
    /// Whether any answer byte arrived (see the retry rule).
    received: bool,
}

impl<'s> Reader<'s> {
    fn new(stream: &'s mut Stream, timeout: Duration) -> Reader<'s> {
        Reader {
            stream,
            buf: BytesMut::with_capacity(4096),
            limits: body::Limits {
                per_read: timeout,
                whole: None,
            },
            received: false,
        }
    }

    /// Reads and parses the next answer head; the bytes after it stay in the buffer.
    async fn read_head(&mut self, to_head: bool) -> Result<AnswerHead, (Failure, bool)> {
        loop {
            if !self.buf.is_empty() {
                let data = self.buf.split().freeze();
                match answer::parse(&data, to_head) {
                    Ok(Some((head, len))) => {
                        self.buf = BytesMut::from(&data[len..]);
                        return Ok(head);
                    }
                    Ok(None) if data.len() > ANSWER_HEAD_BYTES => {
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
            if !self.read_more().await? {
                return Err((Failure::closed(), self.received));
            }
        }
    }

    async fn read_body(&mut self, framing: Framing) -> Result<Bytes, (Failure, bool)> {
        let mut reader = BodyReader::new(framing, ANSWER_BODY_BYTES)
            .map_err(|_| (Failure::protocol("answer body too large"), true))?;
        body::read(self.stream, &mut self.buf, &mut reader, self.limits)
            .await
            .map_err(|e| (read_failure(e), true))
    }

    /// Reads more; `false` when the upstream closed the connection.
    async fn read_more(&mut self) -> Result<bool, (Failure, bool)> {
        match body::read_more(self.stream, &mut self.buf, self.limits).await {
            Ok(0) => Ok(false),
            Ok(_) => {
                self.received = true;
                Ok(true)
            }
            Err(e) => Err((read_failure(e), self.received)),
        }
    }
}

fn read_failure(e: ReadError) -> Failure {
    match e {
        ReadError::TooLarge => Failure::protocol("answer body too large"),
        ReadError::Malformed(why) => Failure::protocol(why),
        ReadError::Truncated => Failure::closed(),
        ReadError::Timeout => Failure::timeout("reading the answer"),
        ReadError::Io(e) => Failure::io("reading the answer", e),
    }
}

/// How an active probe checks an upstream.
pub enum Probe<'a> {
    /// A TCP connect (TLS handshake included for https upstreams).
    Connect,
    /// `GET path`, expecting `status`.
    Http { path: &'a str, status: u16 },
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}")]
    Exchange(#[from] Failure),
    #[error("answered {got}, expected {expected}")]
    Status { got: u16, expected: u16 },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// One active health probe on a new connection, bounded by `timeout`.
pub(super) async fn probe(
    member: &Member,
    probe: &Probe<'_>,
    timeout: Duration,
) -> Result<(), ProbeError> {
    let attempt = async {
        let mut stream = member
            .connector
            .new_stream(&member.peer)
            .await
            .map_err(Failure::connecting)?;
        let Probe::Http { path, status } = probe else {
            return Ok(());
        };
        let head = format!(
            "GET {path} HTTP/1.1\r\nhost: {}\r\nuser-agent: mediagate-health-check\r\nconnection: close\r\n\r\n",
            member.settings.authority
        );
        write(&mut stream, head.as_bytes(), timeout).await?;
        let mut reader = Reader::new(&mut stream, timeout);
        let answer = loop {
            let head = reader.read_head(false).await.map_err(|(f, _)| f)?;
            if !(100..200).contains(&head.status) || head.status == 101 {
                break head;
            }
        };
        if answer.status == *status {
            Ok(())
        } else {
            Err(ProbeError::Status {
                got: answer.status,
                expected: *status,
            })
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError::Timeout(timeout)),
    }
}
