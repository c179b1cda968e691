use super::*;
use mcapi::{check, Endpoint};

const SESSION_START: &str = include_str!("../../../tests/fixtures/session-start.json");
const AD_START: &str = include_str!("../../../tests/fixtures/vod/03-events-adStart.json");
const PING: &str = include_str!("../../../tests/fixtures/ping.json");

fn env(k: &str) -> Option<String> {
    match k {
        "RSID" => Some("rsid-from-env".into()),
        "SECRET" => Some("0123456789abcdef-secret".into()),
        _ => None,
    }
}

fn rules(toml_src: &str) -> Rules {
    let file: file::Enrich = toml::from_str(toml_src).unwrap();
    Rules::compile(&file, &Policies::default(), &env).unwrap_or_else(|e| panic!("{e}"))
}

fn refused(toml_src: &str) -> String {
    let file: file::Enrich = toml::from_str(toml_src).unwrap();
    Rules::compile(&file, &Policies::default(), &env)
        .expect_err("the rules should be refused")
        .to_string()
}

fn headers_with(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, v.parse().unwrap());
    }
    h
}

fn enrich_with(
    set: &RuleSet,
    endpoint: Endpoint,
    body: &str,
    headers: &HeaderMap,
) -> Option<(String, Applied)> {
    let checked = check(endpoint, body.as_bytes(), &Policies::default(), 0);
    assert!(checked.is_valid(), "{:?}", checked.violations);
    let doc = checked.document.as_ref().unwrap();
    let ctx = Context {
        client_ip: Some("198.51.100.9".parse().unwrap()),
        request_id: "rid-42",
        received_at_ms: 0,
        headers,
    };
    set.enrich_body(body, doc, &ctx).map(|(b, a)| {
        let text = String::from_utf8(b).unwrap();
        assert!(
            check(endpoint, text.as_bytes(), &Policies::default(), 0).is_valid(),
            "enrichment made the body invalid: {text}"
        );
        (text, a)
    })
}

fn enrich(r: &Rules, endpoint: Endpoint, body: &str) -> Option<String> {
    enrich_with(r.select(None, "/"), endpoint, body, &HeaderMap::new()).map(|(b, _)| b)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap()
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
    let params = &json(&out)["params"];
    assert_eq!(params["analytics.reportSuite"], "rsid-from-env");
    assert_eq!(params["media.streamType"], "video");
    assert_eq!(params["visitor.marketingCloudOrgId"], "ORG@AdobeOrg");
    assert_eq!(params["media.name"], "198.51.100.9/rid-42");
    assert_eq!(params["media.length"], serde_json::json!(60.39333333333333));
    let before = SESSION_START.split("\"params\"").next().unwrap();
    assert!(
        out.starts_with(before),
        "everything before params is copied verbatim"
    );
    let after = SESSION_START.split_once("\"customMetadata\"").unwrap().1;
    assert!(
        out.ends_with(after),
        "everything after params is copied verbatim"
    );
}

#[test]
fn only_session_starts_get_params_in_batches() {
    let r = rules("[session_params.always]\n\"analytics.reportSuite\" = \"x\"");
    let batch = format!("[{SESSION_START},{{\"eventType\":\"play\",\"playerTime\":{{\"playhead\":0,\"ts\":1509045324154}}}}]");
    let out = enrich(&r, Endpoint::Downloaded, &batch).unwrap();
    let v = json(&out);
    assert_eq!(v[0]["params"]["analytics.reportSuite"], "x");
    assert!(v[1].get("params").is_none());
    assert_eq!(enrich(&r, Endpoint::Events, PING), None);
}

#[test]
fn custom_metadata_comes_from_the_request_where_the_api_allows_it() {
    let r = rules(
        r#"[custom_metadata]
"geoCountry" = "${header:cf-ipcountry}"
"uaFamily" = "${ua_family}"
"gatewayRegion" = "eu-west""#,
    );
    let h = headers_with(&[
        ("cf-ipcountry", "DE"),
        (
            "user-agent",
            "Mozilla/5.0 (X11) Gecko/20100101 Firefox/128.0",
        ),
    ]);
    let set = r.select(None, "/");
    let (out, applied) = enrich_with(set, Endpoint::Sessions, SESSION_START, &h).unwrap();
    let cm = &json(&out)["customMetadata"];
    assert_eq!(cm["geoCountry"], "DE");
    assert_eq!(cm["uaFamily"], "firefox");
    assert_eq!(cm["myCustomData"], "a", "the player's entries stay");
    assert_eq!(applied.custom_metadata_set, 3);
    // adStart allows customMetadata: added there too.
    let (out, _) = enrich_with(set, Endpoint::Events, AD_START, &h).unwrap();
    assert_eq!(json(&out)["customMetadata"]["gatewayRegion"], "eu-west");
    assert_eq!(json(&out)["customMetadata"]["adTier"], "gold");
    // A ping does not allow it: untouched.
    assert_eq!(enrich_with(set, Endpoint::Events, PING, &h), None);
    // An absent header adds nothing for that key.
    let (out, _) = enrich_with(set, Endpoint::Sessions, SESSION_START, &HeaderMap::new()).unwrap();
    assert!(json(&out)["customMetadata"].get("geoCountry").is_none());
    // A body without customMetadata gets the member.
    let bare = SESSION_START.replace(
        r#","customMetadata":{"myCustomData":"a","myCustomData2":"b"}"#,
        "",
    );
    let (out, _) = enrich_with(set, Endpoint::Sessions, &bare, &h).unwrap();
    assert_eq!(json(&out)["customMetadata"]["geoCountry"], "DE");
}

#[test]
fn custom_metadata_keys_must_be_valid_and_unreserved() {
    assert!(refused("[custom_metadata]\n\"geo-country\" = \"x\"").contains("geo-country"));
    assert!(refused("[custom_metadata]\n\"media.geo\" = \"x\"").contains("reserved"));
}

#[test]
fn identity_params_are_removed_or_hashed_with_a_secret() {
    let r = rules(
        r#"[privacy]
remove = ["analytics.visitorId"]
hash = ["media.name"]
hash_secret = "${env:SECRET}""#,
    );
    let (out, applied) = enrich_with(
        r.select(None, "/"),
        Endpoint::Sessions,
        SESSION_START,
        &HeaderMap::new(),
    )
    .unwrap();
    let params = &json(&out)["params"];
    assert!(params.get("analytics.visitorId").is_none());
    let hashed = params["media.name"].as_str().unwrap();
    assert_eq!(hashed.len(), 64);
    assert_ne!(hashed, "ClickMe");
    assert_eq!((applied.params_removed, applied.params_hashed), (1, 1));
    // Deterministic: the same value hashes the same way (reports can still count visitors).
    let (again, _) = enrich_with(
        r.select(None, "/"),
        Endpoint::Sessions,
        SESSION_START,
        &HeaderMap::new(),
    )
    .unwrap();
    assert_eq!(json(&again)["params"]["media.name"], hashed);
}

#[test]
fn privacy_rules_that_would_break_bodies_are_refused() {
    assert!(refused("[privacy]\nremove = [\"media.id\"]").contains("required"));
    assert!(refused("[privacy]\nhash = [\"analytics.visitorId\"]").contains("hash_secret"));
    assert!(
        refused("[privacy]\nhash = [\"media.length\"]\nhash_secret = \"0123456789abcdef-x\"")
            .contains("media.length")
    );
    assert!(
        refused("[privacy]\nhash = [\"analytics.visitorId\"]\nhash_secret = \"short\"")
            .contains("16")
    );
    // Removing a required param is fine when the gateway sets it itself: the player's value is
    // dropped and the gateway's sent.
    let r = rules("[privacy]\nremove = [\"visitor.marketingCloudOrgId\"]\n[session_params.always]\n\"visitor.marketingCloudOrgId\" = \"ORG@AdobeOrg\"");
    let (body, _) = enrich_with(
        r.select(None, "/"),
        Endpoint::Sessions,
        SESSION_START,
        &HeaderMap::new(),
    )
    .expect("the body changes");
    let params = &json(&body)["params"];
    assert_eq!(
        params["visitor.marketingCloudOrgId"], "ORG@AdobeOrg",
        "{body}"
    );
    assert!(check(Endpoint::Sessions, body.as_bytes(), &Policies::default(), 0).is_valid());
    // if_absent can never apply to a removed param: refused.
    assert!(refused("[privacy]\nremove = [\"analytics.visitorId\"]\n[session_params.if_absent]\n\"analytics.visitorId\" = \"x\"")
        .contains("if_absent"));
}

#[test]
fn a_rule_that_would_make_the_body_invalid_is_refused() {
    let err = refused("[session_params.always]\n\"media.length\" = \"long\"");
    assert!(err.contains("media.length"), "{err}");
    assert!(
        refused("[session_params.always]\n\"media.downloaded\" = true")
            .contains("media.downloaded")
    );
}

#[test]
fn sites_are_chosen_by_host_and_path_prefix_and_amend_the_defaults() {
    let r = rules(
        r#"[session_params.always]
"analytics.trackingServer" = "shared.sc.omtrdc.net"
"analytics.reportSuite" = "default-rsid"

[[site]]
name = "kids"
host = "kids.example.com"
[site.session_params.always]
"analytics.reportSuite" = "kids-rsid"

[[site]]
name = "radio"
path_prefix = "/radio/"
[site.session_params.if_absent]
"analytics.reportSuite" = "radio-rsid""#,
    );
    assert_eq!(
        r.select(Some("KIDS.example.com:443"), "/api/v1/sessions")
            .name,
        "kids"
    );
    assert_eq!(
        r.select(Some("www.example.com"), "/radio/api/v1/sessions")
            .name,
        "radio"
    );
    assert_eq!(
        r.select(Some("www.example.com"), "/api/v1/sessions").name,
        "default"
    );
    assert_eq!(r.select(None, "/").name, "default");
    let params = |site: &RuleSet| {
        let (out, _) =
            enrich_with(site, Endpoint::Sessions, SESSION_START, &HeaderMap::new()).unwrap();
        json(&out)["params"].clone()
    };
    let kids = params(r.select(Some("kids.example.com"), "/"));
    assert_eq!(kids["analytics.reportSuite"], "kids-rsid");
    assert_eq!(
        kids["analytics.trackingServer"], "shared.sc.omtrdc.net",
        "defaults still apply"
    );
    // The radio site only fills the suite in: the fixture's own one stays.
    let radio = params(r.select(None, "/radio/x"));
    assert_eq!(radio["analytics.reportSuite"], "example-rsid");
    assert!(refused("[[site]]\nname = \"x\"").contains("host"));
    assert!(refused("[[site]]\nname = \"default\"\nhost = \"a\"").contains("name"));
}

#[test]
fn client_ip_and_request_id_trust_only_configured_proxies() {
    let r = rules("trusted_proxies = [\"10.0.0.0/8\"]");
    let headers = headers_with(&[
        ("x-forwarded-for", "203.0.113.1, 10.1.1.1"),
        ("x-request-id", "abc"),
    ]);
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
    let headers = headers_with(&[
        ("x-forwarded-for", "203.0.113.1"),
        ("x-forwarded-proto", "https"),
    ]);
    let ctx = Context {
        client_ip: None,
        request_id: "rid",
        received_at_ms: 0,
        headers: &headers,
    };
    let out = r.upstream_headers(r.select(None, "/"), &ctx, "192.0.2.8".parse().ok(), false);
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
