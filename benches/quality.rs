//! What data quality adds to a refused call, per call: the gateway's pure refusal path without
//! the quarantine (`prepare::check` of an invalid `sessionStart`, enrichment skipped) against the
//! same with it (the refused body enriched, the entry built with identity params hashed, the
//! labels looked up and the violation counted by player). The entry's write to disk happens on
//! the spool's own thread, off the request; what the request pays for it besides is one copy of
//! the line into the queue under a mutex (not measured here).
//!
//! `make bench-quality` (`cargo bench --bench quality`).

use criterion::{criterion_group, criterion_main, Criterion};
use http::HeaderMap;
use mediagate::config::Mode;
use mediagate::observe::metrics::Metrics;
use mediagate::pipeline::prepare::{self, Decision};
use mediagate::quality::Quality;
use mediagate::quarantine::entry::{self, Call, Kind, Policy, Violation};
use std::hint::black_box;

// The gateway binary's allocator (src/main.rs), so allocation costs are those of production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SESSION_START: &[u8] = include_bytes!("../tests/fixtures/session-start.json");
const NOW_MS: u64 = 1_509_045_336_653;

fn benches(c: &mut Criterion) {
    let config = mediagate::config::parse(
        "[[upstream]]\nurl = \"http://127.0.0.1:1\"\n[enrich.privacy]\nhash = [\"analytics.visitorId\"]\nhash_secret = \"0123456789abcdef-bench\"\n",
        &|_| None,
    )
    .expect("the bench's configuration");
    let metrics = Metrics::new().expect("metrics");
    let quality = Quality::of_config(&config.quality, &metrics);
    let mut invalid: serde_json::Value = serde_json::from_slice(SESSION_START).expect("JSON");
    invalid["params"]["media.length"] = "sixty".into();
    let invalid = bytes::Bytes::from(serde_json::to_vec(&invalid).expect("JSON"));
    let rules = config.enrich.select(None, "/api/v1/sessions");
    let headers = HeaderMap::new();
    let ectx = enrich::Context {
        client_ip: Some("198.51.100.9".parse().expect("an address")),
        request_id: "4bf92f3577b34da6a3ce929d0e0e4736",
        received_at_ms: NOW_MS,
        headers: &headers,
    };
    let policies = &config.validation.policies;
    let check = |keep: bool| {
        prepare::check(
            mcapi::Endpoint::Sessions,
            invalid.clone(),
            Mode::Enforce,
            policies,
            rules,
            &ectx,
            true,
            keep,
        )
    };
    assert!(matches!(check(false).decision, Decision::Refuse(_)));

    let mut g = c.benchmark_group("refused_start");
    g.bench_function("without_quarantine", |b| b.iter(|| black_box(check(false))));
    let handled = rules.privacy_params();
    let hash = |v: &str| rules.hash_value(v).unwrap_or_default();
    g.bench_function("with_quarantine", |b| {
        b.iter(|| {
            let prepared = check(true);
            let Decision::Refuse(kept) = &prepared.decision else {
                unreachable!("refused above")
            };
            let player = quality.players.label(prepared.player.as_deref());
            let sdk = quality.sdks.label(prepared.sdk.as_deref());
            for v in &prepared.violations {
                quality.record(player, sdk, v.rule.as_str(), 1, NOW_MS);
            }
            let call = Call {
                kind: Kind::Refused,
                id: "4bf92f3577b34da6a3ce929d0e0e4736",
                time_ms: NOW_MS,
                route: "/api/v1/sessions",
                path: "/api/v1/sessions",
                upstream_path: "/api/v1/sessions",
                sid: None,
                status: 400,
                player: &quality.players.name(player),
                sdk: &quality.sdks.name(sdk),
                violations: prepared
                    .violations
                    .iter()
                    .map(|v| Violation {
                        path: v.path.clone(),
                        rule: v.rule.as_str().to_owned(),
                        detail: v.detail.clone(),
                    })
                    .collect(),
                headers: vec![("user-agent".into(), "bench".into())],
                body: kept,
                session_rule: false,
            };
            let policy = Policy {
                keep_identity: false,
                keep_bodies: false,
                max_body_bytes: 65536,
                handled: &handled,
                hashed: rules.hashed_params(),
                hash: Some(&hash),
            };
            black_box(entry::build(&call, &policy))
        })
    });
    g.finish();
}

criterion_group!(quality_benches, benches);
criterion_main!(quality_benches);
