//! The admin listener's page at `/`: what `GET /quality` says, at a glance — violations over
//! the last hour per rule (an inline SVG chart), the rules and the worst players and SDK
//! versions, session outcomes, upstream health, and the last quarantined calls with links to
//! their entries. Server-rendered HTML, no script and nothing fetched from elsewhere (the admin
//! port may have no internet). Every figure carries a `data-field` attribute, so a test can read
//! the page and compare it with `/quality`. Pure: JSON in, HTML out.

use serde_json::Value;
use std::fmt::Write;

const COLOURS: [&str; 6] = [
    "#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
];

/// HTML-escapes `s`.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn text(v: &Value) -> String {
    esc(v.as_str().unwrap_or(""))
}

/// The rules of `by_rule`, largest first.
fn sorted_rules(by_rule: &Value) -> Vec<(String, u64)> {
    let mut rules: Vec<(String, u64)> = by_rule
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), num(v))).collect())
        .unwrap_or_default();
    rules.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    rules
}

/// Violations per minute over the last hour, one line per rule (the six largest).
fn chart(q: &Value) -> String {
    let (w, h, left, bottom) = (720.0f64, 180.0f64, 40.0f64, 20.0f64);
    let now_min = num(&q["now_ms"]) / 60_000;
    let minutes = q["last_hour"]["per_minute"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let rules: Vec<String> = sorted_rules(&q["last_hour"]["by_rule"])
        .into_iter()
        .take(COLOURS.len())
        .map(|(r, _)| r)
        .collect();
    let value = |rule: &str, minute: u64| -> u64 {
        minutes
            .iter()
            .find(|m| num(&m["minute_ms"]) / 60_000 == minute)
            .map_or(0, |m| num(&m["by_rule"][rule]))
    };
    let max = rules
        .iter()
        .flat_map(|r| (0..60).map(move |i| (r, now_min.saturating_sub(59 - i))))
        .map(|(r, m)| value(r, m))
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="violations per minute, last hour">"#
    );
    let _ = write!(
        svg,
        r##"<line x1="{left}" y1="{y}" x2="{w}" y2="{y}" stroke="#999"/><text x="2" y="12" font-size="10">{max}</text><text x="2" y="{y}" font-size="10">0</text><text x="{left}" y="{t}" font-size="10">-60 min</text><text x="{e}" y="{t}" font-size="10">now</text>"##,
        y = h - bottom,
        t = h - 4.0,
        e = w - 24.0
    );
    for (i, rule) in rules.iter().enumerate() {
        let points: Vec<String> = (0..60u64)
            .map(|k| {
                let x = left + (w - left) * k as f64 / 59.0;
                let v = value(rule, now_min.saturating_sub(59 - k)) as f64;
                let y = (h - bottom) - (h - bottom - 10.0) * v / max as f64;
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{p}"><title>{r}</title></polyline>"#,
            c = COLOURS[i],
            p = points.join(" "),
            r = esc(rule)
        );
    }
    svg.push_str("</svg>");
    let legend: Vec<String> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!(
                r#"<span style="color:{}">&#9632;</span> {}"#,
                COLOURS[i],
                esc(r)
            )
        })
        .collect();
    format!("{svg}<p class=\"legend\">{}</p>", legend.join(" &nbsp; "))
}

/// The whole page.
pub fn render(q: &Value) -> String {
    let mut out = String::with_capacity(16 * 1024);
    out.push_str(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mediagate — data quality</title><meta name="viewport" content="width=device-width"><style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1100px}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:9em}
.card b{display:block;font-size:1.6em}table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.bad{color:#b00}.ok{color:#080}.legend{font-size:12px;margin:.2em 0}
.muted{color:#777}</style></head><body>"#,
    );
    out.push_str("<h1>mediagate — data quality</h1>");
    let _ = write!(
        out,
        r#"<p class="muted">What the gateway refused or would have lost, and who sent it. JSON: <a href="/quality">/quality</a>. Counting since <span data-field="started" data-ms="{ms}">{}</span>; now {}.</p>"#,
        enrich::template::rfc3339_millis(num(&q["since_start"]["started_ms"])),
        enrich::template::rfc3339_millis(num(&q["now_ms"])),
        ms = num(&q["since_start"]["started_ms"])
    );

    let s = &q["sessions"];
    out.push_str(r#"<div class="cards">"#);
    for (label, field, v) in [
        (
            "violations, last hour",
            "hour-total",
            &q["last_hour"]["total"],
        ),
        (
            "violations since start",
            "since-total",
            &q["since_start"]["total"],
        ),
        ("sessions active", "sessions-active", &s["active"]),
        (
            "calls refused (sessions)",
            "calls-refused",
            &s["calls"]["refused"],
        ),
        ("calls unknown", "calls-unknown", &s["calls"]["unknown"]),
        ("quarantined", "quarantined", &q["quarantine"]["written"]),
    ] {
        let _ = write!(
            out,
            r#"<div class="card">{label}<b data-field="{field}">{}</b></div>"#,
            num(v)
        );
    }
    out.push_str("</div>");

    out.push_str("<h2>Violations per minute, last hour</h2>");
    out.push_str(&chart(q));

    out.push_str(r#"<h2>By rule</h2><table id="rules"><tr><th>rule</th><th>last hour</th><th>since start</th></tr>"#);
    for (rule, since) in sorted_rules(&q["since_start"]["by_rule"]) {
        let hour = num(&q["last_hour"]["by_rule"][&rule]);
        let _ = write!(
            out,
            r#"<tr data-rule="{r}"><td>{r}</td><td class="n" data-field="hour">{hour}</td><td class="n" data-field="since">{since}</td></tr>"#,
            r = esc(&rule)
        );
    }
    out.push_str("</table>");

    out.push_str(r#"<h2>Worst players and SDK versions, last hour</h2><table id="players"><tr><th>player</th><th>sdk</th><th>rule</th><th>violations</th></tr>"#);
    for row in q["last_hour"]["by_player"].as_array().into_iter().flatten() {
        let _ = write!(
            out,
            r#"<tr data-player="{p}" data-sdk="{s}" data-rule="{r}"><td>{p}</td><td>{s}</td><td>{r}</td><td class="n" data-field="count">{n}</td></tr>"#,
            p = text(&row["player"]),
            s = text(&row["sdk"]),
            r = text(&row["rule"]),
            n = num(&row["count"])
        );
    }
    out.push_str("</table>");

    out.push_str(
        r#"<h2>Sessions</h2><table id="sessions"><tr><th>outcome</th><th>count</th></tr>"#,
    );
    for outcome in ["judged", "unknown", "refused"] {
        let _ = write!(
            out,
            r#"<tr><td>calls {outcome}</td><td class="n" data-field="calls-{outcome}-row">{}</td></tr>"#,
            num(&s["calls"][outcome])
        );
    }
    for (reason, n) in s["closed"].as_object().into_iter().flatten() {
        let _ = write!(
            out,
            r#"<tr><td>closed: {r}</td><td class="n" data-field="closed-{r}">{}</td></tr>"#,
            num(n),
            r = esc(reason)
        );
    }
    out.push_str("</table>");

    out.push_str(
        r#"<h2>Upstreams</h2><table id="upstreams"><tr><th>upstream</th><th>state</th></tr>"#,
    );
    for u in q["upstreams"].as_array().into_iter().flatten() {
        let healthy = u["healthy"].as_bool().unwrap_or(false);
        let _ = write!(
            out,
            r#"<tr data-upstream="{n}"><td>{n}</td><td class="{c}" data-field="healthy">{t}</td></tr>"#,
            n = text(&u["name"]),
            c = if healthy { "ok" } else { "bad" },
            t = if healthy { "healthy" } else { "down" }
        );
    }
    out.push_str("</table>");

    out.push_str(r#"<h2>Last quarantined calls</h2><table id="examples"><tr><th>time (UTC)</th><th>kind</th><th>route</th><th>rules</th><th>player</th><th>sdk</th><th>replayable</th></tr>"#);
    for e in q["examples"].as_array().into_iter().flatten() {
        let rules: Vec<String> = e["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        let _ = write!(
            out,
            r#"<tr data-example="{id}" data-ms="{ms}"><td><a href="/quality/examples/{id}">{t}</a></td><td>{k}</td><td>{route}</td><td>{rules}</td><td>{p}</td><td>{s}</td><td>{rep}</td></tr>"#,
            id = text(&e["id"]),
            ms = num(&e["time_ms"]),
            t = enrich::template::rfc3339_millis(num(&e["time_ms"])),
            k = text(&e["kind"]),
            route = text(&e["route"]),
            rules = rules.join(", "),
            p = text(&e["player"]),
            s = text(&e["sdk"]),
            rep = if e["replayable"].as_bool().unwrap_or(false) {
                "yes"
            } else {
                "no"
            }
        );
    }
    out.push_str("</table>");
    let dir = q["quarantine"]["dir"].as_str().unwrap_or("");
    let _ = write!(
        out,
        r#"<p class="muted">Quarantine: {} — dropped: <span data-field="quarantine-dropped">{}</span>. List and replay with <code>mediagate quarantine</code>.</p></body></html>"#,
        if dir.is_empty() {
            "off".to_owned()
        } else {
            esc(dir)
        },
        num(&q["quarantine"]["dropped"])
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_page_shows_the_figures_escaped() {
        let q = json!({
            "now_ms": 120 * 60_000,
            "since_start": {"started_ms": 1, "total": 5, "by_rule": {"type": 4, "ad_outside_break": 1}, "by_player": []},
            "last_hour": {"total": 3, "by_rule": {"type": 3}, "per_minute": [{"minute_ms": 119 * 60_000, "by_rule": {"type": 3}}],
                "by_player": [{"player": "<b>x</b>", "sdk": "js-3", "rule": "type", "count": 3}]},
            "sessions": {"active": 2, "calls": {"judged": 7, "unknown": 1, "refused": 1}, "closed": {"session_end": 1}},
            "upstreams": [{"name": "primary", "healthy": true}],
            "quarantine": {"dir": "/var/spool/mg", "written": 2, "dropped": 0},
            "examples": [{"id": "abc", "time_ms": 5, "kind": "refused", "route": "/api/v1/sessions", "rules": ["type"], "player": "web", "sdk": "js-3", "replayable": true}],
        });
        let html = render(&q);
        assert!(html.contains(r#"data-field="hour-total">3<"#));
        assert!(html.contains(r#"data-field="since-total">5<"#));
        assert!(html.contains(r#"<tr data-rule="type"><td>type</td><td class="n" data-field="hour">3</td><td class="n" data-field="since">4</td></tr>"#));
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;") && !html.contains("<b>x</b>"));
        assert!(html.contains(r#"href="/quality/examples/abc""#));
        assert!(html.contains("<polyline"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "nothing fetched from elsewhere"
        );
    }
}
