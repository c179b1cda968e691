//! systemd's notify protocol, black box: the test is the notify socket (`NOTIFY_SOCKET`, a Unix
//! datagram socket it binds) and plays the service manager: `READY=1` with the gateway's
//! `MAINPID` once it listens, `RELOADING=1` then `READY=1` around a `SIGHUP`, and across an
//! upgrade (`mediagate reload --upgrade`, as `ExecReload` runs it) the new process says
//! `MAINPID=<itself>` and `READY=1`, while the old one, handing over, never says `STOPPING=1`.
//! A plain SIGTERM then says `STOPPING=1`.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::{Gateway, Options};

struct Manager {
    socket: UnixDatagram,
    seen: Vec<String>,
}

impl Manager {
    fn bind(dir: &std::path::Path) -> (Manager, String) {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        (
            Manager {
                socket,
                seen: Vec::new(),
            },
            path.display().to_string(),
        )
    }

    /// Waits (at most `limit`) for a message that holds every line of `want`; returns it.
    fn expect(&mut self, want: &[&str], limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push(msg.clone());
                if want
                    .iter()
                    .all(|w| msg.lines().any(|l| l == *w || l.starts_with(w)))
                {
                    return msg;
                }
            }
        }
        panic!(
            "no message with {want:?} within {limit:?}; seen {:?}",
            self.seen
        );
    }

    /// Everything that arrives within `window`.
    fn drain(&mut self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let mut buf = [0u8; 4096];
        let mut out = Vec::new();
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        out
    }
}

fn main_pid(msg: &str) -> u32 {
    msg.lines()
        .find_map(|l| l.strip_prefix("MAINPID="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no MAINPID in {msg:?}"))
}

#[test]
fn ready_reload_and_an_upgrade_are_told_to_the_service_manager() {
    let dir = testkit::scratch_dir("notify");
    let (mut manager, socket) = Manager::bind(&dir);
    let mut gw = Gateway::start(Options {
        env: vec![("NOTIFY_SOCKET".into(), socket.clone())],
        ..Options::default()
    });
    let ready = manager.expect(&["READY=1", "MAINPID="], Duration::from_secs(10));
    assert_eq!(main_pid(&ready), gw.pid());

    // SIGHUP: reloading, then ready again.
    gw.signal("HUP");
    let reloading = manager.expect(&["RELOADING=1", "MONOTONIC_USEC="], Duration::from_secs(10));
    assert!(!reloading.contains("MONOTONIC_USEC=0\n"), "{reloading}");
    let done = manager.expect(
        &["READY=1", "STATUS=reloaded in process"],
        Duration::from_secs(10),
    );
    assert!(done.contains("generation 2"), "{done}");

    // The upgrade, the way ExecReload runs it: the new process becomes the main one.
    // Its output into files: the new process inherits them and outlives the command.
    let err = dir.join("reload.err");
    let status = Command::new(testkit::binary())
        .args(["reload", "--upgrade", "-c"])
        .arg(gw.config_path())
        .env("NOTIFY_SOCKET", &socket)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(dir.join("reload.out")).expect("reload.out"))
        .stderr(std::fs::File::create(&err).expect("reload.err"))
        .status()
        .expect("run mediagate reload");
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    let handed = manager.expect(&["READY=1", "MAINPID="], Duration::from_secs(15));
    let new_pid = main_pid(&handed);
    assert_ne!(new_pid, gw.pid(), "{handed}");
    // The old process drains and exits without saying the service stops.
    assert!(
        gw.wait_exit(Duration::from_secs(20)).is_some(),
        "the old process exits"
    );
    let after = manager.drain(Duration::from_millis(300));
    assert!(
        !after
            .iter()
            .chain(&manager.seen)
            .any(|m| m.contains("STOPPING=1")),
        "{after:?} {:?}",
        manager.seen
    );

    // The new process stops on SIGTERM.
    let serving = testkit::poll(Duration::from_secs(10), || {
        testkit::request(gw.admin, "GET", "/readyz", &[], b"")
            .ok()
            .filter(|r| r.status == 200)
    });
    assert!(serving.is_some(), "the new process serves /readyz");
    let _ = Command::new("kill")
        .args(["-TERM", &new_pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Not this test's child: gone from /proc, or a zombie nobody reaped yet.
    let alive = || {
        std::fs::read_to_string(format!("/proc/{new_pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
            .unwrap_or(false)
    };
    while alive() {
        assert!(Instant::now() < deadline, "the new process did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_graceful_stop_is_told_to_the_service_manager() {
    let dir = testkit::scratch_dir("notify");
    let (mut manager, socket) = Manager::bind(&dir);
    let mut gw = Gateway::start(Options {
        env: vec![("NOTIFY_SOCKET".into(), socket)],
        ..Options::default()
    });
    manager.expect(&["READY=1", "MAINPID="], Duration::from_secs(10));
    gw.terminate();
    manager.expect(&["STOPPING=1"], Duration::from_secs(10));
    assert!(gw.wait_exit(Duration::from_secs(20)).is_some());
}
