//! Data quality, black box: violations counted by player and SDK, the quarantine spool (refused
//! calls kept with identity params protected, report-mode samples, upstream failures, a stalled
//! disk), `mediagate quarantine` (list, show, replay after a fix), `GET /quality`, the page and
//! the admin token — the real gateway in front of the real emulator.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::{poll, request, toml, Gateway, Options};

const T0: i64 = 1_768_507_200_000;

/// A session start of `player` with SDK library `library`, at `ts`.
fn start_of(player: &str, library: &str, ts: i64) -> Vec<u8> {
    let mut body = fixture("session-start.json");
    body["playerTime"]["ts"] = ts.into();
    body["params"]["media.playerName"] = player.into();
    body["params"]["media.libraryVersion"] = library.into();
    serde_json::to_vec(&body).expect("JSON")
}

/// The same start with a type error (`media.length` as a string).
fn invalid_start_of(player: &str, library: &str) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&start_of(player, library, T0)).expect("JSON");
    body["params"]["media.length"] = "sixty".into();
    serde_json::to_vec(&body).expect("JSON")
}

/// A gateway with the quarantine in `spool`, more `[quarantine]` keys, and other tables.
fn gateway(spool: &Path, quarantine: &str, tables: &str) -> Gateway {
    let text = format!(
        "[quarantine]\ndir = \"{}\"\n{quarantine}{tables}",
        spool.display()
    );
    Gateway::start(Options {
        tables: toml(&text),
        ..Options::default()
    })
}

/// The spool's entries, waiting until there are `n` of them.
fn entries(spool: &Path, n: usize) -> Vec<Value> {
    let read = || -> Vec<Value> {
        let mut out = Vec::new();
        let Ok(dir) = std::fs::read_dir(spool) else {
            return out;
        };
        let mut files: Vec<PathBuf> = dir
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("quarantine"))
            })
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            out.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
        }
        out
    };
    poll(Duration::from_secs(10), || {
        let e = read();
        (e.len() >= n).then_some(e)
    })
    .unwrap_or_else(|| panic!("the spool did not get {n} entries: {:?}", read()))
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(testkit::binary())
        .args(args)
        .output()
        .expect("run mediagate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn get(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> testkit::Response {
    request(gw.admin, "GET", path, headers, b"").expect("admin answers")
}

#[test]
fn violations_are_counted_by_player_and_sdk_and_shown_on_quality() {
    let spool = testkit::scratch_dir("spool");
    let gw = gateway(&spool, "", "[sessions]\nreorder_window_ms = 0\n");
    let r = gw.post(
        "/api/v1/sessions",
        &invalid_start_of("Web Player", "js-3.1.0"),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // A session of another player, closed, then called again: session_closed by that player.
    let r = gw.post("/api/v1/sessions", &start_of("TV App", "android-2.0", T0));
    assert_eq!(r.status, 201, "{}", r.text());
    let sid = testkit::sid_of(r.header("location").expect("location")).to_owned();
    let end = format!(
        r#"{{"eventType":"sessionEnd","playerTime":{{"playhead":1,"ts":{}}}}}"#,
        T0 + 1000
    );
    accepted(&gw, &sid, end.as_bytes());
    let r = send(&gw, &sid, &ping(T0 + 20_000, 5.0));
    assert_eq!(r.status, 410, "{}", r.text());

    let by_player = |player: &str, sdk: &str, rule: &str| {
        gw.metric_when(
            &format!(
                "mediagate_violations_by_player_total{{player=\"{player}\",rule=\"{rule}\",sdk=\"{sdk}\"}}"
            ),
            |v| v >= 1.0,
        )
    };
    assert_eq!(
        by_player("web_player", "js-3", "type"),
        1.0,
        "{}",
        gw.metrics()
    );
    assert_eq!(
        by_player("tv_app", "android-2", "session_closed"),
        1.0,
        "{}",
        gw.metrics()
    );

    let q = get(&gw, "/quality", &[]);
    assert_eq!(q.status, 200);
    let q = q.json();
    assert_eq!(q["since_start"]["by_rule"]["type"], 1, "{q}");
    assert_eq!(q["since_start"]["by_rule"]["session_closed"], 1, "{q}");
    assert_eq!(q["last_hour"]["total"], 2, "{q}");
    let rows = q["last_hour"]["by_player"].as_array().expect("rows");
    assert!(
        rows.iter()
            .any(|r| r["player"] == "web_player" && r["sdk"] == "js-3" && r["rule"] == "type"),
        "{q}"
    );
    assert_eq!(q["sessions"]["calls"]["refused"], 1, "{q}");
    assert_eq!(q["upstreams"][0]["name"], "primary");
    assert_eq!(q["upstreams"][0]["healthy"], true);
    let examples = q["examples"].as_array().expect("examples");
    assert_eq!(examples.len(), 2, "{q}");
    // Newest first: the 410, then the 400.
    assert_eq!(examples[0]["rules"][0], "session_closed");
    assert_eq!(examples[1]["rules"][0], "type");
    assert_eq!(examples[1]["player"], "web_player");

    // The example's entry, and the page showing the same figures.
    let id = examples[1]["id"].as_str().expect("id");
    let e = get(&gw, &format!("/quality/examples/{id}"), &[]);
    assert_eq!(e.status, 200, "{}", e.text());
    assert_eq!(e.json()["violations"][0]["path"], "/params/media.length");
    assert_eq!(get(&gw, "/quality/examples/nope", &[]).status, 404);
    let page = get(&gw, "/", &[]);
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html")));
    let html = page.text();
    assert!(html.contains(r#"data-field="hour-total">2<"#), "{html}");
    assert!(html.contains(&format!("href=\"/quality/examples/{id}\"")));
}

#[test]
fn labels_stay_bounded_whatever_players_send() {
    let spool = testkit::scratch_dir("spool");
    let gw = gateway(&spool, "", "[quality]\nmax_label_values = 5\n");
    for i in 0..300 {
        let r = gw.post(
            "/api/v1/sessions",
            &invalid_start_of(&format!("player-{i:x}-{}", i * 7919), "js-3.1.0"),
        );
        assert_eq!(r.status, 400);
    }
    let text = gw.metrics();
    let players: std::collections::HashSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("mediagate_violations_by_player_total{"))
        .filter_map(|l| l.split("player=\"").nth(1)?.split('"').next())
        .collect();
    assert!(players.len() <= 5 + 1, "{players:?}");
    assert!(players.contains("other"), "{players:?}");
    assert_eq!(
        sum(&text, "mediagate_violations_by_player_total", &[]),
        300.0,
        "every violation counted, under a bounded set of labels"
    );
}

#[test]
fn refused_calls_are_kept_redacted_by_default_and_replayed_when_hashed_by_the_privacy_rules() {
    // Without a privacy secret: identity params redacted, the entry not replayable.
    let spool = testkit::scratch_dir("spool");
    let gw = gateway(&spool, "", "[validation]\nts_max_age_seconds = 3600\n");
    let old = start_of("web", "js-3.1.0", 1_509_045_324_153);
    let r = gw.post("/api/v1/sessions", &old);
    assert_eq!(r.status, 400, "{}", r.text());
    let e = &entries(&spool, 1)[0];
    assert_eq!(e["kind"], "refused");
    assert_eq!(e["violations"][0]["rule"], "ts_window");
    assert_eq!(e["body"]["params"]["analytics.visitorId"], "[redacted]");
    assert_eq!(e["replayable"], false);
    assert_eq!(e["headers"]["content-type"], "application/json");
    let text = std::fs::read_to_string(spool.join("quarantine.jsonl")).expect("spool");
    assert!(!text.contains("visitor-123"), "{text}");
    let (code, out, _) = cli(&[
        "quarantine",
        "replay",
        "--dir",
        &spool.display().to_string(),
        "--to",
        &format!("http://{}", gw.emulator),
        "--force",
    ]);
    assert_eq!(code, 0, "nothing sent, nothing failed: {out}");
    assert!(
        out.contains("cannot be replayed: identity params were redacted"),
        "{out}"
    );
    drop(gw);

    // With privacy.hash: the quarantine keeps what forwarding would have sent (hashed once).
    let spool = testkit::scratch_dir("spool");
    let privacy = "[enrich.privacy]\nhash = [\"analytics.visitorId\"]\nhash_secret = \"0123456789abcdef-secret\"\n";
    let gw = gateway(
        &spool,
        "",
        &format!("[validation]\nts_max_age_seconds = 3600\n{privacy}"),
    );
    let r = gw.post("/api/v1/sessions", &old);
    assert_eq!(r.status, 400, "{}", r.text());
    let e = &entries(&spool, 1)[0];
    assert_eq!(e["replayable"], true, "{e}");
    let hashed = e["body"]["params"]["analytics.visitorId"]
        .as_str()
        .expect("a hash")
        .to_owned();
    assert_eq!(hashed.len(), 64, "{hashed}");

    // Listed and shown by rule; still refused under the old rules; sent once the rule is fixed.
    let dir = spool.display().to_string();
    let (code, out, _) = cli(&["quarantine", "list", "--dir", &dir, "--rule", "ts_window"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("player=web sdk=js-3 rules=ts_window"), "{out}");
    let (_, out, _) = cli(&["quarantine", "list", "--dir", &dir, "--rule", "type"]);
    assert_eq!(out.lines().count(), 0, "{out}");
    let (_, out, _) = cli(&[
        "quarantine",
        "show",
        "--dir",
        &dir,
        "--player",
        "web",
        "--since",
        "1h",
    ]);
    let shown: Value = serde_json::from_str(out.trim()).expect("one entry");
    assert_eq!(shown["id"], e["id"]);
    let to = format!("http://{}", gw.emulator);
    let (code, out, _) = cli(&[
        "quarantine",
        "replay",
        "--dir",
        &dir,
        "--config",
        &gw.config_path().display().to_string(),
        "--to",
        &to,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("still invalid under the current rules (ts_window)"),
        "{out}"
    );
    let fixed = gw.dir.join("fixed.toml");
    std::fs::write(&fixed, format!("[[upstream]]\nurl = \"{to}\"\n{privacy}")).expect("write");
    let sids = || -> Vec<String> {
        let r = request(gw.emulator, "GET", "/_emulator/sessions", &[], b"").expect("emulator");
        r.json()["sessions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    };
    let known = sids();
    let fixed = fixed.display().to_string();
    let replay = || {
        cli(&[
            "quarantine",
            "replay",
            "--dir",
            &dir,
            "--config",
            &fixed,
            "--to",
            &to,
        ])
    };
    let before = gw.emulator_requests();
    let (code, out, err) = replay();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("  201  "), "{out}");
    assert_eq!(gw.emulator_requests(), before + 1);
    // The emulator got the hashed value, as forwarding would have sent it (never hashed twice).
    let new: Vec<String> = sids().into_iter().filter(|s| !known.contains(s)).collect();
    assert_eq!(new.len(), 1, "{new:?}");
    let session = gw.emulator_session(&new[0]).to_string();
    assert!(session.contains(&hashed), "{session}");
    assert!(!session.contains("visitor-123"), "{session}");
    // Replayed once: a second replay skips it.
    let (code, out, _) = replay();
    assert_eq!(code, 0);
    assert!(out.contains("replayed already"), "{out}");
    assert_eq!(gw.emulator_requests(), before + 1);
}

#[test]
fn report_mode_examples_are_sampled_and_upstream_failures_kept_when_asked() {
    let spool = testkit::scratch_dir("spool");
    let gw = gateway(
        &spool,
        "report_samples_per_second = 1\n",
        "[validation]\nmode = \"report\"\nts_max_age_seconds = 3600\n",
    );
    // Invalid by the gateway's own ts window only: the emulator takes it.
    let old = start_of("web", "js-3.1.0", 1_509_045_324_153);
    for _ in 0..20 {
        let r = gw.post("/api/v1/sessions", &old);
        assert_eq!(r.status, 201, "report mode forwards: {}", r.text());
    }
    let sampled = gw.metric_when(
        "mediagate_quarantine_dropped_total{reason=\"sampled_out\"}",
        |v| v >= 15.0,
    );
    assert!(sampled >= 15.0, "{}", gw.metrics());
    let e = &entries(&spool, 1)[0];
    assert_eq!(e["kind"], "reported");
    assert_eq!(e["replayable"], false);
    assert_eq!(e["not_replayable"], "forwarded already (report mode)");
    drop(gw);

    // An upstream that is not there: the 502's call is kept (opt-in).
    let spool = testkit::scratch_dir("spool");
    let held = testkit::ports::HeldPort::new();
    let gw = Gateway::start(Options {
        upstream: Some(held.url()),
        tables: toml(&format!(
            "[quarantine]\ndir = \"{}\"\nupstream_failures = true\n[health_check]\nkind = \"off\"\n",
            spool.display()
        )),
        ..Options::default()
    });
    let r = gw.post("/api/v1/sessions", &start_of("web", "js-3.1.0", T0));
    assert!(matches!(r.status, 502 | 503), "{}", r.text());
    let e = &entries(&spool, 1)[0];
    assert_eq!(e["kind"], "upstream_failed");
    assert_eq!(e["status"], r.status);
    assert_eq!(
        gw.metric_when(
            "mediagate_quarantined_total{kind=\"upstream_failed\"}",
            |v| v >= 1.0
        ),
        1.0
    );
}

#[test]
fn a_stalled_spool_drops_and_counts_and_players_are_still_answered() {
    // The spool's current file is a FIFO nobody reads: the writer blocks on it for good.
    let spool = testkit::scratch_dir("spool");
    let fifo = spool.join("quarantine.jsonl");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let mut gw = gateway(&spool, "queue_bytes = 65536\n", "");
    let started = Instant::now();
    for i in 0..200 {
        let r = gw.post("/api/v1/sessions", &invalid_start_of("web", "js-3.1.0"));
        assert_eq!(r.status, 400, "call {i}: {}", r.text());
    }
    println!(
        "200 refused calls answered in {:?} with the spool stalled",
        started.elapsed()
    );
    let dropped = gw.metric_when(
        "mediagate_quarantine_dropped_total{reason=\"queue_full\"}",
        |v| v >= 100.0,
    );
    assert!(dropped >= 100.0, "{}", gw.metrics());
    let written = gw.metric("mediagate_quarantined_total{kind=\"refused\"}");
    assert_eq!(
        written + dropped,
        200.0,
        "each call kept or counted as dropped"
    );
    // Shutdown flushes within its bound: a stalled disk cannot hold the exit.
    gw.terminate();
    assert!(
        gw.wait_exit(Duration::from_secs(15)).is_some(),
        "exits with the spool stalled"
    );
}

#[test]
fn the_admin_token_guards_payloads_and_sessions_but_not_probes() {
    let spool = testkit::scratch_dir("spool");
    let token = "s3cret-token-0123456789";
    let gw = Gateway::start(Options {
        tables: toml(&format!(
            "[quarantine]\ndir = \"{}\"\n[admin]\ntoken = \"${{env:MG_ADMIN_TOKEN}}\"\n",
            spool.display()
        )),
        env: vec![("MG_ADMIN_TOKEN".into(), token.into())],
        ..Options::default()
    });
    for path in ["/", "/quality", "/quality/examples/x", "/sessions/abc"] {
        let r = get(&gw, path, &[]);
        assert_eq!(r.status, 401, "{path}");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.contains("Bearer")),
            "{path}"
        );
        let r = get(
            &gw,
            path,
            &[("Authorization", "Bearer wrong-token-000000000")],
        );
        assert_eq!(r.status, 401, "{path}");
    }
    let bearer = format!("Bearer {token}");
    assert_eq!(
        get(&gw, "/quality", &[("Authorization", &bearer)]).status,
        200
    );
    // A browser's Basic prompt, the token as the password.
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{token}"))
    );
    assert_eq!(get(&gw, "/", &[("Authorization", &basic)]).status, 200);
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            get(&gw, path, &[]).status,
            200,
            "{path} stays open for probes and scrapes"
        );
    }
}

#[test]
fn check_warns_about_an_open_admin_listener_without_a_token() {
    let dir = testkit::scratch_dir("check");
    let path = dir.join("open.toml");
    std::fs::write(
        &path,
        "[admin]\nlisten = \"0.0.0.0:9090\"\n[[upstream]]\nurl = \"http://127.0.0.1:8081\"\n",
    )
    .expect("write");
    let (code, _, err) = cli(&["check", "-c", &path.display().to_string()]);
    assert_eq!(code, 0, "a warning, not an error: {err}");
    assert!(err.contains("[admin] token is not set"), "{err}");
    std::fs::write(&path, "[admin]\nlisten = \"0.0.0.0:9090\"\ntoken = \"0123456789abcdef\"\n[[upstream]]\nurl = \"http://127.0.0.1:8081\"\n").expect("write");
    let (code, _, err) = cli(&["check", "-c", &path.display().to_string()]);
    assert_eq!(code, 0);
    assert!(!err.contains("warning"), "{err}");
    std::fs::write(
        &path,
        "[admin]\ntoken = \"short\"\n[[upstream]]\nurl = \"http://127.0.0.1:8081\"\n",
    )
    .expect("write");
    let (code, _, err) = cli(&["check", "-c", &path.display().to_string()]);
    assert_eq!(code, 1);
    assert!(err.contains("[admin] token: must be at least 16"), "{err}");
}
