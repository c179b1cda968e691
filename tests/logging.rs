//! The logs never stall players: a standard output nobody reads drops access log lines (counted)
//! while every request is answered; a reader that keeps up gets every line; a log file is
//! reopened on SIGUSR1 after a rotation.

use std::time::Duration;
use testkit::{poll, request, toml, Gateway, Options};

const SESSION_START: &[u8] = include_bytes!("fixtures/session-start.json");
const JSON: (&str, &str) = ("Content-Type", "application/json");

/// `n` session starts, one connection each; panics on any answer but 201.
fn session_starts(gw: &Gateway, n: usize) {
    for i in 0..n {
        let r = request(gw.addr, "POST", "/api/v1/sessions", &[JSON], SESSION_START)
            .unwrap_or_else(|e| panic!("request {i} got no answer: {e}"));
        assert_eq!(r.status, 201, "request {i}: {}", r.text());
    }
}

#[test]
fn a_stalled_stdout_drops_log_lines_but_never_a_request() {
    let gw = Gateway::start(Options {
        // The smallest buffer: with a pipe nobody reads (64 KiB) it fills after a few hundred
        // lines.
        tables: toml("[log]\naccess_log_buffer_bytes = 65536\n"),
        stalled_stdout: true,
        ..Options::default()
    });
    // About 300 bytes a line: 3000 lines are far more than the pipe and the buffer hold.
    session_starts(&gw, 3000);
    let dropped = gw.metric_when("mediagate_access_log_dropped_total", |v| v > 0.0);
    assert!(dropped > 0.0, "no line was dropped: {}", gw.metrics());
    let health = request(gw.admin, "GET", "/healthz", &[], b"").expect("admin answers");
    assert_eq!(health.status, 200);
    // And players are still answered after the drops began.
    session_starts(&gw, 50);
}

#[test]
fn a_reader_that_keeps_up_gets_every_line() {
    let gw = Gateway::start(Options::default());
    let n = 2000;
    session_starts(&gw, n);
    let lines = poll(Duration::from_secs(10), || {
        let log = gw.access_log();
        (log.lines().count() >= n).then_some(log)
    })
    .unwrap_or_else(|| panic!("only {} lines arrived", gw.access_log().lines().count()));
    let mut ids = std::collections::HashSet::new();
    for line in lines.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(entry["status"], 201);
        assert!(ids.insert(entry["request_id"].as_str().unwrap_or_default().to_owned()));
    }
    assert_eq!(ids.len(), n, "one line per request");
    assert_eq!(gw.metric("mediagate_access_log_dropped_total"), 0.0);
}

#[test]
fn an_access_log_file_is_reopened_on_sigusr1() {
    let dir = testkit::scratch_dir("logfile");
    let path = dir.join("access.log");
    let gw = Gateway::start(Options {
        tables: toml(&format!(
            "[log]\naccess_log_path = \"{}\"\n",
            path.display()
        )),
        ..Options::default()
    });
    session_starts(&gw, 1);
    let lines = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    assert!(poll(Duration::from_secs(5), || (lines(&path) == 1).then_some(())).is_some());
    // logrotate: move the file away, then signal.
    let rotated = dir.join("access.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    gw.signal("USR1");
    // The reopen happens on the gateway's own time: poll until new lines land in a new file.
    let reopened = poll(Duration::from_secs(5), || {
        session_starts(&gw, 1);
        (lines(&path) > 0).then_some(())
    });
    assert!(reopened.is_some(), "no new access.log after SIGUSR1");
    assert_eq!(lines(&rotated), 1, "the rotated file keeps its line");
    assert!(
        gw.access_log().is_empty(),
        "stdout gets nothing when a path is set"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
