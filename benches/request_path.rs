//! The pure request path of the gateway, per body: parse + validate (`mcapi::check`), then
//! enrich and serialize (`enrich::RuleSet::enrich_body`) into the bytes that go upstream.
//!
//! `make bench` (`cargo bench --bench request_path`). The rule set is the production shape: one
//! `if_absent` param the fixtures lack (`media.streamType`), so a sessionStart's `params` object
//! is rebuilt and the body spliced; a ping is checked and forwarded as received. The longer VOD
//! sessionStart and the downloaded batch already carry `media.streamType`, so their bodies are
//! checked, looked at by enrichment and forwarded unchanged.
//!
//! Benches:
//! - `check/<fixture>`: `mcapi::check` alone;
//! - `full/<fixture>`: check, then enrichment, producing the bytes to forward.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use enrich::file;
use enrich::{Context, Rules};
use http::HeaderMap;
use mcapi::{self, Endpoint, Policies};
use std::hint::black_box;

// The gateway binary's allocator (src/main.rs), so allocation costs are those of production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SESSION_START: &[u8] = include_bytes!("../tests/fixtures/session-start.json");
const PING: &[u8] = include_bytes!("../tests/fixtures/ping.json");
const VOD_SESSION_START: &[u8] =
    include_bytes!("../tests/fixtures/vod/01-sessions-sessionStart.json");
const BATCH: &[u8] = include_bytes!("../tests/fixtures/downloaded/01-downloaded-batch.json");

/// 2017-10-26, the fixtures' `playerTime.ts`.
const NOW_MS: u64 = 1_509_045_336_653;

fn production_rules(policies: &Policies) -> Rules {
    let enrich: file::Enrich = toml::from_str(
        r#"
[session_params.if_absent]
"media.streamType" = "video"
"#,
    )
    .expect("the bench's [enrich] table parses");
    Rules::compile(&enrich, policies, &|_| None).expect("the bench's rules compile")
}

/// The gateway's body path: `None` means the received bytes are forwarded unchanged.
fn request_path(
    rules: &Rules,
    policies: &Policies,
    ctx: &Context,
    endpoint: Endpoint,
    body: &[u8],
) -> Option<Vec<u8>> {
    let checked = mcapi::check(endpoint, body, policies, NOW_MS);
    assert!(checked.is_valid());
    let doc = checked.document.as_ref()?;
    rules
        .select(None, "/api/v1/sessions")
        .enrich_body(checked.text, doc, ctx)
        .map(|(body, _)| body)
}

fn benches(c: &mut Criterion) {
    let policies = Policies::default();
    let rules = production_rules(&policies);
    let headers = HeaderMap::new();
    let ctx = Context {
        client_ip: Some("198.51.100.9".parse().unwrap()),
        request_id: "4bf92f3577b34da6a3ce929d0e0e4736",
        received_at_ms: NOW_MS,
        headers: &headers,
    };
    let cases = [
        (
            "session-start.json",
            Endpoint::Sessions,
            SESSION_START,
            true,
        ),
        ("ping.json", Endpoint::Events, PING, false),
        (
            "vod-sessionStart.json",
            Endpoint::Sessions,
            VOD_SESSION_START,
            false,
        ),
        ("downloaded-batch.json", Endpoint::Downloaded, BATCH, false),
    ];
    // The enriched body must itself be valid, and enrichment must happen where expected.
    for (name, endpoint, body, rebuilt) in cases {
        let out = request_path(&rules, &policies, &ctx, endpoint, body);
        assert_eq!(out.is_some(), rebuilt, "{name}");
        if let Some(out) = out {
            assert!(mcapi::check(endpoint, &out, &policies, NOW_MS).is_valid());
        }
    }

    let mut group = c.benchmark_group("check");
    for (name, endpoint, body, _) in cases {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let checked = mcapi::check(endpoint, black_box(body), &policies, NOW_MS);
                black_box(checked.is_valid())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("full");
    for (name, endpoint, body, _) in cases {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(request_path(
                    &rules,
                    &policies,
                    &ctx,
                    endpoint,
                    black_box(body),
                ))
            })
        });
    }
    group.finish();
}

criterion_group!(request_path_benches, benches);
criterion_main!(request_path_benches);
