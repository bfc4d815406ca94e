//! The pipeline: the one place that runs the stages, in order, for a request.
//!
//! ```text
//! route -> recognise API -> read body (limit) -> parse -> collect texts -> detect
//!       -> vault.assign -> write placeholders -> forward -> restore (JSON | SSE) -> audit
//! ```
//!
//! Every stage is fail-closed: if any step before `forward` fails, nothing is sent upstream
//! and the client gets an error in the called API's own shape ([`GatewayError`]). Error
//! messages are built from error kinds and JSON paths, never from the request's text.
//!
//! **Conversations.** The vault numbers values per conversation, so the same value gets the
//! same placeholder across messages and turns. The conversation is, in order:
//! 1. the `x-garim-conversation` header (configurable), if the client sends one;
//! 2. else derived from the start of the history: the first system/instructions text and the
//!    first user message, which every later turn of a chat resends unchanged;
//! 3. else (no history, e.g. embeddings) a fresh conversation per request.
//!
//! Both keys are scoped to the client's credential (a keyed hash of its `Authorization`,
//! `x-api-key` or `x-goog-api-key` header), so two users who send the same first message,
//! or pick the same header value, never share a mapping. The id is an HMAC under a
//! per-process key: it never contains, and cannot be reversed to, the text it came from.
//!
//! **NER.** With `[detect.ner]` on, detection always runs on a blocking thread, and all of a
//! request's fields share one deadline (`budget_ms`). A timeout or a full NER queue refuses
//! the request (503 `garim_detection_timeout`, nothing forwarded) or, with
//! `on_timeout = "rules_only"`, forwards it masked by the rules, with the audit event's
//! `degraded` set to [`NER_RULES_ONLY_CODE`]; both count in `garim_ner_timeouts_total{action}`.
//!
//! **Load shedding.** At most `detect.max_in_flight` requests are in detection at once; the
//! next one gets 503 `garim_overloaded` with `Retry-After: 1` at once, nothing forwarded,
//! counted in `garim_blocked_requests_total{reason="garim_overloaded"}` (one warning per
//! overload in the log). Detection is what uses the CPU; without a limit an overloaded
//! gateway queues requests for seconds. Requests waiting for the upstream are not counted.
//!
//! Limits: the derived key changes if a client edits its first message; clients that do so
//! should send the header. Non-streamed responses are buffered (bounded by
//! `upstream.max_response_bytes`) to restore them; streams are restored event by event.

use crate::api::{self, ApiFamily, ApiKind};
use crate::audit::{AuditEvent, AuditSink, AuditValue, ValueHasher};
use crate::config::{Config, Route, RouteMode};
use crate::detect::{self, DetectError, Finding, Label};
use crate::forward::{self, ForwardError, UpstreamClient};
use crate::mask::{self, ConversationId, Mapping, Vault, VaultError};
use crate::restore::{self, RestoreError, SseRestorer, StreamFormat};
use crate::secret::Secret;
use crate::telemetry::Metrics;
use bytes::Bytes;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use http::header::{
    HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Error type of response bodies the gateway produces.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The response body type of the gateway.
pub type Body = BoxBody<Bytes, BoxError>;

/// Who is at fault for an error: decides logging level and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Client,
    Upstream,
    Internal,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Client => "client",
            Fault::Upstream => "upstream",
            Fault::Internal => "internal",
        }
    }

    fn from_str(s: &str) -> Fault {
        match s {
            "client" => Fault::Client,
            "upstream" => Fault::Upstream,
            _ => Fault::Internal,
        }
    }
}

/// Everything that can stop a request at the gateway. Display strings are sent to clients:
/// they name kinds and JSON paths, never content.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("no route for this path; configured prefixes: {0}")]
    NoRoute(String),
    #[error("garim does not recognise `{method} {path}` as an LLM API it can scan, so it refuses to forward it (a route can opt into mode = \"passthrough\")")]
    UnknownApi { method: String, path: String },
    #[error("content-type must be application/json")]
    UnsupportedMediaType,
    #[error("request body exceeds the limit of {0} bytes")]
    BodyTooLarge(usize),
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    #[error("the request body did not arrive within the body read timeout")]
    BodyTimeout,
    #[error(transparent)]
    Api(#[from] api::ApiError),
    #[error("detection failed, request not forwarded: {0}")]
    Detect(#[from] DetectError),
    /// The NER models did not answer within `detect.ner.budget_ms` (or their queue was
    /// full) and `detect.ner.on_timeout = "reject"`.
    #[error("detection did not finish within its time budget, request not forwarded; retry later")]
    DetectionTimeout,
    #[error("the vault failed, request not forwarded: {0}")]
    Vault(#[from] VaultError),
    #[error("upstream request failed: {0}")]
    Forward(#[from] ForwardError),
    #[error("could not restore the response: {0}")]
    Restore(#[from] RestoreError),
    /// `detect.max_in_flight` requests were already in detection.
    #[error("the gateway is at its limit of requests scanned at once (detect.max_in_flight = {0}); retry later")]
    Overloaded(usize),
    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::NoRoute(_) => StatusCode::NOT_FOUND,
            GatewayError::UnknownApi { .. } => StatusCode::FORBIDDEN,
            GatewayError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            GatewayError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::BodyRead(_) => StatusCode::BAD_REQUEST,
            GatewayError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            GatewayError::Api(e) => e.status(),
            GatewayError::Detect(DetectError::Timeout { .. })
            | GatewayError::DetectionTimeout
            | GatewayError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Detect(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::Vault(VaultError::ConversationFull(_)) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            GatewayError::Vault(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Forward(e) => e.status(),
            GatewayError::Restore(e) => e.status(),
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn fault(&self) -> Fault {
        match self {
            GatewayError::NoRoute(_)
            | GatewayError::UnknownApi { .. }
            | GatewayError::UnsupportedMediaType
            | GatewayError::BodyTooLarge(_)
            | GatewayError::BodyRead(_)
            | GatewayError::BodyTimeout => Fault::Client,
            GatewayError::Api(e) => Fault::from_str(e.fault()),
            GatewayError::Vault(VaultError::ConversationFull(_)) => Fault::Client,
            GatewayError::Detect(_)
            | GatewayError::DetectionTimeout
            | GatewayError::Overloaded(_)
            | GatewayError::Vault(_)
            | GatewayError::Internal(_) => Fault::Internal,
            GatewayError::Forward(e) => Fault::from_str(e.fault()),
            GatewayError::Restore(e) => Fault::from_str(e.fault()),
        }
    }

    /// A stable machine-readable code, used in error bodies, audit and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::NoRoute(_) => "garim_no_route",
            GatewayError::UnknownApi { .. } => "garim_unknown_api",
            GatewayError::UnsupportedMediaType => "garim_unsupported_media_type",
            GatewayError::BodyTooLarge(_) => "garim_body_too_large",
            GatewayError::BodyRead(_) => "garim_body_read",
            GatewayError::BodyTimeout => "garim_body_timeout",
            GatewayError::Api(_) => "garim_invalid_request",
            GatewayError::Detect(_) => "garim_detection_failed",
            GatewayError::DetectionTimeout => "garim_detection_timeout",
            GatewayError::Vault(VaultError::ConversationFull(_)) => "garim_conversation_full",
            GatewayError::Vault(_) => "garim_vault_unavailable",
            GatewayError::Forward(ForwardError::Timeout) => "garim_upstream_timeout",
            GatewayError::Forward(_) => "garim_upstream_error",
            GatewayError::Restore(_) => "garim_restore_failed",
            GatewayError::Overloaded(_) => "garim_overloaded",
            GatewayError::Internal(_) => "garim_internal",
        }
    }
}

/// Builds an error response in `family`'s shape.
pub fn error_response(family: ApiFamily, err: &GatewayError) -> Response<Body> {
    let status = err.status();
    let body = api::error_body(family, status, err.code(), &err.to_string());
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if matches!(
        err,
        GatewayError::Overloaded(_)
            | GatewayError::DetectionTimeout
            | GatewayError::Detect(DetectError::Timeout { .. })
    ) {
        // Transient: the same request can succeed a moment later.
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// Everything one request needs: built once at start-up.
pub struct Gateway {
    pub config: Arc<Config>,
    /// The detection engine in force; hot-reloaded (see [`detect::reload`]). Each request
    /// takes [`detect::reload::EngineHandle::current`] once and keeps it to the end.
    pub engine: Arc<detect::reload::EngineHandle>,
    pub vault: Arc<dyn Vault>,
    pub client: UpstreamClient,
    pub audit: Arc<dyn AuditSink>,
    pub hasher: ValueHasher,
    pub metrics: Metrics,
    conv_key: Secret<Vec<u8>>,
    /// Requests in detection now, against `detect.max_in_flight`.
    admitted: AtomicUsize,
    /// Set while requests are being refused for that limit: one log line per overload, not
    /// one per refused request.
    shedding: AtomicBool,
}

/// One admitted request; gives its place back when dropped.
struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the connection knows about the caller.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub remote: Option<std::net::SocketAddr>,
}

/// Per-request bookkeeping that ends up in the audit event and metrics.
#[derive(Clone)]
struct Record {
    request_id: String,
    started: Instant,
    route: String,
    upstream: String,
    api: String,
    model: Option<String>,
    client: Option<String>,
    conversation: Option<String>,
    findings: BTreeMap<String, u64>,
    values: Vec<AuditValue>,
    upstream_time: Option<Duration>,
    streamed: bool,
    /// Set when the request was forwarded in a degraded mode (NER timed out, rules only);
    /// the audit event's `degraded` field.
    degraded: Option<&'static str>,
}

/// The audit event's `degraded` value for requests forwarded masked by the rules only
/// because NER timed out.
pub const NER_RULES_ONLY_CODE: &str = "ner_timeout_rules_only";

fn new_request_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

type HmacSha256 = Hmac<Sha256>;

impl Gateway {
    pub fn new(
        config: Arc<Config>,
        engine: Arc<detect::reload::EngineHandle>,
        vault: Arc<dyn Vault>,
        client: UpstreamClient,
        audit: Arc<dyn AuditSink>,
        hasher: ValueHasher,
        metrics: Metrics,
    ) -> Self {
        use rand::RngCore;
        let mut key = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Gateway {
            config,
            engine,
            vault,
            client,
            audit,
            hasher,
            metrics,
            conv_key: Secret::new(key),
            admitted: AtomicUsize::new(0),
            shedding: AtomicBool::new(false),
        }
    }

    /// A place among the `detect.max_in_flight` requests in detection at once, or `None` when
    /// all are taken.
    fn admit(&self) -> Option<Admission<'_>> {
        let limit = self.config.detect.max_in_flight;
        let admitted = self
            .admitted
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            // Read first: a write on every request would bounce the cache line between cores.
            if self.shedding.load(Ordering::Relaxed) && self.shedding.swap(false, Ordering::Relaxed)
            {
                tracing::info!("requests admitted again after an overload");
            }
            Some(Admission(&self.admitted))
        } else {
            if !self.shedding.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    limit,
                    "detect.max_in_flight reached: refusing requests with 503 until a detection finishes (garim_blocked_requests_total{{reason=\"garim_overloaded\"}})"
                );
            }
            None
        }
    }

    fn keyed(&self, parts: &[&[u8]]) -> String {
        let mut mac =
            HmacSha256::new_from_slice(self.conv_key.expose()).expect("hmac takes any key");
        for p in parts {
            mac.update(&(p.len() as u64).to_le_bytes());
            mac.update(p);
        }
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// The caller's credential, as an opaque id (never the credential itself).
    fn client_identity(&self, headers: &HeaderMap) -> Option<String> {
        ["authorization", "x-api-key", "x-goog-api-key"]
            .iter()
            .find_map(|h| headers.get(*h))
            .map(|v| format!("key:{}", &self.keyed(&[b"client", v.as_bytes()])[..16]))
    }

    fn conversation_id(
        &self,
        headers: &HeaderMap,
        client: Option<&str>,
        route: &str,
        kind: ApiKind,
        body: &serde_json::Value,
        request_id: &str,
    ) -> ConversationId {
        let client = client.unwrap_or("").as_bytes();
        if let Some(h) = headers.get(&self.config.conversation_header) {
            return ConversationId(format!(
                "h-{}",
                self.keyed(&[b"header", client, h.as_bytes()])
            ));
        }
        if let Some(anchor) = api::conversation_anchor(kind, body) {
            return ConversationId(format!(
                "a-{}",
                self.keyed(&[b"anchor", client, route.as_bytes(), anchor.as_bytes()])
            ));
        }
        ConversationId(format!("r-{request_id}"))
    }

    /// Handles one proxied request (anything that is not a gateway endpoint).
    pub async fn handle(
        &self,
        req: Request<hyper::body::Incoming>,
        _info: ClientInfo,
    ) -> Response<Body> {
        let _guard = self.metrics.in_flight();
        let path = req.uri().path().to_owned();
        let Some((route, rest)) = self.config.route_for(&path) else {
            let prefixes = self
                .config
                .routes
                .iter()
                .map(|r| r.prefix.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let err = GatewayError::NoRoute(prefixes);
            self.metrics.request("none", "none", err.status().as_u16());
            return error_response(api::guess_family(&path, req.headers()), &err);
        };
        let route = route.clone();
        let rest = rest.to_owned();
        let mut rec = Record {
            request_id: new_request_id(),
            started: Instant::now(),
            route: route.prefix.clone(),
            upstream: route.upstream.host().to_owned(),
            api: "unknown".into(),
            model: None,
            client: self.client_identity(req.headers()),
            conversation: None,
            findings: BTreeMap::new(),
            values: Vec::new(),
            upstream_time: None,
            streamed: false,
            degraded: None,
        };
        let family = api::guess_family(&rest, req.headers());
        if route.mode == RouteMode::Passthrough {
            rec.api = "passthrough".into();
            return match self.passthrough(req, &route, &rest, &mut rec).await {
                Ok(resp) => {
                    self.finish(&rec, "passthrough", resp.status().as_u16(), None, 0, 0);
                    resp
                }
                Err(e) => self.fail(family, &rec, e),
            };
        }
        let Some(kind) = api::recognize(req.method(), &rest) else {
            let err = GatewayError::UnknownApi {
                method: req.method().to_string(),
                path,
            };
            self.metrics.blocked(&rec.route, err.code());
            return self.fail(family, &rec, err);
        };
        rec.api = kind.name().to_owned();
        match self.masked(req, &route, &rest, kind, &mut rec).await {
            Ok(resp) => resp,
            Err(e) => self.fail(kind.family(), &rec, e),
        }
    }

    fn fail(&self, family: ApiFamily, rec: &Record, err: GatewayError) -> Response<Body> {
        match err.fault() {
            // Logged once per overload by `admit`, counted per request.
            _ if matches!(err, GatewayError::Overloaded(_)) => {
                self.metrics.blocked(&rec.route, err.code());
                tracing::debug!(request_id = %rec.request_id, code = err.code(), "request shed")
            }
            Fault::Internal => {
                tracing::error!(request_id = %rec.request_id, code = err.code(), error = %err, "request failed")
            }
            Fault::Upstream => {
                tracing::warn!(request_id = %rec.request_id, code = err.code(), error = %err, "upstream failed")
            }
            Fault::Client => {
                tracing::info!(request_id = %rec.request_id, code = err.code(), error = %err, "request refused")
            }
        }
        let action = if matches!(err, GatewayError::Forward(_) | GatewayError::Restore(_)) {
            "masked"
        } else {
            "blocked"
        };
        self.finish(rec, action, err.status().as_u16(), Some(err.code()), 0, 0);
        error_response(family, &err)
    }

    fn finish(
        &self,
        rec: &Record,
        action: &str,
        status: u16,
        error: Option<&str>,
        restored: u64,
        unresolved: u64,
    ) {
        Sinks {
            audit: &*self.audit,
            metrics: &self.metrics,
        }
        .finish(rec, action, status, error, restored, unresolved);
    }

    async fn read_body(
        &self,
        req: Request<hyper::body::Incoming>,
    ) -> Result<(http::request::Parts, Bytes), GatewayError> {
        let limit = self.config.server.max_body_bytes;
        let (parts, body) = req.into_parts();
        if let Some(len) = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > limit as u64 {
                return Err(GatewayError::BodyTooLarge(limit));
            }
        }
        let read = Limited::new(body, limit).collect();
        let bytes = tokio::time::timeout(self.config.server.body_read_timeout, read)
            .await
            .map_err(|_| GatewayError::BodyTimeout)?
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    GatewayError::BodyTooLarge(limit)
                } else {
                    GatewayError::BodyRead(e.to_string())
                }
            })?;
        Ok((parts, bytes.to_bytes()))
    }

    fn upstream_request(
        &self,
        parts: &http::request::Parts,
        route: &Route,
        rest: &str,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, GatewayError> {
        let pq = match parts.uri.query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_owned(),
        };
        let uri = route
            .upstream
            .join(&pq)
            .map_err(|e| GatewayError::Internal(format!("bad upstream URI: {e}")))?;
        let mut headers = parts.headers.clone();
        forward::strip_hop_by_hop(&mut headers);
        headers.remove(&self.config.conversation_header);
        headers.remove(http::header::HOST);
        // Only codings the gateway can decode (it must read the response to restore it).
        headers.insert(
            http::header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, br, zstd, deflate"),
        );
        let mut up = Request::new(Full::new(body));
        *up.method_mut() = parts.method.clone();
        *up.uri_mut() = uri;
        *up.headers_mut() = headers;
        Ok(up)
    }

    async fn passthrough(
        &self,
        req: Request<hyper::body::Incoming>,
        route: &Route,
        rest: &str,
        rec: &mut Record,
    ) -> Result<Response<Body>, GatewayError> {
        let (parts, body) = self.read_body(req).await?;
        let mut up = self.upstream_request(&parts, route, rest, body)?;
        // Passthrough leaves content negotiation to the client.
        up.headers_mut().remove(http::header::ACCEPT_ENCODING);
        if let Some(ae) = parts.headers.get(http::header::ACCEPT_ENCODING) {
            up.headers_mut()
                .insert(http::header::ACCEPT_ENCODING, ae.clone());
        }
        let t = Instant::now();
        let resp = self.client.send(up).await?;
        rec.upstream_time = Some(t.elapsed());
        let (mut parts, body) = resp.into_parts();
        forward::strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(
            parts,
            body.map_err(|e| Box::new(e) as BoxError).boxed(),
        ))
    }

    async fn masked(
        &self,
        req: Request<hyper::body::Incoming>,
        route: &Route,
        rest: &str,
        kind: ApiKind,
        rec: &mut Record,
    ) -> Result<Response<Body>, GatewayError> {
        let method = req.method().clone();
        if kind.has_body() {
            let ct = req
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let mime = ct.split(';').next().unwrap_or("").trim();
            if !mime.eq_ignore_ascii_case("application/json") {
                return Err(GatewayError::UnsupportedMediaType);
            }
        }
        let (parts, raw) = self.read_body(req).await?;
        if !kind.has_body() || (method == Method::GET && raw.is_empty()) {
            // No body to scan (e.g. listing models): forward as is, restore nothing.
            let up = self.upstream_request(&parts, route, rest, raw)?;
            return self
                .respond(up, kind, false, Arc::new(Mapping::default()), rec)
                .await;
        }
        let mut body = api::parse_body(&raw)?;
        rec.model = api::model(kind, rest, &body);
        let stream = api::wants_stream(kind, &body);
        let conv = self.conversation_id(
            &parts.headers,
            rec.client.as_deref(),
            &route.prefix,
            kind,
            &body,
            &rec.request_id,
        );
        rec.conversation = Some(conv.0.clone());

        // Pass 1: collect every text-bearing field, in the adapter's order.
        let mut texts: Vec<String> = Vec::new();
        api::visit_texts(kind, &mut body, &mut |s: &mut String| texts.push(s.clone()))?;

        // Detect. Regex rules are microseconds per KB; large bodies go to the blocking pool
        // so one huge prompt cannot stall the runtime's worker. With NER on, detection
        // always runs there (the models block), under one deadline for the whole request.
        let total: usize = texts.iter().map(String::len).sum();
        // One engine for the whole request, even if a reload swaps in another meanwhile.
        let engine = self.engine.current();
        // Load shedding: a place among the requests in detection, held until it ends.
        let admission = self
            .admit()
            .ok_or(GatewayError::Overloaded(self.config.detect.max_in_flight))?;
        let (texts, findings): (Vec<String>, Vec<Vec<Finding>>) = if engine.has_ner() {
            self.detect_with_ner(engine, texts, rec).await?
        } else if total > 64 * 1024 {
            blocking(move || engine.detect_all(&texts).map(|f| (texts, f))).await??
        } else {
            let f = engine.detect_all(&texts)?;
            (texts, f)
        };
        drop(admission);

        let n_findings: usize = findings.iter().map(Vec::len).sum();
        // The body is always re-encoded from what was scanned, even with nothing to mask: the
        // original bytes could hold a duplicate key whose unscanned copy an upstream parser
        // might pick (serde_json keeps the last one, others the first).
        let mapping = if n_findings == 0 {
            self.vault.mapping(&conv).await?
        } else {
            let pairs: Vec<(Label, &str)> = texts
                .iter()
                .zip(&findings)
                .flat_map(|(t, fs)| fs.iter().map(move |f| (f.label, &t[f.start..f.end])))
                .collect();
            let assigned = self.vault.assign(&conv, &pairs).await?;
            for ((label, value), p) in pairs.iter().zip(&assigned.placeholders) {
                *rec.findings.entry(label.as_str().to_owned()).or_default() += 1;
                let placeholder = p.to_string();
                if !rec.values.iter().any(|v| v.placeholder == placeholder) {
                    rec.values.push(AuditValue {
                        label: label.as_str().to_owned(),
                        placeholder,
                        hash: self.hasher.hash(label.as_str(), value),
                    });
                }
            }
            for (label, n) in &rec.findings {
                self.metrics.findings(label, *n);
            }
            // Pass 2: write the masked texts back in the same order.
            let mut masked = Vec::with_capacity(texts.len());
            let mut at = 0;
            for (t, fs) in texts.iter().zip(&findings) {
                masked.push(mask::apply(
                    t,
                    fs,
                    &assigned.placeholders[at..at + fs.len()],
                ));
                at += fs.len();
            }
            let mut it = masked.into_iter();
            api::visit_texts(kind, &mut body, &mut |s: &mut String| {
                if let Some(m) = it.next() {
                    *s = m;
                }
            })?;
            assigned.mapping
        };
        let upstream_body = Bytes::from(
            serde_json::to_vec(&body)
                .map_err(|e| GatewayError::Internal(format!("re-encoding the body: {e}")))?,
        );
        let up = self.upstream_request(&parts, route, rest, upstream_body)?;
        self.respond(up, kind, stream, mapping, rec).await
    }

    /// Detection with NER: on a blocking thread, all fields under one deadline
    /// (`detect.ner.budget_ms` from now). A timeout or a full NER queue either refuses the
    /// request ([`GatewayError::DetectionTimeout`]) or, with `on_timeout = "rules_only"`,
    /// detects again with the rules only and marks the request degraded.
    async fn detect_with_ner(
        &self,
        engine: Arc<detect::Engine>,
        texts: Vec<String>,
        rec: &mut Record,
    ) -> Result<(Vec<String>, Vec<Vec<Finding>>), GatewayError> {
        let ner = &self.config.detect.ner;
        let started = Instant::now();
        let deadline = started + ner.budget;
        let (engine, texts, result) = blocking(move || {
            let r = detect::ner::route::with_deadline(deadline, || engine.detect_all(&texts));
            (engine, texts, r)
        })
        .await?;
        self.metrics.ner_seconds(started.elapsed().as_secs_f64());
        match result {
            Ok(f) => Ok((texts, f)),
            Err(DetectError::Timeout { .. } | DetectError::Unavailable { .. }) => {
                self.metrics.ner_timeout(ner.on_timeout.as_str());
                match ner.on_timeout {
                    crate::config::NerOnTimeout::Reject => Err(GatewayError::DetectionTimeout),
                    crate::config::NerOnTimeout::RulesOnly => {
                        tracing::warn!(request_id = %rec.request_id, "NER timed out; forwarding masked by the rules only");
                        rec.degraded = Some(NER_RULES_ONLY_CODE);
                        let (texts, f) = blocking(move || {
                            let f = engine.rules_only().detect_all(&texts);
                            (texts, f)
                        })
                        .await?;
                        Ok((texts, f?))
                    }
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sends the (masked) request and restores the response.
    async fn respond(
        &self,
        up: Request<Full<Bytes>>,
        kind: ApiKind,
        _stream: bool,
        mapping: Arc<Mapping>,
        rec: &mut Record,
    ) -> Result<Response<Body>, GatewayError> {
        let t = Instant::now();
        let resp = self.client.send(up).await?;
        let (mut parts, body) = resp.into_parts();
        let encoding = parts
            .headers
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        forward::strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(CONTENT_ENCODING);
        parts.headers.remove(CONTENT_LENGTH);
        let decoded = forward::decoded_body(encoding.as_deref(), body)?;
        let is_sse = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().starts_with("text/event-stream"));

        if is_sse && parts.status.is_success() {
            rec.streamed = true;
            let upstream = t.elapsed();
            rec.upstream_time = Some(upstream);
            self.metrics.overhead(
                &rec.route,
                rec.started.elapsed().saturating_sub(upstream).as_secs_f64(),
            );
            return Ok(self.stream_response(parts, decoded, kind, mapping, rec));
        }

        let limit = self.config.upstream.max_response_bytes;
        let bytes = collect_limited(decoded, limit).await?;
        rec.upstream_time = Some(t.elapsed());
        let status = parts.status;
        let (out, stats) = if status.is_success() {
            restore::restore_json_body(&bytes, &mapping)?
        } else {
            // Upstream errors pass through as they are: the upstream never saw a value, so
            // they hold none, and error text often ends up in logs on the client's side.
            (bytes.to_vec(), restore::RestoreStats::default())
        };
        self.finish(
            rec,
            "masked",
            status.as_u16(),
            None,
            stats.restored,
            stats.unresolved,
        );
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(out.len()));
        Ok(Response::from_parts(parts, full(out)))
    }

    fn stream_response(
        &self,
        parts: http::response::Parts,
        mut decoded: forward::DecodedStream,
        kind: ApiKind,
        mapping: Arc<Mapping>,
        rec: &mut Record,
    ) -> Response<Body> {
        let format = match kind {
            ApiKind::OpenAiResponses => StreamFormat::OpenAiResponses,
            ApiKind::AnthropicMessages | ApiKind::AnthropicCountTokens => StreamFormat::Anthropic,
            ApiKind::GeminiGenerate | ApiKind::GeminiStreamGenerate => StreamFormat::Gemini,
            _ => StreamFormat::OpenAiChat,
        };
        let mut restorer = SseRestorer::new(format, mapping);
        let (tx, mut rx) =
            tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, BoxError>>(16);
        let status = parts.status.as_u16();
        let rec = rec.clone();
        let audit = self.audit.clone();
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let mut error: Option<&'static str> = None;
            while let Some(chunk) = decoded.next().await {
                match chunk {
                    Ok(bytes) => match restorer.push(&bytes) {
                        Ok(out) => {
                            if !out.is_empty()
                                && tx.send(Ok(http_body::Frame::data(out))).await.is_err()
                            {
                                error = Some("client_disconnected");
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(request_id = %rec.request_id, error = %e, "stream restore failed");
                            error = Some("garim_restore_failed");
                            break;
                        }
                    },
                    Err(e) => {
                        tracing::warn!(request_id = %rec.request_id, error = %e, "upstream stream failed");
                        error = Some("garim_upstream_stream_error");
                        break;
                    }
                }
            }
            let tail = restorer.finish();
            if !tail.is_empty() {
                let _ = tx.send(Ok(http_body::Frame::data(tail))).await;
            }
            if let Some(code) = error {
                if code != "client_disconnected" {
                    // Abort the response so the client sees a truncated stream, not a
                    // clean end.
                    let _ = tx.send(Err(code.into())).await;
                }
            }
            let stats = restorer.stats();
            Sinks {
                audit: &*audit,
                metrics: &metrics,
            }
            .finish(
                &rec,
                "masked",
                status,
                error,
                stats.restored,
                stats.unresolved,
            );
        });
        let body = http_body_util::StreamBody::new(futures_util::stream::poll_fn(move |cx| {
            rx.poll_recv(cx)
        }));
        Response::from_parts(parts, BodyExt::boxed(body))
    }
}

/// Where a finished request is reported: the audit sink and the metrics.
struct Sinks<'a> {
    audit: &'a dyn AuditSink,
    metrics: &'a Metrics,
}

impl Sinks<'_> {
    /// Writes the audit event and the per-request metrics.
    fn finish(
        &self,
        rec: &Record,
        action: &str,
        status: u16,
        error: Option<&str>,
        restored: u64,
        unresolved: u64,
    ) {
        let total = rec.started.elapsed();
        let upstream = rec.upstream_time;
        self.metrics.request(&rec.route, &rec.api, status);
        if let Some(u) = upstream {
            self.metrics.upstream_latency(&rec.route, u.as_secs_f64());
            if !rec.streamed {
                // For streams the overhead is recorded when the response starts.
                self.metrics
                    .overhead(&rec.route, total.saturating_sub(u).as_secs_f64());
            }
        }
        if unresolved > 0 {
            self.metrics.unresolved(&rec.route, unresolved);
        }
        if restored > 0 {
            self.metrics.restored(&rec.route, restored);
        }
        let stored = self.audit.record(AuditEvent {
            time: crate::audit::timestamp_now(),
            request_id: rec.request_id.clone(),
            client: rec.client.clone(),
            route: rec.route.clone(),
            upstream: rec.upstream.clone(),
            api: rec.api.clone(),
            model: rec.model.clone(),
            conversation: rec.conversation.clone(),
            findings: rec.findings.clone(),
            values: rec.values.clone(),
            action: action.to_owned(),
            status,
            error: error.map(str::to_owned),
            latency_ms: total.as_secs_f64() * 1e3,
            upstream_ms: upstream.map(|u| u.as_secs_f64() * 1e3),
            unresolved,
            streamed: rec.streamed,
            degraded: rec.degraded.map(str::to_owned),
        });
        if let Err(lost) = stored {
            self.metrics.audit_lost(lost.as_str());
        }
    }
}

/// Runs CPU-heavy detection work on the blocking pool, off the async runtime's workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, GatewayError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| GatewayError::Internal(format!("detection task: {e}")))
}

async fn collect_limited(
    mut s: forward::DecodedStream,
    limit: usize,
) -> Result<Bytes, GatewayError> {
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = s.next().await {
        let chunk = chunk?;
        if buf.len() + chunk.len() > limit {
            return Err(GatewayError::Forward(ForwardError::BodyTooLarge(limit)));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Why the gateway could not start. `Config` errors exit with status 2 (bad config).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Io(String),
}

impl Gateway {
    /// Builds every stage from the validated configuration.
    /// The NER models (if enabled) are loaded here, once, before the gateway can listen.
    pub fn from_config(config: Arc<Config>) -> Result<Gateway, StartError> {
        let ner = detect::ner::route::load(&config.detect.ner)
            .map_err(|e| StartError::Config(e.to_string()))?;
        let engine = detect::reload::EngineHandle::build_with(&config.detect, ner)
            .map_err(StartError::Config)?;
        let vault = Arc::new(mask::MemoryVault::new(
            config.vault.ttl,
            config.vault.max_bytes,
            config.vault.max_values_per_conversation,
        ));
        let u = &config.upstream;
        let client = UpstreamClient::new(&forward::ClientSettings {
            connect_timeout: u.connect_timeout,
            response_timeout: u.response_timeout,
            pool_idle_timeout: u.pool_idle_timeout,
            pool_max_idle_per_host: u.pool_max_idle_per_host,
            extra_ca_file: u.extra_ca_file.clone(),
        })
        .map_err(|e| StartError::Config(format!("upstream: {e}")))?;
        let audit = crate::audit::FileSink::open_with_capacity(
            &config.audit.file,
            config.audit.queue_capacity,
        )
        .map_err(|e| StartError::Io(e.to_string()))?;
        let hasher = match std::env::var(&config.audit.hash_key_env) {
            Ok(k) if k.len() >= 16 => ValueHasher::from_key(Secret::new(k.into_bytes())),
            Ok(_) => {
                return Err(StartError::Config(format!(
                    "environment variable {} must hold at least 16 bytes",
                    config.audit.hash_key_env
                )))
            }
            Err(_) => ValueHasher::random(),
        };
        Ok(Gateway::new(
            config,
            Arc::new(engine),
            vault,
            client,
            Arc::new(audit),
            hasher,
            Metrics::new(),
        ))
    }
}
