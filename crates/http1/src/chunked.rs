//! Incremental decoding of HTTP/1.1 `Transfer-Encoding: chunked` request bodies (RFC 9112 §7.1).
//!
//! This module owns the chunked framing only: chunk-size lines (hex size, ignored extensions),
//! chunk data, the last chunk and the trailer section (skipped). It does no I/O; the server reads
//! from the socket into a buffer and hands [`ChunkedDecoder::decode`] whatever it has.
//!
//! Strategy: the decoder is a byte-level state machine that keeps all of its state between
//! calls, so it **consumes every byte it is given** until the body ends: a size or trailer line
//! that is cut off mid-way is consumed and remembered, never handed back. `decode` returns less
//! than `input.len()` only once the body is complete (the rest is the next pipelined request),
//! and returns `Ok(0)` on non-empty input only when [`ChunkedDecoder::is_done`] is already true.
//! A caller that keeps unconsumed bytes at the front of its buffer works unchanged.
//!
//! Leniency follows nginx: bare LF is accepted wherever CRLF is expected, and whitespace may
//! precede a `;` extension or the line end after the size. A CR must always be followed by LF.
//! Every size line and trailer line is bounded by [`MAX_LINE`] bytes and the trailer section by
//! [`MAX_TRAILER_SECTION`] bytes, checked as bytes arrive, so a peer cannot make the server wait
//! forever for a line end. The total body size is the caller's to bound (via `out.len()`).

use bytes::BytesMut;
use std::fmt;

use crate::limits::{CHUNK_LINE_BYTES as MAX_LINE, TRAILER_SECTION_BYTES as MAX_TRAILER_SECTION};
/// Most hex digits accepted in a chunk size (leading zeros included): 16 fill a `u64`.
const MAX_HEX_DIGITS: u8 = 16;

const INVALID_SIZE: ChunkError = ChunkError("invalid chunk size");
const TOO_MANY_DIGITS: ChunkError = ChunkError("too many hex digits in chunk size");
const SIZE_OVERFLOW: ChunkError = ChunkError("chunk size overflow");
const SIZE_LINE_TOO_LONG: ChunkError = ChunkError("chunk size line too long");
const BAD_SIZE_LINE_END: ChunkError = ChunkError("CR not followed by LF in chunk size line");
const MISSING_DATA_CRLF: ChunkError = ChunkError("missing CRLF after chunk data");
const TRAILER_LINE_TOO_LONG: ChunkError = ChunkError("trailer line too long");
const TRAILER_TOO_LARGE: ChunkError = ChunkError("trailer section too large");
const BAD_TRAILER_LINE_END: ChunkError = ChunkError("CR not followed by LF in trailer section");

/// Why a chunked body could not be decoded (the server answers 400 and closes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkError(pub &'static str);

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ChunkError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Reading the chunk-size hex digits (`digits` read so far).
    Size { value: u64, digits: u8 },
    /// After the digits: optional whitespace, then `;` (extensions) or the line end.
    SizeTail { value: u64 },
    /// Inside chunk extensions: skipped up to the line end.
    Ext { value: u64 },
    /// Saw the CR ending a size line; LF must follow.
    SizeLf { value: u64 },
    /// Copying chunk data.
    Data { remaining: u64 },
    /// Chunk data complete; CRLF (or LF) must follow.
    DataCr,
    /// Saw the CR after chunk data; LF must follow.
    DataLf,
    /// At the start of a trailer field line or of the final empty line.
    TrailerStart,
    /// Inside a trailer field line: skipped up to the line end.
    TrailerField,
    /// Saw the CR ending a trailer field line; LF must follow.
    TrailerFieldLf,
    /// Saw the CR of the final empty line; LF must follow.
    EndLf,
    /// The body is complete.
    Done,
    /// A previous call failed; every later call returns the same error.
    Failed(ChunkError),
}

/// An incremental decoder for one chunked body. See the [module docs](self) for the strategy.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Bytes of the current size or trailer line so far (line ending excluded).
    line_len: usize,
    /// Bytes of the trailer section so far (line endings included).
    trailer_len: usize,
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size {
                value: 0,
                digits: 0,
            },
            line_len: 0,
            trailer_len: 0,
        }
    }

    /// Decodes as much of `input` as it can, appending body bytes to `out`, and returns how many
    /// bytes of `input` it consumed.
    ///
    /// Until the body ends, all of `input` is consumed (partial lines are remembered, not handed
    /// back). Once the last chunk and the trailer section (ended by an empty line) have been
    /// consumed, [`is_done`](Self::is_done) is true and nothing after them is consumed: the
    /// returned count stops right after the final line ending, and later calls return `Ok(0)`.
    ///
    /// # Errors
    ///
    /// A [`ChunkError`] when the input is not a valid chunked body (see the module docs for what
    /// is accepted) or a size line, trailer line or the trailer section exceeds its bound. `out`
    /// may already hold data appended by this call, and the decoder stays failed: every later
    /// call returns the same error.
    pub fn decode(&mut self, input: &[u8], out: &mut BytesMut) -> Result<usize, ChunkError> {
        if let State::Failed(err) = &self.state {
            return Err(err.clone());
        }
        self.run(input, out).inspect_err(|err| {
            self.state = State::Failed(err.clone());
        })
    }

    /// Whether the whole body, trailer section included, has been consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn run(&mut self, input: &[u8], out: &mut BytesMut) -> Result<usize, ChunkError> {
        let mut pos = 0;
        loop {
            // `rest` is the unconsumed input; indexing is avoided so no input can panic.
            let rest = input.get(pos..).unwrap_or_default();
            let Some(&byte) = rest.first() else {
                break;
            };
            match self.state {
                State::Size { value, digits } => {
                    if let Some(digit) = hex_value(byte) {
                        if digits >= MAX_HEX_DIGITS {
                            return Err(TOO_MANY_DIGITS);
                        }
                        let value = value
                            .checked_mul(16)
                            .and_then(|v| v.checked_add(u64::from(digit)))
                            .ok_or(SIZE_OVERFLOW)?;
                        self.size_line_bytes(1)?;
                        self.state = State::Size {
                            value,
                            digits: digits + 1,
                        };
                        pos += 1;
                    } else if digits == 0 {
                        // Empty size, or a size starting with something other than a hex digit.
                        return Err(INVALID_SIZE);
                    } else {
                        // Not consumed: the tail state looks at this byte.
                        self.state = State::SizeTail { value };
                    }
                }
                State::SizeTail { value } => {
                    match byte {
                        b' ' | b'\t' => self.size_line_bytes(1)?,
                        b';' => {
                            self.size_line_bytes(1)?;
                            self.state = State::Ext { value };
                        }
                        b'\r' => self.state = State::SizeLf { value },
                        b'\n' => self.end_size_line(value),
                        _ => return Err(INVALID_SIZE),
                    }
                    pos += 1;
                }
                State::Ext { value } => {
                    let run = line_run(rest);
                    self.size_line_bytes(run)?;
                    pos += run;
                    if run < rest.len() {
                        // The line end (CR or LF) is next: the tail state handles it.
                        self.state = State::SizeTail { value };
                    }
                }
                State::SizeLf { value } => {
                    if byte != b'\n' {
                        return Err(BAD_SIZE_LINE_END);
                    }
                    self.end_size_line(value);
                    pos += 1;
                }
                State::Data { remaining } => {
                    // All of the chunk's remaining data, or all of `rest` if it holds less.
                    let data = usize::try_from(remaining)
                        .ok()
                        .and_then(|r| rest.get(..r))
                        .unwrap_or(rest);
                    out.extend_from_slice(data);
                    let n = data.len();
                    pos += n;
                    // `n <= remaining`, so this neither wraps nor truncates.
                    let remaining = remaining - n as u64;
                    self.state = if remaining == 0 {
                        State::DataCr
                    } else {
                        State::Data { remaining }
                    };
                }
                State::DataCr => {
                    match byte {
                        b'\r' => self.state = State::DataLf,
                        b'\n' => self.start_size_line(),
                        _ => return Err(MISSING_DATA_CRLF),
                    }
                    pos += 1;
                }
                State::DataLf => {
                    if byte != b'\n' {
                        return Err(MISSING_DATA_CRLF);
                    }
                    self.start_size_line();
                    pos += 1;
                }
                State::TrailerStart => match byte {
                    b'\r' => {
                        self.trailer_bytes(1)?;
                        self.state = State::EndLf;
                        pos += 1;
                    }
                    b'\n' => {
                        self.trailer_bytes(1)?;
                        self.state = State::Done;
                        return Ok(pos + 1);
                    }
                    _ => {
                        // Not consumed: the field state counts and skips the line.
                        self.line_len = 0;
                        self.state = State::TrailerField;
                    }
                },
                State::TrailerField => {
                    let run = line_run(rest);
                    self.trailer_line_bytes(run)?;
                    pos += run;
                    match rest.get(run) {
                        Some(b'\r') => {
                            self.trailer_bytes(1)?;
                            self.state = State::TrailerFieldLf;
                            pos += 1;
                        }
                        Some(_) => {
                            // LF: the line is complete.
                            self.trailer_bytes(1)?;
                            self.state = State::TrailerStart;
                            pos += 1;
                        }
                        None => {}
                    }
                }
                State::TrailerFieldLf => {
                    if byte != b'\n' {
                        return Err(BAD_TRAILER_LINE_END);
                    }
                    self.trailer_bytes(1)?;
                    self.state = State::TrailerStart;
                    pos += 1;
                }
                State::EndLf => {
                    if byte != b'\n' {
                        return Err(BAD_TRAILER_LINE_END);
                    }
                    self.trailer_bytes(1)?;
                    self.state = State::Done;
                    return Ok(pos + 1);
                }
                State::Done => return Ok(pos),
                State::Failed(ref err) => return Err(err.clone()),
            }
        }
        Ok(pos)
    }

    fn start_size_line(&mut self) {
        self.line_len = 0;
        self.state = State::Size {
            value: 0,
            digits: 0,
        };
    }

    /// A complete size line: data follows, or the trailer section after the last chunk.
    fn end_size_line(&mut self, value: u64) {
        self.line_len = 0;
        if value == 0 {
            self.trailer_len = 0;
            self.state = State::TrailerStart;
        } else {
            self.state = State::Data { remaining: value };
        }
    }

    fn size_line_bytes(&mut self, n: usize) -> Result<(), ChunkError> {
        self.line_len = self.line_len.saturating_add(n);
        if self.line_len > MAX_LINE {
            return Err(SIZE_LINE_TOO_LONG);
        }
        Ok(())
    }

    fn trailer_line_bytes(&mut self, n: usize) -> Result<(), ChunkError> {
        self.line_len = self.line_len.saturating_add(n);
        if self.line_len > MAX_LINE {
            return Err(TRAILER_LINE_TOO_LONG);
        }
        self.trailer_bytes(n)
    }

    fn trailer_bytes(&mut self, n: usize) -> Result<(), ChunkError> {
        self.trailer_len = self.trailer_len.saturating_add(n);
        if self.trailer_len > MAX_TRAILER_SECTION {
            return Err(TRAILER_TOO_LARGE);
        }
        Ok(())
    }
}

impl Default for ChunkedDecoder {
    fn default() -> ChunkedDecoder {
        ChunkedDecoder::new()
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Length of the run of bytes before the first CR or LF (all of `bytes` if there is none).
fn line_run(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TWO_CHUNKS: &[u8] = b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";

    /// Decodes `input` in one call.
    fn once(input: &[u8]) -> (Result<usize, ChunkError>, Vec<u8>, bool) {
        let mut dec = ChunkedDecoder::new();
        let mut out = BytesMut::new();
        let res = dec.decode(input, &mut out);
        (res, out.to_vec(), dec.is_done())
    }

    /// Feeds `input` in pieces ending at `cuts` (sorted, in bounds), the way the server does:
    /// unconsumed bytes stay at the front of its buffer and more are appended. Returns the total
    /// consumed (or the first error), the body, and whether the decoder finished.
    fn pieces(input: &[u8], cuts: &[usize]) -> (Result<usize, ChunkError>, Vec<u8>, bool) {
        let mut dec = ChunkedDecoder::new();
        let mut out = BytesMut::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut consumed = 0;
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&input.len())) {
            buf.extend_from_slice(&input[start..end]);
            start = end;
            match dec.decode(&buf, &mut out) {
                Ok(n) => {
                    assert!(n <= buf.len());
                    consumed += n;
                    buf.drain(..n);
                }
                Err(err) => return (Err(err), out.to_vec(), dec.is_done()),
            }
            if dec.is_done() {
                break;
            }
        }
        (Ok(consumed), out.to_vec(), dec.is_done())
    }

    fn byte_at_a_time(input: &[u8]) -> (Result<usize, ChunkError>, Vec<u8>, bool) {
        let cuts: Vec<usize> = (1..input.len()).collect();
        pieces(input, &cuts)
    }

    /// Deterministic pseudo-random cut points (a small LCG), sorted and in bounds.
    fn random_cuts(len: usize, seed: u64) -> Vec<usize> {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let mut cuts = Vec::new();
        for _ in 0..(seed % 7 + 1) {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            cuts.push((state >> 33) as usize % (len + 1));
        }
        cuts.sort_unstable();
        cuts
    }

    fn ok(input: &[u8], body: &[u8]) {
        assert_eq!(once(input), (Ok(input.len()), body.to_vec(), true));
    }

    fn err(input: &[u8], reason: &'static str) {
        let (res, _, done) = once(input);
        assert_eq!(
            res,
            Err(ChunkError(reason)),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        assert!(!done);
        let (res, _, _) = byte_at_a_time(input);
        assert_eq!(res, Err(ChunkError(reason)), "byte at a time");
    }

    #[test]
    fn two_chunks_in_one_call() {
        ok(TWO_CHUNKS, b"hello, world");
    }

    #[test]
    fn byte_at_a_time_and_random_splits_match_one_call() {
        let whole = once(TWO_CHUNKS);
        assert_eq!(byte_at_a_time(TWO_CHUNKS), whole);
        for seed in 0..200 {
            let cuts = random_cuts(TWO_CHUNKS.len(), seed);
            assert_eq!(pieces(TWO_CHUNKS, &cuts), whole, "cuts {cuts:?}");
        }
        let rich =
            b"3;a=b\r\nabc\n1A\r\n0123456789abcdefghijklmnop\r\n0;x\r\nT: v\r\nU: w\n\r\nNEXT";
        let whole = once(rich);
        assert_eq!(whole.0, Ok(rich.len() - 4));
        assert_eq!(byte_at_a_time(rich), whole);
        for seed in 0..200 {
            let cuts = random_cuts(rich.len(), seed);
            assert_eq!(pieces(rich, &cuts), whole, "cuts {cuts:?}");
        }
    }

    #[test]
    fn extensions_are_ignored() {
        ok(
            b"5;name=value;other\r\nhello\r\n2 ; q=\"a;b\"\r\n!!\r\n0;last\r\n\r\n",
            b"hello!!",
        );
        ok(b"3\t;x\r\nabc\r\n0 \r\n\r\n", b"abc");
    }

    #[test]
    fn trailers_are_skipped() {
        ok(
            b"4\r\nbody\r\n0\r\nExpires: never\r\nX-Checksum: abc\r\n\r\n",
            b"body",
        );
    }

    #[test]
    fn uppercase_and_mixed_case_hex() {
        let data = [b'x'; 0xAB];
        let mut input = b"aB\r\n".to_vec();
        input.extend_from_slice(&data);
        input.extend_from_slice(b"\r\n0\r\n\r\n");
        ok(&input, &data);
        ok(b"00000A\r\n0123456789\r\n0\r\n\r\n", b"0123456789");
    }

    #[test]
    fn bare_lf_everywhere() {
        ok(b"5\nhello\n6;e\n world\n0\nTrailer: x\n\n", b"hello world");
    }

    #[test]
    fn bytes_after_terminator_are_not_consumed() {
        let mut input = TWO_CHUNKS.to_vec();
        input.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let (res, body, done) = once(&input);
        assert_eq!(res, Ok(TWO_CHUNKS.len()));
        assert_eq!(body, b"hello, world");
        assert!(done);
        assert_eq!(byte_at_a_time(&input), (Ok(TWO_CHUNKS.len()), body, true));

        // With trailers and bare LF, too; and a done decoder consumes nothing more.
        let input = b"1\na\n0\nT: 1\n\nPOST";
        let mut dec = ChunkedDecoder::new();
        let mut out = BytesMut::new();
        assert_eq!(dec.decode(input, &mut out), Ok(input.len() - 4));
        assert!(dec.is_done());
        assert_eq!(dec.decode(b"POST", &mut out), Ok(0));
        assert_eq!(&out[..], b"a");
    }

    #[test]
    fn zero_length_body() {
        ok(b"0\r\n\r\n", b"");
        ok(b"0\n\n", b"");
        ok(b"000\r\n\r\n", b"");
    }

    #[test]
    fn incomplete_input_is_consumed_but_not_done() {
        let cases: [(&[u8], &[u8]); 6] = [
            (b"", b""),
            (b"5\r\nhel", b"hel"),
            (b"5;ext", b""),
            (b"5\r\nhello\r", b"hello"),
            (b"0\r\nT: v", b""),
            (b"0\r\n\r", b""),
        ];
        for (input, body) in cases {
            assert_eq!(once(input), (Ok(input.len()), body.to_vec(), false));
        }
    }

    #[test]
    fn bad_hex() {
        err(b"g\r\nx\r\n0\r\n\r\n", "invalid chunk size");
        err(b"5x\r\nhello\r\n0\r\n\r\n", "invalid chunk size");
        err(b"-1\r\n", "invalid chunk size");
        err(b"0x5\r\nhello\r\n", "invalid chunk size");
        err(b" 5\r\nhello\r\n", "invalid chunk size");
        err(b"5 5\r\nhello\r\n", "invalid chunk size");
    }

    #[test]
    fn empty_size() {
        err(b"\r\nhello\r\n", "invalid chunk size");
        err(b";ext\r\n", "invalid chunk size");
        err(b"5\r\nhello\r\n\r\n", "invalid chunk size");
    }

    #[test]
    fn too_many_hex_digits() {
        // Sixteen digits are fine (the size is then only a promise of data to come)...
        let (res, body, done) = once(b"0000000000000003\r\nabc\r\n0\r\n\r\n");
        assert_eq!((res, body, done), (Ok(28), b"abc".to_vec(), true));
        assert_eq!(
            once(b"ffffffffffffffff\r\nab"),
            (Ok(20), b"ab".to_vec(), false)
        );
        // ... seventeen are not, even as leading zeros.
        err(
            b"00000000000000001\r\na\r\n",
            "too many hex digits in chunk size",
        );
        err(
            b"10000000000000000\r\n",
            "too many hex digits in chunk size",
        );
    }

    #[test]
    fn missing_crlf_after_data() {
        err(b"5\r\nhelloX\r\n0\r\n\r\n", "missing CRLF after chunk data");
        err(b"5\r\nhello\rX0\r\n\r\n", "missing CRLF after chunk data");
        err(b"3\r\nhello\r\n0\r\n\r\n", "missing CRLF after chunk data");
    }

    #[test]
    fn bare_cr_is_an_error() {
        err(b"5\rhello\r\n", "CR not followed by LF in chunk size line");
        err(
            b"0\r\nT: v\rX: y\r\n\r\n",
            "CR not followed by LF in trailer section",
        );
        err(b"0\r\n\rX", "CR not followed by LF in trailer section");
    }

    #[test]
    fn oversized_size_line() {
        // Exactly MAX_LINE bytes is accepted.
        let mut line = b"1;".to_vec();
        line.resize(MAX_LINE, b'e');
        line.extend_from_slice(b"\r\nz\r\n0\r\n\r\n");
        ok(&line, b"z");

        // One more, never terminated: an error, not Ok(0) or "need more".
        let mut line = b"1;".to_vec();
        line.resize(MAX_LINE + 1, b'e');
        err(&line, "chunk size line too long");
        let (res, _, _) = pieces(&line, &random_cuts(line.len(), 3));
        assert_eq!(res, Err(ChunkError("chunk size line too long")));

        // Whitespace counts too.
        let mut line = b"1".to_vec();
        line.resize(MAX_LINE + 1, b' ');
        err(&line, "chunk size line too long");
    }

    #[test]
    fn oversized_trailers() {
        let mut input = b"0\r\nX: ".to_vec();
        input.resize(3 + MAX_LINE, b'v');
        input.extend_from_slice(b"\r\n\r\n");
        ok(&input, b"");

        let mut input = b"0\r\nX: ".to_vec();
        input.resize(3 + MAX_LINE + 1, b'v');
        err(&input, "trailer line too long");

        // Many short lines: each fine, the section is not.
        let mut input = b"0\r\n".to_vec();
        while input.len() < MAX_TRAILER_SECTION + 100 {
            input.extend_from_slice(b"X-Filler: 0123456789\r\n");
        }
        err(&input, "trailer section too large");
    }

    #[test]
    fn errors_are_sticky() {
        let mut dec = ChunkedDecoder::new();
        let mut out = BytesMut::new();
        let e = Err(ChunkError("invalid chunk size"));
        assert_eq!(dec.decode(b"zz", &mut out), e);
        assert_eq!(dec.decode(b"0\r\n\r\n", &mut out), e);
        assert!(!dec.is_done());
    }

    #[test]
    fn appends_to_existing_output() {
        let mut dec = ChunkedDecoder::default();
        let mut out = BytesMut::from(&b"prefix:"[..]);
        assert_eq!(dec.decode(TWO_CHUNKS, &mut out), Ok(TWO_CHUNKS.len()));
        assert_eq!(&out[..], b"prefix:hello, world");
    }

    fn encode(chunks: &[Vec<u8>], ext: bool, lf_only: bool, trailers: bool) -> Vec<u8> {
        let eol: &[u8] = if lf_only { b"\n" } else { b"\r\n" };
        let mut enc = Vec::new();
        for chunk in chunks.iter().filter(|c| !c.is_empty()) {
            enc.extend_from_slice(format!("{:X}", chunk.len()).as_bytes());
            if ext {
                enc.extend_from_slice(b";k=v");
            }
            enc.extend_from_slice(eol);
            enc.extend_from_slice(chunk);
            enc.extend_from_slice(eol);
        }
        enc.extend_from_slice(b"0");
        enc.extend_from_slice(eol);
        if trailers {
            enc.extend_from_slice(b"Trailer-Field: value");
            enc.extend_from_slice(eol);
        }
        enc.extend_from_slice(eol);
        enc
    }

    proptest! {
        #[test]
        fn any_split_decodes_any_body(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..6),
            ext in any::<bool>(),
            lf_only in any::<bool>(),
            trailers in any::<bool>(),
            tail in prop::collection::vec(any::<u8>(), 0..8),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let enc = encode(&chunks, ext, lf_only, trailers);
            let mut input = enc.clone();
            input.extend_from_slice(&tail);
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
            cuts.sort_unstable();
            let expected = (Ok(enc.len()), chunks.concat(), true);
            prop_assert_eq!(once(&input), expected.clone());
            prop_assert_eq!(pieces(&input, &cuts), expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            input in prop::collection::vec(any::<u8>(), 0..200),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let whole = once(&input);
            if let Ok(n) = whole.0 {
                prop_assert!(n <= input.len());
                prop_assert!(whole.2 || n == input.len());
            }
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
            cuts.sort_unstable();
            prop_assert_eq!(pieces(&input, &cuts), whole);
        }
    }
}
