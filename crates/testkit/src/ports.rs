//! Ports held for a test: a socket bound (with `SO_REUSEADDR`) but not listening. Nothing else
//! can bind the port meanwhile (no other test's ephemeral port lands on it), connections to it
//! are refused (a dead upstream), and a process started later may listen on it (an upstream that
//! comes back), since it binds with `SO_REUSEADDR` too.

use socket2::{Domain, Socket, Type};
use std::net::SocketAddr;

pub struct HeldPort {
    _socket: Socket,
    pub addr: SocketAddr,
}

impl HeldPort {
    pub fn new() -> HeldPort {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
        socket.set_reuse_address(true).expect("SO_REUSEADDR");
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        socket.bind(&any.into()).expect("bind a loopback port");
        let addr = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .expect("the bound address");
        HeldPort {
            _socket: socket,
            addr,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Default for HeldPort {
    fn default() -> Self {
        HeldPort::new()
    }
}
