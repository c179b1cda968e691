//! The players' plain-TCP listener as a pingora service: binds (or, with `run --upgrade`, takes
//! over the old process's socket through pingora's fd transfer), accepts, and runs each
//! connection in a task of its own.
//!
//! Why not pingora's listening service: its per-connection task embeds the TLS handshake
//! future and the app's boxed future, about 9 KB per connection whether it is busy or idle,
//! more than three times the memory goal for an idle keep-alive connection. Here a task holds
//! only [`GatewayApp::serve_connection`]'s small state. A TLS listener (`tls_cert`/`tls_key`)
//! still goes through pingora's service, where rustls' own buffers dominate anyway.

use async_trait::async_trait;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::server::{ListenFds, ShutdownWatch};
use pingora_core::services::Service;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};

use super::downstream::Conn;
use super::service::GatewayApp;

/// The listen backlog (pingora's too).
const BACKLOG: u32 = 65535;

pub struct PlainListener {
    name: String,
    addr: SocketAddr,
    app: Arc<GatewayApp>,
}

impl PlainListener {
    pub fn new(name: &str, addr: SocketAddr, app: GatewayApp) -> PlainListener {
        PlainListener {
            name: name.to_owned(),
            addr,
            app: Arc::new(app),
        }
    }

    /// The listening socket: the one handed over by the old process when there is one for this
    /// address, else a new one, registered so that a later upgrade can hand it on.
    fn listener(&self, fds: Option<ListenFds>) -> std::io::Result<TcpListener> {
        let key = self.addr.to_string();
        let Some(fds) = fds else {
            return bind(self.addr);
        };
        let mut table = fds.lock();
        if let Some(&fd) = table.get(&key) {
            // SAFETY: pingora received this descriptor from the old process for this address
            // and nothing else in this process uses it: the listener becomes its owner.
            let std = unsafe { std::net::TcpListener::from_raw_fd(fd) };
            std.set_nonblocking(true)?;
            return TcpListener::from_std(std);
        }
        let listener = bind(self.addr)?;
        table.add(key, listener.as_raw_fd());
        Ok(listener)
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

#[async_trait]
impl Service for PlainListener {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        mut shutdown: ShutdownWatch,
        _listeners_per_fd: usize,
    ) {
        let listener = match self.listener(fds) {
            Ok(l) => l,
            Err(e) => {
                // `run` checked the address before starting; losing it since is fatal.
                log::error!("{}: cannot listen on {}: {e}", self.name, self.addr);
                std::process::exit(1);
            }
        };
        loop {
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
                    let app = self.app.clone();
                    let shutdown = shutdown.clone();
                    // On one of the service's worker threads, picked at random as pingora's
                    // own listeners do (a plain `tokio::spawn` would keep every connection on
                    // the accepting thread).
                    pingora_runtime::current_handle().spawn(async move {
                        let conn = Conn::with_peer(Box::new(L4Stream::from(tcp)), Some(peer.ip()));
                        app.serve_connection(conn, shutdown).await;
                    });
                }
                Err(e) => {
                    log::error!("{}: accept failed: {e}", self.name);
                    // Out of file descriptors: accept fails at once until some close.
                    if e.raw_os_error() == Some(libc::EMFILE)
                        || e.raw_os_error() == Some(libc::ENFILE)
                    {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
        log::info!("{}: stopped listening on {}", self.name, self.addr);
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn threads(&self) -> Option<usize> {
        None
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        Some(vec![self.addr.to_string()])
    }
}
