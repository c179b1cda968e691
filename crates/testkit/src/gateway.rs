//! The real `mediagate` binary, started on loopback port 0 in front of an emulator process (or
//! of given upstreams), its ports read back from `run --ready-file`, stopped when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use toml::{Table, Value};

use crate::http::{request, Response};
use crate::poll;

/// How long a process may take to start listening.
const START_WITHIN: Duration = Duration::from_secs(20);

/// The `mediagate` binary built for these tests (beside the test executable's directory), or
/// `MEDIAGATE_BIN`.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MEDIAGATE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test>-<hash> → target/<profile>/mediagate
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lies in target/<profile>/deps");
    profile.join("mediagate")
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

/// What to change in the generated configuration.
#[derive(Default, Clone)]
pub struct Options {
    /// Keys of `[server]`, over the generated ones.
    pub server: Table,
    /// Flags of the emulator process started in front of the gateway (`--idle-timeout-seconds`,
    /// `--location-prefix` with `{listen}` for its own address, ...).
    pub emulator: Vec<String>,
    /// Whole tables (`[validation]`, `[enrich...]`, ...), merged into the file.
    pub tables: Table,
    /// Send upstream traffic here instead of to an emulator (none is started).
    pub upstream: Option<String>,
    /// Several upstreams, each the keys of one `[[upstream]]` (no emulator is started).
    pub upstreams: Vec<Table>,
    /// Environment variables for the process.
    pub env: Vec<(String, String)>,
    /// Standard output into a pipe nobody reads (a stalled log reader), instead of a file.
    pub stalled_stdout: bool,
}

pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// The emulator in front of which the gateway runs (unused address when there is none).
    pub emulator: SocketAddr,
    _emulator: Option<Emulator>,
    pub dir: PathBuf,
}

/// Merges `over` into `base`: tables key by key, recursively; any other value replaces.
fn merge(base: &mut Table, over: &Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Reads a ready file (`{"name": "addr", ...}`) once it exists and is complete.
fn read_ready(path: &Path) -> Option<serde_json::Map<String, serde_json::Value>> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()?
        .as_object()
        .cloned()
}

fn addr_of(ready: &serde_json::Map<String, serde_json::Value>, name: &str) -> SocketAddr {
    ready
        .get(name)
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("the ready file names no {name} address: {ready:?}"))
}

/// Waits for `child` to write its ready file; panics (with `log`) when it exits first.
fn wait_ready(
    child: &mut Child,
    ready: &Path,
    log: &dyn Fn() -> String,
) -> serde_json::Map<String, serde_json::Value> {
    let found = poll(START_WITHIN, || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("mediagate exited early ({status}):\n{}", log());
        }
        read_ready(ready)
    });
    found.unwrap_or_else(|| panic!("mediagate did not become ready:\n{}", log()))
}

impl Gateway {
    pub fn start(options: Options) -> Gateway {
        let dir = scratch_dir("gw");
        let emulator = (options.upstream.is_none() && options.upstreams.is_empty()).then(|| {
            let args: Vec<&str> = options.emulator.iter().map(String::as_str).collect();
            Emulator::start(&args)
        });
        let mut config = crate::toml(&format!(
            "[server]\nlisten = \"127.0.0.1:0\"\npid_file = \"{d}/pid\"\n\
             upgrade_sock = \"{d}/upgrade.sock\"\ngrace_period_seconds = 0\n\
             graceful_shutdown_timeout_seconds = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n",
            d = dir.display()
        ));
        let upstreams: Vec<Value> = if options.upstreams.is_empty() {
            let url = options
                .upstream
                .clone()
                .or_else(|| emulator.as_ref().map(Emulator::url))
                .unwrap_or_default();
            vec![Value::Table(crate::toml(&format!(
                "url = \"{url}\"\nname = \"primary\"\nconnect_timeout_ms = 1000\nread_timeout_ms = 3000\n"
            )))]
        } else {
            options
                .upstreams
                .iter()
                .cloned()
                .map(Value::Table)
                .collect()
        };
        config.insert("upstream".into(), Value::Array(upstreams));
        let mut server = Table::new();
        server.insert("server".into(), Value::Table(options.server.clone()));
        merge(&mut config, &server);
        merge(&mut config, &options.tables);
        let config_path = dir.join("mediagate.toml");
        std::fs::write(&config_path, config.to_string()).expect("write config");
        let ready = dir.join("ready.json");
        let stdout = if options.stalled_stdout {
            // The child's end stays open, and this process never reads the other.
            Stdio::piped()
        } else {
            Stdio::from(std::fs::File::create(dir.join("access.log")).expect("access log file"))
        };
        let stderr = std::fs::File::create(dir.join("stderr.log")).expect("stderr file");
        let mut command = Command::new(binary());
        command
            .args(["run", "-c"])
            .arg(&config_path)
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        for (k, v) in &options.env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn mediagate");
        let stderr_path = dir.join("stderr.log");
        let log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let ready = wait_ready(&mut child, &ready, &log);
        Gateway {
            child,
            addr: addr_of(&ready, "gateway"),
            admin: addr_of(&ready, "admin"),
            emulator: emulator
                .as_ref()
                .map_or(SocketAddr::from(([127, 0, 0, 1], 0)), |e| e.addr),
            _emulator: emulator,
            dir,
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
        let mut last = 0.0;
        poll(Duration::from_secs(5), || {
            last = self.metric(series);
            ok(last).then_some(())
        });
        last
    }

    /// What the emulator received for `sid`.
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
            include_bytes!("../../../tests/fixtures/session-start.json"),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        sid_of(r.header("location").expect("location")).to_owned()
    }

    /// Sends a signal (`TERM`, `QUIT`, `USR1`, ...) to the process.
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Waits for the process to exit, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let child = &mut self.child;
        poll(limit, || child.try_wait().ok().flatten())
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
    dir: PathBuf,
}

impl Emulator {
    /// On a port the kernel chooses.
    pub fn start(args: &[&str]) -> Emulator {
        Emulator::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), args)
    }

    /// On `addr` (a [`crate::HeldPort`]'s, to come back on the same port after a kill).
    pub fn start_on(addr: SocketAddr, args: &[&str]) -> Emulator {
        let mut e = Emulator {
            child: None,
            addr,
            args: args.iter().map(|a| a.to_string()).collect(),
            dir: scratch_dir("emu"),
        };
        e.restart();
        e
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts the process (again, on the same address) and waits until it listens.
    pub fn restart(&mut self) {
        let ready = self.dir.join("ready.json");
        let _ = std::fs::remove_file(&ready);
        let stderr = std::fs::File::create(self.dir.join("stderr.log")).expect("stderr file");
        let mut child = Command::new(binary())
            .args([
                "emulate",
                "--listen",
                &self.addr.to_string(),
                "--ready-file",
            ])
            .arg(&ready)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn the emulator");
        let stderr_path = self.dir.join("stderr.log");
        let log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let found = wait_ready(&mut child, &ready, &log);
        self.addr = addr_of(&found, "emulator");
        self.child = Some(child);
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

    /// How many API requests it has received.
    pub fn requests(&self) -> u64 {
        let r = request(self.addr, "GET", "/_emulator/requests", &[], b"").expect("emulator");
        r.json()["count"].as_u64().expect("count")
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
