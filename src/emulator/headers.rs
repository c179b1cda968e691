//! The request headers the emulator remembers for each accepted request, so tests can see what
//! the gateway sent upstream (Host, forwarding headers, request id, framing).

use http::HeaderMap;
use serde::Serialize;

/// The selected request headers of one request; absent headers are left out of the JSON.
/// Values that are not valid UTF-8 are kept lossily.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestHeaders {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(rename = "content-type", skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(rename = "content-length", skip_serializing_if = "Option::is_none")]
    pub content_length: Option<String>,
    #[serde(rename = "x-forwarded-for", skip_serializing_if = "Option::is_none")]
    pub x_forwarded_for: Option<String>,
    #[serde(rename = "x-forwarded-proto", skip_serializing_if = "Option::is_none")]
    pub x_forwarded_proto: Option<String>,
    #[serde(rename = "x-request-id", skip_serializing_if = "Option::is_none")]
    pub x_request_id: Option<String>,
    #[serde(rename = "user-agent", skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

impl RequestHeaders {
    /// Picks the selected headers out of a request's header map (first value of each).
    pub fn from_map(map: &HeaderMap) -> RequestHeaders {
        let get = |name: &str| {
            map.get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        RequestHeaders {
            host: get("host"),
            content_type: get("content-type"),
            content_length: get("content-length"),
            x_forwarded_for: get("x-forwarded-for"),
            x_forwarded_proto: get("x-forwarded-proto"),
            x_request_id: get("x-request-id"),
            user_agent: get("user-agent"),
        }
    }

    /// Approximate heap size, for the store's byte budget.
    pub fn byte_size(&self) -> usize {
        [
            &self.host,
            &self.content_type,
            &self.content_length,
            &self.x_forwarded_for,
            &self.x_forwarded_proto,
            &self.x_request_id,
            &self.user_agent,
        ]
        .iter()
        .map(|v| v.as_ref().map_or(0, String::len))
        .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn picks_only_the_selected_headers_and_skips_absent_ones() {
        let mut map = HeaderMap::new();
        map.insert("host", HeaderValue::from_static("collector.example"));
        map.insert("x-request-id", HeaderValue::from_static("r-1"));
        map.insert("cookie", HeaderValue::from_static("secret"));
        map.insert(
            "user-agent",
            HeaderValue::from_bytes(b"caf\xe9").unwrap_or(HeaderValue::from_static("x")),
        );
        let h = RequestHeaders::from_map(&map);
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"host": "collector.example", "x-request-id": "r-1", "user-agent": "caf\u{fffd}"})
        );
        assert_eq!(
            h.byte_size(),
            "collector.example".len() + "r-1".len() + "caf\u{fffd}".len()
        );
    }
}
