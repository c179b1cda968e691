//! Scale-out, black box, with the example balancer configs of `deploy/scaling/` run as written
//! (placeholders filled in): Debian's nginx (`hash $remote_addr consistent`) and HAProxy
//! (`balance source`, `hash-type consistent`) in front of two gateways with the memory store —
//! every call of one player (one client address among many, `127.0.0.x`) reaches the gateway
//! that saw its session start, so no call is unknown and both gateways get players; and two
//! gateways on one Redis behind nginx's round robin judge a session as one gateway would.

mod common;

use common::*;
use socket2::{Domain, Socket, Type};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use testkit::{poll, toml, Emulator, Gateway, HeldPort, Options, RedisServer};

const T0: i64 = 1_768_507_200_000;

/// A balancer process, killed when dropped.
struct Balancer(Child);

impl Drop for Balancer {
    /// SIGTERM first: nginx's master then stops its workers (a SIGKILL of the master alone
    /// would leave them running, still listening); SIGKILL only if it has not exited in 5 s.
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        if let Ok(pid) = i32::try_from(self.0.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let exited = poll(Duration::from_secs(5), || self.0.try_wait().ok().flatten());
        if exited.is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn config(file: &str, listen: SocketAddr, a: SocketAddr, b: SocketAddr, dir: &Path) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
        .expect("the example config");
    text.replace("@LISTEN@", &listen.to_string())
        .replace("@GATEWAY_A@", &a.to_string())
        .replace("@GATEWAY_B@", &b.to_string())
        .replace("@DIR@", &dir.display().to_string())
}

/// Starts nginx (`round_robin`: the `hash` line dropped) or HAProxy on a held port.
fn balancer(kind: &str, a: SocketAddr, b: SocketAddr, round_robin: bool) -> (Balancer, SocketAddr) {
    let dir = testkit::scratch_dir(kind);
    // nginx and HAProxy set SO_REUSEADDR: they can listen on the port the test holds.
    let held = HeldPort::new();
    let listen = held.addr;
    let child = match kind {
        "nginx" => {
            let mut text = config("deploy/scaling/nginx.conf", listen, a, b, &dir);
            if round_robin {
                text = text.replace("hash $remote_addr consistent; # @BALANCE@", "");
            }
            let path = dir.join("nginx.conf");
            std::fs::write(&path, text).expect("write");
            std::fs::create_dir_all(dir.join("logs")).expect("mkdir");
            Command::new("nginx")
                .arg("-c")
                .arg(&path)
                .arg("-p")
                .arg(&dir)
                .arg("-e")
                .arg(dir.join("nginx-error.log"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nginx (scripts/setup.sh test installs nginx-light)")
        }
        _ => {
            let path = dir.join("haproxy.cfg");
            std::fs::write(
                &path,
                config("deploy/scaling/haproxy.cfg", listen, a, b, &dir),
            )
            .expect("write");
            let check = Command::new("haproxy")
                .arg("-c")
                .arg("-f")
                .arg(&path)
                .output()
                .expect("haproxy");
            assert!(
                check.status.success(),
                "{}",
                String::from_utf8_lossy(&check.stderr)
            );
            Command::new("haproxy")
                .arg("-db")
                .arg("-f")
                .arg(&path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("haproxy (scripts/setup.sh test installs it)")
        }
    };
    let up = poll(Duration::from_secs(10), || TcpStream::connect(listen).ok());
    assert!(up.is_some(), "{kind} did not listen on {listen}");
    drop(held);
    (Balancer(child), listen)
}

/// One request from client address `from` (127.0.0.x); status and Location.
fn post_from(from: [u8; 4], to: SocketAddr, path: &str, body: &[u8]) -> (u16, String) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from((from, 0)).into())
        .expect("bind the client address");
    socket
        .connect_timeout(&to.into(), Duration::from_secs(5))
        .expect("connect");
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("write");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let location = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .unwrap_or_default()
        .trim()
        .to_owned();
    (status, location)
}

/// Sixteen players (client addresses), each a session of a start, pings and an end; then each
/// calls its ended session again (the gateway that judged it must answer 410).
fn players(through: SocketAddr) {
    let start = at(fixture("vod/01-sessions-sessionStart.json"), T0, Some(0.0));
    for p in 0..16u8 {
        let from = [127, 0, 0, 10 + p];
        let (status, location) = post_from(from, through, "/api/v1/sessions", &start);
        assert_eq!(status, 201, "player {p}");
        let events = format!("{location}/events");
        for i in 1..=3 {
            let (status, _) = post_from(
                from,
                through,
                &events,
                &ping(T0 + i * 10_000, i as f64 * 10.0),
            );
            assert_eq!(status, 204, "player {p} ping {i}");
        }
        let end = format!(
            r#"{{"eventType":"sessionEnd","playerTime":{{"playhead":31,"ts":{}}}}}"#,
            T0 + 31_000
        );
        assert_eq!(post_from(from, through, &events, end.as_bytes()).0, 204);
        let (status, _) = post_from(from, through, &events, &ping(T0 + 60_000, 40.0));
        assert_eq!(
            status, 410,
            "player {p}: the gateway that saw the end refuses"
        );
    }
}

fn memory_gateways(emulator: &Emulator) -> (Gateway, Gateway) {
    let options = || Options {
        upstream: Some(emulator.url()),
        tables: toml("[sessions]\nreorder_window_ms = 0\n"),
        ..Options::default()
    };
    (Gateway::start(options()), Gateway::start(options()))
}

fn affinity_holds(kind: &str) {
    let emulator = Emulator::start(&[]);
    let (a, b) = memory_gateways(&emulator);
    let (_balancer, through) = balancer(kind, a.addr, b.addr, false);
    players(through);
    // No call reached a gateway that had not seen its session start.
    assert_eq!(calls(&a, "unknown") + calls(&b, "unknown"), 0.0, "{kind}");
    assert_eq!(calls(&a, "refused") + calls(&b, "refused"), 16.0, "{kind}");
    let started = |g: &Gateway| g.metric("mediagate_sessions_tracked_total");
    assert!(
        started(&a) >= 1.0 && started(&b) >= 1.0,
        "{kind}: both replicas get players ({} / {})",
        started(&a),
        started(&b)
    );
    assert_eq!(started(&a) + started(&b), 16.0);
}

#[test]
fn nginx_client_ip_affinity_keeps_each_player_on_one_gateway() {
    affinity_holds("nginx");
}

#[test]
fn haproxy_source_affinity_keeps_each_player_on_one_gateway() {
    affinity_holds("haproxy");
}

#[test]
fn two_gateways_on_one_redis_behind_round_robin_judge_as_one() {
    let redis = RedisServer::start();
    let emulator = Emulator::start(&[]);
    let options = || {
        Options {
        upstream: Some(emulator.url()),
        tables: toml(&format!(
            "[sessions]\nstore = \"redis\"\nredis_url = \"{}\"\nreorder_window_ms = 0\nstore_timeout_ms = 200\n",
            redis.url()
        )),
        ..Options::default()
    }
    };
    let (a, b) = (Gateway::start(options()), Gateway::start(options()));
    let (_balancer, through) = balancer("nginx", a.addr, b.addr, true);
    players(through);
    assert_eq!(calls(&a, "unknown") + calls(&b, "unknown"), 0.0);
    assert_eq!(calls(&a, "refused") + calls(&b, "refused"), 16.0);
    // Round robin: both gateways judged calls.
    assert!(calls(&a, "judged") >= 1.0 && calls(&b, "judged") >= 1.0);
}
