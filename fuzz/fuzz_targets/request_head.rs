//! The players' request-head parser: never panics; a parsed head never claims more bytes than
//! it was given, and its end agrees with `end_of_head`.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let buf = Bytes::copy_from_slice(data);
    if let Ok(Some((head, len))) = http1::head::parse(&buf) {
        assert!(len <= data.len());
        assert!(http1::head::end_of_head(data, 0).is_some_and(|end| end <= len));
        let _ = (head.framing, head.keep_alive, head.uri.path());
    }
});
