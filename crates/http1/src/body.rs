//! Reading a message body off a connection's buffer, sans I/O: one [`BodyReader`] for request
//! bodies and upstream answer bodies alike. The caller owns the socket and the buffer; it hands
//! the reader whatever has arrived, reads more when told to, and reports the end of the stream.
//!
//! Bytes are taken out of the caller's buffer as the framing allows: a `Content-Length` body is
//! split off the buffer (no copy) once it is all there, a chunked body is decoded into a buffer
//! of its own as its chunks arrive, and whatever follows the body (a pipelined request) stays in
//! the caller's buffer. Nothing is reserved from a declared length: memory grows with the bytes
//! that actually arrived.

use bytes::{Bytes, BytesMut};

use crate::chunked::ChunkedDecoder;

/// How a body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the peer closes the connection (upstream answers only).
    UntilClose,
}

/// Why a body could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// More bytes than the limit (declared or received).
    TooLarge,
    /// Broken chunked framing.
    Malformed(&'static str),
    /// The stream ended inside the body.
    Truncated,
}

/// What [`BodyReader::feed`] found.
#[derive(Debug)]
pub enum Step {
    /// The whole body.
    Done(Bytes),
    /// More bytes are needed: read, append to the buffer, and feed again.
    NeedMore,
}

/// Reads one body; see the module docs.
#[derive(Debug)]
pub struct BodyReader {
    framing: Framing,
    limit: usize,
    /// The decoder and the decoded bytes so far (chunked only).
    chunked: Option<(ChunkedDecoder, BytesMut)>,
}

impl BodyReader {
    /// A reader of a body with `framing`, at most `limit` bytes. A declared length above the
    /// limit is refused at once.
    pub fn new(framing: Framing, limit: usize) -> Result<BodyReader, BodyError> {
        if let Framing::Length(n) = framing {
            if n > limit as u64 {
                return Err(BodyError::TooLarge);
            }
        }
        let chunked =
            (framing == Framing::Chunked).then(|| (ChunkedDecoder::new(), BytesMut::new()));
        Ok(BodyReader {
            framing,
            limit,
            chunked,
        })
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Takes the body's bytes from the front of `buf`, leaving what follows the body.
    pub fn feed(&mut self, buf: &mut BytesMut) -> Result<Step, BodyError> {
        match self.framing {
            Framing::Empty => Ok(Step::Done(Bytes::new())),
            Framing::Length(n) => {
                // `n <= limit` (checked in `new`), so it fits a usize.
                let n = usize::try_from(n).map_err(|_| BodyError::TooLarge)?;
                if buf.len() >= n {
                    Ok(Step::Done(buf.split_to(n).freeze()))
                } else {
                    Ok(Step::NeedMore)
                }
            }
            Framing::Chunked => {
                let Some((decoder, body)) = &mut self.chunked else {
                    return Err(BodyError::Malformed("chunked reader without a decoder"));
                };
                let used = decoder
                    .decode(buf, body)
                    .map_err(|e| BodyError::Malformed(e.0))?;
                let _ = buf.split_to(used);
                if body.len() > self.limit {
                    return Err(BodyError::TooLarge);
                }
                if decoder.is_done() {
                    Ok(Step::Done(std::mem::take(body).freeze()))
                } else {
                    Ok(Step::NeedMore)
                }
            }
            Framing::UntilClose => {
                if buf.len() > self.limit {
                    Err(BodyError::TooLarge)
                } else {
                    Ok(Step::NeedMore)
                }
            }
        }
    }

    /// The stream ended; `buf` holds what arrived since the last [`feed`](Self::feed).
    pub fn end_of_stream(&mut self, buf: &mut BytesMut) -> Result<Bytes, BodyError> {
        match self.framing {
            Framing::UntilClose if buf.len() <= self.limit => Ok(buf.split().freeze()),
            Framing::UntilClose => Err(BodyError::TooLarge),
            _ => match self.feed(buf)? {
                Step::Done(body) => Ok(body),
                Step::NeedMore => Err(BodyError::Truncated),
            },
        }
    }

    /// Bytes held so far outside the caller's buffer (the decoded part of a chunked body).
    pub fn held(&self) -> usize {
        self.chunked.as_ref().map_or(0, |(_, body)| body.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(b: &[u8]) -> BytesMut {
        BytesMut::from(b)
    }

    #[test]
    fn a_length_body_is_split_off_and_the_rest_stays() {
        let mut r = BodyReader::new(Framing::Length(5), 10).unwrap();
        let mut b = buf(b"hel");
        assert!(matches!(r.feed(&mut b), Ok(Step::NeedMore)));
        b.extend_from_slice(b"loNEXT");
        match r.feed(&mut b) {
            Ok(Step::Done(body)) => assert_eq!(&body[..], b"hello"),
            other => panic!("{other:?}"),
        }
        assert_eq!(&b[..], b"NEXT");
        assert_eq!(
            BodyReader::new(Framing::Length(11), 10).unwrap_err(),
            BodyError::TooLarge
        );
    }

    #[test]
    fn a_chunked_body_is_decoded_as_it_arrives() {
        let mut r = BodyReader::new(Framing::Chunked, 100).unwrap();
        let mut b = buf(b"5\r\nhel");
        assert!(matches!(r.feed(&mut b), Ok(Step::NeedMore)));
        assert!(b.is_empty());
        assert_eq!(r.held(), 3);
        b.extend_from_slice(b"lo\r\n0\r\n\r\nNEXT");
        match r.feed(&mut b) {
            Ok(Step::Done(body)) => assert_eq!(&body[..], b"hello"),
            other => panic!("{other:?}"),
        }
        assert_eq!(&b[..], b"NEXT");
        let mut small = BodyReader::new(Framing::Chunked, 3).unwrap();
        assert_eq!(
            small.feed(&mut buf(b"5\r\nhello\r\n")).unwrap_err(),
            BodyError::TooLarge
        );
        let mut bad = BodyReader::new(Framing::Chunked, 3).unwrap();
        assert!(matches!(
            bad.feed(&mut buf(b"zz\r\n")),
            Err(BodyError::Malformed(_))
        ));
    }

    #[test]
    fn the_end_of_the_stream_ends_or_breaks_a_body() {
        let mut r = BodyReader::new(Framing::UntilClose, 10).unwrap();
        let mut b = buf(b"abc");
        assert!(matches!(r.feed(&mut b), Ok(Step::NeedMore)));
        assert_eq!(&r.end_of_stream(&mut b).unwrap()[..], b"abc");
        let mut r = BodyReader::new(Framing::Length(5), 10).unwrap();
        assert_eq!(
            r.end_of_stream(&mut buf(b"abc")).unwrap_err(),
            BodyError::Truncated
        );
        let mut r = BodyReader::new(Framing::UntilClose, 2).unwrap();
        assert_eq!(r.feed(&mut buf(b"abc")).unwrap_err(), BodyError::TooLarge);
        let mut r = BodyReader::new(Framing::Empty, 0).unwrap();
        assert!(matches!(r.feed(&mut buf(b"x")), Ok(Step::Done(b)) if b.is_empty()));
    }
}
