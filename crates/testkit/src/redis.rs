//! A real `redis-server` (Debian's package; `scripts/setup.sh` installs it), started on a held
//! loopback port with no persistence, killed and restarted on the same port, stopped when dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{poll, scratch_dir, HeldPort};

pub struct RedisServer {
    child: Option<Child>,
    /// Held while the server is down, so that nobody else takes the port.
    port: HeldPort,
    dir: std::path::PathBuf,
    /// Certificate, key and CA (PEM files): the server speaks only TLS.
    tls: Option<[PathBuf; 3]>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_with(None)
    }

    /// A server that speaks only TLS, with this certificate and key (`tests/fixtures/tls`).
    pub fn start_tls(cert: &Path, key: &Path, ca: &Path) -> RedisServer {
        RedisServer::start_with(Some([cert.to_owned(), key.to_owned(), ca.to_owned()]))
    }

    fn start_with(tls: Option<[PathBuf; 3]>) -> RedisServer {
        let mut r = RedisServer {
            child: None,
            port: HeldPort::new(),
            dir: scratch_dir("redis"),
            tls,
        };
        r.restart();
        r
    }

    pub fn addr(&self) -> SocketAddr {
        self.port.addr
    }

    /// `redis://127.0.0.1:PORT/0` (`rediss://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://{}/0", self.port.addr)
    }

    /// Starts the server (again, on the same port) and waits until it answers `PING`.
    pub fn restart(&mut self) {
        let log = std::fs::File::create(self.dir.join("redis.log")).expect("redis log file");
        let port = self.port.addr.port().to_string();
        let mut command = Command::new("redis-server");
        command.args(["--bind", "127.0.0.1"]);
        match &self.tls {
            None => command.args(["--port", &port]),
            Some([cert, key, ca]) => command
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(cert)
                .arg("--tls-key-file")
                .arg(key)
                .arg("--tls-ca-cert-file")
                .arg(ca),
        };
        let child = command
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): install it (scripts/setup.sh does)")
            });
        self.child = Some(child);
        // A TLS server is ready once it accepts (this helper speaks no TLS).
        let ready = || match self.tls {
            None => self.ping(),
            Some(_) => {
                TcpStream::connect_timeout(&self.port.addr, Duration::from_millis(200)).is_ok()
            }
        };
        let up = poll(Duration::from_secs(10), || ready().then_some(()));
        assert!(
            up.is_some(),
            "redis-server did not answer PING:\n{}",
            std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
        );
    }

    /// Whether the server answers `PING` now.
    pub fn ping(&self) -> bool {
        self.command("PING").is_some_and(|r| r.starts_with("+PONG"))
    }

    /// One inline command, its raw reply (`None`: no server).
    pub fn command(&self, line: &str) -> Option<String> {
        let mut s = TcpStream::connect_timeout(&self.port.addr, Duration::from_millis(200)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(format!("{line}\r\n").as_bytes()).ok()?;
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Kills the server at once (SIGKILL): its data is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
