//! Property tests of [`mcapi::check`] (and of enrichment on what it accepts), on generated bodies:
//! arbitrary JSON whose keys come from the API's vocabulary, events built from the rule table
//! (mostly valid, sometimes slightly off), batches of them, JSON with a few bytes mutated, and
//! arbitrary bytes. Every body goes to all three endpoints under several policy sets.
//!
//! Properties:
//! - `check` never panics;
//! - it reports `json` exactly when the body is not UTF-8 or not JSON by serde_json's grammar;
//! - `is_valid()` is "no error-severity violation", and `errors()` / `warnings()` split them;
//! - every violation path is a JSON Pointer (RFC 6901) that resolves in the body, or whose parent
//!   does (a missing member is reported at its would-be place);
//! - a valid body, enriched, is still JSON and still valid.
//!
//! Case counts keep the whole file under a few seconds in a debug build.

use enrich::file;
use enrich::{Context, Rules};
use http::HeaderMap;
use mcapi::rules::{self, ValueType};
use mcapi::{check, Endpoint, ErrorParams, EventType, Policies, Severity, UnknownParams};
use proptest::prelude::*;
use proptest::test_runner::Config;
use std::fmt::Write as _;
use std::sync::OnceLock;

/// 2026-01-15T20:00:00Z.
const NOW: u64 = 1_768_507_200_000;
const ENDPOINTS: [Endpoint; 3] = [Endpoint::Sessions, Endpoint::Events, Endpoint::Downloaded];

/// A JSON value with the choices of how it is written: escapes, whitespace, literal forms,
/// duplicate keys and keys that are not Unicode (an unpaired surrogate escape).
#[derive(Clone, Debug)]
enum Node {
    Null,
    Bool(bool),
    /// The literal as written (`1e400`, `-0`, `12.50`, ...).
    Num(String),
    Str(String, u8),
    Arr(Vec<Node>, u8),
    Obj(Vec<(Key, Node)>, u8),
}

#[derive(Clone, Debug)]
struct Key {
    name: String,
    style: u8,
    /// Written with an unpaired `\udc00` after `name`: no string can hold it.
    lone_surrogate: bool,
}

impl Node {
    fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Node::Null => out.push_str("null"),
            Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Node::Num(n) => out.push_str(n),
            Node::Str(s, style) => write_str(out, s, *style, false),
            Node::Arr(items, ws) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    space(out, *ws);
                    item.write(out);
                }
                space(out, *ws);
                out.push(']');
            }
            Node::Obj(members, ws) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    space(out, *ws);
                    write_str(out, &key.name, key.style, key.lone_surrogate);
                    space(out, ws / 2);
                    out.push(':');
                    space(out, *ws);
                    value.write(out);
                }
                space(out, *ws);
                out.push('}');
            }
        }
    }

    /// The node a JSON Pointer designates (keys compared decoded; the first of duplicates).
    fn resolve(&self, pointer: &str) -> Option<&Node> {
        if pointer.is_empty() {
            return Some(self);
        }
        let mut node = self;
        for token in pointer.strip_prefix('/')?.split('/') {
            let token = token.replace("~1", "/").replace("~0", "~");
            node = match node {
                Node::Obj(members, _) => {
                    &members
                        .iter()
                        .find(|(k, _)| !k.lone_surrogate && k.name == token)?
                        .1
                }
                Node::Arr(items, _) => {
                    let canonical = token == "0" || !token.starts_with('0');
                    items.get(token.parse::<usize>().ok().filter(|_| canonical)?)?
                }
                _ => return None,
            };
        }
        Some(node)
    }
}

fn space(out: &mut String, ws: u8) {
    out.push_str(match ws % 4 {
        0 | 1 => "",
        2 => " ",
        _ => "\n\t \r\n  ",
    });
}

/// Writes `s` as a JSON string; `style` picks among the equivalent escapes.
fn write_str(out: &mut String, s: &str, style: u8, lone_surrogate: bool) {
    out.push('"');
    for (i, c) in s.chars().enumerate() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' if style.is_multiple_of(2) => out.push_str("\\n"),
            '\t' if style.is_multiple_of(2) => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '/' if style % 3 == 1 => out.push_str("\\/"),
            c if style % 4 == 3 && i % 2 == 0 => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    if i % 4 == 0 {
                        let _ = write!(out, "\\u{unit:04X}");
                    } else {
                        let _ = write!(out, "\\u{unit:04x}");
                    }
                }
            }
            c => out.push(c),
        }
    }
    if lone_surrogate {
        out.push_str("\\udc00");
    }
    out.push('"');
}

/// Every key the API's rules name, so generated objects hit the real code paths.
fn vocabulary() -> Vec<&'static str> {
    let mut keys: Vec<&str> = rules::ENVELOPE_MEMBERS.to_vec();
    for table in [
        &rules::PLAYER_TIME,
        &rules::QOE_DATA,
        &rules::CUSTOMER_ID,
        &rules::STATE,
    ] {
        keys.extend(table.params.iter().map(|p| p.key));
    }
    for t in EventType::ALL {
        let spec = rules::event_spec(t);
        keys.extend(spec.param_list().iter().map(|p| p.key));
        keys.extend(spec.tolerated.params.iter().map(|p| p.key));
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_.]{0,12}",
        2 => Just(String::new()),
        2 => prop::sample::select(
            EventType::ALL.iter().map(|t| t.as_str().to_owned()).collect::<Vec<_>>()
        ),
        1 => prop::sample::select(vec!["pause".to_owned(), "player".into(), "external".into()]),
        2 => any::<String>(),
        1 => "[\\\\\"/\n\t\u{0}-\u{1f}~é😀]{0,6}",
    ]
}

fn arb_key() -> impl Strategy<Value = Key> {
    let vocabulary = vocabulary();
    prop_oneof![
        6 => (prop::sample::select(vocabulary), 0..8u8).prop_map(|(name, style)| Key {
            name: name.to_owned(),
            style,
            lone_surrogate: false,
        }),
        3 => (arb_text(), 0..8u8, 0..24u8).prop_map(|(name, style, lone)| Key {
            name,
            style,
            lone_surrogate: lone == 0,
        }),
    ]
}

fn arb_number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (0..100_000i64).prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| f.to_string()),
        (any::<i32>(), -400..400i32).prop_map(|(m, e)| format!("{m}e{e}")),
        prop::sample::select(vec![
            "1e400",
            "-1e400",
            "-0",
            "0.0",
            "1E+2",
            "1.5e-7",
            "12.50",
            "9223372036854775808",
            "-9223372036854775809",
            "123456789012345678901234567890",
        ])
        .prop_map(str::to_owned),
    ]
}

fn arb_leaf() -> impl Strategy<Value = Node> {
    prop_oneof![
        Just(Node::Null),
        any::<bool>().prop_map(Node::Bool),
        arb_number().prop_map(Node::Num),
        (arb_text(), 0..8u8).prop_map(|(s, style)| Node::Str(s, style)),
    ]
}

/// Arbitrary JSON, keys from the vocabulary or not.
fn arb_node() -> impl Strategy<Value = Node> {
    arb_leaf().prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..5), 0..4u8)
                .prop_map(|(items, ws)| Node::Arr(items, ws)),
            (prop::collection::vec((arb_key(), inner), 0..7), 0..4u8)
                .prop_map(|(members, ws)| Node::Obj(members, ws)),
        ]
    })
}

fn key(name: &str) -> Key {
    Key {
        name: name.to_owned(),
        style: 0,
        lone_surrogate: false,
    }
}

fn string(s: impl Into<String>) -> Node {
    Node::Str(s.into(), 0)
}

/// A value of type `ty`: valid most of the time, else anything.
fn arb_value(ty: ValueType) -> BoxedStrategy<Node> {
    let valid: BoxedStrategy<Node> = match ty {
        ValueType::String => arb_text().prop_map(string).boxed(),
        ValueType::NonEmptyString => "[a-zA-Z0-9 .@-]{1,16}".prop_map(string).boxed(),
        ValueType::Number { .. } => prop_oneof![
            (0..10_000u32).prop_map(|n| Node::Num(n.to_string())),
            (0.0..1e7f64).prop_map(|f| Node::Num(f.to_string())),
        ]
        .boxed(),
        ValueType::Integer { min } => {
            let low = min.unwrap_or(-1_000_000_000_000);
            (low..2_000_000_000_000i64)
                .prop_map(|n| Node::Num(n.to_string()))
                .boxed()
        }
        ValueType::Boolean => any::<bool>().prop_map(Node::Bool).boxed(),
        ValueType::StringEnum(values) => prop::sample::select(values).prop_map(string).boxed(),
        ValueType::IntegerEnum(values) => prop::sample::select(values)
            .prop_map(|n| Node::Num(n.to_string()))
            .boxed(),
        ValueType::StateName => "[a-zA-Z0-9_.]{1,64}".prop_map(string).boxed(),
        ValueType::CustomerIds => {
            prop::collection::vec(("[a-zA-Z]{1,8}", "[a-z0-9]{0,8}", 0..3i64), 0..3)
                .prop_map(|ids| {
                    let members = ids
                        .into_iter()
                        .map(|(name, id, auth)| {
                            let entry = vec![
                                (key("id"), string(id)),
                                (key("authState"), Node::Num(auth.to_string())),
                            ];
                            (key(&name), Node::Obj(entry, 0))
                        })
                        .collect();
                    Node::Obj(members, 1)
                })
                .boxed()
        }
        ValueType::StateList => prop::collection::vec("[a-zA-Z0-9_.]{1,10}", 0..3)
            .prop_map(|names| {
                let items = names
                    .into_iter()
                    .map(|n| Node::Obj(vec![(key("media.state.name"), string(n))], 0))
                    .collect();
                Node::Arr(items, 0)
            })
            .boxed(),
    };
    prop_oneof![12 => valid, 1 => arb_leaf()].boxed()
}

/// An event built from the rule table: the envelope, the type's params (required ones almost
/// always), some QoE data, custom metadata, and now and then something wrong.
fn arb_event(ts: i64) -> BoxedStrategy<Node> {
    let types = EventType::ALL.to_vec();
    (prop::sample::select(types), 0..20u8)
        .prop_flat_map(move |(t, variant)| {
            let spec = rules::event_spec(t);
            let params: Vec<BoxedStrategy<Option<(Key, Node)>>> = spec
                .param_list()
                .iter()
                .chain(spec.tolerated.params)
                .map(|p| {
                    let keep = if p.required { 0.97 } else { 0.3 };
                    prop::option::weighted(keep, arb_value(p.ty).prop_map(move |v| (key(p.key), v)))
                        .boxed()
                })
                .collect();
            let qoe: Vec<BoxedStrategy<Option<(Key, Node)>>> = rules::QOE_DATA
                .params
                .iter()
                .map(|p| {
                    prop::option::weighted(0.2, arb_value(p.ty).prop_map(move |v| (key(p.key), v)))
                        .boxed()
                })
                .collect();
            let custom = prop::collection::vec(("[a-zA-Z0-9_.]{1,10}", arb_text()), 0..3);
            let junk = prop::option::weighted(0.1, (arb_key(), arb_node()));
            let playhead = prop_oneof![
                (0..100_000u32).prop_map(|n| n.to_string()),
                (0.0..1e5f64).prop_map(|f| f.to_string())
            ];
            (
                Just(t),
                Just(variant),
                params,
                qoe,
                custom,
                junk,
                playhead,
                0..4u8,
            )
        })
        .prop_map(
            move |(t, variant, params, qoe, custom, junk, playhead, ws)| {
                let mut members = vec![
                    (
                        key("playerTime"),
                        Node::Obj(
                            vec![
                                (key("playhead"), Node::Num(playhead)),
                                (key("ts"), Node::Num(ts.to_string())),
                            ],
                            ws,
                        ),
                    ),
                    (key("eventType"), string(t.as_str())),
                ];
                let params: Vec<(Key, Node)> = params.into_iter().flatten().collect();
                if !params.is_empty() || variant == 1 {
                    members.push((key("params"), Node::Obj(params, ws)));
                }
                let qoe: Vec<(Key, Node)> = qoe.into_iter().flatten().collect();
                if !qoe.is_empty() {
                    members.push((key("qoeData"), Node::Obj(qoe, ws)));
                }
                if t.allows_custom_metadata() && !custom.is_empty() || variant == 2 {
                    let custom = custom
                        .into_iter()
                        .map(|(k, v)| (key(&k), string(v)))
                        .collect();
                    members.push((key("customMetadata"), Node::Obj(custom, ws)));
                }
                if let Some(junk) = junk {
                    members.insert(usize::from(variant) % (members.len() + 1), junk);
                }
                if variant == 3 {
                    members.reverse();
                }
                Node::Obj(members, ws)
            },
        )
        .boxed()
}

/// A downloaded session: a sessionStart, then events, with increasing timestamps (mostly).
fn arb_batch() -> impl Strategy<Value = Node> {
    (
        arb_event(NOW as i64),
        prop::collection::vec((arb_event(0), -5..1000i64), 0..5),
        any::<bool>(),
    )
        .prop_map(|(first, rest, force_start)| {
            let mut items = vec![first];
            let mut ts = NOW as i64;
            for (mut event, step) in rest {
                ts += step;
                if let Node::Obj(members, _) = &mut event {
                    if let Some((_, Node::Obj(pt, _))) =
                        members.iter_mut().find(|(k, _)| k.name == "playerTime")
                    {
                        if let Some((_, value)) = pt.iter_mut().find(|(k, _)| k.name == "ts") {
                            *value = Node::Num(ts.to_string());
                        }
                    }
                }
                items.push(event);
            }
            if force_start {
                if let Node::Obj(members, _) = &mut items[0] {
                    for (k, v) in members.iter_mut() {
                        if k.name == "eventType" {
                            *v = string("sessionStart");
                        }
                    }
                }
            }
            Node::Arr(items, 1)
        })
}

fn policy_sets() -> [Policies; 3] {
    [
        Policies::default(),
        Policies {
            unknown_params: UnknownParams::Allow,
            states_update: true,
            error_params: ErrorParams::Reject,
            ..Policies::default()
        },
        Policies {
            ts_max_age_ms: Some(60_000),
            ts_max_ahead_ms: Some(5_000),
            states_update: true,
            ..Policies::default()
        },
    ]
}

/// Enrichment rules touching every kind of edit, compiled once per policy set.
fn enrich_rules() -> &'static [Rules; 3] {
    static RULES: OnceLock<[Rules; 3]> = OnceLock::new();
    RULES.get_or_init(|| {
        let file: file::Enrich = toml::from_str(
            r#"
[session_params.if_absent]
"media.streamType" = "video"
"media.name" = "${client_ip} ${request_id}"
[session_params.always]
"media.channel" = "gateway-channel"
"media.resume" = false
[custom_metadata]
"gateway.request" = "${request_id}"
[privacy]
hash = ["visitor.marketingCloudUserId"]
hash_secret = "${env:SECRET}"
"#,
        )
        .expect("the test's [enrich] table parses");
        let env = |k: &str| (k == "SECRET").then(|| "s3cr3t-for-tests".to_owned());
        policy_sets().map(|p| Rules::compile(&file, &p, &env).expect("the rules compile"))
    })
}

fn is_pointer(path: &str) -> bool {
    (path.is_empty() || path.starts_with('/'))
        && path
            .split('~')
            .skip(1)
            .all(|rest| rest.starts_with('0') || rest.starts_with('1'))
}

fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// Checks `body` on every endpoint under every policy set. `tree` resolves paths when known;
/// otherwise serde_json's reading of the body does, when it has one.
fn properties(body: &[u8], tree: Option<&Node>) -> Result<(), TestCaseError> {
    let not_json = match std::str::from_utf8(body) {
        Err(_) => true,
        Ok(text) => serde_json::from_str::<serde::de::IgnoredAny>(text).is_err(),
    };
    let value: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let headers = HeaderMap::new();
    let ctx = Context {
        client_ip: Some("203.0.113.7".parse().unwrap()),
        request_id: "req-\"quoted\"\\/",
        received_at_ms: NOW,
        headers: &headers,
    };
    for (policies, rules) in policy_sets().iter().zip(enrich_rules()) {
        for endpoint in ENDPOINTS {
            let checked = check(endpoint, body, policies, NOW);
            let errors = checked
                .violations
                .iter()
                .filter(|v| v.severity == Severity::Error)
                .count();
            prop_assert_eq!(checked.is_valid(), errors == 0);
            prop_assert_eq!(checked.errors().count(), errors);
            prop_assert_eq!(
                checked.warnings().count(),
                checked.violations.len() - errors
            );
            let json_rule = checked
                .violations
                .iter()
                .any(|v| v.rule == rules::Rule::Json);
            prop_assert_eq!(json_rule, not_json, "{:?}", checked.violations);
            if not_json {
                prop_assert_eq!(checked.violations.len(), 1);
                prop_assert!(checked.document.is_none());
            }
            for v in &checked.violations {
                prop_assert!(is_pointer(&v.path), "{:?}", v);
                let resolves = |p: &str| match (tree, &value) {
                    (Some(tree), _) => tree.resolve(p).is_some(),
                    (None, Some(value)) => value.pointer(p).is_some(),
                    // Not readable by serde_json (e.g. `1e400`, a lone surrogate): unchecked.
                    (None, None) => true,
                };
                prop_assert!(
                    resolves(&v.path) || resolves(parent(&v.path)),
                    "{:?} does not resolve in {}",
                    v,
                    String::from_utf8_lossy(body)
                );
            }
            if !checked.is_valid() {
                continue;
            }
            let Some(doc) = &checked.document else {
                continue;
            };
            let set = rules.select(None, "/api/v1/sessions");
            if let Some((out, _)) = set.enrich_body(checked.text, doc, &ctx) {
                prop_assert!(
                    serde_json::from_slice::<serde::de::IgnoredAny>(&out).is_ok(),
                    "enriched body is not JSON: {}",
                    String::from_utf8_lossy(&out)
                );
                let again = check(endpoint, &out, policies, NOW);
                prop_assert!(
                    again.is_valid(),
                    "enriched body is invalid: {:?}\n{}",
                    again.errors().collect::<Vec<_>>(),
                    String::from_utf8_lossy(&out)
                );
            }
        }
    }
    Ok(())
}

/// Byte edits applied to a rendered body.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, op, byte) in edits {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let at = at % bytes.len();
        match op % 3 {
            0 => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ => {
                bytes.remove(at);
            }
        }
    }
    bytes
}

fn structural_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(b"{}[]\",:\\ \n0-.eEtfnu".to_vec()),
        any::<u8>(),
    ]
}

/// 256 cases per property (`PROPTEST_CASES` overrides), no regression files.
fn config() -> Config {
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        Config::default().cases
    } else {
        256
    };
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_json(node in arb_node()) {
        let text = node.render();
        properties(text.as_bytes(), Some(&node))?;
    }

    #[test]
    fn events_from_the_rule_table(event in arb_event(NOW as i64)) {
        let text = event.render();
        properties(text.as_bytes(), Some(&event))?;
    }

    #[test]
    fn batches(batch in arb_batch()) {
        let text = batch.render();
        properties(text.as_bytes(), Some(&batch))?;
    }

    #[test]
    fn mutated_json(
        event in arb_event(NOW as i64),
        edits in prop::collection::vec((any::<usize>(), 0..3u8, structural_byte()), 1..4),
    ) {
        let body = mutate(event.render().into_bytes(), &edits);
        properties(&body, None)?;
    }

    #[test]
    fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..160)) {
        properties(&body, None)?;
    }
}

/// The generators do reach valid bodies, and enrichment on them (or the properties above would
/// hold vacuously).
#[test]
fn generated_events_are_often_valid() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = arb_event(NOW as i64);
    let mut valid = 0;
    let mut session_starts = 0;
    for _ in 0..200 {
        let event = strategy.new_tree(&mut runner).unwrap().current();
        let text = event.render();
        let endpoint = if text.contains("\"sessionStart\"") {
            Endpoint::Sessions
        } else {
            Endpoint::Events
        };
        let checked = check(endpoint, text.as_bytes(), &policy_sets()[1], NOW);
        if checked.is_valid() {
            valid += 1;
            if endpoint == Endpoint::Sessions {
                session_starts += 1;
            }
        }
    }
    assert!(
        valid >= 40,
        "only {valid} of 200 generated events are valid"
    );
    assert!(session_starts >= 1, "no valid sessionStart generated");
}
