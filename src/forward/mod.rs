//! The upstream HTTP client: sending masked requests to the LLM API and reading its answer.
//!
//! * [`UpstreamClient`]: a pooled hyper client over rustls (ring provider), speaking HTTP/1.1
//!   and HTTP/2 (chosen by ALPN) to `https://` upstreams and HTTP/1.1 to `http://` ones. Trust
//!   comes from the bundled webpki roots plus an optional extra CA file (PEM), for private
//!   upstreams or test servers. A connect timeout applies per connection and a response
//!   timeout until the response headers arrive; the body is the caller's to time.
//! * [`strip_hop_by_hop`]: the headers a proxy must not pass on.
//! * [`decoded_body`] / [`collect_decoded`]: the response body decoded according to its
//!   `Content-Encoding`, since masking and restoring need the plain text.
//!
//! Why here: every route forwards the same way; the pipeline only builds the request.
//!
//! Limits: no proxy (`HTTPS_PROXY`) support, no h2c (HTTP/2 over plain TCP), no retries (a
//! request that reached the upstream is never re-sent: LLM calls are not idempotent in cost).
//! `deflate` is the zlib format as RFC 9110 defines it; raw deflate streams fail to decode.
//! Error messages come from the transport (hyper, rustls, io) and never hold a body or a URI
//! (a URI can carry an API key in its query, as Gemini's `?key=` does).

mod client;
mod decode;
mod headers;

pub use client::{ClientSettings, UpstreamClient};
pub use decode::{collect_decoded, decoded_body, DecodedStream};
pub use headers::strip_hop_by_hop;

use http::StatusCode;

/// Everything that can go wrong talking to the upstream or reading its answer.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The TCP connection could not be opened (refused, unreachable, DNS failure).
    #[error("upstream connection failed: {0}")]
    Connect(String),
    /// Connecting or waiting for the response headers took longer than configured.
    #[error("upstream timed out")]
    Timeout,
    /// The TLS handshake failed (untrusted certificate, wrong name, protocol mismatch).
    #[error("upstream TLS failed: {0}")]
    Tls(String),
    /// The upstream broke HTTP: a malformed response, a reset stream, a body cut short.
    #[error("upstream protocol error: {0}")]
    Protocol(String),
    /// The decoded response body passed the given limit in bytes.
    #[error("upstream body larger than {0} bytes")]
    BodyTooLarge(usize),
    /// A `Content-Encoding` this client cannot decode (the coding name is from the upstream's
    /// header, not from the body).
    #[error("unsupported content encoding {0:?}")]
    UnsupportedEncoding(String),
    /// The body did not decode with the coding its header claimed.
    #[error("upstream body failed to decode: {0}")]
    Decode(String),
    /// The client was set up or called wrongly (bad CA file, relative URI).
    #[error("upstream client configuration: {0}")]
    Config(String),
}

impl ForwardError {
    /// The HTTP status the gateway answers with when this error ends a request.
    pub fn status(&self) -> StatusCode {
        match self {
            ForwardError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ForwardError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ForwardError::Connect(_)
            | ForwardError::Tls(_)
            | ForwardError::Protocol(_)
            | ForwardError::BodyTooLarge(_)
            | ForwardError::UnsupportedEncoding(_)
            | ForwardError::Decode(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// Who is at fault: `"upstream"`, or `"internal"` for a configuration error.
    pub fn fault(&self) -> &'static str {
        match self {
            ForwardError::Config(_) => "internal",
            _ => "upstream",
        }
    }

    /// A short stable code for audit records and metrics (no values in it).
    pub fn code(&self) -> &'static str {
        match self {
            ForwardError::Connect(_) => "upstream_connect",
            ForwardError::Timeout => "upstream_timeout",
            ForwardError::Tls(_) => "upstream_tls",
            ForwardError::Protocol(_) => "upstream_protocol",
            ForwardError::BodyTooLarge(_) => "upstream_body_too_large",
            ForwardError::UnsupportedEncoding(_) => "upstream_unsupported_encoding",
            ForwardError::Decode(_) => "upstream_decode",
            ForwardError::Config(_) => "upstream_config",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_fault() {
        assert_eq!(ForwardError::Timeout.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            ForwardError::Connect("refused".into()).status(),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            ForwardError::Tls("bad cert".into()).status(),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            ForwardError::Decode("x".into()).status(),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            ForwardError::Config("x".into()).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(ForwardError::Config("x".into()).fault(), "internal");
        assert_eq!(ForwardError::Timeout.fault(), "upstream");
        assert_eq!(ForwardError::BodyTooLarge(10).fault(), "upstream");
    }
}
