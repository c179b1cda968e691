//! The upstream answer-head parser: never panics; a parsed head never claims more bytes than it
//! was given; an answer to a HEAD request never has a body to read.
#![no_main]

use bytes::Bytes;
use http1::Framing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let buf = Bytes::copy_from_slice(data);
    for to_head in [false, true] {
        if let Ok(Some((head, len))) = http1::answer::parse(&buf, to_head) {
            assert!(len <= data.len());
            assert!((100..=599).contains(&head.status));
            if to_head {
                assert_eq!(head.framing, Framing::Empty);
            }
            if head.framing == Framing::UntilClose {
                assert!(!head.keep_alive);
            }
            for (name, value) in head.fields() {
                let _ = (name.len(), value.len());
            }
        }
    }
});
