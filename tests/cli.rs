//! The `mediagate` command line: `check` on every shipped configuration, and `validate`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn mediagate(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mediagate"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mediagate");
    if let Some(input) = stdin {
        // A process that refuses its arguments exits without reading: a broken pipe is fine.
        let _ = child.stdin.take().unwrap().write_all(input);
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("mediagate output")
}

fn temp_config(name: &str, text: &str) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("mediagate-cli-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_shipped_config_passes_check() {
    let mut checked = 0;
    for dir in ["config", "bench"] {
        let Ok(entries) = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let out = mediagate(&["check", "-c", path.to_str().unwrap()], None);
                assert!(
                    out.status.success(),
                    "{}: {}",
                    path.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 1);
    // The default path is config/mediagate.toml.
    assert!(mediagate(&["check"], None).status.success());
}

#[test]
fn check_names_the_unknown_key_and_fails() {
    let path = temp_config("typo", "[server]\nlisten = \"127.0.0.1:1\"\nmax_body_byte = 5\n[[upstream]]\nurl = \"http://127.0.0.1:2\"\n");
    let out = mediagate(&["check", "-c", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_body_byte"));
    let out = mediagate(&["check", "-c", "/nonexistent/mediagate.toml"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/mediagate.toml"));
}

#[test]
fn check_does_not_resolve_upstream_host_names() {
    let path = temp_config("dns", "[[upstream]]\nurl = \"https://collector.invalid\"\n");
    let out = mediagate(&["check", "-c", path.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // run does resolve, and says so.
    let out = mediagate(&["run", "-c", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("collector.invalid"));
}

#[test]
fn validate_prints_the_verdict_and_exits_0_1_2() {
    let out = mediagate(
        &[
            "validate",
            "--endpoint",
            "sessions",
            "tests/fixtures/session-start.json",
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["valid"], true);
    assert_eq!(verdict["errors"], serde_json::json!([]));

    let bad = br#"{"playerTime":{"playhead":0,"ts":"<timestamp>"},"eventType":"sessionStart","params":{}}"#;
    let out = mediagate(&["validate", "--endpoint", "sessions", "-"], Some(bad));
    assert_eq!(out.status.code(), Some(1));
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["valid"], false);
    let errors = verdict["errors"].as_array().unwrap();
    assert!(errors
        .iter()
        .any(|e| e["path"] == "/playerTime/ts" && e["rule"] == "type"));
    assert!(errors
        .iter()
        .any(|e| e["path"] == "/params/media.channel" && e["rule"] == "required"));

    let out = mediagate(&["validate", "--endpoint", "nope", "-"], Some(b"{}"));
    assert_eq!(out.status.code(), Some(2));
    let out = mediagate(
        &["validate", "--endpoint", "events", "/nonexistent.json"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn validate_uses_the_policies_of_a_config_file() {
    let body = br#"{"playerTime":{"playhead":0,"ts":1},"eventType":"statesUpdate","params":{"statesStart":[{"media.state.name":"mute"}]}}"#;
    let out = mediagate(&["validate", "--endpoint", "events"], Some(body));
    assert_eq!(out.status.code(), Some(1), "statesUpdate is off by default");
    let path = temp_config(
        "states",
        "[validation]\nstates_update = true\n[[upstream]]\nurl = \"http://127.0.0.1:2\"\n",
    );
    let out = mediagate(
        &[
            "validate",
            "-c",
            path.to_str().unwrap(),
            "--endpoint",
            "events",
        ],
        Some(body),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn run_says_plainly_when_an_address_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let path = temp_config(
        "busy",
        &format!("[server]\nlisten = \"{addr}\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[[upstream]]\nurl = \"http://127.0.0.1:2\"\n"),
    );
    let out = mediagate(&["run", "-c", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[server] listen") && stderr.contains(&addr.to_string()),
        "{stderr}"
    );
}
