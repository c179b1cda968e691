//! One quarantine entry, built from a call the gateway refused (or forwarded with violations, or
//! failed upstream): a JSON object with the call's reason and its body, identity params handled
//! before anything is written (`docs/data-quality.md`, "Privacy"). Pure: no clock, no I/O.
//!
//! The body kept is the one the gateway would have forwarded (enrichment applied, so a param a
//! privacy rule hashes is hashed exactly as forwarding hashes it, and one it removes is gone).
//! Identity params left in clear are then hashed with the privacy rules' secret when there is one,
//! or redacted, unless `keep_identity` is on. An entry whose body is exactly what forwarding would
//! have sent is `replayable`; any other (a quarantine hash or a redaction, a body that is not JSON
//! or was too large to keep, a call forwarded already) is not, and says why.

use serde::Serialize;
use std::ops::Range;

/// Identity params of a `sessionStart` (`docs/api-rules.md` §4.3), besides those the privacy
/// rules name.
pub const IDENTITY: [&str; 5] = [
    "analytics.visitorId",
    "analytics.aid",
    "visitor.marketingCloudUserId",
    "visitor.customerIDs",
    "appInstallationId",
];

/// Why an entry was written (the `kind` label of `mediagate_quarantined_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Refused by validation or a session rule: never reached the upstream.
    Refused,
    /// Forwarded with violations (`report` mode): an example, not replayable.
    Reported,
    /// Forwarded, and the upstream failed (502, 503, 504).
    UpstreamFailed,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Refused, Kind::Reported, Kind::UpstreamFailed];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Refused => "refused",
            Kind::Reported => "reported",
            Kind::UpstreamFailed => "upstream_failed",
        }
    }
}

/// One violation of the call, as error bodies list them.
#[derive(Clone, Debug, Serialize)]
pub struct Violation {
    pub path: String,
    pub rule: String,
    pub detail: String,
}

/// What the pipeline knows of the call.
pub struct Call<'a> {
    pub kind: Kind,
    pub id: &'a str,
    pub time_ms: u64,
    pub route: &'static str,
    /// The request's path as the player sent it.
    pub path: &'a str,
    /// Where it went, or would have gone, upstream (an events call: the owner's own sid).
    pub upstream_path: &'a str,
    /// The outward session id of an events call.
    pub sid: Option<&'a str>,
    pub status: u16,
    pub player: &'a str,
    pub sdk: &'a str,
    pub violations: Vec<Violation>,
    /// Allow-listed request headers (names lower-case).
    pub headers: Vec<(String, String)>,
    /// The body the gateway would have forwarded (enriched, when it is JSON).
    pub body: &'a [u8],
    /// Refused by a session rule (not by validation).
    pub session_rule: bool,
}

/// How identity params and bodies are kept.
pub struct Policy<'a> {
    pub keep_identity: bool,
    pub keep_bodies: bool,
    pub max_body_bytes: usize,
    /// Params the privacy rules name (remove or hash): protected like identity params.
    pub handled: &'a [String],
    /// Params `privacy.hash` hashes: a value it hashed (64 hex digits) is kept as it is.
    pub hashed: &'a [String],
    /// The privacy rules' hash (HMAC-SHA256, hex), when a secret is configured.
    pub hash: Option<&'a (dyn Fn(&str) -> String + Sync)>,
}

#[derive(Serialize)]
struct Entry<'a> {
    id: &'a str,
    time_ms: u64,
    kind: Kind,
    status: u16,
    route: &'static str,
    path: &'a str,
    upstream_path: &'a str,
    sid: Option<&'a str>,
    player: &'a str,
    sdk: &'a str,
    violations: &'a [Violation],
    headers: serde_json::Map<String, serde_json::Value>,
    replayable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_replayable: Option<&'static str>,
    /// `kept`, `hashed` (by the quarantine), `redacted`, or `none` (no identity param in clear).
    identity: &'static str,
    body_bytes: usize,
    body_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_text: Option<String>,
    // `body`, JSON checked already, is spliced in after serialization (not parsed a third time).
}

/// The entry's JSON line, and whether it can be replayed.
pub fn build(call: &Call<'_>, policy: &Policy<'_>) -> (Vec<u8>, bool) {
    let sha = sha256_hex(call.body);
    let mut not_replayable = match (call.kind, call.session_rule) {
        (Kind::Reported, _) => Some("forwarded already (report mode)"),
        (_, true) => Some("refused by a session rule: the backend's session is closed (or the playhead out of its range), replaying would feed a dead session"),
        _ => None,
    };
    let violations: Vec<Violation> = call.violations.iter().map(|v| listed(v, policy)).collect();
    let mut identity = "none";
    let (body, body_text) = if call.body.len() > policy.max_body_bytes {
        not_replayable = Some("the body was larger than [quarantine] max_body_bytes");
        (None, None)
    } else {
        match protect(call.body, policy) {
            Some(Protected::Unreadable) => {
                identity = "redacted";
                not_replayable =
                    Some("part of the body could not be read back: kept as its hash only");
                (None, None)
            }
            Some(Protected::Kept(text, how)) => {
                identity = how;
                if how == "hashed" || how == "redacted" {
                    not_replayable = not_replayable.or(Some(match how {
                        "hashed" => "identity params were hashed for the quarantine",
                        _ => "identity params were redacted",
                    }));
                }
                (Some(text), None)
            }
            None => {
                not_replayable = not_replayable.or(Some("the body is not JSON"));
                let text = policy
                    .keep_bodies
                    .then(|| String::from_utf8_lossy(call.body).into_owned());
                (None, text)
            }
        }
    };
    let headers = call
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let replayable = not_replayable.is_none() && body.is_some();
    // A body kept must be one JSON value on one line: the scanner accepted it, and edits only
    // swapped string values for strings; a raw newline cannot occur outside a string in JSON
    // text the scanner accepts, but whitespace between tokens may hold one.
    let body = body.map(|b| match b.contains('\n') || b.contains('\r') {
        true => b.replace(['\n', '\r'], " "),
        false => b,
    });
    let entry = Entry {
        id: call.id,
        time_ms: call.time_ms,
        kind: call.kind,
        status: call.status,
        route: call.route,
        path: call.path,
        upstream_path: call.upstream_path,
        sid: call.sid,
        player: call.player,
        sdk: call.sdk,
        violations: &violations,
        headers,
        replayable,
        not_replayable,
        identity,
        body_bytes: call.body.len(),
        body_sha256: sha,
        body_text,
    };
    // Serializing strings, numbers and maps of strings cannot fail.
    let mut line = serde_json::to_vec(&entry).unwrap_or_default();
    if let (Some(body), Some(b'}')) = (&body, line.last()) {
        line.pop();
        line.extend_from_slice(b",\"body\":");
        line.extend_from_slice(body.as_bytes());
        line.push(b'}');
    }
    (line, replayable)
}

/// How deep the walk goes; a body nested deeper is kept as its hash only.
const MAX_DEPTH: usize = 128;

/// What [`protect`] made of a JSON body.
enum Protected {
    /// The text to keep, and how identity params were handled.
    Kept(String, &'static str),
    /// Some part could not be read back (a key that does not decode, nesting too deep): the
    /// body is kept as its hash only, since nothing proves it holds no identity param.
    Unreadable,
}

/// Whether `key` names a param the quarantine protects: an identity param, or one the privacy
/// rules name.
fn is_identity(key: &str, policy: &Policy<'_>) -> bool {
    IDENTITY.contains(&key) || policy.handled.iter().any(|h| h == key)
}

/// Whether `value` of `key` is what `privacy.hash` made of it (64 hex digits): forwarding
/// handled it, and hashing it again would break a replay.
fn hashed_by_rules(key: &str, value: json::Raw<'_>, policy: &Policy<'_>) -> bool {
    policy.hashed.iter().any(|h| h == key)
        && json::as_str(value).is_some_and(|v| {
            v.len() == 64
                && v.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// The JSON body with every identity param protected wherever it is (keys compared decoded,
/// every object and array walked), and how (`None`: not JSON).
fn protect(body: &[u8], policy: &Policy<'_>) -> Option<Protected> {
    let text = std::str::from_utf8(body).ok()?;
    let raw = json::parse_body(body).ok()?;
    let mut walk = Walk {
        text,
        policy,
        edits: Vec::new(),
        how: "none",
        unreadable: false,
    };
    walk.value(raw, 0);
    if walk.unreadable {
        return Some(Protected::Unreadable);
    }
    let Walk { mut edits, how, .. } = walk;
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (range, replacement) in &edits {
        out.push_str(&text[at..range.start]);
        out.push_str(replacement);
        at = range.end;
    }
    out.push_str(&text[at..]);
    Some(Protected::Kept(out, how))
}

struct Walk<'t, 'p> {
    text: &'t str,
    policy: &'p Policy<'p>,
    edits: Vec<(Range<usize>, String)>,
    how: &'static str,
    unreadable: bool,
}

impl Walk<'_, '_> {
    fn value(&mut self, raw: json::Raw<'_>, depth: usize) {
        if depth > MAX_DEPTH {
            self.unreadable = true;
            return;
        }
        match raw.kind() {
            json::Kind::Object => {
                let Some(object) = json::Object::parse(raw) else {
                    self.unreadable = true;
                    return;
                };
                for m in &object.members {
                    if is_identity(&m.key, self.policy) {
                        self.identity(&m.key, m.value);
                    } else {
                        self.value(m.value, depth + 1);
                    }
                }
            }
            json::Kind::Array => match json::parse_array(raw) {
                Some(items) => {
                    for item in items {
                        self.value(item, depth + 1);
                    }
                }
                None => self.unreadable = true,
            },
            _ => {}
        }
    }

    fn identity(&mut self, key: &str, value: json::Raw<'_>) {
        let policy = self.policy;
        if hashed_by_rules(key, value, policy) {
            return;
        }
        if policy.keep_identity {
            self.how = "kept";
            return;
        }
        let text = value.get();
        let replacement = match policy.hash {
            Some(hash) => {
                self.how = "hashed";
                let plain = json::as_str(value).map_or_else(|| text.to_owned(), |s| s.into_owned());
                format!("\"{}\"", hash(&plain))
            }
            None => {
                if self.how != "hashed" {
                    self.how = "redacted";
                }
                "\"[redacted]\"".to_owned()
            }
        };
        self.edits
            .push((json::span_in(self.text, text), replacement));
    }
}

/// `v` as the entry lists it: a detail that may quote an identity param's value is withheld.
fn listed(v: &Violation, policy: &Policy<'_>) -> Violation {
    let names_identity = v
        .path
        .split('/')
        .any(|part| is_identity(&part.replace("~1", "/").replace("~0", "~"), policy));
    Violation {
        path: v.path.clone(),
        rule: v.rule.clone(),
        detail: match names_identity && !policy.keep_identity {
            true => "(withheld: the detail may quote an identity param)".to_owned(),
            false => v.detail.clone(),
        },
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    enrich::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<'a>(body: &'a [u8], kind: Kind) -> Call<'a> {
        Call {
            kind,
            id: "r1",
            time_ms: 7,
            route: "/api/v1/sessions",
            path: "/api/v1/sessions",
            upstream_path: "/api/v1/sessions",
            sid: None,
            status: 400,
            player: "web",
            sdk: "js-3",
            violations: vec![Violation {
                path: "/params/media.length".into(),
                rule: "type".into(),
                detail: "expected a number".into(),
            }],
            headers: vec![("user-agent".into(), "test".into())],
            body,
            session_rule: false,
        }
    }

    fn policy<'a>(hash: Option<&'a (dyn Fn(&str) -> String + Sync)>) -> Policy<'a> {
        Policy {
            keep_identity: false,
            keep_bodies: false,
            max_body_bytes: 65536,
            handled: &[],
            hashed: &[],
            hash,
        }
    }

    fn parse(line: &[u8]) -> serde_json::Value {
        serde_json::from_slice(line).unwrap()
    }

    const START: &[u8] = br#"{"eventType":"sessionStart","params":{"analytics.visitorId":"vid-1","visitor.customerIDs":{"crm":{"id":"c-9"}},"media.length":"12"}}"#;

    #[test]
    fn identity_is_redacted_without_a_secret_and_hashed_with_one() {
        let (line, replayable) = build(&call(START, Kind::Refused), &policy(None));
        let e = parse(&line);
        assert!(!replayable);
        assert_eq!(e["identity"], "redacted");
        assert_eq!(e["not_replayable"], "identity params were redacted");
        assert_eq!(e["body"]["params"]["analytics.visitorId"], "[redacted]");
        assert_eq!(e["body"]["params"]["visitor.customerIDs"], "[redacted]");
        assert_eq!(
            e["body"]["params"]["media.length"], "12",
            "the rest as received"
        );
        let text = String::from_utf8_lossy(&line);
        assert!(!text.contains("vid-1") && !text.contains("c-9"), "{text}");

        let hash = |v: &str| format!("h({})", v.len());
        let (line, replayable) = build(&call(START, Kind::Refused), &policy(Some(&hash)));
        let e = parse(&line);
        assert!(!replayable);
        assert_eq!(e["identity"], "hashed");
        assert_eq!(e["body"]["params"]["analytics.visitorId"], "h(5)");
        assert_eq!(e["violations"][0]["rule"], "type");
        assert_eq!(e["headers"]["user-agent"], "test");
    }

    #[test]
    fn params_the_privacy_rules_handled_and_opted_in_identity_stay_replayable() {
        // What forwarding made of the start: visitorId hashed, customerIDs removed.
        let hashed_start = format!(
            r#"{{"eventType":"sessionStart","params":{{"analytics.visitorId":"{}","media.length":"12"}}}}"#,
            "ab12".repeat(16)
        );
        let names = vec![
            "analytics.visitorId".to_owned(),
            "visitor.customerIDs".to_owned(),
        ];
        let hashed = vec!["analytics.visitorId".to_owned()];
        let p = Policy {
            handled: &names,
            hashed: &hashed,
            ..policy(None)
        };
        let (line, replayable) = build(&call(hashed_start.as_bytes(), Kind::Refused), &p);
        assert!(replayable, "{}", String::from_utf8_lossy(&line));
        assert_eq!(parse(&line)["identity"], "none");
        assert_eq!(
            parse(&line)["body"]["params"]["analytics.visitorId"],
            "ab12".repeat(16)
        );
        // A param on the hash list that enrichment did not hash (not a string, or elsewhere
        // than a start's params) is protected like any identity param.
        let (line, replayable) = build(&call(START, Kind::Refused), &p);
        assert!(!replayable);
        assert!(!String::from_utf8_lossy(&line).contains("vid-1"));
        let keep = Policy {
            keep_identity: true,
            ..policy(None)
        };
        let (line, replayable) = build(&call(START, Kind::Refused), &keep);
        assert!(replayable);
        assert_eq!(
            parse(&line)["body"]["params"]["analytics.visitorId"],
            "vid-1"
        );
        // An example of report mode is never replayable.
        let (_, replayable) = build(&call(START, Kind::Reported), &keep);
        assert!(!replayable);
    }

    #[test]
    fn identity_params_are_found_wherever_and_however_they_are_written() {
        for body in [
            // An escaped key: the same key once decoded.
            r#"{"eventType":"sessionStart","params":{"analytics\u002evisitorId":"vid-1"}}"#,
            // A downloaded batch, nested.
            r#"[[{"eventType":"sessionStart","params":{"analytics.visitorId":"vid-1"}}]]"#,
            // A second params object, and one in an event that is not a start.
            r#"{"eventType":"play","params":{},"params":{"analytics.aid":"vid-1"}}"#,
            // Anywhere else.
            r#"{"eventType":"sessionStart","customMetadata":{"x":{"appInstallationId":"vid-1"}}}"#,
        ] {
            let (line, replayable) = build(&call(body.as_bytes(), Kind::Refused), &policy(None));
            let text = String::from_utf8_lossy(&line);
            assert!(!text.contains("vid-1"), "{body} → {text}");
            assert!(!replayable);
        }
        // A key that does not decode: nothing proves the rest holds no identity param.
        let body = br#"{"params":{"\udc00":1,"analytics.visitorId":"vid-1"}}"#;
        let (line, replayable) = build(&call(body, Kind::Refused), &policy(None));
        let e = parse(&line);
        if e.get("body").is_some() {
            assert!(!String::from_utf8_lossy(&line).contains("vid-1"));
        } else {
            assert_eq!(e["identity"], "redacted");
        }
        assert!(!replayable);
    }

    #[test]
    fn details_that_may_quote_an_identity_param_are_withheld() {
        let mut c = call(START, Kind::Refused);
        c.violations = vec![Violation {
            path: "/params/analytics.visitorId".into(),
            rule: "type".into(),
            detail: "expected a string, got the number 4711081512".into(),
        }];
        let (line, _) = build(&c, &policy(None));
        let text = String::from_utf8_lossy(&line);
        assert!(!text.contains("4711081512"), "{text}");
        assert_eq!(parse(&line)["violations"][0]["rule"], "type");
        c.session_rule = true;
        c.body = br#"{"eventType":"ping","playerTime":{"playhead":1,"ts":2}}"#;
        let (line, replayable) = build(&c, &policy(None));
        assert!(!replayable);
        assert!(parse(&line)["not_replayable"]
            .as_str()
            .is_some_and(|r| r.contains("session rule")));
    }

    #[test]
    fn a_pretty_printed_body_is_kept_on_one_line() {
        let pretty =
            b"{\n  \"eventType\": \"ping\",\r\n  \"playerTime\": {\"playhead\": 1, \"ts\": 2}\n}\n";
        let (line, replayable) = build(&call(pretty, Kind::Refused), &policy(None));
        assert!(replayable);
        assert!(!line.contains(&b'\n'), "{}", String::from_utf8_lossy(&line));
        let e = parse(&line);
        assert_eq!(e["body"]["playerTime"]["ts"], 2);
        assert_eq!(e["body_bytes"], pretty.len());
    }

    #[test]
    fn bodies_that_are_not_json_or_too_large_are_kept_as_their_hash() {
        let (line, replayable) = build(&call(b"visitorId=vid-1&x", Kind::Refused), &policy(None));
        let e = parse(&line);
        assert!(!replayable);
        assert!(e.get("body").is_none() && e.get("body_text").is_none());
        assert_eq!(e["body_bytes"], 17);
        assert_eq!(e["body_sha256"].as_str().map(str::len), Some(64));
        let small = Policy {
            max_body_bytes: 10,
            ..policy(None)
        };
        let (line, _) = build(&call(START, Kind::Refused), &small);
        let e = parse(&line);
        assert!(e.get("body").is_none());
        assert_eq!(
            e["not_replayable"],
            "the body was larger than [quarantine] max_body_bytes"
        );
    }
}
