//! The pooled upstream client: hyper's legacy client over a rustls connector.
//!
//! Limits: the response timeout covers connecting, the TLS handshake, sending the request and
//! waiting for the response headers; reading the body is not timed here (streams may run for
//! minutes). Certificates in the extra CA file are added to the webpki roots, not in place of
//! them.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::ForwardError;

/// How the upstream client connects and how long it waits.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Limit for opening the TCP connection.
    pub connect_timeout: Duration,
    /// Limit from sending the request until the response headers have arrived.
    pub response_timeout: Duration,
    /// Idle pooled connections are closed after this long.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per upstream host.
    pub pool_max_idle_per_host: usize,
    /// A PEM file of extra trusted CA certificates, added to the webpki roots.
    pub extra_ca_file: Option<PathBuf>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            connect_timeout: Duration::from_secs(10),
            // Non-streamed LLM answers only send headers once generation is done.
            response_timeout: Duration::from_secs(300),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 32,
            extra_ca_file: None,
        }
    }
}

/// The upstream HTTP client. Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct UpstreamClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    response_timeout: Duration,
}

impl fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("response_timeout", &self.response_timeout)
            .finish_non_exhaustive()
    }
}

fn root_store(extra_ca_file: Option<&PathBuf>) -> Result<RootCertStore, ForwardError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca_file {
        let shown = path.display();
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| ForwardError::Config(format!("extra CA file {shown}: {e}")))?;
        let mut added = 0usize;
        for cert in certs {
            let cert =
                cert.map_err(|e| ForwardError::Config(format!("extra CA file {shown}: {e}")))?;
            roots.add(cert).map_err(|e| {
                ForwardError::Config(format!("extra CA file {shown}: bad certificate: {e}"))
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(ForwardError::Config(format!(
                "extra CA file {shown}: no certificate found"
            )));
        }
    }
    Ok(roots)
}

impl UpstreamClient {
    /// Builds the client (TLS configuration, root store, pool). Needs no runtime; sending does.
    pub fn new(settings: &ClientSettings) -> Result<Self, ForwardError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ForwardError::Config(format!("TLS versions: {e}")))?
            .with_root_certificates(root_store(settings.extra_ca_file.as_ref())?)
            .with_no_client_auth();

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(settings.connect_timeout));
        http.set_nodelay(true);

        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);

        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(settings.pool_idle_timeout)
            .pool_max_idle_per_host(settings.pool_max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(UpstreamClient {
            inner,
            response_timeout: settings.response_timeout,
        })
    }

    /// Sends the request (absolute `http://` or `https://` URI) and returns the response once
    /// its headers are in, or [`ForwardError::Timeout`] after the configured response timeout.
    /// The `Host` header is set from the URI when the request has none.
    pub async fn send(
        &self,
        req: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<Incoming>, ForwardError> {
        match (req.uri().scheme_str(), req.uri().authority()) {
            (Some("http" | "https"), Some(_)) => {}
            _ => {
                return Err(ForwardError::Config(
                    "upstream request URI must be an absolute http or https URI".into(),
                ))
            }
        }
        match tokio::time::timeout(self.response_timeout, self.inner.request(req)).await {
            Err(_) => Err(ForwardError::Timeout),
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(classify(&e)),
        }
    }
}

/// Maps a client error to a [`ForwardError`] by looking through its causes.
fn classify(e: &hyper_util::client::legacy::Error) -> ForwardError {
    if any_cause(e, &|err| err.downcast_ref::<rustls::Error>().is_some()) {
        ForwardError::Tls(error_chain(e))
    } else if any_cause(e, &|err| {
        err.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
    }) {
        ForwardError::Timeout
    } else if e.is_connect() {
        ForwardError::Connect(error_chain(e))
    } else {
        ForwardError::Protocol(error_chain(e))
    }
}

/// Whether `test` holds for the error or any cause, looking inside `io::Error` wrappers too
/// (an `io::Error`'s `source()` skips the error it wraps).
fn any_cause(
    e: &(dyn StdError + 'static),
    test: &dyn Fn(&(dyn StdError + 'static)) -> bool,
) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if test(err) {
            return true;
        }
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            if any_cause(inner, test) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

/// An error and its causes as one line, `outer: inner: ...`, repeated messages shown once.
/// Transport errors (hyper, rustls, io) carry no body or URI text.
pub(super) fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        let msg = err.to_string();
        if !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        cur = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{header, Method, Request, Response, StatusCode, Version};
    use http_body_util::BodyExt;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use hyper_util::server::conn::auto;
    use std::net::SocketAddr;
    use std::path::Path;
    use tokio::net::TcpListener;

    fn tls_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls")
    }

    fn settings(extra_ca: Option<PathBuf>) -> ClientSettings {
        ClientSettings {
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(30),
            pool_max_idle_per_host: 4,
            extra_ca_file: extra_ca,
        }
    }

    /// Echo server: answers with the method, path, Host header, HTTP version and body.
    async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
        let head = format!(
            "{} {} host={} version={:?}\n",
            req.method(),
            req.uri().path(),
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("-"),
            req.version()
        );
        let gzip = req.headers().contains_key("x-reply-gzip");
        let body = req.into_body().collect().await?.to_bytes();
        let mut out = head.into_bytes();
        out.extend_from_slice(&body);
        if gzip {
            use tokio::io::AsyncReadExt;
            let mut packed = Vec::new();
            async_compression::tokio::bufread::GzipEncoder::new(out.as_slice())
                .read_to_end(&mut packed)
                .await
                .unwrap();
            return Ok(Response::builder()
                .header(header::CONTENT_ENCODING, "gzip")
                .body(Full::new(Bytes::from(packed)))
                .unwrap());
        }
        Ok(Response::builder()
            .status(StatusCode::CREATED)
            .header("x-upstream", "echo")
            .body(Full::new(Bytes::from(out)))
            .unwrap())
    }

    async fn spawn_plain_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), service_fn(echo))
                        .await;
                });
            }
        });
        addr
    }

    async fn spawn_tls_server() -> SocketAddr {
        use rustls_pki_types::PrivateKeyDer;
        let dir = tls_dir();
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.join("localhost.crt"))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("localhost.key")).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service_fn(echo))
                        .await;
                });
            }
        });
        addr
    }

    fn post(uri: String, body: &'static str) -> Request<Full<Bytes>> {
        Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    }

    #[tokio::test]
    async fn plain_http_round_trip() {
        let addr = spawn_plain_server().await;
        let client = UpstreamClient::new(&settings(None)).unwrap();
        for i in 0..3 {
            // Several requests: the second and third reuse the pooled connection.
            let resp = client
                .send(post(
                    format!("http://{addr}/v1/chat/completions"),
                    "{\"n\":1}",
                ))
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::CREATED, "request {i}");
            assert_eq!(resp.headers()["x-upstream"], "echo");
            assert_eq!(resp.version(), Version::HTTP_11);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(
                std::str::from_utf8(&body).unwrap(),
                format!("POST /v1/chat/completions host={addr} version=HTTP/1.1\n{{\"n\":1}}")
            );
        }
    }

    #[tokio::test]
    async fn compressed_answer_decodes_from_incoming() {
        let addr = spawn_plain_server().await;
        let client = UpstreamClient::new(&settings(None)).unwrap();
        let mut req = post(format!("http://{addr}/v1/responses"), "안녕 [EMAIL_1]");
        req.headers_mut()
            .insert("x-reply-gzip", http::HeaderValue::from_static("1"));
        let resp = client.send(req).await.unwrap();
        let ce = resp
            .headers()
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert_eq!(ce.as_deref(), Some("gzip"));
        let body = crate::forward::collect_decoded(ce.as_deref(), resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.starts_with("POST /v1/responses "), "{text}");
        assert!(text.ends_with("\n안녕 [EMAIL_1]"), "{text}");
    }

    #[tokio::test]
    async fn https_round_trip_with_extra_ca_uses_http2() {
        let addr = spawn_tls_server().await;
        let client = UpstreamClient::new(&settings(Some(tls_dir().join("localhost.crt")))).unwrap();
        for host in [
            format!("127.0.0.1:{}", addr.port()),
            format!("localhost:{}", addr.port()),
        ] {
            let resp = client
                .send(post(format!("https://{host}/v1/messages"), "hello"))
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::CREATED);
            assert_eq!(resp.version(), Version::HTTP_2, "ALPN should pick h2");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let text = std::str::from_utf8(&body).unwrap();
            assert!(text.starts_with("POST /v1/messages "), "{text}");
            assert!(text.contains("version=HTTP/2.0"), "{text}");
            assert!(text.ends_with("\nhello"), "{text}");
        }
    }

    #[tokio::test]
    async fn untrusted_certificate_is_a_tls_error() {
        let addr = spawn_tls_server().await;
        let client = UpstreamClient::new(&settings(None)).unwrap();
        let err = client
            .send(post(format!("https://127.0.0.1:{}/", addr.port()), "x"))
            .await
            .unwrap_err();
        assert!(matches!(err, ForwardError::Tls(_)), "{err:?}");
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(err.fault(), "upstream");
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let holder = tokio::spawn(async move {
            let mut conns = Vec::new();
            loop {
                // Accept and hold connections open without ever answering.
                let (tcp, _) = listener.accept().await.unwrap();
                conns.push(tcp);
            }
        });
        let mut s = settings(None);
        s.response_timeout = Duration::from_millis(300);
        let client = UpstreamClient::new(&s).unwrap();
        let started = std::time::Instant::now();
        let err = client
            .send(post(format!("http://{addr}/slow"), "x"))
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, ForwardError::Timeout), "{err:?}");
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
        assert_eq!(err.status(), StatusCode::GATEWAY_TIMEOUT);
        holder.abort();
    }

    #[tokio::test]
    async fn refused_connection_is_a_connect_error() {
        // Bind then drop to get a port that is very likely closed.
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let client = UpstreamClient::new(&settings(None)).unwrap();
        let err = client
            .send(post(format!("http://{addr}/x?key=SECRET_QUERY"), "x"))
            .await
            .unwrap_err();
        assert!(matches!(err, ForwardError::Connect(_)), "{err:?}");
        assert!(!err.to_string().contains("SECRET_QUERY"));
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
    }

    #[tokio::test]
    async fn relative_uri_is_a_config_error() {
        let client = UpstreamClient::new(&settings(None)).unwrap();
        let err = client.send(post("/v1/chat".into(), "x")).await.unwrap_err();
        assert!(matches!(err, ForwardError::Config(_)), "{err:?}");
        assert_eq!(err.fault(), "internal");
    }

    #[test]
    fn bad_extra_ca_files_are_config_errors() {
        let missing = settings(Some(tls_dir().join("does-not-exist.pem")));
        assert!(matches!(
            UpstreamClient::new(&missing),
            Err(ForwardError::Config(_))
        ));
        // A key file holds no certificate.
        let no_cert = settings(Some(tls_dir().join("localhost.key")));
        let err = UpstreamClient::new(&no_cert).unwrap_err();
        assert!(matches!(err, ForwardError::Config(_)), "{err:?}");
        assert!(err.to_string().contains("no certificate"), "{err}");
    }
}
