//! Upstream answer heads: the status line and header fields of an HTTP/1.x answer, parsed with
//! `httparse` into ranges of the received bytes (no header map is built: the gateway only looks
//! up a few fields and copies the rest to the client), with its framing and keep-alive decided.

use bytes::Bytes;
use std::ops::Range;

use crate::body::Framing;
use crate::limits::ANSWER_HEADERS;

/// A parsed answer head; field names and values are slices of `raw`.
#[derive(Debug)]
pub struct AnswerHead {
    pub status: u16,
    raw: Bytes,
    fields: Vec<(Range<usize>, Range<usize>)>,
    pub framing: Framing,
    /// `Content-Length`, if given (for a HEAD answer, the length of the body it stands for).
    pub content_length: Option<u64>,
    /// The upstream keeps the connection open after this answer.
    pub keep_alive: bool,
}

/// Why an answer head is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerError(pub &'static str);

impl AnswerHead {
    /// The fields in the order received, names as the upstream spelled them.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields
            .iter()
            .map(|(n, v)| (&self.raw[n.clone()], &self.raw[v.clone()]))
    }

    /// The first field named `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

/// Parses the answer head at the start of `buf`. `Ok(None)`: incomplete. `Ok(Some((head,
/// n)))`: the head took `n` bytes. `to_head`: the request was HEAD (the answer has no body
/// whatever its fields say).
pub fn parse(buf: &Bytes, to_head: bool) -> Result<Option<(AnswerHead, usize)>, AnswerError> {
    let mut parsed = [httparse::EMPTY_HEADER; ANSWER_HEADERS];
    let mut res = httparse::Response::new(&mut parsed);
    let len = match res.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(AnswerError("malformed answer head")),
    };
    let status = res
        .code
        .filter(|c| (100..=599).contains(c))
        .ok_or(AnswerError("no valid status code"))?;
    let http11 = res.version == Some(1);
    let base = buf.as_ptr() as usize;
    let range = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let mut fields = Vec::with_capacity(res.headers.len());
    let mut length: Option<u64> = None;
    // Only `chunked`, alone, is a transfer coding the gateway decodes.
    let mut chunked_only = true;
    let mut transfer_encoding = false;
    let mut close = !http11;
    for f in res.headers.iter() {
        let name = f.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n =
                crate::content_length(f.value).ok_or(AnswerError("malformed content-length"))?;
            if length.is_some_and(|m| m != n) {
                return Err(AnswerError("conflicting content-length"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked_only &=
                !transfer_encoding && f.value.trim_ascii().eq_ignore_ascii_case(b"chunked");
            transfer_encoding = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in f.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if option.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if option.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                    close = false;
                }
            }
        }
        fields.push((range(name), range(f.value)));
    }
    // RFC 9112 §6.3: Transfer-Encoding with Content-Length ought to be handled as an error; the
    // body is read by the coding, and the connection is not reused (it may be out of step).
    if transfer_encoding && length.is_some() {
        close = true;
    }
    let framing = if to_head || status_has_no_body(status) {
        Framing::Empty
    } else if transfer_encoding && chunked_only && http11 {
        Framing::Chunked
    } else if transfer_encoding {
        // Another coding (gzip, a list, any in HTTP/1.0): relaying the body with the field
        // removed would hand the player coded bytes it cannot read.
        return Err(AnswerError("a transfer coding the gateway does not decode"));
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    Ok(Some((
        AnswerHead {
            status,
            raw: buf.clone(),
            fields,
            framing,
            content_length: length,
            keep_alive: !close && framing != Framing::UntilClose,
        },
        len,
    )))
}

/// 1xx, 204 and 304 answers never have a body (RFC 9112 §6.3).
pub fn status_has_no_body(status: u16) -> bool {
    matches!(status, 100..=199 | 204 | 304)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &str, to_head: bool) -> AnswerHead {
        let buf = Bytes::copy_from_slice(text.as_bytes());
        match parse(&buf, to_head) {
            Ok(Some((head, n))) => {
                assert_eq!(&buf[n..], b"BODY");
                head
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_statuses_lengths_and_codings() {
        let parsed = |t: &str| parse(&Bytes::copy_from_slice(t.as_bytes()), false);
        assert!(parsed("HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n").is_err());
        assert!(parsed("HTTP/1.1 000 Odd\r\nContent-Length: 0\r\n\r\n").is_err());
        assert!(parsed("HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n").is_err());
        // Codings the gateway does not decode are refused, whatever the length says.
        for coded in [
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: ,chunked\r\n\r\n",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(parsed(coded).is_err(), "{coded:?}");
        }
        // No body to decode: the coding does not matter.
        let h = answer(
            "HTTP/1.1 204 No Content\r\nTransfer-Encoding: gzip\r\n\r\nBODY",
            false,
        );
        assert_eq!(h.framing, Framing::Empty);
        // Chunked with a length: read as chunked, and the connection is not reused.
        let h = answer(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nBODY",
            false,
        );
        assert_eq!(h.framing, Framing::Chunked);
        assert!(!h.keep_alive);
    }

    #[test]
    fn a_created_answer_from_nginx() {
        let h = answer("HTTP/1.1 201 Created\r\nServer: nginx\r\nContent-Length: 0\r\nLocation: /api/v1/sessions/ab\r\nConnection: keep-alive\r\n\r\nBODY", false);
        assert_eq!(h.status, 201);
        assert_eq!(h.framing, Framing::Length(0));
        assert!(h.keep_alive);
        assert_eq!(h.get("location"), Some(&b"/api/v1/sessions/ab"[..]));
        let names: Vec<&[u8]> = h.fields().map(|(n, _)| n).collect();
        assert_eq!(names[0], b"Server");
        assert_eq!(names.len(), 4);
    }

    #[test]
    fn framing_and_keep_alive() {
        let h = answer(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nBODY",
            false,
        );
        assert_eq!(h.framing, Framing::Chunked);
        let h = answer("HTTP/1.1 200 OK\r\n\r\nBODY", false);
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(!h.keep_alive);
        let h = answer(
            "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nBODY",
            false,
        );
        assert_eq!(h.framing, Framing::Empty);
        let h = answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nBODY", true);
        assert_eq!(h.framing, Framing::Empty);
        assert!(h.keep_alive);
        let h = answer(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nBODY",
            false,
        );
        assert!(!h.keep_alive);
        let h = answer("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nBODY", false);
        assert!(!h.keep_alive);
        let h = answer(
            "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nBODY",
            false,
        );
        assert!(h.keep_alive);
    }

    #[test]
    fn refusals_and_partial_heads() {
        let p = |t: &str| parse(&Bytes::copy_from_slice(t.as_bytes()), false).map(|o| o.is_some());
        assert_eq!(p("HTTP/1.1 201 Created\r\nContent-"), Ok(false));
        assert!(p("HTTP/1.1 201 Created\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(
            p("HTTP/1.1 201 Created\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").is_err()
        );
        assert!(p("SMTP ready\r\n\r\n").is_err());
    }
}
