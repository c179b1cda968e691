//! Request heads: the request line and header fields of one HTTP/1.0 or 1.1 request, parsed
//! with `httparse`, with what the connection loop needs decided once: how the body is framed,
//! whether the connection stays open, and whether the client waits for `100 Continue`.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri};

use crate::body::Framing;
use crate::limits::REQUEST_HEADERS as MAX_HEADERS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// A parsed request head.
#[derive(Debug)]
pub struct RequestHead {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The client asked to keep the connection open (HTTP/1.1 unless `Connection: close`;
    /// HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// Why a head was refused; each maps to the status the client gets, after which the
/// connection is closed (the rest of the stream cannot be trusted to be framed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// Not HTTP/1 (400).
    Malformed(&'static str),
    /// More than [`MAX_HEADERS`] fields (431).
    TooManyHeaders,
    /// A transfer coding other than `chunked` (501).
    UnsupportedTransferEncoding,
    /// An HTTP major version other than 1 (505).
    VersionNotSupported,
}

impl HeadError {
    pub fn status(self) -> u16 {
        match self {
            HeadError::Malformed(_) => 400,
            HeadError::TooManyHeaders => 431,
            HeadError::UnsupportedTransferEncoding => 501,
            HeadError::VersionNotSupported => 505,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            HeadError::Malformed(why) => why,
            HeadError::TooManyHeaders => "too many request header fields",
            HeadError::UnsupportedTransferEncoding => "unsupported transfer-encoding",
            HeadError::VersionNotSupported => "only HTTP/1.0 and HTTP/1.1 are served here",
        }
    }
}

/// Parses the head at the start of `buf`. `Ok(None)`: incomplete, read more. `Ok(Some((head,
/// n)))`: the head took the first `n` bytes; the body (or the next request) follows.
pub fn parse(buf: &Bytes) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(httparse::Error::Version) => return parse_other_version(buf),
        Err(_) => return Err(HeadError::Malformed("malformed request head")),
    };
    let version = match req.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    let method = req
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or(HeadError::Malformed("malformed request method"))?;
    let target = req.path.unwrap_or_default();
    // RFC 9112 §3.2: a request target has no fragment.
    if target.contains('#') {
        return Err(HeadError::Malformed("a fragment in the request target"));
    }
    let uri = Uri::from_maybe_shared(buf.slice_ref(target.as_bytes()))
        .map_err(|_| HeadError::Malformed("malformed request target"))?;
    // RFC 9110 §4.2.4: userinfo in a request's URI is an error.
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(HeadError::Malformed("userinfo in the request target"));
    }

    let mut headers = HeaderMap::with_capacity(req.headers.len());
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let mut hosts = 0;
    let mut connection_close = false;
    let mut connection_keep_alive = false;
    let mut expect_continue = false;
    for field in req.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| HeadError::Malformed("malformed header name"))?;
        // httparse has checked the value's characters; sharing the buffer avoids a copy.
        let value = HeaderValue::from_maybe_shared(buf.slice_ref(field.value))
            .map_err(|_| HeadError::Malformed("malformed header value"))?;
        if name == http::header::CONTENT_LENGTH {
            let n = crate::content_length(field.value)
                .ok_or(HeadError::Malformed("malformed content-length"))?;
            if content_length.is_some_and(|m| m != n) {
                return Err(HeadError::Malformed("conflicting content-length"));
            }
            content_length = Some(n);
        } else if name == http::header::TRANSFER_ENCODING {
            transfer_encoding = true;
            // Empty list elements (`,chunked`) are refused rather than skipped: a proxy in front
            // that reads the field differently would disagree about where the body ends.
            if field
                .value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().is_empty())
            {
                return Err(HeadError::Malformed("malformed transfer-encoding"));
            }
            for coding in tokens(field.value) {
                if chunked || !coding.eq_ignore_ascii_case(b"chunked") {
                    // chunked must be the last and only coding a server is asked to undo.
                    return Err(HeadError::UnsupportedTransferEncoding);
                }
                chunked = true;
            }
        } else if name == http::header::CONNECTION {
            for option in tokens(field.value) {
                connection_close |= option.eq_ignore_ascii_case(b"close");
                connection_keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name == http::header::HOST {
            if !is_host(field.value) {
                return Err(HeadError::Malformed("malformed host field"));
            }
            hosts += 1;
        } else if name == http::header::EXPECT {
            expect_continue = field.value.eq_ignore_ascii_case(b"100-continue");
        }
        headers.append(name, value);
    }
    // RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host field; none (in 1.1) or several
    // get 400.
    if hosts > 1 || (hosts == 0 && version == Version::Http11) {
        return Err(HeadError::Malformed(if hosts > 1 {
            "more than one host field"
        } else {
            "missing host field"
        }));
    }
    // RFC 9112 §6.3: a Transfer-Encoding that does not end in chunked (here: one that names no
    // coding at all) leaves the body's length unknown.
    if transfer_encoding && !chunked {
        return Err(HeadError::Malformed("empty transfer-encoding"));
    }
    let framing = match (chunked, content_length) {
        (true, _) if version == Version::Http10 => {
            return Err(HeadError::Malformed("chunked body in an HTTP/1.0 request"))
        }
        // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; such a request may be an
        // attempt at request smuggling, so its connection is closed after the answer.
        (true, Some(_)) => {
            connection_close = true;
            Framing::Chunked
        }
        (true, None) => Framing::Chunked,
        (false, Some(0)) | (false, None) => Framing::Empty,
        (false, Some(n)) => Framing::Length(n),
    };
    let keep_alive = match version {
        Version::Http11 => !connection_close,
        Version::Http10 => connection_keep_alive && !connection_close,
    };
    Ok(Some((
        RequestHead {
            method,
            uri,
            version,
            headers,
            framing,
            keep_alive,
            expect_continue,
        },
        len,
    )))
}

/// A head httparse refused for its version. RFC 9110 §2.5: a later HTTP/1 minor version is
/// served as HTTP/1.1 (parsed again with its version read as 1.1); another major version gets
/// 505; anything else is not HTTP.
fn parse_other_version(buf: &Bytes) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = buf[..line_end].trim_ascii_end();
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    match version {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] if (b'2'..=b'9').contains(minor) => {
            let mut patched = buf.to_vec();
            patched[line.len() - 1] = b'1';
            parse(&Bytes::from(patched))
        }
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if *major != b'1' && major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(HeadError::VersionNotSupported)
        }
        _ => Err(HeadError::Malformed("not an HTTP/1 request")),
    }
}

/// The comma-separated tokens of a header value, trimmed, empty ones skipped.
/// A `Host` value: `host[:port]` with a registered name or IPv4 address of `[A-Za-z0-9._~-]`, or
/// an IPv6 literal in brackets. Nothing else (blanks, `/`, `@`, `,`, an empty value), as nginx
/// and HAProxy refuse them too.
fn is_host(value: &[u8]) -> bool {
    let (host, port) = match value.strip_prefix(b"[") {
        Some(rest) => match rest.iter().position(|&b| b == b']') {
            Some(end) => {
                let literal = &rest[..end];
                if literal.is_empty()
                    || !literal
                        .iter()
                        .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
                {
                    return false;
                }
                (&b"v6"[..], &rest[end + 1..])
            }
            None => return false,
        },
        None => match value.iter().rposition(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon..]),
            None => (value, &b""[..]),
        },
    };
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    port_ok
        && !host.is_empty()
        && host
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~'))
}

fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Where a head ends (the index after its empty line, CRLF CRLF or LF LF), searching from
/// `from` (a caller that read more re-scans only the new bytes and the three before them).
pub fn end_of_head(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(offset) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + offset;
        match buf.get(nl + 1..nl + 3) {
            Some([b'\r', b'\n', ..]) => return Some(nl + 3),
            _ if buf.get(nl + 1) == Some(&b'\n') => return Some(nl + 2),
            _ => i = nl + 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_fragments_userinfo_and_empty_codings_are_refused() {
        let head = |extra: &str, target: &str| {
            let text = format!("POST {target} HTTP/1.1\r\n{extra}\r\n");
            parse(&Bytes::from(text)).map(|h| h.is_some())
        };
        for good in [
            "gw",
            "gw:8080",
            "127.0.0.1:1",
            "[::1]:8080",
            "[::1]",
            "a-b.c_d~e",
        ] {
            assert_eq!(head(&format!("Host: {good}\r\n"), "/"), Ok(true), "{good}");
        }
        for bad in [
            "a b/c@d", "a, b", "", "a:b", "a:123456", "[x]", "[::1", "gw:80:81",
        ] {
            assert!(head(&format!("Host: {bad}\r\n"), "/").is_err(), "{bad:?}");
        }
        assert!(head("Host: gw\r\n", "/api/v1/sessions#frag").is_err());
        assert!(head("Host: gw\r\n", "http://user@gw/api/v1/sessions").is_err());
        assert_eq!(head("Host: gw\r\n", "http://gw/api/v1/sessions"), Ok(true));
        for te in [",chunked", "chunked,", "chunked, ,"] {
            let extra = format!("Host: gw\r\nTransfer-Encoding: {te}\r\n");
            assert!(head(&extra, "/").is_err(), "{te:?}");
        }
    }

    #[test]
    fn heads_end_at_the_empty_line() {
        assert_eq!(end_of_head(b"GET / HTTP/1.1\r\n\r\nbody", 0), Some(18));
        assert_eq!(end_of_head(b"GET / HTTP/1.1\n\nbody", 0), Some(16));
        assert_eq!(end_of_head(b"GET / HTTP/1.1\r\nHost: x\r\n", 0), None);
        assert_eq!(end_of_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r", 0), None);
        assert_eq!(end_of_head(b"", 0), None);
        assert_eq!(end_of_head(b"GET / HTTP/1.1\r\n\r\n", 40), None);
    }

    fn head(text: &str) -> Result<Option<(RequestHead, usize)>, HeadError> {
        parse(&Bytes::copy_from_slice(text.as_bytes()))
    }

    fn complete(text: &str) -> RequestHead {
        match head(text) {
            Ok(Some((h, n))) => {
                assert_eq!(n, text.find("\r\n\r\n").map_or(0, |i| i + 4));
                h
            }
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    #[test]
    fn a_post_with_a_length() {
        let h = complete("POST /api/v1/sessions?x=1 HTTP/1.1\r\nHost: gw\r\nContent-Length: 624\r\nContent-Type: application/json\r\n\r\n{");
        assert_eq!(h.method, Method::POST);
        assert_eq!(h.uri.path(), "/api/v1/sessions");
        assert_eq!(h.uri.query(), Some("x=1"));
        assert_eq!(h.framing, Framing::Length(624));
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
        assert_eq!(h.headers.get("content-type").unwrap(), "application/json");
    }

    #[test]
    fn partial_heads_ask_for_more() {
        assert!(matches!(
            head("POST /api/v1/sessions HTTP/1.1\r\nHost: h\r\nHost"),
            Ok(None)
        ));
        assert!(matches!(head(""), Ok(None)));
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection() {
        assert!(!complete("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(complete("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(
            !complete("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n").keep_alive
        );
    }

    #[test]
    fn framing() {
        assert_eq!(
            complete("POST / HTTP/1.1\r\nHost: h\r\n\r\n").framing,
            Framing::Empty
        );
        assert_eq!(
            complete("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").framing,
            Framing::Empty
        );
        let h = complete("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
        assert!(h.keep_alive);
        let h = complete(
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(h.framing, Framing::Chunked);
        assert!(!h.keep_alive, "CL + TE closes the connection afterwards");
        assert!(
            complete("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n\r\n").expect_continue
        );
    }

    #[test]
    fn refusals() {
        let status = |t: &str| head(t).map(|_| 0).unwrap_or_else(HeadError::status);
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            501
        );
        assert_eq!(
            status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        assert_eq!(status("NOT HTTP\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(status("GET / HTTP/1.1x\r\nHost: h\r\n\r\n"), 400);
        // RFC 9112 §3.2: exactly one Host in HTTP/1.1.
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        // RFC 9112 §6.3: a Transfer-Encoding without chunked last: 400 (or 501 for codings).
        assert_eq!(
            status(
                "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\nContent-Length: 2\r\n\r\n"
            ),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,\r\n\r\n"),
            400
        );
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("x-{i}: 1\r\n"))
            .collect();
        assert_eq!(
            status(&format!("GET / HTTP/1.1\r\nHost: h\r\n{many}\r\n")),
            431
        );
    }

    #[test]
    fn a_later_http_1_minor_version_is_served_as_1_1() {
        let h =
            complete("POST /api/v1/sessions HTTP/1.2\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.framing, Framing::Length(2));
        assert_eq!(h.uri.path(), "/api/v1/sessions");
        assert!(complete("GET / HTTP/1.0\r\n\r\n").version == Version::Http10);
    }

    #[test]
    fn repeated_equal_lengths_are_one_length() {
        let h = complete(
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
        );
        assert_eq!(h.framing, Framing::Length(3));
    }
}
