//! The documentation keeps up with the code: every series the gateway exports is in
//! docs/metrics.md, every key of the shipped configuration in docs/configuration.md, every
//! session rule in docs/sessions.md and in the shipped `[sessions.rules]`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use testkit::{Gateway, Options};

fn repo_file(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_exported_series_is_documented() {
    let gw = Gateway::start(Options::default());
    let metrics = gw.metrics();
    let names: BTreeSet<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("mediagate_"))
        .collect();
    assert!(names.len() >= 25, "{names:?}");
    let doc = repo_file("docs/metrics.md");
    let missing: Vec<&&str> = names
        .iter()
        .filter(|n| !doc.contains(&format!("`{n}`")))
        .collect();
    assert!(missing.is_empty(), "not in docs/metrics.md: {missing:?}");
}

/// `[table]` and `key = value` lines of a TOML file, commented ones (`# key = ...`) included.
fn keys(text: &str) -> BTreeSet<(String, String)> {
    let mut table = String::new();
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        let uncommented = line.trim_start_matches('#').trim();
        if let Some(t) = uncommented.strip_prefix('[') {
            if !line.starts_with('#') {
                table = t.trim_matches(|c| c == '[' || c == ']').to_owned();
            }
            continue;
        }
        let Some((key, _)) = uncommented.split_once(" = ") else {
            continue;
        };
        let key = key.trim().trim_matches('"');
        if key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            && !key.is_empty()
        {
            out.insert((table.clone(), key.to_owned()));
        }
    }
    out
}

#[test]
fn every_key_of_the_shipped_configuration_is_documented() {
    let shipped = repo_file("config/mediagate.toml");
    let doc = repo_file("docs/configuration.md");
    let missing: Vec<String> = keys(&shipped)
        .into_iter()
        // Values of free-form tables (param names, header names) are examples, not keys.
        .filter(|(t, _)| {
            !t.contains("session_params")
                && !t.contains("upstream_headers")
                && !t.contains("custom_metadata")
        })
        .filter(|(_, k)| !doc.contains(&format!("`{k}`")))
        .map(|(t, k)| format!("[{t}] {k}"))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/configuration.md: {missing:?}"
    );
}

#[test]
fn every_session_rule_is_documented_and_shipped() {
    let doc = repo_file("docs/sessions.md");
    let shipped = repo_file("config/mediagate.toml");
    let shipped_rules: BTreeSet<String> = keys(&shipped)
        .into_iter()
        .filter(|(t, _)| t == "sessions.rules")
        .map(|(_, k)| k)
        .collect();
    // The rule names, as the gateway's own refusal of an unknown name lists them.
    let dir = testkit::scratch_dir("docs");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[[upstream]]\nurl = \"http://127.0.0.1:1\"\n[sessions.rules]\nnot_a_rule = \"report\"\n",
    )
    .expect("write");
    let out = std::process::Command::new(testkit::binary())
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .expect("mediagate check");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let listed = err
        .split_once("one of ")
        .map(|(_, rest)| rest.trim_end().trim_end_matches(')'))
        .unwrap_or_else(|| panic!("no list of rules: {err}"));
    let rules: BTreeSet<String> = listed.split(", ").map(str::to_owned).collect();
    assert_eq!(rules.len(), 12, "{rules:?}");
    for rule in &rules {
        assert!(
            doc.contains(&format!("| `{rule}` |")),
            "{rule} not in docs/sessions.md's table"
        );
    }
    assert_eq!(
        shipped_rules, rules,
        "the shipped [sessions.rules] lists every rule"
    );
}
