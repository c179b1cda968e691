//! The data-quality page in a real browser: after test traffic, headless Chromium (Debian's
//! `chromium`, installed by `scripts/setup.sh test`) loads the admin listener's `/`; the figures
//! it renders must be the ones `GET /quality` gives, and a screenshot is taken. With
//! `MEDIAGATE_UPDATE_SCREENSHOT=1` the screenshot replaces `docs/images/quality-page.png`.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use testkit::{chromium, request};

const T0: i64 = 1_768_507_200_000;

/// The text of the element carrying `data-field="<field>"` (after `from`, when given).
fn field<'a>(dom: &'a str, field: &str, from: Option<&str>) -> Option<&'a str> {
    let start = match from {
        Some(anchor) => dom.find(anchor)?,
        None => 0,
    };
    let rest = &dom[start..];
    let at = rest.find(&format!("data-field=\"{field}\""))?;
    let text = &rest[at..];
    let open = text.find('>')? + 1;
    let close = text[open..].find('<')?;
    Some(&text[open..open + close])
}

fn body(player: &str, bad: bool) -> Vec<u8> {
    let mut b = fixture("session-start.json");
    b["playerTime"]["ts"] = T0.into();
    b["params"]["media.playerName"] = player.into();
    b["params"]["media.libraryVersion"] = "js-3.1.0".into();
    if bad {
        b["params"]["media.length"] = "long".into();
    }
    serde_json::to_vec(&b).expect("JSON")
}

#[test]
fn the_page_shows_what_quality_says_in_a_real_browser() {
    let gw = quarantined_gateway();
    // Test traffic: invalid starts from two players, a session that ends and is called again.
    for (player, n) in [("Acme TV", 3), ("web-player", 2)] {
        for _ in 0..n {
            assert_eq!(gw.post("/api/v1/sessions", &body(player, true)).status, 400);
        }
    }
    let r = gw.post("/api/v1/sessions", &body("web-player", false));
    assert_eq!(r.status, 201, "{}", r.text());
    let sid = testkit::sid_of(r.header("location").expect("location")).to_owned();
    accepted(&gw, &sid, &ping(T0 + 10_000, 10.0));
    let end = format!(
        r#"{{"eventType":"sessionEnd","playerTime":{{"playhead":10,"ts":{}}}}}"#,
        T0 + 11_000
    );
    accepted(&gw, &sid, end.as_bytes());
    assert_eq!(send(&gw, &sid, &ping(T0 + 30_000, 12.0)).status, 410);

    let q: Value = request(gw.admin, "GET", "/quality", &[], b"")
        .expect("quality")
        .json();
    assert_eq!(q["since_start"]["total"], 6, "{q}");

    let profile = testkit::scratch_dir("chromium");
    let url = format!("http://{}/", gw.admin);
    let out = chromium(&profile, &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dom.contains("mediagate — data quality"),
        "no page: {dom}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let n = |v: &Value| v.as_u64().expect("a count").to_string();
    assert_eq!(
        field(&dom, "hour-total", None),
        Some(n(&q["last_hour"]["total"]).as_str())
    );
    assert_eq!(
        field(&dom, "since-total", None),
        Some(n(&q["since_start"]["total"]).as_str())
    );
    assert_eq!(
        field(&dom, "calls-refused", None),
        Some(n(&q["sessions"]["calls"]["refused"]).as_str())
    );
    assert_eq!(
        field(&dom, "quarantined", None),
        Some(n(&q["quarantine"]["written"]).as_str())
    );
    for (rule, count) in q["since_start"]["by_rule"].as_object().expect("rules") {
        let row = format!("data-rule=\"{rule}\"><td>");
        assert_eq!(
            field(&dom, "since", Some(&row)),
            Some(n(count).as_str()),
            "rule {rule}"
        );
        assert_eq!(
            field(&dom, "hour", Some(&row)),
            Some(n(&q["last_hour"]["by_rule"][rule]).as_str()),
            "rule {rule}"
        );
    }
    for row in q["last_hour"]["by_player"].as_array().expect("rows") {
        let anchor = format!(
            "data-player=\"{}\" data-sdk=\"{}\" data-rule=\"{}\"",
            row["player"].as_str().expect("player"),
            row["sdk"].as_str().expect("sdk"),
            row["rule"].as_str().expect("rule")
        );
        assert_eq!(
            field(&dom, "count", Some(&anchor)),
            Some(n(&row["count"]).as_str()),
            "{anchor}"
        );
    }
    assert!(
        dom.contains("data-player=\"acme_tv\" data-sdk=\"js-3\" data-rule=\"type\""),
        "{dom}"
    );
    for e in q["examples"].as_array().expect("examples") {
        let id = e["id"].as_str().expect("id");
        assert!(
            dom.contains(&format!("href=\"/quality/examples/{id}\"")),
            "example {id}"
        );
    }
    assert!(dom.contains("<polyline"), "the chart");

    // A screenshot of the same page.
    let shot = profile.join("quality-page.png");
    let out = chromium(
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1100,1500",
            &url,
        ],
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if std::env::var_os("MEDIAGATE_UPDATE_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/images/quality-page.png");
        std::fs::create_dir_all(docs.parent().expect("docs/images")).expect("mkdir");
        std::fs::write(&docs, &png).expect("write the screenshot");
    }
    let _ = std::fs::remove_dir_all(&profile);
}
