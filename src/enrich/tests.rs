use super::*;
use crate::mcapi::{check, Endpoint};

const SESSION_START: &str = include_str!("../../tests/fixtures/session-start.json");

fn rules(toml_src: &str) -> Rules {
    let file: file::Enrich = toml::from_str(toml_src).unwrap();
    let env = |k: &str| (k == "RSID").then(|| "rsid-from-env".to_string());
    Rules::compile(&file, &Policies::default(), &env).unwrap()
}

fn enrich(rules: &Rules, endpoint: Endpoint, body: &str) -> Option<String> {
    let checked = check(endpoint, body.as_bytes(), &Policies::default(), 0);
    let doc = checked.document.as_ref().unwrap();
    let headers = HeaderMap::new();
    let ctx = Context {
        client_ip: Some("198.51.100.9".parse().unwrap()),
        request_id: "rid-42",
        received_at_ms: 0,
        headers: &headers,
    };
    rules
        .enrich_body(body, doc, &ctx)
        .map(|b| String::from_utf8(b).unwrap())
}

fn params_of(body: &str) -> serde_json::Map<String, serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["params"].as_object().unwrap().clone()
}

#[test]
fn nothing_changes_without_rules_or_when_values_match() {
    assert_eq!(enrich(&rules(""), Endpoint::Sessions, SESSION_START), None);
    let same = rules(
        r#"[session_params.if_absent]
"analytics.reportSuite" = "other"
[session_params.always]
"media.channel" = "sample-channel""#,
    );
    assert_eq!(enrich(&same, Endpoint::Sessions, SESSION_START), None);
}

#[test]
fn defaults_fill_gaps_and_overrides_win_while_the_rest_stays_byte_identical() {
    let r = rules(
        r#"[session_params.if_absent]
"analytics.reportSuite" = "ignored"
"media.streamType" = "video"
[session_params.always]
"analytics.reportSuite" = "${env:RSID}"
"visitor.marketingCloudOrgId" = "ORG@AdobeOrg"
"media.name" = "${client_ip}/${request_id}""#,
    );
    let out = enrich(&r, Endpoint::Sessions, SESSION_START).unwrap();
    let params = params_of(&out);
    assert_eq!(params["analytics.reportSuite"], "rsid-from-env");
    assert_eq!(params["media.streamType"], "video");
    assert_eq!(params["visitor.marketingCloudOrgId"], "ORG@AdobeOrg");
    assert_eq!(params["media.name"], "198.51.100.9/rid-42");
    assert_eq!(params["media.length"], serde_json::json!(60.39333333333333));
    // Everything outside params is copied verbatim.
    let before = SESSION_START.split("\"params\"").next().unwrap();
    assert!(out.starts_with(before));
    let after = SESSION_START.split_once("\"customMetadata\"").unwrap().1;
    assert!(out.ends_with(after));
    // And the result is still valid.
    assert!(check(Endpoint::Sessions, out.as_bytes(), &Policies::default(), 0).is_valid());
}

#[test]
fn only_session_starts_are_touched_in_batches() {
    let r = rules("[session_params.always]\n\"analytics.reportSuite\" = \"x\"");
    let batch = format!("[{SESSION_START},{{\"eventType\":\"play\",\"playerTime\":{{\"playhead\":0,\"ts\":1509045324154}}}}]");
    let out = enrich(&r, Endpoint::Downloaded, &batch).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["params"]["analytics.reportSuite"], "x");
    assert!(v[1].get("params").is_none());
    assert_eq!(
        enrich(
            &r,
            Endpoint::Events,
            include_str!("../../tests/fixtures/ping.json")
        ),
        None
    );
}

#[test]
fn a_rule_that_would_make_the_body_invalid_is_refused() {
    let file: file::Enrich =
        toml::from_str("[session_params.always]\n\"media.length\" = \"long\"").unwrap();
    let err = Rules::compile(&file, &Policies::default(), &|_| None).unwrap_err();
    assert!(err.contains("media.length"), "{err}");
}

#[test]
fn client_ip_and_request_id_trust_only_configured_proxies() {
    let r = rules("trusted_proxies = [\"10.0.0.0/8\"]");
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", "203.0.113.1, 10.1.1.1".parse().unwrap());
    headers.insert("x-request-id", "abc".parse().unwrap());
    let proxy: IpAddr = "10.0.0.5".parse().unwrap();
    let stranger: IpAddr = "192.0.2.8".parse().unwrap();
    assert_eq!(
        r.client_ip(Some(proxy), &headers),
        "203.0.113.1".parse().ok()
    );
    assert_eq!(r.client_ip(Some(stranger), &headers), Some(stranger));
    assert_eq!(r.incoming_request_id(Some(proxy), &headers), Some("abc"));
    assert_eq!(r.incoming_request_id(Some(stranger), &headers), None);
}

#[test]
fn forwarded_headers_append_and_name_the_scheme() {
    let r = rules("[upstream_headers]\n\"X-Region\" = \"eu\"");
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", "203.0.113.1".parse().unwrap());
    headers.insert("x-forwarded-proto", "https".parse().unwrap());
    let ctx = Context {
        client_ip: None,
        request_id: "rid",
        received_at_ms: 0,
        headers: &headers,
    };
    let out = r.upstream_headers(&ctx, "192.0.2.8".parse().ok(), false);
    let get = |n: &str| {
        out.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        get("x-forwarded-for").as_deref(),
        Some("203.0.113.1, 192.0.2.8")
    );
    // The peer is not trusted, so its X-Forwarded-Proto is replaced by the gateway's own.
    assert_eq!(get("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(get("x-request-id").as_deref(), Some("rid"));
    assert_eq!(get("x-region").as_deref(), Some("eu"));
}
