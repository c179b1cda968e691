//! TLS on both sides: a gateway whose listener speaks TLS, reached by a second gateway through an
//! `https://` upstream verified against a custom CA (SNI and certificate checks by rustls).
//! The certificates in `tests/fixtures/tls/` are test-only (CA key discarded, valid 100 years).

use testkit::{sid_of, toml, Gateway, Options};

const SESSION_START: &[u8] = include_bytes!("fixtures/session-start.json");

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn tls_gateway() -> Gateway {
    Gateway::start(Options {
        server: toml(&format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"",
            fixture("server.pem"),
            fixture("server.key")
        )),
        ..Options::default()
    })
}

#[test]
fn an_https_upstream_verified_with_a_custom_ca() {
    let inner = tls_gateway();
    let outer = Gateway::start(Options {
        upstreams: vec![toml(&format!(
            "name = \"tls\"\nurl = \"https://127.0.0.1:{}\"\nca_file = \"{}\"",
            inner.addr.port(),
            fixture("ca.pem")
        ))],
        ..Options::default()
    });
    let r = outer.post("/api/v1/sessions", SESSION_START);
    assert_eq!(r.status, 201, "{}", r.text());
    let sid = sid_of(r.header("location").unwrap()).to_owned();
    let seen = inner.emulator_session(&sid);
    assert_eq!(
        seen["headers"][0]["x-forwarded-proto"], "https",
        "the inner gateway was reached over TLS"
    );
}

#[test]
fn an_upstream_certificate_that_does_not_verify_is_a_502() {
    let inner = tls_gateway();
    // No ca_file: the system roots do not know the test CA.
    let outer = Gateway::start(Options {
        upstreams: vec![toml(&format!(
            "name = \"tls\"\nurl = \"https://127.0.0.1:{}\"",
            inner.addr.port()
        ))],
        ..Options::default()
    });
    let r = outer.post("/api/v1/sessions", SESSION_START);
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(
        outer.metric_when(
            "mediagate_upstream_errors_total{kind=\"tls\",upstream=\"tls\"}",
            |v| v >= 1.0
        ) >= 1.0
    );
}

#[test]
fn tls_files_are_checked_by_check() {
    let dir = testkit::scratch_dir("tls-check");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[server]\ntls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n[[upstream]]\nurl = \"http://127.0.0.1:1\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(testkit::binary())
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls_cert"));
}
