//! Listeners: plain TCP or TLS (rustls), HTTP/1.1 and HTTP/2, and the gateway's own endpoints.
//!
//! Every connection is served by hyper's auto builder (HTTP/1.1 with keep-alive, or HTTP/2
//! by ALPN over TLS / prior knowledge over TCP). HTTP/1 connections must send their headers
//! within `server.header_read_timeout_ms`. Paths:
//!
//! * `GET /healthz`: liveness, always 200 while the process serves.
//! * `GET /readyz`: 200 once config, rules and models are loaded; 503 while shutting down.
//! * `GET /metrics`: Prometheus text format.
//! * everything else: [`crate::pipeline::Gateway::handle`].
//!
//! Shutdown: when the `shutdown` future completes (SIGTERM/SIGINT in `main`), the listener
//! stops accepting, `/readyz` turns 503, keep-alive connections are told to close, and
//! in-flight requests (streams included) get `server.shutdown_grace_ms` to finish.
//!
//! Limits: no CONNECT (egress proxy) yet; client certificates are not requested.

use crate::pipeline::{full, Body, ClientInfo, Gateway};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS set-up failed: {0}")]
    Tls(String),
}

/// Builds a TLS acceptor from PEM files, offering h2 and http/1.1 by ALPN.
pub fn tls_acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, ServerError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| ServerError::Tls(format!("{}: {e}", cert_file.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| ServerError::Tls(format!("{}: {e}", cert_file.display())))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!(
            "{}: no certificate found",
            cert_file.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| ServerError::Tls(format!("{}: {e}", key_file.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// The gateway's state as the listener sees it.
pub struct Server {
    gateway: Arc<Gateway>,
    ready: AtomicBool,
}

impl Server {
    pub fn new(gateway: Arc<Gateway>) -> Arc<Self> {
        Arc::new(Server {
            gateway,
            ready: AtomicBool::new(true),
        })
    }

    async fn route(
        self: Arc<Self>,
        req: Request<hyper::body::Incoming>,
        info: ClientInfo,
    ) -> Response<Body> {
        let path = req.uri().path();
        if req.method() == Method::GET || req.method() == Method::HEAD {
            match path {
                "/healthz" => return text(StatusCode::OK, "ok\n"),
                "/readyz" => {
                    return if self.ready.load(Ordering::Relaxed) {
                        text(StatusCode::OK, "ready\n")
                    } else {
                        text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
                    }
                }
                "/metrics" => {
                    let mut r = Response::new(full(self.gateway.metrics.encode()));
                    r.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static(crate::telemetry::METRICS_CONTENT_TYPE),
                    );
                    return r;
                }
                _ => {}
            }
        }
        self.gateway.handle(req, info).await
    }

    /// Serves connections from `listener` until `shutdown` completes, then drains.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        shutdown: impl Future<Output = ()>,
    ) {
        let settings = &self.gateway.config.server;
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(settings.header_read_timeout)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(30)));
        let builder = Arc::new(builder);
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, remote) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let server = self.clone();
                    let info = ClientInfo { remote: Some(remote) };
                    let svc = service_fn(move |req| {
                        let server = server.clone();
                        let info = info.clone();
                        async move { Ok::<_, std::convert::Infallible>(server.route(req, info).await) }
                    });
                    let builder = builder.clone();
                    match &tls {
                        None => {
                            let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                            let conn = graceful.watch(conn);
                            tokio::spawn(async move {
                                if let Err(e) = conn.await {
                                    tracing::debug!(error = %e, "connection ended with an error");
                                }
                            });
                        }
                        Some(acceptor) => {
                            let acceptor = acceptor.clone();
                            let timeout = settings.header_read_timeout;
                            let watcher = graceful.watcher();
                            tokio::spawn(async move {
                                let tls_stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                                    Ok(Ok(s)) => s,
                                    Ok(Err(e)) => {
                                        tracing::debug!(error = %e, "TLS handshake failed");
                                        return;
                                    }
                                    Err(_) => {
                                        tracing::debug!("TLS handshake timed out");
                                        return;
                                    }
                                };
                                let conn = builder.serve_connection(TokioIo::new(tls_stream), svc).into_owned();
                                if let Err(e) = watcher.watch(conn).await {
                                    tracing::debug!(error = %e, "connection ended with an error");
                                }
                            });
                        }
                    }
                }
                _ = &mut shutdown => {
                    break;
                }
            }
        }
        drop(listener);
        self.ready.store(false, Ordering::Relaxed);
        tracing::info!("shutting down: draining in-flight requests");
        let grace = self.gateway.config.server.shutdown_grace;
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "grace period over: closing remaining connections"
            );
        }
        self.gateway.audit.flush();
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Binds the configured address.
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })
}
