//! A scripted upstream for tests: a loopback server that reads each request whole (its head and
//! `Content-Length` body) and answers what the test's script says, byte for byte — including
//! answers no real backend would send. Every request it read is kept.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the script does with one request.
pub enum Reply {
    /// Writes these bytes, then reads the next request on the connection.
    Bytes(Vec<u8>),
    /// Writes these bytes one at a time, `every` apart, then closes.
    Drip(Vec<u8>, Duration),
    /// Writes these bytes, then closes the connection.
    ThenClose(Vec<u8>),
}

/// Which request: the connection's number (from 0, in accept order) and the request's number
/// on it, and the request's bytes.
pub struct Seen<'a> {
    pub connection: usize,
    pub index: usize,
    pub request: &'a [u8],
}

type Script = dyn Fn(&Seen) -> Reply + Send + Sync;

pub struct Scripted {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Scripted {
    pub fn start(script: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the scripted upstream");
        let addr = listener.local_addr().expect("its address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let script: Arc<Script> = Arc::new(script);
        std::thread::spawn(move || {
            for (connection, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { return };
                let (seen, script) = (seen.clone(), script.clone());
                std::thread::spawn(move || serve(stream, connection, &seen, &*script));
            }
        });
        Scripted { addr, requests }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request read so far, in order.
    pub fn requests(&self) -> Vec<Vec<u8>> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn serve(mut stream: TcpStream, connection: usize, seen: &Mutex<Vec<Vec<u8>>>, script: &Script) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    for index in 0.. {
        let Some(request) = read_request(&mut stream, &mut buf) else {
            return;
        };
        if let Ok(mut all) = seen.lock() {
            all.push(request.clone());
        }
        let reply = script(&Seen {
            connection,
            index,
            request: &request,
        });
        match reply {
            Reply::Bytes(bytes) => {
                if stream.write_all(&bytes).is_err() {
                    return;
                }
            }
            Reply::ThenClose(bytes) => {
                let _ = stream.write_all(&bytes);
                return;
            }
            Reply::Drip(bytes, every) => {
                for b in bytes {
                    if stream.write_all(&[b]).is_err() {
                        return;
                    }
                    std::thread::sleep(every);
                }
                return;
            }
        }
    }
}

/// Reads one request (its head and `Content-Length` body) from `stream`, keeping what follows
/// in `buf`; `None` when the connection ends first.
fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            let total = end + 4 + length;
            if buf.len() >= total {
                return Some(buf.drain(..total).collect());
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
