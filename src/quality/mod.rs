//! Data quality: who sends bad data (`docs/data-quality.md`). Every validation failure and
//! session-rule finding is counted by rule and by the session's player and SDK
//! (`mediagate_violations_by_player_total{player,sdk,rule}`, labels bounded by [`labels`]), kept
//! since start and per minute over the last hour for `GET /quality` and the admin page
//! ([`page`]), with the last quarantined examples.
//!
//! **Owns** the label sets (kept for the process's life: tracked sessions hold their labels),
//! the counts and the examples. Each label is bounded, and so are the (player, sdk) pairs that
//! get counts of their own (twice `max_label_values`; later pairs count as (other, other)), so
//! the series and the per-minute maps stay within pairs × rules. **May use:** `observe::metrics`, `mcapi` and `sessions` (rule
//! names), serde_json. No I/O: time is passed in.

pub mod labels;
pub mod page;

use prometheus::IntCounterVec;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::observe::metrics::Metrics;
use labels::LabelSet;

/// Minutes kept for "the last hour".
const MINUTES: usize = 60;
/// Quarantined examples kept for the page.
const EXAMPLES: usize = 20;
/// Rows of the player table.
const TOP_PLAYERS: usize = 50;

/// One quarantined call, as the page lists it (the entry itself is kept whole for its link).
#[derive(Clone, Debug)]
pub struct Example {
    pub id: String,
    pub time_ms: u64,
    pub kind: &'static str,
    pub route: &'static str,
    pub rules: Vec<String>,
    pub player: String,
    pub sdk: String,
    pub replayable: bool,
    /// The entry's JSON, as written to the spool.
    pub entry: String,
}

/// (player, sdk, rule) labels.
type Key = (u16, u16, u16);

struct Minute {
    /// Minutes since the epoch.
    at: u64,
    by_rule: Vec<u64>,
    by_player: HashMap<Key, u64>,
}

struct Counts {
    /// The (player, sdk) pairs with counts of their own; beyond `max_pairs`, (other, other).
    pairs: std::collections::HashSet<(u16, u16)>,
    by_rule: Vec<u64>,
    by_player: HashMap<Key, u64>,
    minutes: VecDeque<Minute>,
    /// The series of `mediagate_violations_by_player_total` of each key, looked up once (a
    /// look-up by label names costs two name copies and a hash of the strings).
    series: HashMap<Key, prometheus::IntCounter>,
}

pub struct Quality {
    pub players: LabelSet,
    pub sdks: LabelSet,
    rules: Vec<&'static str>,
    rule_index: HashMap<&'static str, u16>,
    started_ms: u64,
    /// Each label is bounded, but their product would not be: the pairs are too.
    max_pairs: usize,
    counts: Mutex<Counts>,
    examples: Mutex<VecDeque<Example>>,
    by_player: IntCounterVec,
}

/// Every rule name a violation may carry: the validation rules, then the session rules.
fn rule_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = mcapi::rules::Rule::ALL.iter().map(|r| r.as_str()).collect();
    for r in sessions::Rule::ALL {
        if !names.contains(&r.as_str()) {
            names.push(r.as_str());
        }
    }
    names
}

impl Quality {
    pub fn new(
        max_label_values: usize,
        players: &[String],
        sdks: &[String],
        by_player: IntCounterVec,
        now_ms: u64,
    ) -> Quality {
        let rules = rule_names();
        let rule_index = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (*r, i as u16))
            .collect();
        Quality {
            players: LabelSet::new(max_label_values, players),
            sdks: LabelSet::new(max_label_values, sdks),
            max_pairs: (2 * max_label_values).max(10),
            counts: Mutex::new(Counts {
                pairs: std::collections::HashSet::new(),
                by_rule: vec![0; rules.len()],
                by_player: HashMap::new(),
                minutes: VecDeque::new(),
                series: HashMap::new(),
            }),
            rules,
            rule_index,
            started_ms: now_ms,
            examples: Mutex::new(VecDeque::new()),
            by_player,
        }
    }

    /// The counts `[quality]` asks for, on the shared metrics.
    pub fn of_config(cfg: &crate::config::Quality, metrics: &Metrics) -> Quality {
        Quality::new(
            cfg.max_label_values,
            &cfg.players,
            &cfg.sdks,
            metrics.violations_by_player.clone(),
            crate::io::clock::unix_ms(),
        )
    }

    /// Counts `n` violations of `rule` by the session of `player` and `sdk` at `now_ms`.
    pub fn record(&self, player: u16, sdk: u16, rule: &str, n: u64, now_ms: u64) {
        let Some(&r) = self.rule_index.get(rule) else {
            return;
        };
        let rule = self.rules[usize::from(r)];
        let minute = now_ms / 60_000;
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (player, sdk) = match c.pairs.contains(&(player, sdk)) {
            true => (player, sdk),
            false if c.pairs.len() < self.max_pairs => {
                c.pairs.insert((player, sdk));
                (player, sdk)
            }
            false => (labels::OTHER, labels::OTHER),
        };
        let key = (player, sdk, r);
        c.by_rule[usize::from(r)] += n;
        *c.by_player.entry(key).or_default() += n;
        if c.minutes.back().is_none_or(|m| m.at < minute) {
            c.minutes.push_back(Minute {
                at: minute,
                by_rule: vec![0; self.rules.len()],
                by_player: HashMap::new(),
            });
        }
        while c.minutes.len() > MINUTES
            || c.minutes
                .front()
                .is_some_and(|m| m.at + MINUTES as u64 <= minute)
        {
            c.minutes.pop_front();
        }
        if let Some(m) = c.minutes.iter_mut().rev().find(|m| m.at <= minute) {
            m.by_rule[usize::from(r)] += n;
            *m.by_player.entry(key).or_default() += n;
        }
        let series = c
            .series
            .entry(key)
            .or_insert_with(|| {
                self.by_player.with_label_values(&[
                    &self.players.name(player),
                    &self.sdks.name(sdk),
                    rule,
                ])
            })
            .clone();
        drop(c);
        series.inc_by(n);
    }

    /// Keeps a quarantined call for the page (the last few).
    pub fn example(&self, e: Example) {
        let mut ex = self.examples.lock().unwrap_or_else(|p| p.into_inner());
        if ex.len() >= EXAMPLES {
            ex.pop_front();
        }
        ex.push_back(e);
    }

    /// The entry of a kept example.
    pub fn example_entry(&self, id: &str) -> Option<String> {
        let ex = self.examples.lock().unwrap_or_else(|p| p.into_inner());
        ex.iter().find(|e| e.id == id).map(|e| e.entry.clone())
    }

    fn player_rows(&self, counts: &HashMap<Key, u64>) -> Vec<Value> {
        let mut rows: Vec<(&Key, &u64)> = counts.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        rows.into_iter()
            .take(TOP_PLAYERS)
            .map(|((p, s, r), n)| {
                json!({
                    "player": self.players.name(*p),
                    "sdk": self.sdks.name(*s),
                    "rule": self.rules[usize::from(*r)],
                    "count": n,
                })
            })
            .collect()
    }

    fn by_rule(&self, counts: &[u64]) -> Value {
        let map: serde_json::Map<String, Value> = self
            .rules
            .iter()
            .zip(counts)
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| ((*r).to_owned(), json!(n)))
            .collect();
        Value::Object(map)
    }

    /// The counts and examples, as `GET /quality` shows them (the caller adds sessions,
    /// upstreams and the quarantine's state).
    pub fn snapshot(&self, now_ms: u64) -> Value {
        let minute = now_ms / 60_000;
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let recent: Vec<&Minute> = c
            .minutes
            .iter()
            .filter(|m| m.at + MINUTES as u64 > minute)
            .collect();
        let mut hour_rules = vec![0u64; self.rules.len()];
        let mut hour_players: HashMap<Key, u64> = HashMap::new();
        for m in &recent {
            for (t, n) in hour_rules.iter_mut().zip(&m.by_rule) {
                *t += n;
            }
            for (k, n) in &m.by_player {
                *hour_players.entry(*k).or_default() += n;
            }
        }
        let per_minute: Vec<Value> = recent
            .iter()
            .map(|m| json!({"minute_ms": m.at * 60_000, "by_rule": self.by_rule(&m.by_rule)}))
            .collect();
        let since = json!({
            "started_ms": self.started_ms,
            "total": c.by_rule.iter().sum::<u64>(),
            "by_rule": self.by_rule(&c.by_rule),
            "by_player": self.player_rows(&c.by_player),
        });
        let hour = json!({
            "total": hour_rules.iter().sum::<u64>(),
            "by_rule": self.by_rule(&hour_rules),
            "by_player": self.player_rows(&hour_players),
            "per_minute": per_minute,
        });
        drop(c);
        let examples: Vec<Value> = self
            .examples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .rev()
            .map(|e| {
                json!({
                    "id": e.id, "time_ms": e.time_ms, "kind": e.kind, "route": e.route,
                    "rules": e.rules, "player": e.player, "sdk": e.sdk,
                    "replayable": e.replayable,
                })
            })
            .collect();
        json!({"now_ms": now_ms, "since_start": since, "last_hour": hour, "examples": examples})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quality() -> Quality {
        let c = IntCounterVec::new(prometheus::Opts::new("t", "t"), &["player", "sdk", "rule"])
            .unwrap();
        Quality::new(10, &[], &[], c, 0)
    }

    #[test]
    fn counts_by_rule_and_player_since_start_and_over_the_last_hour() {
        let q = quality();
        let web = q.players.label(Some("Web"));
        let js = q.sdks.label(Some("js-3"));
        let t0 = 1_000 * 60_000;
        q.record(web, js, "type", 2, t0);
        q.record(web, js, "ad_outside_break", 1, t0 + 30_000);
        q.record(web, js, "type", 1, t0 + 61 * 60_000);
        q.record(web, js, "no_such_rule", 1, t0);
        let s = q.snapshot(t0 + 61 * 60_000);
        assert_eq!(s["since_start"]["total"], 4);
        assert_eq!(s["since_start"]["by_rule"]["type"], 3);
        // The first minute has left the hour.
        assert_eq!(s["last_hour"]["total"], 1);
        assert_eq!(s["last_hour"]["by_rule"]["type"], 1);
        assert!(s["last_hour"]["by_rule"].get("ad_outside_break").is_none());
        let top = &s["since_start"]["by_player"][0];
        assert_eq!(top["player"], "web");
        assert_eq!(top["sdk"], "js-3");
        assert_eq!(top["rule"], "type");
        assert_eq!(top["count"], 3);
        assert_eq!(
            q.by_player
                .with_label_values(&["web", "js-3", "type"])
                .get(),
            3
        );
    }

    #[test]
    fn player_and_sdk_pairs_are_bounded_too() {
        let q = quality();
        for p in 0..10 {
            for s in 0..10 {
                let player = q.players.label(Some(&format!("p{p}")));
                let sdk = q.sdks.label(Some(&format!("s{s}")));
                q.record(player, sdk, "type", 1, 0);
            }
        }
        let snap = q.snapshot(0);
        let rows = snap["since_start"]["by_player"].as_array().unwrap();
        // 10 + 10 label values could make 100 pairs: 20 have their own, the rest is other × other.
        assert_eq!(rows.len(), 21, "{rows:?}");
        assert_eq!(rows[0]["player"], "other");
        assert_eq!(rows[0]["count"], 80);
        assert_eq!(snap["since_start"]["total"], 100);
    }

    #[test]
    fn examples_are_the_last_few() {
        let q = quality();
        for i in 0..30 {
            q.example(Example {
                id: format!("r{i}"),
                time_ms: i,
                kind: "refused",
                route: "/api/v1/sessions",
                rules: vec!["type".into()],
                player: "web".into(),
                sdk: "js-3".into(),
                replayable: true,
                entry: format!("{{\"id\":\"r{i}\"}}"),
            });
        }
        let s = q.snapshot(0);
        assert_eq!(s["examples"].as_array().map(Vec::len), Some(EXAMPLES));
        assert_eq!(s["examples"][0]["id"], "r29");
        assert_eq!(q.example_entry("r29").as_deref(), Some("{\"id\":\"r29\"}"));
        assert_eq!(q.example_entry("r0"), None);
    }
}
