//! `mediagate validate`: the gateway's verdict on one body, offline, for player teams' CI.

use serde::Serialize;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config;
use mcapi::{self, Endpoint, Policies, Violation};

#[derive(Serialize)]
struct Verdict<'a> {
    valid: bool,
    errors: Vec<&'a Violation>,
    warnings: Vec<&'a Violation>,
}

pub fn validate(config_path: Option<&Path>, endpoint: &str, file: &str) -> ExitCode {
    let usage = |msg: String| {
        eprintln!("mediagate validate: {msg}");
        ExitCode::from(2)
    };
    let Some(endpoint) = Endpoint::parse(endpoint) else {
        return usage(format!("unknown endpoint {endpoint:?}"));
    };
    let policies = match config_path {
        Some(p) => match config::load(p) {
            Ok(c) => c.validation.policies,
            Err(e) => return usage(e.to_string()),
        },
        None => Policies::default(),
    };
    let mut body = Vec::new();
    let read = if file == "-" {
        std::io::stdin().read_to_end(&mut body).map(|_| ())
    } else {
        std::fs::read(file).map(|b| body = b)
    };
    if let Err(e) = read {
        return usage(format!("cannot read {file}: {e}"));
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let checked = mcapi::check(endpoint, &body, &policies, now_ms);
    let more = checked.omitted_count();
    let truncated = (more > 0).then(|| mcapi::Violation::truncated(more));
    let verdict = Verdict {
        valid: checked.is_valid(),
        errors: checked.errors().chain(truncated.as_ref()).collect(),
        warnings: checked.warnings().collect(),
    };
    match serde_json::to_string_pretty(&verdict) {
        Ok(text) => println!("{text}"),
        Err(e) => return usage(e.to_string()),
    }
    if verdict.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
