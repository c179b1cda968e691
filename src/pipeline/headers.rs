//! Which headers travel: the upstream request head (the client's headers but hop-by-hop ones
//! and those the gateway sets, then the gateway's own) and the fields of an upstream answer
//! that travel back to the player. Pure.

use http::{HeaderMap, HeaderName, HeaderValue};

use http1::answer::AnswerHead;

/// Hop-by-hop headers (RFC 9110 §7.6.1) and those the gateway always sets itself.
const NOT_FORWARDED_UPSTREAM: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "host",
    "content-length",
];

/// Hop-by-hop headers of an upstream answer, and its framing headers (the gateway frames the
/// answer to the client itself).
const NOT_FORWARDED_DOWNSTREAM: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
    "transfer-encoding",
    "content-length",
];

/// Serializes an HTTP/1.1 request header for the upstream (with room for the body after it).
///
/// `set` are the headers the gateway sets (forwarding headers, request id, configured ones);
/// they replace any client header of the same name. `underscores`: forward client header names
/// containing `_`; by default they are dropped (as nginx's `underscores_in_headers off`), since
/// a backend that folds `_` into `-` (CGI, WSGI) would read `X_Forwarded_For` as the gateway's
/// own `X-Forwarded-For`.
pub fn request_head(
    method: &str,
    path_and_query: &str,
    authority: &str,
    client_headers: &HeaderMap,
    set: &[(HeaderName, HeaderValue)],
    content_length: Option<usize>,
    underscores: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(768 + content_length.unwrap_or(0));
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b"\r\n");
    let nominated = connection_nominated(client_headers);
    for (name, value) in client_headers {
        let n = name.as_str();
        if NOT_FORWARDED_UPSTREAM.contains(&n)
            || (!underscores && n.contains('_'))
            || nominated.iter().any(|c| c.eq_ignore_ascii_case(n))
            || set.iter().any(|(s, _)| s == name)
        {
            continue;
        }
        push_header(&mut out, n, value.as_bytes());
    }
    for (name, value) in set {
        push_header(&mut out, name.as_str(), value.as_bytes());
    }
    if let Some(len) = content_length {
        out.extend_from_slice(b"content-length: ");
        http1::response::push_u64(&mut out, len as u64);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A whole HTTP/1.1 request for the upstream: [`request_head`], with `body` (when there is one)
/// framed by its length and written after the head, in one buffer (one `write`).
pub fn request(
    method: &str,
    path_and_query: &str,
    authority: &str,
    client_headers: &HeaderMap,
    set: &[(HeaderName, HeaderValue)],
    body: Option<&[u8]>,
    underscores: bool,
) -> Vec<u8> {
    let mut out = request_head(
        method,
        path_and_query,
        authority,
        client_headers,
        set,
        body.map(<[u8]>::len),
        underscores,
    );
    out.extend_from_slice(body.unwrap_or_default());
    out
}

/// The fields of an upstream answer that travel to the client, as the upstream spelled them: all
/// but hop-by-hop and framing ones, those named in its `Connection` field, and `skip` (the ones
/// the gateway writes itself; lowercase).
pub fn downstream_headers<'a>(
    answer: &'a AnswerHead,
    skip: &'a [&'a str],
) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
    let nominated: Vec<&[u8]> = answer
        .fields()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
        .collect();
    let listed =
        |list: &[&str], name: &[u8]| list.iter().any(|l| l.as_bytes().eq_ignore_ascii_case(name));
    answer.fields().filter(move |(name, _)| {
        !listed(NOT_FORWARDED_DOWNSTREAM, name)
            && !listed(skip, name)
            && !nominated.iter().any(|c| c.eq_ignore_ascii_case(name))
    })
}

/// How many client header names contain `_` (dropped unless `underscores_in_headers`).
pub fn underscore_names(client_headers: &HeaderMap) -> usize {
    client_headers
        .keys()
        .filter(|n| n.as_str().contains('_'))
        .count()
}

/// Header names listed in `Connection` (they are hop-by-hop too).
fn connection_nominated(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty() && t != "close" && t != "keep-alive")
        .collect()
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_gateway_headers_are_not_copied() {
        let mut h = HeaderMap::new();
        h.insert("connection", "keep-alive, x-secret".parse().unwrap());
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert("expect", "100-continue".parse().unwrap());
        h.insert("host", "gw.example".parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        h.insert("x-forwarded-for", "1.2.3.4".parse().unwrap());
        h.insert("user-agent", "player/1".parse().unwrap());
        h.insert("x_forwarded_for", "6.6.6.6".parse().unwrap());
        let set = [(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_static("1.2.3.4, 5.6.7.8"),
        )];
        assert_eq!(underscore_names(&h), 1);
        let kept = request_head("POST", "/", "up", &h, &set, None, true);
        assert!(String::from_utf8(kept)
            .unwrap()
            .contains("x_forwarded_for: 6.6.6.6\r\n"));
        let head = request_head(
            "POST",
            "/api/v1/sessions",
            "up:8081",
            &h,
            &set,
            Some(42),
            false,
        );
        let text = String::from_utf8(head).unwrap();
        assert!(text.starts_with("POST /api/v1/sessions HTTP/1.1\r\nhost: up:8081\r\n"));
        assert!(text.ends_with("content-length: 42\r\n\r\n"));
        assert!(text.contains("content-type: application/json\r\n"));
        assert!(text.contains("user-agent: player/1\r\n"));
        assert!(text.contains("x-forwarded-for: 1.2.3.4, 5.6.7.8\r\n"));
        assert_eq!(text.matches("x-forwarded-for").count(), 1);
        for gone in [
            "x-secret",
            "transfer-encoding",
            "expect",
            "gw.example",
            "connection",
            "6.6.6.6",
        ] {
            assert!(!text.contains(gone), "{gone} leaked: {text}");
        }
    }

    #[test]
    fn upstream_hop_by_hop_headers_are_dropped() {
        let raw = bytes::Bytes::from_static(
            b"HTTP/1.1 201 Created\r\nConnection: keep-alive, X-Internal\r\nKeep-Alive: timeout=5\r\n\
              x-internal: 1\r\nLocation: /api/v1/sessions/x\r\nContent-Length: 0\r\n\
              X-Trace: 7\r\nAccess-Control-Allow-Origin: example.com\r\n\r\n",
        );
        let (answer, _) = http1::answer::parse(&raw, false).unwrap().unwrap();
        let kept: Vec<&[u8]> = downstream_headers(&answer, &["access-control-allow-origin"])
            .map(|(n, _)| n)
            .collect();
        assert_eq!(kept, [&b"Location"[..], b"X-Trace"]);
    }
}
