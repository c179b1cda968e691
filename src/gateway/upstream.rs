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

use bytes::BytesMut;
use pingora_core::connectors::TransportConnector;
use pingora_core::protocols::http::v1::client::HttpSession;
use pingora_core::protocols::Stream;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType};
use tokio::io::AsyncWriteExt;

use super::idle_pool::IdlePool;
use crate::config;

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
    /// True when not a byte of the request was sent (no connection could be made): the request
    /// may safely go to another upstream.
    pub before_send: bool,
}

impl Failure {
    fn new(error: Box<Error>) -> Failure {
        Failure {
            kind: FailureKind::of(&error),
            error,
            before_send: false,
        }
    }

    fn connecting(error: Box<Error>) -> Failure {
        Failure {
            before_send: true,
            ..Failure::new(error)
        }
    }

    /// The upstream answered something that is not usable HTTP/1.
    pub fn protocol(what: &'static str) -> Failure {
        Failure::new(Error::explain(ErrorType::H1Error, what))
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
    pub fn new(settings: &[config::Upstream], pool_size: usize) -> Result<Upstreams, String> {
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
                idle: IdlePool::new(pool_size, s.idle_timeout),
            });
        }
        Ok(Upstreams { list })
    }

    /// Sends `head` (a serialized request header) and `body` to upstream `index` in one write
    /// and reads the answer's header.
    ///
    /// Retry rule: when a pooled (reused) connection fails before a single response byte arrives
    /// — the peer closed it while it sat idle — the request is sent once more on a new
    /// connection. The upstream closed that connection without answering, so it did not process
    /// the request; this is the only case in which a POST is ever sent twice. Any failure on a
    /// new connection, and any failure after response bytes, is final.
    pub async fn send(
        &self,
        index: usize,
        head: &[u8],
        body: &[u8],
    ) -> Result<Answer<'_>, Failure> {
        let upstream = &self.list[index];
        let (stream, reused) = match upstream.idle.take() {
            Some(stream) => (stream, true),
            None => (
                upstream
                    .connector
                    .new_stream(&upstream.peer)
                    .await
                    .map_err(Failure::connecting)?,
                false,
            ),
        };
        match self.exchange(upstream, stream, head, body).await {
            Ok(session) => Ok(Answer { upstream, session }),
            Err((failure, false)) if reused && failure.kind == FailureKind::Reset => {
                log::debug!(
                    "upstream {}: pooled connection was closed, retrying on a new one",
                    upstream.settings.name
                );
                // Nothing of this request was read, so a failure to connect again leaves it
                // free to go to another upstream.
                let stream = upstream
                    .connector
                    .new_stream(&upstream.peer)
                    .await
                    .map_err(Failure::connecting)?;
                self.exchange(upstream, stream, head, body)
                    .await
                    .map(|session| Answer { upstream, session })
                    .map_err(|(f, _)| f)
            }
            Err((failure, _)) => Err(failure),
        }
    }

    /// Writes the request and reads the response header. On failure, also says whether any
    /// response byte had arrived.
    async fn exchange(
        &self,
        upstream: &Upstream,
        mut stream: Stream,
        head: &[u8],
        body: &[u8],
    ) -> Result<HttpSession, (Failure, bool)> {
        let s = &upstream.settings;
        let mut wire = BytesMut::with_capacity(head.len() + body.len());
        wire.extend_from_slice(head);
        wire.extend_from_slice(body);
        let write = async {
            stream.write_all(&wire).await?;
            stream.flush().await
        };
        match tokio::time::timeout(s.write_timeout, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err((
                    Failure::new(Error::because(
                        ErrorType::WriteError,
                        "writing upstream request",
                        e,
                    )),
                    false,
                ))
            }
            Err(_) => {
                return Err((
                    Failure::new(Error::explain(
                        ErrorType::WriteTimedout,
                        "writing upstream request",
                    )),
                    false,
                ))
            }
        }
        let mut session = HttpSession::new_with_options(stream, &upstream.peer);
        session.read_timeout = Some(s.read_timeout);
        session.write_timeout = Some(s.write_timeout);
        // Skip informational answers (100 Continue and the like), at most a few.
        for _ in 0..4 {
            if let Err(e) = session.read_response().await {
                let got_bytes = session.resp_header().is_some();
                return Err((Failure::new(e), got_bytes));
            }
            match session.get_status() {
                Some(status) if status.is_informational() && status.as_u16() != 101 => continue,
                _ => return Ok(session),
            }
        }
        Err((
            Failure::new(Error::explain(
                ErrorType::H1Error,
                "too many informational answers",
            )),
            true,
        ))
    }
}

/// An upstream answer whose header has been read; the body is read with [`Answer::body_chunk`]
/// and the connection goes back to the pool with [`Answer::release`].
pub struct Answer<'a> {
    upstream: &'a Upstream,
    pub session: HttpSession,
}

impl Answer<'_> {
    pub async fn body_chunk(&mut self) -> Result<Option<bytes::Bytes>, Failure> {
        self.session.read_body_bytes().await.map_err(Failure::new)
    }

    /// Returns the connection to the pool when the answer allows it (keep-alive, fully read).
    pub async fn release(mut self) {
        self.session.respect_keepalive();
        if let Some(stream) = self.session.reuse().await {
            self.upstream.idle.put(stream);
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
