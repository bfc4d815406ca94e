//! Hop-by-hop header removal (RFC 9110 section 7.6.1), for both directions of the proxy.
//!
//! Limits: header names listed in `Connection` that are not valid header names are ignored.

use http::header::{self, HeaderMap, HeaderName};

/// Headers that describe one connection, not the message, and must not be forwarded.
const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers (`Connection` and the headers it lists, `Keep-Alive`, every
/// `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`) and also `Host` and
/// `Content-Length`, which the client sets again for the new request or response.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove(header::HOST);
    headers.remove(header::CONTENT_LENGTH);
    let proxy: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn strips_hop_by_hop_and_connection_listed_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("gateway.local"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("12"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Custom-Hop"),
        );
        h.append(header::CONNECTION, HeaderValue::from_static("x-second-hop"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-custom-hop", HeaderValue::from_static("1"));
        h.insert("x-second-hop", HeaderValue::from_static("1"));
        h.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_static("Basic abc"),
        );
        h.insert("proxy-connection", HeaderValue::from_static("close"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::TRAILER, HeaderValue::from_static("x-checksum"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        // End-to-end headers that must stay.
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sk-test"),
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        h.insert("x-api-key", HeaderValue::from_static("k"));

        strip_hop_by_hop(&mut h);

        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(
            left,
            [
                "accept-encoding",
                "authorization",
                "content-type",
                "x-api-key"
            ]
        );
    }

    #[test]
    fn tolerates_odd_connection_values() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static(" , close,,bad header "),
        );
        h.insert("close", HeaderValue::from_static("x"));
        h.insert("x-keep", HeaderValue::from_static("y"));
        strip_hop_by_hop(&mut h);
        assert!(h.get("close").is_none());
        assert_eq!(h.get("x-keep").unwrap(), "y");
        assert!(h.get(header::CONNECTION).is_none());
    }
}
