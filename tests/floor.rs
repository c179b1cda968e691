//! `[bench] pass_through`, the load benchmark's floor: a call goes upstream as it came (no
//! validation, no enrichment), its answer comes back with `Location` rewritten, and nothing is
//! counted or logged.

use testkit::{request, toml, Gateway, Options, Reply, Scripted, Seen};

#[test]
fn a_call_is_relayed_unchecked_and_nothing_is_counted_or_logged() {
    let up = Scripted::start(|_: &Seen| {
        Reply::Bytes(
            b"HTTP/1.1 201 Created\r\nLocation: http://upstream.invalid/api/v1/sessions/abc\r\n\
              Content-Length: 0\r\n\r\n"
                .to_vec(),
        )
    });
    let gw = Gateway::start(Options {
        upstream: Some(up.url()),
        tables: toml(
            "[health_check]\nkind = \"off\"\n[bench]\npass_through = true\n\
             [enrich.session_params.if_absent]\n\"media.streamType\" = \"video\"\n",
        ),
        ..Options::default()
    });
    // Not a valid sessionStart: checked, it would be a 400 and never reach the upstream.
    let body = br#"{"eventType":"sessionStart"}"#;
    let r = request(
        gw.addr,
        "POST",
        "/api/v1/sessions",
        &[("Content-Type", "application/json"), ("X-Custom", "1")],
        body,
    )
    .expect("an answer");
    assert_eq!(r.status, 201, "{}", r.text());
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    let text = String::from_utf8_lossy(&seen[0]);
    assert!(text.ends_with(std::str::from_utf8(body).unwrap()), "{text}");
    let length = format!("content-length: {}\r\n", body.len());
    assert!(text.contains(&length), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("x-custom: 1\r\n"),
        "{text}"
    );
    assert!(!text.contains("x-request-id"), "no enrichment: {text}");
    let metrics = gw.metrics();
    assert!(
        !metrics.contains("mediagate_requests_total{"),
        "nothing is counted: {metrics}"
    );
    assert_eq!(gw.access_log(), "", "nothing is logged");
}
