//! The Location rewriter: whatever the upstream sends and whatever Host the player used, a
//! value the gateway sends as its own (kept or rewritten) resolves, as a browser resolves it,
//! to the gateway's origin — never to another host, never to the upstream's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use location::{Outcome, Rewriter, Upstream};
use url::Url;

const UP: Upstream = Upstream {
    scheme: "http",
    authority: "10.0.0.7:8081",
};

fuzz_target!(|data: &[u8]| {
    let (value, host) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], std::str::from_utf8(&data[i + 1..]).ok()),
        None => (data, None),
    };
    let relative = Rewriter {
        absolute_base: None,
        own_authorities: vec!["collect.example.com".into()],
    };
    let absolute = Rewriter {
        absolute_base: Some("https://collect.example.com".into()),
        own_authorities: vec!["collect.example.com".into()],
    };
    for (rewriter, home) in [
        (&relative, "http://gateway.example/api/v1/sessions"),
        (&absolute, "https://collect.example.com/api/v1/sessions"),
    ] {
        let out = rewriter.rewrite(value, UP, host);
        match out.outcome {
            Outcome::Kept | Outcome::Rewritten => {
                let sent = out.value.expect("a value to send");
                let home = Url::parse(home).unwrap();
                let resolved = home.join(&sent).expect("what the gateway sends resolves");
                assert_eq!(resolved.host_str(), home.host_str(), "{sent:?}");
                assert_eq!(resolved.port(), home.port(), "{sent:?}");
                assert_eq!(resolved.scheme(), home.scheme(), "{sent:?}");
            }
            Outcome::Foreign | Outcome::Unsafe => assert!(out.value.is_none()),
        }
    }
});
