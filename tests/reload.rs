//! The in-process reload, black box: `mediagate reload` and `SIGHUP` against a running gateway
//! under load — no request fails, the process and its tracked sessions stay, the new rules apply
//! to new requests; a file that fails the check, or one that changes a key only a new process
//! can apply, changes nothing in process (and `reload` says which path it takes and why).

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use testkit::{poll, toml, Conn, Gateway, Options};

const T0: i64 = 1_768_507_200_000;

/// `mediagate reload -c FILE`: exit code, stdout, stderr.
/// Into files: a new process the upgrade path starts inherits them (a pipe would stay open).
fn reload(config: &std::path::Path) -> (Option<i32>, String, String) {
    let dir = config.parent().expect("the config's directory");
    let (out, err) = (dir.join("reload.out"), dir.join("reload.err"));
    let status = std::process::Command::new(testkit::binary())
        .args(["reload", "-c"])
        .arg(config)
        .stdout(std::fs::File::create(&out).expect("reload.out"))
        .stderr(std::fs::File::create(&err).expect("reload.err"))
        .status()
        .expect("run mediagate reload");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    (status.code(), read(&out), read(&err))
}

/// Players on keep-alive connections starting sessions and sending pings until `stop`.
fn load(
    gw: &Gateway,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
) -> JoinHandle<()> {
    let addr = gw.addr;
    let start = at(fixture("vod/01-sessions-sessionStart.json"), T0, Some(0.0));
    std::thread::spawn(move || {
        let mut conn = Conn::connect(addr).expect("connect");
        let mut ts = T0;
        while !stop.load(Ordering::Relaxed) {
            let r = conn.post_json("/api/v1/sessions", &start);
            let Ok(r) = r.filter_ok() else {
                failed.fetch_add(1, Ordering::Relaxed);
                conn = Conn::connect(addr).expect("connect");
                continue;
            };
            let sid = testkit::sid_of(r.header("location").unwrap_or_default()).to_owned();
            ts += 10;
            match conn
                .post_json(&events_path(&sid), &ping(ts, 1.0))
                .filter_ok()
            {
                Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                Err(_) => failed.fetch_add(1, Ordering::Relaxed),
            };
        }
    })
}

trait FilterOk {
    fn filter_ok(self) -> Result<testkit::Response, String>;
}

impl FilterOk for std::io::Result<testkit::Response> {
    fn filter_ok(self) -> Result<testkit::Response, String> {
        match self {
            Ok(r) if (200..300).contains(&r.status) => Ok(r),
            Ok(r) => Err(format!("{} {}", r.status, r.text())),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Waits for `text` in the gateway's diagnostic log (written by a thread of its own).
fn logged(gw: &Gateway, text: &str) {
    let found = poll(Duration::from_secs(5), || {
        gw.stderr().contains(text).then_some(())
    });
    assert!(found.is_some(), "{text:?} not logged:\n{}", gw.stderr());
}

#[test]
fn an_in_process_reload_under_load_keeps_sessions_and_fails_no_request() {
    let gw = Gateway::start(Options {
        tables: toml("[sessions]\nreorder_window_ms = 100\n"),
        ..Options::default()
    });
    let pid = gw.pid();
    // A session with an ad break open, started before the reload.
    let sid = start_vod(&gw, T0);
    accepted(&gw, &sid, &vod("adBreakStart", T0 + 10));
    accepted(&gw, &sid, &vod("chapterStart", T0 + 20));

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let workers: Vec<_> = (0..3)
        .map(|_| load(&gw, stop.clone(), ok.clone(), failed.clone()))
        .collect();
    poll(Duration::from_secs(10), || {
        (ok.load(Ordering::Relaxed) > 50).then_some(())
    })
    .expect("the load runs");

    // New rules: overlapping chapters are no longer judged.
    let config = std::fs::read_to_string(gw.config_path()).expect("config");
    let config = config.replace(
        "[sessions]\n",
        "[sessions.rules]\nchapter_overlap = \"off\"\n\n[sessions]\n",
    );
    std::fs::write(gw.config_path(), config).expect("write config");
    let (code, stdout, stderr) = reload(&gw.config_path());
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("reloaded in process"), "{stdout}");
    assert!(stdout.contains("generation 2"), "{stdout}");
    let after = ok.load(Ordering::Relaxed);
    poll(Duration::from_secs(10), || {
        (ok.load(Ordering::Relaxed) > after + 50).then_some(())
    })
    .expect("the load goes on after the reload");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("a load thread");
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "a request failed during the reload"
    );
    assert_eq!(gw.pid(), pid);
    assert_eq!(
        gw.metric("mediagate_config_reloads_total{result=\"ok\"}"),
        1.0
    );

    // The session from before is still judged: its break is open (no ad_outside_break), and the
    // new rules apply (a second chapter is no longer a finding).
    accepted(&gw, &sid, &vod("adStart", T0 + 30));
    accepted(&gw, &sid, &vod("chapterStart", T0 + 40));
    accepted(&gw, &sid, &vod("sessionEnd", T0 + 50));
    settled(&gw, &sid);
    assert_eq!(
        all_violations(&gw),
        1.0,
        "only the break left open at the end"
    );
    assert_eq!(violations(&gw, "ad_break_unclosed"), 1.0);
    let r = send(&gw, &sid, &ping(T0 + 60, 1.0));
    assert_eq!(r.status, 410, "{}", r.text());
}

#[test]
fn a_bad_file_or_a_process_key_changes_nothing_in_process() {
    let mut gw = Gateway::start(Options {
        tables: toml("[sessions]\nreorder_window_ms = 100\n"),
        ..Options::default()
    });
    let pid = gw.pid();
    let sid = start_vod(&gw, T0);
    let good = std::fs::read_to_string(gw.config_path()).expect("config");
    // The keys file says the process watches SIGHUP.
    poll(Duration::from_secs(5), || {
        gw.dir.join("pid.keys").exists().then_some(())
    })
    .expect("the keys file");

    // A file that fails the check: SIGHUP changes nothing, and says so.
    std::fs::write(gw.config_path(), format!("{good}\n[bogus]\nkey = 1\n")).expect("write");
    gw.signal("HUP");
    eventually(&gw, "a failed reload", 1.0, |gw| {
        gw.metric("mediagate_config_reloads_total{result=\"failed\"}")
    });
    logged(&gw, "bogus");
    accepted(&gw, &sid, &ping(T0 + 10, 1.0));

    // A key only a new process can apply: SIGHUP refuses it and names it.
    let threads = format!(
        "{}\n",
        good.replace("[server]\n", "[server]\nthreads = 3\n")
    );
    std::fs::write(gw.config_path(), &threads).expect("write");
    gw.signal("HUP");
    eventually(&gw, "an upgrade needed", 1.0, |gw| {
        gw.metric("mediagate_config_reloads_total{result=\"upgrade_needed\"}")
    });
    logged(&gw, "[server] threads");
    assert_eq!(gw.pid(), pid);
    // The session is still tracked by the running process.
    assert_eq!(view(&gw, &sid).0, 200);

    // `reload` takes the upgrade path for it, and says why.
    let (code, stdout, stderr) = reload(&gw.config_path());
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("by a new process"), "{stdout}");
    assert!(stdout.contains("[server] threads"), "{stdout}");
    assert!(
        gw.wait_exit(Duration::from_secs(15)).is_some(),
        "the old process hands over"
    );
    // Stop the new process (not this test's child).
    let new_pid = std::fs::read_to_string(gw.dir.join("pid")).unwrap_or_default();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", new_pid.trim()])
        .status();
}
