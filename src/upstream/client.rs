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

/// What the caller accepts as the answer to its request: an answer head of another shape is a
/// stray (an answer meant for an earlier request on the same connection), and the exchange
/// fails instead (502; the connection is dropped).
pub type Expect<'a> = &'a (dyn Fn(&AnswerHead) -> bool + Sync);

/// How far an exchange got before it failed (see the retry rule of [`send`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reached {
    /// Not one byte of the request was written.
    NothingWritten,
    /// Bytes were written; no answer byte arrived.
    Written,
    /// Answer bytes arrived.
    Answered,
}

/// Sends `wire` (a serialized request, head and body) to `member` in one write and reads the
/// whole answer. `to_head`: the request is a HEAD (its answer has no body). `replayable`: its
/// method is safe to send twice (GET, HEAD).
///
/// Retry rule (`docs/operations.md`, "Retries — the exact rule"): a request is sent again only
/// where the upstream cannot have taken any of it, or where sending it twice is harmless.
/// - A pooled connection that received bytes or a close while it sat idle is not used.
/// - A POST (any method but GET and HEAD) is sent again only when not one byte of it was
///   written: on a pooled connection the write itself failed at once (the upstream had closed
///   it), or no connection could be made. Once any byte was written, a failure is final: the
///   upstream may have read and processed it, and a `sessionStart` sent twice opens two
///   sessions. When no byte of it was taken by any upstream the failure is [`Failure::unread`]
///   and the caller may move it to another upstream.
/// - A GET or HEAD on a pooled connection that failed before a single answer byte (closed or
///   reset) is sent once more on a new connection.
///
/// Any other failure — a timeout, a close without an answer, a broken or stray answer — is
/// final.
pub(super) async fn send(
    member: &Member,
    wire: &[u8],
    to_head: bool,
    replayable: bool,
    expect: Expect<'_>,
) -> Result<Answer, Failure> {
    if let Some(stream) = member.idle.take_quiet(still_quiet) {
        match exchange(member, stream, wire, to_head, expect).await {
            Ok(answer) => return Ok(answer),
            Err((failure, reached))
                if reached == Reached::NothingWritten
                    || (replayable
                        && reached == Reached::Written
                        && failure.kind == super::FailureKind::Reset) =>
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
    exchange(member, stream, wire, to_head, expect)
        .await
        .map_err(|(failure, reached)| {
            // Nothing taken (a POST not written at all; a GET or HEAD reset before its answer):
            // another upstream may have it.
            let unread = reached == Reached::NothingWritten
                || (replayable && reached == Reached::Written && failure.is_connection_reset());
            Failure { unread, ..failure }
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
/// when the answer allows it. On failure, also says how far the exchange got.
async fn exchange(
    member: &Member,
    mut stream: Stream,
    wire: &[u8],
    to_head: bool,
    expect: Expect<'_>,
) -> Result<Answer, (Failure, Reached)> {
    let s = &member.settings;
    write(&mut stream, wire, s.write_timeout).await?;
    // The whole answer must arrive within the response timeout of the end of the write (a
    // trickled answer), each read within the read timeout.
    let whole = tokio::time::Instant::now() + s.response_timeout;
    let mut reader = Reader::new(&mut stream, s.read_timeout, Some(whole));
    let reached = |reader: &Reader| {
        if reader.received {
            Reached::Answered
        } else {
            Reached::Written
        }
    };
    // Informational answers are never final (RFC 9110 §15.2): they are skipped, up to a bound.
    // A 101 was not asked for (no request carries Upgrade). Either way the connection is out of
    // step and is dropped, never relayed or pooled.
    let mut interim = 0;
    let head = loop {
        let head = match reader.read_head(to_head).await {
            Ok(head) => head,
            Err(f) => return Err((f, reached(&reader))),
        };
        if head.status == 101 {
            let f = Failure::protocol("unsolicited 101 Switching Protocols");
            return Err((f, Reached::Answered));
        }
        if (100..200).contains(&head.status) {
            interim += 1;
            if interim > ANSWER_INTERIM {
                let f = Failure::protocol("too many informational answers");
                return Err((f, Reached::Answered));
            }
            continue;
        }
        break head;
    };
    if !expect(&head) {
        let f = Failure::protocol("an answer that cannot be the answer to the request");
        return Err((f, Reached::Answered));
    }
    let body = reader
        .read_body(head.framing)
        .await
        .map_err(|f| (f, Reached::Answered))?;
    // Bytes beyond the answer mean the stream is out of step: not reused.
    let clean = reader.buf.is_empty() && head.framing != Framing::UntilClose;
    if head.keep_alive && clean {
        member.idle.put(stream);
    }
    Ok(Answer { head, body })
}

/// Writes `wire` whole; a failure says whether any byte of it had been written.
async fn write(
    stream: &mut Stream,
    wire: &[u8],
    timeout: Duration,
) -> Result<(), (Failure, Reached)> {
    let mut written = 0;
    let write = async {
        while written < wire.len() {
            match stream.write(&wire[written..]).await {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::WriteZero,
                        "the connection took no more bytes",
                    ))
                }
                Ok(n) => written += n,
                Err(e) => return Err(e),
            }
        }
        stream.flush().await
    };
    let result = deadline::within(timeout, write).await;
    let reached = if written == 0 {
        Reached::NothingWritten
    } else {
        Reached::Written
    };
    match result {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err((Failure::io("writing the request", e), reached)),
        None => Err((Failure::timeout("writing the request"), reached)),
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
    /// `whole`: the deadline of the whole answer (`None`: only each read is bounded).
    fn new(
        stream: &'s mut Stream,
        timeout: Duration,
        whole: Option<tokio::time::Instant>,
    ) -> Reader<'s> {
        Reader {
            stream,
            buf: BytesMut::with_capacity(4096),
            limits: body::Limits {
                per_read: timeout,
                whole,
            },
            received: false,
        }
    }

    /// Reads and parses the next answer head; the bytes after it stay in the buffer.
    async fn read_head(&mut self, to_head: bool) -> Result<AnswerHead, Failure> {
        loop {
            if !self.buf.is_empty() {
                let data = self.buf.split().freeze();
                match answer::parse(&data, to_head) {
                    Ok(Some((_, len))) if len > ANSWER_HEAD_BYTES => {
                        return Err(Failure::protocol("answer head too large"))
                    }
                    Ok(Some((head, len))) => {
                        self.buf = BytesMut::from(&data[len..]);
                        return Ok(head);
                    }
                    Ok(None) if data.len() > ANSWER_HEAD_BYTES => {
                        return Err(Failure::protocol("answer head too large"))
                    }
                    // Incomplete: keep the bytes (the buffer is the only owner again).
                    Ok(None) => {
                        self.buf = data
                            .try_into_mut()
                            .unwrap_or_else(|shared| BytesMut::from(&shared[..]))
                    }
                    Err(e) => return Err(Failure::protocol(e.0)),
                }
            }
            if !self.read_more().await? {
                return Err(Failure::closed());
            }
        }
    }

    async fn read_body(&mut self, framing: Framing) -> Result<Bytes, Failure> {
        let mut reader = BodyReader::new(framing, ANSWER_BODY_BYTES)
            .map_err(|_| Failure::protocol("answer body too large"))?;
        body::read(
            self.stream,
            &mut self.buf,
            &mut reader,
            self.limits,
            &mut |_| true,
        )
        .await
        .map_err(read_failure)
    }

    /// Reads more; `false` when the upstream closed the connection.
    async fn read_more(&mut self) -> Result<bool, Failure> {
        match body::read_more(self.stream, &mut self.buf, self.limits).await {
            Ok(0) => Ok(false),
            Ok(_) => {
                self.received = true;
                Ok(true)
            }
            Err(e) => Err(read_failure(e)),
        }
    }
}

fn read_failure(e: ReadError) -> Failure {
    match e {
        ReadError::TooLarge => Failure::protocol("answer body too large"),
        ReadError::Malformed(why) => Failure::protocol(why),
        ReadError::Truncated => Failure::closed(),
        ReadError::Timeout => Failure::timeout("reading the answer"),
        ReadError::Refused => Failure::protocol("answer body refused"),
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
        write(&mut stream, head.as_bytes(), timeout)
            .await
            .map_err(|(f, _)| f)?;
        let mut reader = Reader::new(&mut stream, timeout, None);
        let answer = loop {
            let head = reader.read_head(false).await?;
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
