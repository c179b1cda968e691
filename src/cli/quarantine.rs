//! `mediagate quarantine`: what the gateway refused, read back from the spool
//! (`[quarantine] dir`): `list` (one line per entry), `show` (entries whole, as JSON), and
//! `replay` (selected refused entries sent to an upstream, each answer reported).
//!
//! Replay sends the body exactly as kept — the body the gateway would have forwarded, enriched
//! already — straight to the upstream named by `--to`, never through a gateway (that would enrich,
//! and hash, it twice). Only entries marked `replayable` are sent: identity params kept or hashed
//! by the same privacy rules forwarding applies; a redacted entry is refused with the reason.
//! Unless `--force`, each body is first validated again with the file's current rules (the
//! point of a replay after a fix of the gateway's rules). An entry replayed with a 2xx answer is
//! written to `replayed.jsonl` in the spool and skipped by later replays to the same upstream
//! (`--again` sends it anyway). Plain `http://` upstreams only.

use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::config;
use crate::quarantine::spool::{self, Entry, Filter};

/// The selection options shared by the subcommands.
#[derive(clap::Args, Debug)]
pub struct Select {
    /// The spool directory (default: `[quarantine] dir` of --config).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Configuration file.
    #[arg(short, long, default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Only entries with a violation of this rule.
    #[arg(long)]
    pub rule: Option<String>,
    /// Only entries of this player (as labelled: lower-case).
    #[arg(long)]
    pub player: Option<String>,
    /// Only entries of this kind: refused, reported, upstream_failed.
    #[arg(long, value_parser = ["refused", "reported", "upstream_failed"])]
    pub kind: Option<String>,
    /// Only entries at or after this time: epoch milliseconds, or an age (90s, 15m, 2h, 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Only entries at or before this time (same forms).
    #[arg(long)]
    pub until: Option<String>,
    /// Only the entry with this id (the request id).
    #[arg(long)]
    pub id: Option<String>,
    /// At most this many entries (the newest).
    #[arg(long)]
    pub limit: Option<usize>,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// One line per entry: time, id, kind, status, route, player, sdk, rules.
    List(Select),
    /// Entries whole, one JSON object per line.
    Show(Select),
    /// Send selected refused entries to an upstream and report each answer.
    Replay {
        #[command(flatten)]
        select: Select,
        /// The upstream's base URL (http://host:port).
        #[arg(long)]
        to: String,
        /// Send without validating the body again with the file's current rules.
        #[arg(long)]
        force: bool,
        /// Send entries the ledger says were replayed already.
        #[arg(long)]
        again: bool,
        /// Say what would be sent; send nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn quarantine(action: Action) -> ExitCode {
    match run(action) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("mediagate quarantine: {message}");
            ExitCode::from(2)
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot read the spool {}: {source}", dir.display())]
    Spool {
        dir: PathBuf,
        source: std::io::Error,
    },
}

fn run(action: Action) -> Result<ExitCode, CliError> {
    let now = crate::io::clock::unix_ms();
    let select = match &action {
        Action::List(s) | Action::Show(s) | Action::Replay { select: s, .. } => s,
    };
    let dir = match &select.dir {
        Some(d) => d.clone(),
        None => config::load(&select.config)?
            .quarantine
            .map(|q| q.dir)
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "{} has no [quarantine] dir (or pass --dir)",
                    select.config.display()
                ))
            })?,
    };
    let time = |t: &Option<String>| -> Result<Option<u64>, CliError> {
        t.as_deref()
            .map(|t| {
                spool::parse_time(t, now).ok_or_else(|| {
                    CliError::Usage(format!(
                        "{t:?} is not a time (epoch milliseconds, or an age such as 15m)"
                    ))
                })
            })
            .transpose()
    };
    let filter = Filter {
        rule: select.rule.clone(),
        player: select.player.clone(),
        kind: select.kind.clone(),
        id: select.id.clone(),
        since_ms: time(&select.since)?,
        until_ms: time(&select.until)?,
    };
    let read = spool::read(&dir, &filter).map_err(|source| CliError::Spool {
        dir: dir.clone(),
        source,
    })?;
    if read.skipped > 0 {
        eprintln!(
            "mediagate quarantine: skipped {} line(s) that are not entries (a torn write?)",
            read.skipped
        );
    }
    let mut entries = read.entries;
    if let Some(n) = select.limit {
        let drop = entries.len().saturating_sub(n);
        entries.drain(..drop);
    }
    match action {
        Action::List(_) => {
            for e in &entries {
                println!("{}", list_line(e));
            }
            eprintln!(
                "{} entr{}",
                entries.len(),
                if entries.len() == 1 { "y" } else { "ies" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Show(_) => {
            let mut out = std::io::stdout().lock();
            for e in &entries {
                let _ = out.write_all(&e.line);
                let _ = out.write_all(b"\n");
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Replay {
            select,
            to,
            force,
            again,
            dry_run,
        } => {
            let target = Target::parse(&to).map_err(CliError::Usage)?;
            let policies = match force {
                true => None,
                false => Some(config::load(&select.config)?.validation.policies),
            };
            replay(&dir, &entries, &target, policies.as_ref(), again, dry_run)
        }
    }
}

fn list_line(e: &Entry) -> String {
    let rules: Vec<&str> = e
        .value
        .get("violations")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v.get("rule").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let time = e.value.get("time_ms").and_then(Value::as_u64).unwrap_or(0);
    format!(
        "{}  {}  {:<15} {}  {:<32} player={} sdk={} rules={}{}",
        enrich::template::rfc3339_millis(time),
        e.str("id"),
        e.str("kind"),
        e.value.get("status").and_then(Value::as_u64).unwrap_or(0),
        e.str("route"),
        e.str("player"),
        e.str("sdk"),
        rules.join(","),
        if e.value.get("replayable") == Some(&Value::Bool(true)) {
            ""
        } else {
            "  (not replayable)"
        }
    )
}

/// Where replayed entries go.
struct Target {
    host: String,
    port: u16,
    authority: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("--to {url:?}: an http:// base URL (replay speaks plain HTTP/1.1)")
        })?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(format!("--to {url:?}: a base URL without a path"));
        }
        let uri: http::Uri = format!("http://{authority}/")
            .parse()
            .map_err(|e| format!("--to {url:?}: {e}"))?;
        let host = uri
            .host()
            .ok_or_else(|| format!("--to {url:?}: no host"))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_owned();
        Ok(Target {
            host,
            port: uri.port_u16().unwrap_or(80),
            authority: authority.to_owned(),
        })
    }

    /// POSTs `body` to `path`; the answer's status and body (at most 64 KiB of it).
    fn post(&self, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
        let timeout = Duration::from_secs(10);
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(self.host.as_str(), self.port))?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nuser-agent: mediagate-quarantine-replay\r\nconnection: close\r\n\r\n",
            self.authority,
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        super::http::exchange(addr, &request, timeout, 64 * 1024)
    }
}

/// Why `e` cannot be replayed, or its endpoint.
fn replayable(e: &Entry) -> Result<mcapi::Endpoint, String> {
    if e.str("kind") == "reported" {
        return Err("forwarded already (a report-mode example)".into());
    }
    if e.value.get("replayable") != Some(&Value::Bool(true)) {
        let why = e.str("not_replayable");
        return Err(if why.is_empty() {
            "not replayable".into()
        } else {
            why.to_owned()
        });
    }
    match e.str("route") {
        "/api/v1/sessions" => Ok(mcapi::Endpoint::Sessions),
        "/api/v1/sessions/{sid}/events" => Ok(mcapi::Endpoint::Events),
        "/api/v1/downloaded" => Ok(mcapi::Endpoint::Downloaded),
        r => Err(format!("route {r:?} is not one the API takes bodies on")),
    }
}

fn replay(
    dir: &Path,
    entries: &[Entry],
    target: &Target,
    policies: Option<&mcapi::Policies>,
    again: bool,
    dry_run: bool,
) -> Result<ExitCode, CliError> {
    let done = spool::replayed(dir);
    let mut ledger = match dry_run {
        true => None,
        false => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(spool::LEDGER))
                .map_err(|source| CliError::Spool {
                    dir: dir.to_owned(),
                    source,
                })?,
        ),
    };
    let (mut sent, mut accepted, mut skipped) = (0, 0, 0);
    for e in entries {
        let id = e.str("id");
        let report = |outcome: &str, detail: &str| println!("{id}  {outcome}  {detail}");
        let endpoint = match replayable(e) {
            Ok(endpoint) => endpoint,
            Err(why) => {
                report("refused", &format!("cannot be replayed: {why}"));
                skipped += 1;
                continue;
            }
        };
        let key = spool::ledger_key(id, &target.authority, e.str("body_sha256"));
        if !again && done.contains(&key) {
            report(
                "skipped",
                "replayed already (see replayed.jsonl; --again sends it anyway)",
            );
            skipped += 1;
            continue;
        }
        let Some(body) = e.body() else {
            report("refused", "cannot be replayed: the entry holds no body");
            skipped += 1;
            continue;
        };
        if let Some(policies) = policies {
            let at = e.value.get("time_ms").and_then(Value::as_u64).unwrap_or(0);
            let checked = mcapi::check(endpoint, body.as_bytes(), policies, at);
            if !checked.is_valid() {
                let rules: Vec<&str> = checked.errors().map(|v| v.rule.as_str()).collect();
                report(
                    "invalid",
                    &format!(
                        "still invalid under the current rules ({}); --force sends it anyway",
                        rules.join(", ")
                    ),
                );
                skipped += 1;
                continue;
            }
        }
        let path = e.str("upstream_path");
        if dry_run {
            report("would send", &format!("POST {path} ({} bytes)", body.len()));
            continue;
        }
        sent += 1;
        let (status, detail) = match target.post(path, body.as_bytes()) {
            Ok((status, answer)) => (status, answer.trim().chars().take(200).collect()),
            Err(err) => (0, format!("no answer: {err}")),
        };
        if (200..300).contains(&status) {
            accepted += 1;
        }
        report(&status.to_string(), &detail);
        if let Some(ledger) = ledger.as_mut() {
            let line = json!({"id": id, "time_ms": crate::io::clock::unix_ms(), "to": target.authority,
                "path": path, "body_sha256": e.str("body_sha256"), "status": status});
            if let Err(err) = writeln!(ledger, "{line}") {
                eprintln!("mediagate quarantine: cannot record the replay of {id} in {}: {err} (a later replay would send it again)", spool::LEDGER);
            }
        }
    }
    eprintln!("replay: {sent} sent, {accepted} accepted (2xx), {skipped} not sent");
    Ok(if sent == accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
