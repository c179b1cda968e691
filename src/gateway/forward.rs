//! Building the upstream request header and the downstream answer header.
//!
//! Pure apart from pingora's header types: which client headers travel upstream (all but
//! hop-by-hop ones and those the gateway sets), and which upstream headers travel back.

use http::{HeaderMap, HeaderName, HeaderValue};
use pingora_http::ResponseHeader;

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

/// Hop-by-hop headers of an upstream answer; framing headers stay (pingora re-frames from them).
const NOT_FORWARDED_DOWNSTREAM: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
];

/// Serializes an HTTP/1.1 request header for the upstream.
///
/// `set` are the headers the gateway sets (forwarding headers, request id, configured ones);
/// they replace any client header of the same name.
pub fn request_head(
    method: &str,
    path_and_query: &str,
    authority: &str,
    client_headers: &HeaderMap,
    set: &[(HeaderName, HeaderValue)],
    content_length: Option<usize>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
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
        out.extend_from_slice(itoa_usize(len).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Removes hop-by-hop headers from an upstream answer before it goes to the client.
pub fn strip_downstream_hop_by_hop(header: &mut ResponseHeader) {
    let nominated = connection_nominated(&header.headers);
    for name in NOT_FORWARDED_DOWNSTREAM {
        if header.headers.contains_key(*name) {
            header.remove_header(*name);
        }
    }
    for name in &nominated {
        header.remove_header(name);
    }
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

fn itoa_usize(n: usize) -> String {
    n.to_string()
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
        let set = [(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_static("1.2.3.4, 5.6.7.8"),
        )];
        let head = request_head("POST", "/api/v1/sessions", "up:8081", &h, &set, Some(42));
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
        ] {
            assert!(!text.contains(gone), "{gone} leaked: {text}");
        }
    }

    #[test]
    fn upstream_hop_by_hop_headers_are_dropped() {
        let mut r = ResponseHeader::build(201, None).unwrap();
        r.insert_header("connection", "keep-alive, x-internal")
            .unwrap();
        r.insert_header("keep-alive", "timeout=5").unwrap();
        r.insert_header("x-internal", "1").unwrap();
        r.insert_header("location", "/api/v1/sessions/x").unwrap();
        r.insert_header("content-length", "0").unwrap();
        strip_downstream_hop_by_hop(&mut r);
        assert!(r.headers.get("connection").is_none());
        assert!(r.headers.get("keep-alive").is_none());
        assert!(r.headers.get("x-internal").is_none());
        assert!(r.headers.get("location").is_some());
        assert!(r.headers.get("content-length").is_some());
    }
}
