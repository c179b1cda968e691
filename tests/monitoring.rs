//! Monitoring, checked with the real tools: the alert rules by `promtool` (syntax and their unit
//! tests), the Grafana dashboard against docs/metrics.md (every documented family in a panel, no
//! panel on an undocumented name), and every panel's query evaluated by a real Prometheus server
//! that scraped a real gateway after it served traffic — a renamed series breaks this test.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::{poll, request, Gateway};

fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn repo_file(rel: &str) -> String {
    let path = repo_path(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `promtool` with `args` from the repository root and asserts it succeeds.
fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(repo_path(""))
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool cannot be run ({e}): install prometheus (scripts/setup.sh test)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let checked = promtool(&["check", "rules", "deploy/prometheus/alerts.yml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&["test", "rules", "deploy/prometheus/alerts_test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
    promtool(&["check", "config", "deploy/prometheus/prometheus.yml"]);
}

/// The metric families of docs/metrics.md: the `mediagate_...` names in backticks of its tables.
fn documented_families() -> BTreeSet<String> {
    let doc = repo_file("docs/metrics.md");
    let mut names = BTreeSet::new();
    for line in doc.lines().filter(|l| l.trim_start().starts_with('|')) {
        for (i, part) in line.split('`').enumerate() {
            let is_name = part.starts_with("mediagate_")
                && part[10..]
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if i % 2 == 1 && is_name {
                names.insert(part.to_owned());
            }
        }
    }
    assert!(
        names.len() >= 30,
        "docs/metrics.md lists too few: {names:?}"
    );
    names
}

/// The PromQL identifiers of `expr` (metric names, functions, labels), quoted strings skipped.
fn identifiers(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' || c == '`' {
            let mut escaped = false;
            for d in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if d == '\\' {
                    escaped = true;
                } else if d == c {
                    break;
                }
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let mut word = c.to_string();
            while let Some(&d) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                    word.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(word);
        } else if c == '$' {
            // A Grafana variable: not PromQL.
            while chars
                .peek()
                .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_' || *d == '{' || *d == '}')
            {
                chars.next();
            }
        }
    }
    out
}

/// The family a series name belongs to (a histogram's `_bucket`, `_sum`, `_count` included).
fn family_of<'a>(name: &str, families: &'a BTreeSet<String>) -> Option<&'a String> {
    families.get(name).or_else(|| {
        ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).and_then(|base| families.get(base)))
    })
}

fn dashboard() -> Value {
    serde_json::from_str(&repo_file("deploy/grafana/mediagate.json"))
        .expect("deploy/grafana/mediagate.json is JSON")
}

/// Every panel of the dashboard, the panels of collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// (panel title, expr) of every query target.
fn targets(dashboard: &Value) -> Vec<(String, String)> {
    panels(dashboard)
        .into_iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or("?").to_owned();
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |t| Some((title.clone(), t["expr"].as_str()?.to_owned())))
        })
        .collect()
}

/// The names of the dashboard's template variables, and their `label_values(...)` queries.
fn variables(dashboard: &Value) -> Vec<(String, Option<String>)> {
    dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .map(|v| {
            let query = v["query"]["query"]
                .as_str()
                .or_else(|| v["query"].as_str())
                .filter(|_| v["type"] == "query")
                .map(str::to_owned);
            (v["name"].as_str().expect("a name").to_owned(), query)
        })
        .collect()
}

#[test]
fn the_dashboard_covers_every_documented_family_and_only_those() {
    let d = dashboard();
    let families = documented_families();
    assert!(
        d["schemaVersion"].as_u64().unwrap_or(0) >= 36,
        "schemaVersion"
    );
    let vars = variables(&d);
    assert!(
        d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["type"] == "datasource"
                && v["name"] == "datasource"
                && v["query"] == "prometheus"),
        "a ${{datasource}} Prometheus variable: {vars:?}"
    );
    let mut ids = BTreeSet::new();
    for p in panels(&d) {
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "duplicate panel id: {p}"
        );
        assert!(p["gridPos"]["w"].as_u64().is_some(), "gridPos: {p}");
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"].as_array().map_or(0, Vec::len);
        assert!(targets > 0, "panel {} has no query", p["title"]);
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "panel {}",
            p["title"]
        );
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(
                t["datasource"]["uid"], "${datasource}",
                "panel {}",
                p["title"]
            );
        }
    }
    let mut covered = BTreeSet::new();
    for (title, expr) in targets(&d) {
        for name in identifiers(&expr)
            .into_iter()
            .filter(|n| n.starts_with("mediagate_"))
        {
            let family = family_of(&name, &families).unwrap_or_else(|| {
                panic!("panel {title:?} queries {name}, which docs/metrics.md does not list")
            });
            covered.insert(family.clone());
        }
    }
    let missing: Vec<&String> = families.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "families in no dashboard panel: {missing:?}"
    );
}

/// A Prometheus server on a loopback port the kernel chose, killed (and its data removed) when
/// dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Prometheus {
    fn start(config: &str) -> Prometheus {
        let dir = testkit::scratch_dir("prometheus");
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let log_path = dir.join("prometheus.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("prometheus cannot be run ({e}): install it (scripts/setup.sh test)")
            });
        let mut prometheus = Prometheus {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
        };
        let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        // Port 0 is bound by Prometheus itself; it logs the address it got:
        // `... component=web msg="Listening on" address=127.0.0.1:40123`.
        let child = &mut prometheus.child;
        let addr = poll(Duration::from_secs(15), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("prometheus exited ({status}):\n{}", read_log());
            }
            read_log()
                .lines()
                .filter(|l| l.contains("msg=\"Listening on\""))
                .find_map(|l| {
                    l.split("address=")
                        .nth(1)?
                        .split_whitespace()
                        .next()?
                        .parse()
                        .ok()
                })
        });
        prometheus.addr =
            addr.unwrap_or_else(|| panic!("prometheus never listened:\n{}", read_log()));
        let ready = poll(Duration::from_secs(15), || {
            let r = request(prometheus.addr, "GET", "/-/ready", &[], b"").ok()?;
            (r.status == 200).then_some(())
        });
        assert!(
            ready.is_some(),
            "prometheus never got ready:\n{}",
            read_log()
        );
        prometheus
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// `GET path` of the HTTP API, as JSON.
    fn get(&self, path: &str) -> Value {
        let r = request(self.addr, "GET", path, &[], b"").expect("prometheus answers");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()
    }

    /// An instant query: Prometheus's whole answer (`status`, `data`, or `error`).
    fn query(&self, expr: &str) -> Value {
        let body = format!("query={}", form_encode(expr));
        let r = request(
            self.addr,
            "POST",
            "/api/v1/query",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .expect("prometheus answers");
        r.json()
    }

    /// The samples of an instant vector query (panics on an error or another result type).
    fn vector(&self, expr: &str) -> Vec<Value> {
        let v = self.query(expr);
        assert_eq!(v["status"], "success", "{expr}: {v}");
        assert_eq!(v["data"]["resultType"], "vector", "{expr}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The value of a query that returns one sample, if it does.
    fn scalar(&self, expr: &str) -> Option<f64> {
        self.vector(expr).first()?["value"][1]
            .as_str()?
            .parse()
            .ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `expr` with Grafana's variables replaced as Grafana would for "the last 10 minutes, all
/// jobs and instances" (a multi-value variable with `All` is `.*`). Panics on a variable the
/// dashboard does not define: a typo would otherwise reach Prometheus as a parse error.
fn concrete(expr: &str, variables: &[String]) -> String {
    let builtin = [
        ("__rate_interval", "1m"),
        ("__interval", "5s"),
        ("__range", "10m"),
    ];
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        let (name, len) = if let Some(inner) = rest.strip_prefix('{') {
            let end = inner.find('}').expect("a closing brace");
            (&inner[..end], end + 2)
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..end], end)
        };
        if name.chars().all(|c| c.is_ascii_digit()) && !name.is_empty() {
            // label_replace's `${1}`: PromQL's, not Grafana's.
            out.push('$');
            continue;
        }
        let value = builtin
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .or_else(|| variables.iter().any(|v| v == name).then_some(".*"))
            .unwrap_or_else(|| panic!("unknown variable ${name} in {expr}"));
        out.push_str(value);
        rest = &rest[len..];
    }
    out.push_str(rest);
    out
}

fn start_of(player: &str, reserved_metadata: bool) -> Vec<u8> {
    let mut body = fixture("session-start.json");
    body["params"]["media.playerName"] = player.into();
    body["params"]["media.libraryVersion"] = "js-3.1.0".into();
    if reserved_metadata {
        // A customMetadata key with the reserved `media.` prefix: forwarded with a warning.
        body["customMetadata"]["media.reserved"] = "x".into();
    }
    serde_json::to_vec(&body).expect("JSON")
}

/// Sessions, pings, an invalid body, a warning, a session-rule violation, a schema look-up;
/// returns how many requests were sent.
fn drive_traffic(gw: &Gateway) -> u64 {
    let mut sent = 0;
    let mut expect = |status: u16, r: testkit::Response| {
        sent += 1;
        assert_eq!(r.status, status, "{}", r.text());
        r
    };
    let ts = 1_509_045_324_153_i64;
    let mut sids = Vec::new();
    for (i, player) in ["web", "tv", "web"].iter().enumerate() {
        let r = expect(201, gw.post("/api/v1/sessions", &start_of(player, i == 1)));
        sids.push(testkit::sid_of(r.header("location").expect("location")).to_owned());
    }
    for (i, sid) in sids.iter().enumerate() {
        for n in 1..=2 {
            let at = ts + 10_000 * n;
            expect(204, send(gw, sid, &ping(at, (10 * n + i as i64) as f64)));
        }
    }
    // An invalid event (400: a string playhead, an unknown event type), and an invalid start.
    let invalid = br#"{"playerTime":{"playhead":"12.5","ts":1509045336653},"eventType":"pause"}"#;
    expect(400, send(gw, &sids[1], invalid));
    let mut bad_start: Value = serde_json::from_slice(&start_of("tv", false)).expect("JSON");
    bad_start["params"]["media.length"] = "sixty".into();
    let bad_start = serde_json::to_vec(&bad_start).expect("JSON");
    expect(400, gw.post("/api/v1/sessions", &bad_start));
    // sessionEnd, then a call the backend would drop: 410 session_closed.
    let end = format!(
        r#"{{"eventType":"sessionEnd","playerTime":{{"playhead":21,"ts":{}}}}}"#,
        ts + 30_000
    );
    expect(204, send(gw, &sids[0], end.as_bytes()));
    expect(410, send(gw, &sids[0], &ping(ts + 40_000, 22.0)));
    expect(
        200,
        request(gw.addr, "GET", "/api/v1/schemas/ping", &[], b"").expect("schema"),
    );
    sent
}

#[test]
fn every_dashboard_query_returns_data_from_a_real_prometheus_scraping_the_gateway() {
    let started = Instant::now();
    let gw = quarantined_gateway();
    let rules = repo_path("deploy/prometheus/alerts.yml");
    let prometheus = Prometheus::start(&format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {rules}\n\
         scrape_configs:\n  - job_name: mediagate\n    static_configs:\n      - targets: ['{admin}']\n",
        rules = rules.display(),
        admin = gw.admin,
    ));
    let waited = |what: &str, limit: Duration, f: &dyn Fn() -> bool| {
        let done = poll(limit, || f().then_some(()));
        assert!(done.is_some(), "{what}:\n{}", prometheus.log());
    };
    // A first scrape before any traffic, so that rates and histograms see the change.
    waited("no first scrape", Duration::from_secs(15), &|| {
        prometheus.scalar("count(mediagate_build_info)") == Some(1.0)
    });

    // The traffic twice, with a scrape between: series that appear at their first count
    // (requests by status, validation, by player) then change between two scrapes too.
    let own = |gw: &Gateway| sum(&gw.metrics(), "mediagate_requests_total", &[]);
    let scraped_with = |sent: f64| {
        // The gateway counts a request once its answer is written (and logged)...
        eventually(&gw, "requests counted by the gateway", sent, own);
        // ... then Prometheus scrapes that.
        waited(
            "the traffic was never scraped",
            Duration::from_secs(15),
            &|| prometheus.scalar("sum(mediagate_requests_total)") == Some(sent),
        );
    };
    let first = drive_traffic(&gw) as f64;
    scraped_with(first);
    let sent = first + drive_traffic(&gw) as f64;
    scraped_with(sent);
    // Two more scrapes: every series has at least three samples.
    let scrapes = || {
        prometheus
            .scalar("sum(count_over_time(up[10m]))")
            .unwrap_or(0.0)
    };
    let seen = scrapes();
    waited("no two more scrapes", Duration::from_secs(15), &|| {
        scrapes() >= seen + 2.0
    });
    let scraped = started.elapsed();

    let d = dashboard();
    let vars = variables(&d);
    let names: Vec<String> = vars.iter().map(|(n, _)| n.clone()).collect();
    let mut failures = Vec::new();
    let mut nan = Vec::new();
    let mut series_names = BTreeSet::new();
    let all = targets(&d);
    for (title, expr) in &all {
        let promql = concrete(expr, &names);
        series_names.extend(
            identifiers(&promql)
                .into_iter()
                .filter(|n| n.starts_with("mediagate_")),
        );
        let answer = prometheus.query(&promql);
        let result = answer["data"]["result"].as_array().map_or(0, Vec::len);
        if answer["status"] != "success" || result == 0 {
            failures.push(format!("{title}: {promql}\n  => {answer}"));
        } else if answer["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["value"][1] == "NaN")
        {
            nan.push(title.clone());
        }
    }
    // The variables' `label_values(selector, label)` find values.
    for (name, query) in &vars {
        let Some(query) = query else { continue };
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {name}: {query}"));
        let (selector, label) = inner
            .rsplit_once(',')
            .expect("label_values(selector, label)");
        let promql = format!(
            "count by ({}) ({})",
            label.trim(),
            concrete(selector, &names)
        );
        let values = prometheus.vector(&promql);
        if values.iter().all(|v| v["metric"][label.trim()].is_null()) {
            failures.push(format!("variable {name}: {promql} => {values:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} dashboard queries failed or returned nothing:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
    // No fallback (`or vector(0)`) hides a name the gateway does not export.
    for name in &series_names {
        assert!(
            !prometheus.vector(&format!("count({name})")).is_empty(),
            "{name} is queried by the dashboard but was never scraped"
        );
    }

    // The alert rules, loaded by the same server, evaluate without error on real series, and
    // nothing fires for this healthy traffic.
    let rules: Vec<Value> = poll(Duration::from_secs(15), || {
        let v = prometheus.get("/api/v1/rules");
        let list: Vec<Value> = v["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        for r in &list {
            assert_ne!(
                r["health"], "err",
                "rule {} failed: {}",
                r["name"], r["lastError"]
            );
        }
        (!list.is_empty() && list.iter().all(|r| r["health"] == "ok")).then_some(list)
    })
    .unwrap_or_else(|| panic!("the rules were never all evaluated:\n{}", prometheus.log()));
    let alerts: Vec<&Value> = rules.iter().filter(|r| r["type"] == "alerting").collect();
    assert_eq!(alerts.len(), 6, "{rules:?}");
    for a in &alerts {
        let name = a["name"].as_str().unwrap();
        assert!(
            matches!(
                a["labels"]["severity"].as_str(),
                Some("critical" | "warning")
            ),
            "{name}: severity"
        );
        for key in ["summary", "description", "runbook"] {
            assert!(a["annotations"][key].is_string(), "{name}: no {key}");
        }
        let runbook = a["annotations"]["runbook"].as_str().unwrap();
        let (doc, anchor) = runbook.split_once('#').expect("a runbook with an anchor");
        assert_eq!(anchor, "alerts", "{name}: {runbook}");
        // docs/data-quality.md is written with the data-quality work; checked once it exists.
        if doc == "docs/operations.md" || repo_path(doc).exists() {
            let text = repo_file(doc);
            let section = text
                .split_once("\n## Alerts")
                .unwrap_or_else(|| panic!("{doc} has no `## Alerts` section ({name})"))
                .1;
            assert!(
                section.contains(name),
                "{doc}#alerts does not describe {name}"
            );
        }
        assert_eq!(
            a["state"], "inactive",
            "{name} is {} on healthy traffic",
            a["state"]
        );
    }
    // No rule (recording ones included) reads a name the gateway does not export.
    for r in &rules {
        for n in identifiers(r["query"].as_str().unwrap_or_default()) {
            if n.starts_with("mediagate_") {
                assert!(
                    !prometheus.vector(&format!("count({n})")).is_empty(),
                    "rule {} uses {n}, which was never scraped",
                    r["name"]
                );
            }
        }
    }
    println!(
        "{} dashboard queries and {} rules checked against Prometheus in {:?} ({:?} until scraped); \
         all-NaN (a quantile of nothing observed): {nan:?}",
        all.len(),
        rules.len(),
        started.elapsed(),
        scraped
    );
}

#[test]
fn concrete_replaces_grafana_variables_only() {
    let vars = vec!["job".to_owned(), "instance".to_owned()];
    assert_eq!(
        concrete(
            r#"label_replace(rate(x{job=~"$job",instance=~"${instance}"}[$__rate_interval]), "c", "${1}xx", "s", "(.)")[$__range]"#,
            &vars
        ),
        r#"label_replace(rate(x{job=~".*",instance=~".*"}[1m]), "c", "${1}xx", "s", "(.)")[10m]"#
    );
    assert_eq!(
        identifiers(
            r#"sum by (le) (rate(mediagate_a_bucket{x="mediagate_b"}[1m])) or job:mediagate_c:r"#
        ),
        [
            "sum",
            "by",
            "le",
            "rate",
            "mediagate_a_bucket",
            "x",
            "m",
            "or",
            "job:mediagate_c:r"
        ]
    );
}
