//! The spool's read side, for `mediagate quarantine`: the files of a quarantine directory in the
//! order they were written (rotated files by name, then the current one), their entries parsed,
//! and the filters the command line offers. A line that is not an entry (a torn last line after
//! a crash) is skipped and counted, never fatal. Also the replay ledger (`replayed.jsonl`): which
//! entries were replayed, with what answer, so that a second replay does not send them twice.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::observe::log_sink::SPOOL_CURRENT;

/// The replay ledger's file in the spool directory.
pub const LEDGER: &str = "replayed.jsonl";

/// The spool's files, oldest first.
pub fn files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut rotated: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("quarantine-") && n.ends_with(".jsonl"))
        .collect();
    rotated.sort();
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|n| dir.join(n)).collect();
    let current = dir.join(SPOOL_CURRENT);
    if current.is_file() {
        out.push(current);
    }
    Ok(out)
}

/// Entries read, and lines that were not entries.
pub struct Read {
    pub entries: Vec<Entry>,
    pub skipped: usize,
}

/// One entry: parsed, and its line as written (its body's bytes exactly as kept).
pub struct Entry {
    pub value: Value,
    pub line: Vec<u8>,
}

impl Entry {
    /// The kept body's bytes, as they were (not re-serialized).
    pub fn body(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Body {
            body: Option<Box<serde_json::value::RawValue>>,
        }
        serde_json::from_slice::<Body>(&self.line)
            .ok()?
            .body
            .map(|b| b.get().to_owned())
    }

    pub fn str(&self, key: &str) -> &str {
        self.value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// Every entry of the spool in `dir` that `filter` keeps, oldest first.
pub fn read(dir: &Path, filter: &Filter) -> std::io::Result<Read> {
    let mut out = Read {
        entries: Vec::new(),
        skipped: 0,
    };
    for path in files(dir)? {
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            // Rotated away and pruned between the listing and now.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(file).split(b'\n') {
            let line = line?;
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<Value>(&line) {
                Ok(v) if v.get("id").is_some_and(Value::is_string) => {
                    if filter.keeps(&v) {
                        out.entries.push(Entry { value: v, line });
                    }
                }
                _ => out.skipped += 1,
            }
        }
    }
    Ok(out)
}

/// What `list`, `show` and `replay` select.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub rule: Option<String>,
    pub player: Option<String>,
    pub kind: Option<String>,
    pub id: Option<String>,
    /// Milliseconds since the epoch, inclusive.
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
}

impl Filter {
    pub fn keeps(&self, e: &Value) -> bool {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default();
        let time = e.get("time_ms").and_then(Value::as_u64).unwrap_or(0);
        self.id.as_deref().is_none_or(|id| s("id") == id)
            && self.kind.as_deref().is_none_or(|k| s("kind") == k)
            && self.player.as_deref().is_none_or(|p| s("player") == p)
            && self.since_ms.is_none_or(|t| time >= t)
            && self.until_ms.is_none_or(|t| time <= t)
            && self.rule.as_deref().is_none_or(|r| {
                e.get("violations")
                    .and_then(Value::as_array)
                    .is_some_and(|vs| {
                        vs.iter()
                            .any(|v| v.get("rule").and_then(Value::as_str) == Some(r))
                    })
            })
    }
}

/// A time bound on the command line: milliseconds since the epoch, or an age (`90s`, `15m`,
/// `2h`, `7d`) before `now_ms`.
pub fn parse_time(text: &str, now_ms: u64) -> Option<u64> {
    if let Ok(ms) = text.parse::<u64>() {
        return Some(ms);
    }
    let (n, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    let ms = match unit {
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(now_ms.saturating_sub(ms))
}

/// What the ledger keys a replay by: the entry, where it went, and the exact body sent.
pub fn ledger_key(id: &str, to: &str, body_sha256: &str) -> String {
    format!("{id} {to} {body_sha256}")
}

/// The replays the ledger says were accepted (2xx), by [`ledger_key`].
pub fn replayed(dir: &Path) -> std::collections::HashSet<String> {
    let Ok(file) = std::fs::File::open(dir.join(LEDGER)) else {
        return Default::default();
    };
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        .filter(|v| {
            v.get("status")
                .and_then(Value::as_u64)
                .is_some_and(|s| (200..300).contains(&s))
        })
        .map(|v| {
            let s = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            ledger_key(&s("id"), &s("to"), &s("body_sha256"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_select_by_rule_player_kind_and_time() {
        let e = json!({"id": "a", "kind": "refused", "player": "web", "time_ms": 1000,
            "violations": [{"rule": "type"}, {"rule": "required"}]});
        assert!(Filter::default().keeps(&e));
        let f = |f: Filter| f.keeps(&e);
        assert!(f(Filter {
            rule: Some("required".into()),
            ..Default::default()
        }));
        assert!(!f(Filter {
            rule: Some("enum".into()),
            ..Default::default()
        }));
        assert!(!f(Filter {
            player: Some("tv".into()),
            ..Default::default()
        }));
        assert!(f(Filter {
            kind: Some("refused".into()),
            since_ms: Some(1000),
            until_ms: Some(1000),
            ..Default::default()
        }));
        assert!(!f(Filter {
            since_ms: Some(1001),
            ..Default::default()
        }));
    }

    #[test]
    fn times_are_epoch_milliseconds_or_ages() {
        assert_eq!(parse_time("1700000000000", 0), Some(1_700_000_000_000));
        assert_eq!(parse_time("15m", 1_000_000), Some(100_000));
        assert_eq!(parse_time("2h", 1_000), Some(0));
        assert_eq!(parse_time("3x", 1_000), None);
        assert_eq!(parse_time("", 1_000), None);
    }

    #[test]
    fn files_come_oldest_first_and_torn_lines_are_skipped() {
        let dir = std::env::temp_dir().join(format!("mediagate-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("quarantine-0000000000002-000002.jsonl"),
            "{\"id\":\"b\"}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("quarantine-0000000000001-000001.jsonl"),
            "{\"id\":\"a\"}\n",
        )
        .unwrap();
        std::fs::write(dir.join(SPOOL_CURRENT), "{\"id\":\"c\"}\n{\"id\":\"d").unwrap();
        let read = read(&dir, &Filter::default()).unwrap();
        let ids: Vec<&str> = read.entries.iter().map(|e| e.str("id")).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(read.skipped, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
