//! Starts the real `mediagate` binary on ephemeral loopback ports, in front of its built-in
//! emulator (or of a given upstream address), and stops it when dropped.
//!
//! Include with `#[path = "common/gateway.rs"] mod gateway;` next to `common/http.rs`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::http_client::{request, Response};

/// Extra configuration lines, spliced into the generated file.
#[derive(Default, Clone)]
pub struct Options {
    /// Lines inside `[server]`.
    pub server: String,
    /// Lines inside `[emulator]` (`{emulator}` is replaced by the emulator's address).
    pub emulator: String,
    /// Whole tables appended at the end (`[validation]`, `[enrich...]`).
    pub tables: String,
    /// Send upstream traffic here instead of to the built-in emulator (no emulator is started).
    pub upstream: Option<String>,
    /// Several upstreams, each the body of an `[[upstream]]` table (no emulator is started).
    pub upstreams: Vec<String>,
    /// Environment variables for the process.
    pub env: Vec<(String, String)>,
}

pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub emulator: SocketAddr,
    pub dir: PathBuf,
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A fresh scratch directory for one test process.
pub fn scratch_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mediagate-test-{}-{}-{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_mediagate")
}

impl Gateway {
    pub fn start(options: Options) -> Gateway {
        let (addr, admin, emulator) = (
            loopback(free_port()),
            loopback(free_port()),
            loopback(free_port()),
        );
        let dir = scratch_dir("gw");
        let builtin_emulator = options.upstream.is_none() && options.upstreams.is_empty();
        let upstream_tables = if options.upstreams.is_empty() {
            let url = options
                .upstream
                .clone()
                .unwrap_or_else(|| format!("http://{emulator}"));
            format!(
                "[[upstream]]\nurl = \"{url}\"\nname = \"primary\"\n\
                 connect_timeout_ms = 1000\nread_timeout_ms = 3000\n"
            )
        } else {
            options
                .upstreams
                .iter()
                .map(|u| format!("[[upstream]]\n{u}\n"))
                .collect()
        };
        let emulator_section = if builtin_emulator {
            let extra = options
                .emulator
                .replace("{emulator}", &emulator.to_string());
            format!("[emulator]\nlisten = \"{emulator}\"\n{extra}\n")
        } else {
            String::new()
        };
        let config = format!(
            "[server]\nlisten = \"{addr}\"\npid_file = \"{d}/pid\"\nupgrade_sock = \"{d}/upgrade.sock\"\n\
             {grace}{server}\n\
             [admin]\nlisten = \"{admin}\"\n\n{upstream_tables}\n{emulator_section}\n{tables}\n",
            d = dir.display(),
            grace = if options.server.contains("grace_period_seconds") {
                ""
            } else {
                "grace_period_seconds = 0\ngraceful_shutdown_timeout_seconds = 1\n"
            },
            server = options.server,
            tables = options.tables,
        );
        let config_path = dir.join("mediagate.toml");
        std::fs::write(&config_path, config).expect("write config");
        let stdout = std::fs::File::create(dir.join("access.log")).expect("access log file");
        let stderr = std::fs::File::create(dir.join("stderr.log")).expect("stderr file");
        let mut command = Command::new(binary());
        command
            .args(["run", "-c"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        for (k, v) in &options.env {
            command.env(k, v);
        }
        let child = command.spawn().expect("spawn mediagate");
        let mut gateway = Gateway {
            child,
            addr,
            admin,
            emulator,
            dir,
        };
        gateway.wait_ready(builtin_emulator);
        gateway
    }

    fn wait_ready(&mut self, with_emulator: bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("mediagate exited early ({status}):\n{}", self.stderr());
            }
            let ready = request(self.admin, "GET", "/readyz", &[], b"")
                .is_ok_and(|r| r.status == 200)
                && TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
                && (!with_emulator
                    || TcpStream::connect_timeout(&self.emulator, Duration::from_millis(200))
                        .is_ok());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mediagate did not become ready:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("mediagate.toml")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn post(&self, path: &str, body: &[u8]) -> Response {
        request(
            self.addr,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body,
        )
        .expect("gateway answers")
    }

    pub fn metrics(&self) -> String {
        request(self.admin, "GET", "/metrics", &[], b"")
            .expect("metrics")
            .text()
    }

    /// The value of one series (exact name with labels), 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics(), series)
    }

    /// Polls a series until `ok(value)` holds or 5 s pass, and returns the last value. Request
    /// counters are updated when a request is logged, just after its answer is written.
    pub fn metric_when(&self, series: &str, ok: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let v = self.metric(series);
            if ok(v) || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the built-in emulator received for `sid`.
    pub fn emulator_session(&self, sid: &str) -> serde_json::Value {
        let r = request(
            self.emulator,
            "GET",
            &format!("/_emulator/sessions/{sid}"),
            &[],
            b"",
        )
        .expect("emulator");
        assert_eq!(r.status, 200, "emulator has no session {sid}: {}", r.text());
        r.json()
    }

    /// How many API requests the emulator has received.
    pub fn emulator_requests(&self) -> u64 {
        let r = request(self.emulator, "GET", "/_emulator/requests", &[], b"").expect("emulator");
        r.json()["count"].as_u64().expect("count")
    }

    /// Creates a session through the gateway and returns its sid.
    pub fn start_session(&self) -> String {
        let r = self.post(
            "/api/v1/sessions",
            include_bytes!("../fixtures/session-start.json"),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        sid_of(r.header("location").expect("location")).to_owned()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits for the process to exit, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The sid of `/api/v1/sessions/{sid}`.
pub fn sid_of(location: &str) -> &str {
    location
        .strip_prefix("/api/v1/sessions/")
        .unwrap_or_else(|| panic!("unexpected Location {location}"))
}

/// The value of one series in a text exposition, 0 when absent.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A `mediagate emulate` process (an upstream that can be killed and restarted).
pub struct Emulator {
    child: Option<Child>,
    pub addr: SocketAddr,
    args: Vec<String>,
}

impl Emulator {
    pub fn start(args: &[&str]) -> Emulator {
        Emulator::start_on(loopback(free_port()), args)
    }

    pub fn start_on(addr: SocketAddr, args: &[&str]) -> Emulator {
        let mut e = Emulator {
            child: None,
            addr,
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        e.restart();
        e
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts the process (again) and waits until it answers.
    pub fn restart(&mut self) {
        let child = Command::new(binary())
            .args(["emulate", "--listen", &self.addr.to_string()])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the emulator");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while request(self.addr, "GET", "/_emulator/requests", &[], b"").is_err() {
            assert!(
                Instant::now() < deadline,
                "the emulator on {} did not start",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process at once (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn session(&self, sid: &str) -> Option<serde_json::Value> {
        let r = request(
            self.addr,
            "GET",
            &format!("/_emulator/sessions/{sid}"),
            &[],
            b"",
        )
        .ok()?;
        (r.status == 200).then(|| r.json())
    }

    pub fn sessions(&self) -> Vec<String> {
        let r = request(self.addr, "GET", "/_emulator/sessions", &[], b"").expect("emulator");
        r.json()["sessions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.kill();
    }
}
