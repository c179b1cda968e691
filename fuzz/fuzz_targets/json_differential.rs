//! The one-pass JSON splitter against serde_json: the same texts are JSON (serde_json's
//! `IgnoredAny` as the oracle: its `Value` refuses numbers such as `1e400`, which are JSON), and
//! every split object's members are the members serde_json sees.
#![no_main]

use libfuzzer_sys::fuzz_target;

const NESTED: json::Nested<'static, 4> = [
    ("playerTime", 4),
    ("params", 16),
    ("qoeData", 4),
    ("customMetadata", 4),
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        assert!(json::parse_body(data).is_err());
        return;
    };
    let oracle = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
    let ours = json::parse_document(text, &NESTED);
    assert_eq!(ours.is_ok(), oracle, "{text:?}");
    assert_eq!(json::parse_body(data).is_ok(), oracle, "{text:?}");
    if let Ok(json::Parsed::Object(split)) = ours {
        if let Some(object) = split.object {
            for m in &object.members {
                // Every member value is itself one JSON value.
                let raw = m.value.get();
                assert!(serde_json::from_str::<serde::de::IgnoredAny>(raw).is_ok(), "{raw:?}");
            }
        }
    }
});
