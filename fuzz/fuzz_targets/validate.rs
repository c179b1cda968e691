//! The validator on any bytes, for every endpoint: never panics; `is_valid` is "no error",
//! listed and counted; the list stays within its bounds; every path is a JSON Pointer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcapi::{Endpoint, Policies, Severity};

const NOW_MS: u64 = 1_768_507_200_000;

fuzz_target!(|data: &[u8]| {
    let policies = Policies::default();
    for endpoint in [Endpoint::Sessions, Endpoint::Events, Endpoint::Downloaded] {
        let checked = mcapi::check(endpoint, data, &policies, NOW_MS);
        let errors = checked
            .violations
            .iter()
            .any(|v| v.severity == Severity::Error)
            || checked.omitted.iter().any(|(_, s, _)| *s == Severity::Error);
        assert_eq!(checked.is_valid(), !errors);
        assert!(checked.violations.len() <= mcapi::MAX_LISTED);
        for v in &checked.violations {
            assert!(v.path.is_empty() || v.path.starts_with('/'), "{:?}", v.path);
        }
    }
});
