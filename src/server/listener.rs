//! A listener as a pingora service: its socket (bound by `run` before the server starts, or,
//! with `run --upgrade`, taken over from the previous process through pingora's descriptor
//! hand-over), the accept loop, and one task per connection — on the listener's own event loops
//! ([`super::loops`], the gateway's default) or on the service's pingora worker threads; TLS
//! connections are handshaken first with pingora's rustls acceptor.
//!
//! Why not pingora's listening service: its per-connection task embeds the TLS handshake future
//! and the app's boxed future, about 9 KB per connection whether it is busy or idle, more than
//! three times the memory goal for an idle keep-alive connection (2.5 KB). Here a task holds
//! only [`connection::serve`]'s small state. Owning the sockets also lets every listener bind
//! port 0 and report the port it got ([`Bound`]).

use async_trait::async_trait;
use nix::errno::Errno;
use pingora_core::listeners::tls::Acceptor;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::Stream;
use pingora_core::server::{ListenFds, ShutdownWatch};
use pingora_core::services::Service;
use prometheus::{IntCounter, IntGauge};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::bound::Bound;
use super::connection;
use super::exchange::Conn;
use super::loops::Loops;
use super::App;

/// The listen backlog (pingora's too).
const BACKLOG: i32 = 65535;

pub struct Listener<A: App> {
    /// The listener's name in the listening report (`gateway`, `admin`, `emulator`).
    name: &'static str,
    /// The address as configured: also the key of the socket in pingora's hand-over table.
    addr: SocketAddr,
    /// The socket `run` bound (not on an upgrade, where it comes from the old process).
    bound: Option<std::net::TcpListener>,
    tls: Option<Arc<Acceptor>>,
    app: Arc<A>,
    threads: Option<usize>,
    /// Connections served on this many event loops of the listener's own (see `loops`).
    loops: Option<usize>,
    report: Bound,
    limit: Option<ConnectionLimit>,
}

/// At most so many connections open at once: at the cap the listener stops accepting (new
/// connections wait in the kernel's backlog) until one closes, as HAProxy's `maxconn` does.
struct ConnectionLimit {
    permits: Arc<Semaphore>,
    open: IntGauge,
    /// Counted each time accepting pauses at the cap.
    reached: IntCounter,
}

/// Binds a listening socket now (`SO_REUSEADDR`, non-blocking, listening), so that `run` can
/// say plainly that an address is taken before the server starts, and connections queue in the
/// backlog until the service accepts them.
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

impl<A: App> Listener<A> {
    pub fn new(
        name: &'static str,
        addr: SocketAddr,
        bound: Option<std::net::TcpListener>,
        app: Arc<A>,
        report: Bound,
    ) -> Listener<A> {
        Listener {
            name,
            addr,
            bound,
            tls: None,
            app,
            threads: None,
            loops: None,
            report,
            limit: None,
        }
    }

    /// At most `max` connections open at once; `open` shows them, `reached` counts the times
    /// accepting paused at the cap.
    pub fn with_connection_limit(
        mut self,
        max: usize,
        open: IntGauge,
        reached: IntCounter,
    ) -> Self {
        self.limit = Some(ConnectionLimit {
            permits: Arc::new(Semaphore::new(max)),
            open,
            reached,
        });
        self
    }

    /// Connections are TLS, handshaken with `acceptor`.
    pub fn with_tls(mut self, acceptor: Acceptor) -> Self {
        self.tls = Some(Arc::new(acceptor));
        self
    }

    /// Serves connections on `n` event loops of its own ([`Loops`]); the pingora service then
    /// runs only the accept loop, on one thread.
    pub fn with_event_loops(mut self, n: usize) -> Self {
        self.loops = Some(n);
        self.threads = Some(1);
        self
    }

    /// Runs on this many threads instead of `[server] threads`.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// The socket's key in pingora's hand-over table: its configured address (as pingora's
    /// own listeners key theirs) or, for port 0, where several listeners may share an address
    /// string, the listener's name with it.
    fn key(&self) -> String {
        if self.addr.port() == 0 {
            format!("{}@{}", self.name, self.addr)
        } else {
            self.addr.to_string()
        }
    }

    /// The listening socket: the one `run` bound, or the one handed over by the old process
    /// for this address; registered in the hand-over table so that a later upgrade passes it on.
    fn socket(&mut self, fds: Option<ListenFds>) -> std::io::Result<TcpListener> {
        let key = self.key();
        let std = match (self.bound.take(), &fds) {
            (Some(bound), _) => bound,
            (None, Some(fds)) => match fds.lock().get(&key) {
                // SAFETY: pingora received this descriptor from the old process for this
                // address and nothing else in this process uses it: the listener becomes its
                // owner.
                Some(&fd) => unsafe { std::net::TcpListener::from_raw_fd(fd) },
                None => bind(self.addr)?,
            },
            (None, None) => bind(self.addr)?,
        };
        std.set_nonblocking(true)?;
        if let Some(fds) = fds {
            let mut table = fds.lock();
            if table.get(&key).is_none() {
                table.add(key, std.as_raw_fd());
            }
        }
        TcpListener::from_std(std)
    }
}

#[async_trait]
impl<A: App> Service for Listener<A> {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        mut shutdown: ShutdownWatch,
        _listeners_per_fd: usize,
    ) {
        let listener = match self.socket(fds) {
            Ok(l) => l,
            Err(e) => {
                // `run` bound the address before starting (or the old process handed it over);
                // losing it since is fatal.
                let message = format!("{}: cannot listen on {}: {e}", self.name, self.addr);
                crate::observe::diagnostics::exit(1, &message);
            }
        };
        let loops = match self.loops.map(|n| Loops::start(n, self.name)) {
            None => None,
            Some(Ok(loops)) => Some(loops),
            Some(Err(e)) => {
                let message = format!("{}: cannot start its event loops: {e}", self.name);
                crate::observe::diagnostics::exit(1, &message);
            }
        };
        if let Ok(addr) = listener.local_addr() {
            self.report.report(self.name, addr);
        }
        loop {
            // A connection slot first: at the cap, nothing is accepted until one closes.
            let permit = match &self.limit {
                None => None,
                Some(limit) => {
                    let permit = match limit.permits.clone().try_acquire_owned() {
                        Ok(p) => p,
                        Err(_) => {
                            limit.reached.inc();
                            log::warn!(
                                "{}: {} connections open, the limit: accepting paused",
                                self.name,
                                limit.open.get()
                            );
                            let acquired = tokio::select! {
                                p = limit.permits.clone().acquire_owned() => p.ok(),
                                _ = shutdown.changed() => None,
                            };
                            match acquired {
                                Some(p) => p,
                                None => break,
                            }
                        }
                    };
                    Some((permit, limit.open.clone()))
                }
            };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                    continue;
                }
            };
            match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let task = Task {
                        app: self.app.clone(),
                        tls: self.tls.clone(),
                        shutdown: shutdown.clone(),
                        slot: permit.map(|(permit, open)| OpenConnection::new(permit, open)),
                        peer,
                    };
                    match &loops {
                        // On one of the service's worker threads, picked at random as
                        // pingora's own listeners do (a plain `tokio::spawn` would keep every
                        // connection on the accepting thread).
                        None => {
                            pingora_runtime::current_handle().spawn(task.serve(tcp));
                        }
                        // A socket belongs to the runtime that registered it: it leaves the
                        // accepting runtime and joins the chosen loop's.
                        Some(loops) => match tcp.into_std() {
                            Ok(std) => {
                                let (handle, placed) = loops.place();
                                handle.spawn(async move {
                                    let _placed = placed;
                                    match tokio::net::TcpStream::from_std(std) {
                                        Ok(tcp) => task.serve(tcp).await,
                                        Err(e) => log::debug!("connection from {peer}: {e}"),
                                    }
                                });
                            }
                            Err(e) => log::debug!("connection from {peer}: {e}"),
                        },
                    }
                }
                Err(e) => {
                    log::error!("{}: accept failed: {e}", self.name);
                    // Out of file descriptors: accept fails at once until some close.
                    let errno = e.raw_os_error().map(Errno::from_raw);
                    if matches!(errno, Some(Errno::EMFILE | Errno::ENFILE)) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
        log::info!("{}: stopped listening on {}", self.name, self.addr);
        if let Some(loops) = loops {
            // The open connections finish their requests (each answer now closes); the loops
            // stop once they are all closed, or when pingora ends this task at the end of the
            // graceful shutdown.
            while loops.open() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    fn name(&self) -> &str {
        self.name
    }

    fn threads(&self) -> Option<usize> {
        self.threads
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        Some(vec![self.key()])
    }
}

/// A connection accepted, to be served where it is spawned.
struct Task<A: App> {
    app: Arc<A>,
    tls: Option<Arc<Acceptor>>,
    shutdown: ShutdownWatch,
    /// Held for as long as the connection lives.
    slot: Option<OpenConnection>,
    peer: SocketAddr,
}

impl<A: App> Task<A> {
    async fn serve(self, tcp: tokio::net::TcpStream) {
        let Task {
            app,
            tls,
            shutdown,
            slot,
            peer,
        } = self;
        let _slot = slot;
        let l4 = L4Stream::from(tcp);
        let stream: Stream = match tls {
            None => Box::new(l4),
            Some(acceptor) => {
                let limit = app.settings().read_timeout;
                // Boxed: the handshake's future is about 7 KB, and held inline it would size
                // every connection's task, TLS or not, for as long as the connection lives
                // (measured: 8.9 KB per idle plain connection inline, against the 2.5 KB goal).
                let handshake = Box::pin(acceptor.tls_handshake(l4));
                match tokio::time::timeout(limit, handshake).await {
                    Ok(Ok(tls)) => Box::new(tls),
                    Ok(Err(e)) => {
                        log::debug!("TLS handshake with {peer} failed: {e}");
                        return;
                    }
                    Err(_) => {
                        log::debug!("TLS handshake with {peer} timed out");
                        return;
                    }
                }
            }
        };
        let conn = Conn::with_peer(stream, Some(peer.ip()));
        connection::serve(&*app, conn, shutdown).await;
    }
}

/// A connection's slot under the limit, counted in the gauge while it lives.
struct OpenConnection {
    _permit: tokio::sync::OwnedSemaphorePermit,
    open: IntGauge,
}

impl OpenConnection {
    fn new(permit: tokio::sync::OwnedSemaphorePermit, open: IntGauge) -> OpenConnection {
        open.inc();
        OpenConnection {
            _permit: permit,
            open,
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.open.dec();
    }
}
