use super::*;

fn parse_ok(text: &str) -> Config {
    parse(text, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> String {
    parse(text, &|_| None)
        .expect_err("configuration should be refused")
        .to_string()
}

const MINIMAL: &str = "[[upstream]]\nurl = \"http://127.0.0.1:8081\"\n";

#[test]
fn a_minimal_file_takes_the_documented_defaults() {
    let c = parse_ok(MINIMAL);
    assert_eq!(c.server.listen, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(c.server.max_body_bytes, 1024 * 1024);
    assert_eq!(c.admin_listen, "127.0.0.1:9090".parse().unwrap());
    assert_eq!(c.validation.mode, Mode::Enforce);
    assert_eq!(c.validation.policies, Policies::default());
    assert_eq!(c.upstreams[0].name, "127.0.0.1:8081");
    assert_eq!(c.upstreams[0].authority, "127.0.0.1:8081");
    assert!(c.emulator.is_none());
    assert!(c.location.absolute_base.is_none());
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let e = parse_err(&format!("[server]\nlisen = \"0.0.0.0:1\"\n{MINIMAL}"));
    assert!(e.contains("lisen"), "{e}");
    let e = parse_err(&format!("{MINIMAL}wieght = 3\n"));
    assert!(e.contains("wieght"), "{e}");
    let e = parse_err(&format!("[validaton]\nmode = \"off\"\n{MINIMAL}"));
    assert!(e.contains("validaton"), "{e}");
}

#[test]
fn bad_values_name_their_key() {
    for (text, key) in [
        ("[server]\nlisten = \"localhost:80\"\n", "[server] listen"),
        ("[admin]\nlisten = \"nope\"\n", "[admin] listen"),
        ("[validation]\nmode = \"strict\"\n", "mode"),
        ("[server]\nmax_body_bytes = 0\n", "max_body_bytes"),
        ("[server]\nabsolute_location = true\n", "absolute_location"),
        ("[log]\nlevel = \"loud\"\n", "[log] level"),
    ] {
        let e = parse_err(&format!("{text}{MINIMAL}"));
        assert!(e.contains(key), "expected {key:?} in {e:?}");
    }
    let e = parse_err("[[upstream]]\nurl = \"ftp://x\"\n");
    assert!(e.contains("[[upstream]] #1 url"), "{e}");
    let e = parse_err("[[upstream]]\nurl = \"http://x/base\"\n");
    assert!(e.contains("path"), "{e}");
    let e = parse_err("[server]\nlisten = \"127.0.0.1:1\"\n");
    assert!(e.contains("[[upstream]]"), "{e}");
}

#[test]
fn https_upstreams_drop_the_default_port_from_the_host_header() {
    let c = parse_ok("[[upstream]]\nurl = \"https://Collector.Example.com\"\nname = \"adobe\"\n");
    let u = &c.upstreams[0];
    assert!(u.tls);
    assert_eq!((u.host.as_str(), u.port), ("Collector.Example.com", 443));
    assert_eq!(u.authority, "collector.example.com");
}

#[test]
fn absolute_locations_use_public_url() {
    let c = parse_ok(&format!(
        "[server]\npublic_url = \"https://collect.example.com/\"\nabsolute_location = true\n{MINIMAL}"
    ));
    assert_eq!(
        c.location.absolute_base.as_deref(),
        Some("https://collect.example.com")
    );
    assert_eq!(
        c.location.own_authorities,
        vec!["collect.example.com".to_string()]
    );
}

#[test]
fn env_placeholders_must_resolve() {
    let text = format!(
        "[enrich.session_params.always]\n\"analytics.reportSuite\" = \"${{env:RSID}}\"\n{MINIMAL}"
    );
    let e = parse_err(&text);
    assert!(
        e.contains("RSID") && e.contains("analytics.reportSuite"),
        "{e}"
    );
    assert!(parse(&text, &|k| (k == "RSID").then(|| "r".into())).is_ok());
}
