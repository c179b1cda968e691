//! Why an upstream exchange failed, and what that means for the player and for a retry.

use pingora_error::ErrorType;

/// The `kind` label of `mediagate_upstream_errors_total`.
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
    /// The upstream sent something that is not valid HTTP/1, or that cannot be relayed.
    Protocol,
}

impl FailureKind {
    pub const ALL: [FailureKind; 5] = [
        FailureKind::Connect,
        FailureKind::Timeout,
        FailureKind::Tls,
        FailureKind::Reset,
        FailureKind::Protocol,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::Tls => "tls",
            FailureKind::Reset => "reset",
            FailureKind::Protocol => "protocol",
        }
    }

    /// The status the player gets: 504 for timeouts, 502 otherwise.
    pub fn status(self) -> u16 {
        match self {
            FailureKind::Timeout => 504,
            _ => 502,
        }
    }

    /// The kind of an error of pingora's transport connector.
    fn of_connector(e: &pingora_error::Error) -> FailureKind {
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
            _ => FailureKind::Reset,
        }
    }
}

/// What went wrong, for the log.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// pingora's connector could not make the connection (TCP or TLS).
    #[error("{0}")]
    Connect(Box<pingora_error::Error>),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{0} timed out")]
    Timeout(&'static str),
    #[error("the upstream closed the connection before the whole answer")]
    Closed,
    #[error("{0}")]
    Protocol(&'static str),
}

/// A failed exchange.
#[derive(Debug, thiserror::Error)]
#[error("{} ({cause})", kind.as_str())]
pub struct Failure {
    pub kind: FailureKind,
    pub cause: Cause,
    /// True when the upstream did not read the request (see `client::send`): it may safely go
    /// to another upstream.
    pub unread: bool,
}

impl Failure {
    fn new(kind: FailureKind, cause: Cause) -> Failure {
        Failure {
            kind,
            cause,
            unread: false,
        }
    }

    /// The connection could not be made: nothing was sent.
    pub fn connecting(e: Box<pingora_error::Error>) -> Failure {
        Failure {
            unread: true,
            ..Failure::new(FailureKind::of_connector(&e), Cause::Connect(e))
        }
    }

    pub fn io(what: &'static str, source: std::io::Error) -> Failure {
        Failure::new(FailureKind::Reset, Cause::Io { what, source })
    }

    pub fn timeout(what: &'static str) -> Failure {
        Failure::new(FailureKind::Timeout, Cause::Timeout(what))
    }

    pub fn closed() -> Failure {
        Failure::new(FailureKind::Reset, Cause::Closed)
    }

    /// The upstream answered something that is not usable HTTP/1.
    pub fn protocol(what: &'static str) -> Failure {
        Failure::new(FailureKind::Protocol, Cause::Protocol(what))
    }

    /// Whether the connection was reset (TCP RST) or found reset when writing.
    pub fn is_connection_reset(&self) -> bool {
        use std::io::ErrorKind::{BrokenPipe, ConnectionReset};
        let io = match &self.cause {
            Cause::Io { source, .. } => Some(source),
            Cause::Connect(e) => e.root_cause().downcast_ref::<std::io::Error>(),
            _ => None,
        };
        io.is_some_and(|e| matches!(e.kind(), ConnectionReset | BrokenPipe))
    }
}
