//! The chunked decoder: never panics, never consumes more than it is given, and decoding the
//! input in two pieces (split where the first byte says) gives what decoding it whole gives.
#![no_main]

use bytes::BytesMut;
use http1::chunked::ChunkedDecoder;
use libfuzzer_sys::fuzz_target;

fn whole(input: &[u8]) -> (Result<usize, String>, Vec<u8>, bool) {
    let mut d = ChunkedDecoder::new();
    let mut out = BytesMut::new();
    let r = d.decode(input, &mut out).map_err(|e| e.to_string());
    if let Ok(n) = r {
        assert!(n <= input.len());
    }
    (r, out.to_vec(), d.is_done())
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, input)) = data.split_first() else {
        return;
    };
    let expected = whole(input);
    let cut = usize::from(cut) % (input.len() + 1);
    let mut d = ChunkedDecoder::new();
    let mut out = BytesMut::new();
    // The caller's way: unconsumed bytes stay at the front, more are appended.
    let mut buf = input[..cut].to_vec();
    let first = d.decode(&buf, &mut out);
    let result = match first {
        Err(e) => Err(e.to_string()),
        Ok(n) => {
            buf.drain(..n);
            if d.is_done() {
                Ok(n)
            } else {
                buf.extend_from_slice(&input[cut..]);
                d.decode(&buf, &mut out).map(|m| n + m).map_err(|e| e.to_string())
            }
        }
    };
    assert_eq!(result.is_ok(), expected.0.is_ok(), "{input:?} cut at {cut}");
    if let (Ok(n), Ok(m)) = (&result, &expected.0) {
        assert_eq!(n, m);
        assert_eq!(out.to_vec(), expected.1);
        assert_eq!(d.is_done(), expected.2);
    }
});
