//! A real browser as the player: a page served from another origin than the gateway (its own
//! port) drives a session the way browser SDKs do — `fetch` and `XMLHttpRequest` with JSON bodies
//! (so the browser sends CORS preflights), `Location` read through
//! `Access-Control-Expose-Headers`, the sid taken as the fifth `/`-separated segment — through the
//! gateway into the emulator, in headless Chromium; the page writes its result, the test reads it
//! from the DOM and checks the emulator got the session's calls.

use std::io::{Read, Write};
use std::net::TcpListener;
use testkit::{request, Gateway, Options};

/// Serves `page` at `/` to every connection, on a port of its own (another origin).
fn serve_page(page: String) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the page's server");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                page.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(page.as_bytes());
        }
    });
    addr
}

const PLAYER: &str = r#"<!doctype html><html><body><pre id="result">running</pre><script>
const gw = "GATEWAY";
const out = (t) => { document.getElementById("result").textContent = t; };
const start = START;
start.playerTime.ts = Date.now();
start.params["media.playerName"] = "headless-chromium";
function xhr(path, body) {
  return new Promise((resolve, reject) => {
    const r = new XMLHttpRequest();
    r.open("POST", gw + path);
    r.setRequestHeader("Content-Type", "application/json");
    r.onload = () => resolve(r.status);
    r.onerror = () => reject(new Error("xhr failed"));
    r.send(JSON.stringify(body));
  });
}
(async () => {
  try {
    const r = await fetch(gw + "/api/v1/sessions", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(start)
    });
    const location = r.headers.get("Location");
    if (r.status !== 201 || !location) { out("start " + r.status + " location " + location + " " + (await r.text())); return; }
    const sid = location.split("/")[4];
    const ping = await xhr("/api/v1/sessions/" + sid + "/events",
      { playerTime: { playhead: 10, ts: Date.now() }, eventType: "play" });
    const end = await fetch(gw + "/api/v1/sessions/" + sid + "/events", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ playerTime: { playhead: 11, ts: Date.now() }, eventType: "sessionEnd" })
    });
    const late = await fetch(gw + "/api/v1/sessions/" + sid + "/events", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ playerTime: { playhead: 12, ts: Date.now() + 1000 }, eventType: "ping" })
    });
    const error = (await late.json()).errors[0].rule;
    out(["OK", location, sid, ping, end.status, late.status, error].join(" "));
  } catch (e) { out("ERROR " + e); }
})();
</script></body></html>"#;

#[test]
fn a_browser_player_on_another_origin_drives_a_session_through_the_gateway() {
    let gw = Gateway::start(Options {
        tables: testkit::toml("[sessions]\nreorder_window_ms = 0\n"),
        ..Options::default()
    });
    let start = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/session-start.json"),
    )
    .expect("the documentation's sessionStart");
    let page = PLAYER
        .replace("GATEWAY", &format!("http://{}", gw.addr))
        .replace("START", start.trim());
    let origin = serve_page(page);
    assert_ne!(origin.port(), gw.addr.port(), "another origin");
    let profile = testkit::scratch_dir("chromium");
    let url = format!("http://{origin}/");
    let out = testkit::chromium(&profile, &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&out.stdout);
    let result = dom
        .split("<pre id=\"result\">")
        .nth(1)
        .and_then(|r| r.split("</pre>").next())
        .unwrap_or_default()
        .to_owned();
    let fields: Vec<&str> = result.split(' ').collect();
    assert_eq!(
        fields.first(),
        Some(&"OK"),
        "{result}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A relative Location, read across origins, its fifth segment the sid.
    let (location, sid) = (fields[1], fields[2]);
    assert!(location.starts_with("/api/v1/sessions/"), "{location}");
    assert_eq!(location.split('/').nth(4), Some(sid));
    assert_eq!(
        &fields[3..],
        ["204", "204", "410", "session_closed"],
        "{result}"
    );
    // The emulator got the start, the play and the end; the late ping never reached it.
    let sessions = request(gw.emulator, "GET", "/_emulator/sessions", &[], b"")
        .expect("emulator")
        .json();
    let upstream_sid = sessions["sessions"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|s| s.as_str())
        .expect("one session upstream")
        .to_owned();
    let seen = gw.emulator_session(&upstream_sid);
    let events = seen["events"].as_array().expect("events");
    assert_eq!(events.len(), 3, "{seen}");
    // Preflights were answered by the gateway (counted as 204 on the routes).
    let preflights = gw.metric_when(
        "mediagate_requests_total{route=\"/api/v1/sessions\",status=\"204\"}",
        |v| v >= 1.0,
    );
    assert!(preflights >= 1.0, "{}", gw.metrics());
    let _ = std::fs::remove_dir_all(&profile);
}
