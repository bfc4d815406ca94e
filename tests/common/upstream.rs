//! A fake upstream LLM API for the end-to-end tests: a hyper 1.x server on `127.0.0.1:0`.
//!
//! Why: the gateway must be tested against something that behaves like OpenAI, Anthropic and
//! Gemini on the wire, that tells the test exactly what the gateway forwarded, and that can be
//! made to misbehave (errors, slowness, broken streams) on demand.
//!
//! What it does:
//! * RECORDS every request as received (method, path + query, headers, body bytes), before it
//!   answers ([`Upstream::requests`], [`Upstream::wait_for_requests`]).
//! * ANSWERS in the format of the API named by the path, ECHOING the text it received: the
//!   answer text is [`echo_text`] of the received JSON (every string leaf outside a few
//!   structural keys, in document order, joined by `\n`), and a tool call `send_email` whose
//!   arguments are `{"to": <first EMAIL placeholder seen>, "note": <echo text>}`. A test computes
//!   [`echo_text`] of the request it sent and compares it with what the client got back: equal
//!   only if the gateway masked and then restored exactly.
//! * Streams (SSE) when the request says `"stream": true` (Gemini: `:streamGenerateContent`).
//!   The text is cut into deltas of [`Behavior::delta_chars`] characters and the SSE bytes are
//!   written in pieces of [`Behavior::write_chunk`] bytes, hyper flushing between pieces.
//!
//! Limits: the flush between pieces makes every piece its own write, but TCP may still merge
//! pieces on the reader's side; a reader sees at least the boundaries it was fast enough to see.
//! HTTP/1.1 and h2c (prior knowledge) are served; no TLS.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path and query, e.g. `/v1beta/models/m:streamGenerateContent?alt=sse`.
    pub uri: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
}

impl Recorded {
    /// First value of a header (name case-insensitive), lossily decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// The body parsed as JSON; panics with a readable message when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "upstream received a body that is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Everything received, as one byte string: request line, headers, body. For leak searches.
    pub fn raw(&self) -> Vec<u8> {
        let mut out = format!("{} {}\r\n", self.method, self.uri).into_bytes();
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// A fixed answer instead of the echo.
#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Canned {
    pub fn json(status: u16, body: &Value) -> Canned {
        Canned {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(body).unwrap(),
        }
    }
}

/// Per-test knobs; set with [`Upstream::set`] before sending the request.
#[derive(Clone, Debug, Default)]
pub struct Behavior {
    /// Characters per text delta in streams (0 means the default, 7).
    pub delta_chars: usize,
    /// Write the response body to the socket in pieces of this many bytes, flushing between
    /// pieces (1: every byte boundary). None: one piece.
    pub write_chunk: Option<usize>,
    /// Wait this long between pieces (default: none, just a flush and a yield).
    pub piece_pause: Option<Duration>,
    /// Answer this instead of the echo.
    pub respond: Option<Canned>,
    /// Wait this long before sending the response headers.
    pub delay_headers: Option<Duration>,
    /// Abort the connection after this many body bytes (mid-body, no clean end).
    pub close_after: Option<usize>,
    /// End the body cleanly after this many bytes (a truncated but well-framed response).
    pub truncate_after: Option<usize>,
    /// Gzip the response body and say `content-encoding: gzip`.
    pub gzip: bool,
    /// Add unknown fields ([`extra_value`]) to responses and to every SSE event.
    pub extra_fields: bool,
    /// Answer this text instead of the echo text (tool-call arguments still use the echo).
    pub reply_text: Option<String>,
}

/// The unknown value the fixture adds under `x_fixture_extra` when `extra_fields` is set.
/// Big integer and `1.50` check that numbers pass through byte for byte.
pub fn extra_value() -> Value {
    serde_json::from_str(
        r#"{"big":12345678901234567890123,"dec":1.50,"list":[1,"two",null,{"deep":true}],"text":"plain unknown text"}"#,
    )
    .unwrap()
}

/// Which API a path names (path after the gateway's route prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Api {
    ChatCompletions,
    Responses,
    Embeddings,
    Messages,
    Generate { model: String, stream: bool },
    Unknown,
}

impl Api {
    pub fn from_path(uri: &str) -> Api {
        let path = uri.split('?').next().unwrap_or("");
        match path {
            "/v1/chat/completions" => Api::ChatCompletions,
            "/v1/responses" => Api::Responses,
            "/v1/embeddings" => Api::Embeddings,
            "/v1/messages" => Api::Messages,
            p => {
                if let Some(rest) = p.strip_prefix("/v1beta/models/") {
                    if let Some(m) = rest.strip_suffix(":generateContent") {
                        return Api::Generate {
                            model: m.to_string(),
                            stream: false,
                        };
                    }
                    if let Some(m) = rest.strip_suffix(":streamGenerateContent") {
                        return Api::Generate {
                            model: m.to_string(),
                            stream: true,
                        };
                    }
                }
                Api::Unknown
            }
        }
    }
}

/// Keys whose string values are structure, not text: skipped by [`echo_text`].
const STRUCTURAL_KEYS: &[&str] = &[
    "model",
    "role",
    "type",
    "id",
    "tool_call_id",
    "tool_use_id",
    "call_id",
    "name",
    "object",
    "status",
    "encoding_format",
    "finish_reason",
    "stop_reason",
];

/// The text the fixture echoes for a request body: every string leaf outside
/// [`STRUCTURAL_KEYS`], in document order, joined by `\n`.
pub fn echo_text(v: &Value) -> String {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => {
                for (k, x) in o {
                    if !STRUCTURAL_KEYS.contains(&k.as_str()) {
                        walk(x, out);
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out.join("\n")
}

/// Placeholders (`[LABEL_N]`) in `text`, in order of first appearance, without repeats.
pub fn placeholders(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\[[A-Z][A-Z_]*_[0-9]+\]").unwrap();
    let mut out: Vec<String> = Vec::new();
    for m in re.find_iter(text) {
        if !out.iter().any(|p| p == m.as_str()) {
            out.push(m.as_str().to_string());
        }
    }
    out
}

/// The `to` of the echoed tool call: first `[EMAIL_n]`, else first placeholder, else a dummy.
pub fn tool_target(echo: &str) -> String {
    let ph = placeholders(echo);
    ph.iter()
        .find(|p| p.starts_with("[EMAIL_"))
        .or(ph.first())
        .cloned()
        .unwrap_or_else(|| "nobody@invalid".to_string())
}

/// Cuts `s` into pieces of `n` characters (not bytes).
pub fn split_chars(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

struct Shared {
    behavior: Mutex<Behavior>,
    requests: Mutex<Vec<Recorded>>,
    notify: Notify,
}

/// The running fixture. Dropping it stops accepting connections.
pub struct Upstream {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fixture");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            behavior: Mutex::new(Behavior::default()),
            requests: Mutex::new(Vec::new()),
            notify: Notify::new(),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(s.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Upstream { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the behaviour for the next requests.
    pub fn set(&self, b: Behavior) {
        *self.shared.behavior.lock().unwrap() = b;
    }

    /// Everything received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// The last request received; panics when there is none.
    pub fn last(&self) -> Recorded {
        self.requests()
            .pop()
            .expect("the upstream received no request")
    }

    pub fn clear(&self) {
        self.shared.requests.lock().unwrap().clear();
    }

    /// Waits until at least `n` requests were recorded; false on timeout.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.notify.notified();
            if self.count() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count() >= n;
            }
        }
    }
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Paced>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let rec = Recorded {
        method: parts.method.to_string(),
        uri: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "/".into()),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
            .collect(),
        body,
    };
    shared.requests.lock().unwrap().push(rec.clone());
    shared.notify.notify_waiters();
    let b = shared.behavior.lock().unwrap().clone();
    if let Some(d) = b.delay_headers {
        tokio::time::sleep(d).await;
    }
    let (status, mut headers, mut payload, is_sse) = match &b.respond {
        Some(c) => (c.status, c.headers.clone(), c.body.clone(), false),
        None => {
            let (ctype, bytes, sse) = answer(&rec, &b);
            (
                200,
                vec![("content-type".to_string(), ctype.to_string())],
                bytes,
                sse,
            )
        }
    };
    if b.gzip {
        payload = gzip(&payload).await;
        headers.push(("content-encoding".into(), "gzip".into()));
    }
    let total = payload.len();
    let limit = b
        .close_after
        .or(b.truncate_after)
        .unwrap_or(total)
        .min(total);
    let body = Paced {
        data: Bytes::from(payload),
        pos: 0,
        chunk: b.write_chunk.unwrap_or(total.max(1)).max(1),
        limit,
        fail_at_limit: b.close_after.is_some(),
        failed: false,
        exact: if is_sse || b.truncate_after.is_some() {
            None
        } else {
            Some(total as u64)
        },
        yield_next: false,
        pause: b.piece_pause,
        sleep: None,
    };
    let mut resp = Response::builder().status(status);
    for (n, v) in headers {
        resp = resp.header(n, v);
    }
    if is_sse {
        resp = resp.header("cache-control", "no-cache");
    }
    Ok(resp.body(body).unwrap())
}

async fn gzip(data: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncWriteExt;
    let mut enc = async_compression::tokio::write::GzipEncoder::new(Vec::new());
    enc.write_all(data).await.unwrap();
    enc.shutdown().await.unwrap();
    enc.into_inner()
}

/// Response body that hands out `chunk`-byte pieces and returns `Pending` (after waking
/// itself, or after `pause`) between pieces, so hyper flushes each piece on its own.
/// At `limit` it ends, or fails (`fail_at_limit`) which makes hyper drop the connection.
pub struct Paced {
    data: Bytes,
    pos: usize,
    chunk: usize,
    limit: usize,
    fail_at_limit: bool,
    failed: bool,
    exact: Option<u64>,
    yield_next: bool,
    pause: Option<Duration>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for Paced {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if this.yield_next && (this.pos < this.limit || this.fail_at_limit) {
            match this.pause {
                Some(p) => {
                    let sleep = this
                        .sleep
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(p)));
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.sleep = None;
                    this.yield_next = false;
                }
                None => {
                    this.yield_next = false;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
        }
        // The limit is checked after the turn above, so the last piece is flushed before
        // the failure that makes hyper drop the connection.
        if this.pos >= this.limit {
            if this.fail_at_limit && !this.failed {
                this.failed = true;
                return Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "fixture: closing mid-stream",
                ))));
            }
            return Poll::Ready(None);
        }
        let end = (this.pos + this.chunk).min(this.limit);
        let piece = this.data.slice(this.pos..end);
        this.pos = end;
        this.yield_next = true;
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.pos >= self.limit && (!self.fail_at_limit || self.failed)
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// What the fixture says back: (content type, body, is SSE).
fn answer(rec: &Recorded, b: &Behavior) -> (&'static str, Vec<u8>, bool) {
    let req: Value = serde_json::from_slice(&rec.body).unwrap_or(Value::Null);
    let api = Api::from_path(&rec.uri);
    let echo = echo_text(&req);
    let ctx = Ctx {
        model: req
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("fixture-model")
            .to_string(),
        text: b.reply_text.clone().unwrap_or_else(|| echo.clone()),
        args: serde_json::to_string(&json!({"to": tool_target(&echo), "note": echo})).unwrap(),
        args_value: json!({"to": tool_target(&echo), "note": echo}),
        n: if b.delta_chars == 0 { 7 } else { b.delta_chars },
        extra: b.extra_fields,
    };
    let stream = req.get("stream").and_then(Value::as_bool) == Some(true);
    let json_ct = "application/json";
    let sse_ct = "text/event-stream";
    match api {
        Api::ChatCompletions if stream => (sse_ct, ctx.chat_sse().into_bytes(), true),
        Api::ChatCompletions => (json_ct, ctx.with_extra(ctx.chat_json()), false),
        Api::Responses if stream => (sse_ct, ctx.responses_sse().into_bytes(), true),
        Api::Responses => (json_ct, ctx.with_extra(ctx.responses_json()), false),
        Api::Embeddings => {
            let n = match req.get("input") {
                Some(Value::Array(a)) => a.len(),
                _ => 1,
            };
            (json_ct, ctx.with_extra(ctx.embeddings_json(n)), false)
        }
        Api::Messages if stream => (sse_ct, ctx.anthropic_sse().into_bytes(), true),
        Api::Messages => (json_ct, ctx.with_extra(ctx.anthropic_json()), false),
        Api::Generate {
            model,
            stream: true,
        } => {
            let ctx = Ctx { model, ..ctx };
            (sse_ct, ctx.gemini_sse().into_bytes(), true)
        }
        Api::Generate {
            model,
            stream: false,
        } => {
            let ctx = Ctx { model, ..ctx };
            (
                json_ct,
                ctx.with_extra(ctx.gemini_json(&ctx.text, true)),
                false,
            )
        }
        Api::Unknown => {
            let v = json!({"fixture": "unknown-path", "uri": rec.uri, "echo": echo});
            (json_ct, serde_json::to_vec(&v).unwrap(), false)
        }
    }
}

struct Ctx {
    model: String,
    text: String,
    args: String,
    args_value: Value,
    n: usize,
    extra: bool,
}

fn sse(event: Option<&str>, data: &Value) -> String {
    match event {
        Some(e) => format!(
            "event: {e}\ndata: {}\n\n",
            serde_json::to_string(data).unwrap()
        ),
        None => format!("data: {}\n\n", serde_json::to_string(data).unwrap()),
    }
}

impl Ctx {
    fn add_extra(&self, mut v: Value) -> Value {
        if self.extra {
            if let Some(o) = v.as_object_mut() {
                o.insert("x_fixture_extra".into(), extra_value());
            }
        }
        v
    }

    fn with_extra(&self, v: Value) -> Vec<u8> {
        serde_json::to_vec(&self.add_extra(v)).unwrap()
    }

    fn usage_openai() -> Value {
        json!({"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30})
    }

    fn chat_json(&self) -> Value {
        let mut message = json!({
            "role": "assistant",
            "content": self.text,
            "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "send_email", "arguments": self.args}}]
        });
        let mut choice =
            json!({"index": 0, "message": null, "logprobs": null, "finish_reason": "stop"});
        if self.extra {
            message["x_message_extra"] = json!("kept");
            choice["x_choice_extra"] = json!({"kept": true});
        }
        choice["message"] = message;
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000u64,
            "model": self.model, "choices": [choice], "usage": Self::usage_openai()
        })
    }

    fn chat_chunk(&self, delta: Value, finish: Value) -> String {
        let v = json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000u64,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
        });
        sse(None, &self.add_extra(v))
    }

    fn chat_sse(&self) -> String {
        let mut out = self.chat_chunk(json!({"role": "assistant", "content": ""}), Value::Null);
        for d in split_chars(&self.text, self.n) {
            out += &self.chat_chunk(json!({"content": d}), Value::Null);
        }
        out += &self.chat_chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "send_email", "arguments": ""}}]}),
            Value::Null,
        );
        for d in split_chars(&self.args, self.n) {
            out += &self.chat_chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": d}}]}),
                Value::Null,
            );
        }
        out += &self.chat_chunk(json!({}), json!("stop"));
        out += "data: [DONE]\n\n";
        out
    }

    fn responses_output(&self) -> Value {
        json!([
            {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
             "content": [{"type": "output_text", "text": self.text, "annotations": []}]},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "send_email",
             "arguments": self.args, "status": "completed"}
        ])
    }

    fn responses_json(&self) -> Value {
        json!({
            "id": "resp_1", "object": "response", "created_at": 1700000000u64,
            "status": "completed", "model": self.model, "output": self.responses_output(),
            "usage": {"input_tokens": 10, "output_tokens": 20, "total_tokens": 30}
        })
    }

    fn responses_sse(&self) -> String {
        let mut seq = 0u64;
        let mut ev = |name: &str, mut data: Value| {
            data["type"] = json!(name);
            data["sequence_number"] = json!(seq);
            seq += 1;
            sse(Some(name), &self.add_extra(data))
        };
        let mut out = ev(
            "response.created",
            json!({"response": {"id": "resp_1", "object": "response", "status": "in_progress",
                "model": self.model, "output": []}}),
        );
        out += &ev(
            "response.output_item.added",
            json!({"output_index": 0, "item": {"type": "message", "id": "msg_1",
                "status": "in_progress", "role": "assistant", "content": []}}),
        );
        out += &ev(
            "response.content_part.added",
            json!({"item_id": "msg_1", "output_index": 0, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []}}),
        );
        for d in split_chars(&self.text, self.n) {
            out += &ev(
                "response.output_text.delta",
                json!({"item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": d}),
            );
        }
        out += &ev(
            "response.output_text.done",
            json!({"item_id": "msg_1", "output_index": 0, "content_index": 0, "text": self.text}),
        );
        out += &ev(
            "response.output_item.added",
            json!({"output_index": 1, "item": {"type": "function_call", "id": "fc_1",
                "call_id": "call_1", "name": "send_email", "arguments": "",
                "status": "in_progress"}}),
        );
        for d in split_chars(&self.args, self.n) {
            out += &ev(
                "response.function_call_arguments.delta",
                json!({"item_id": "fc_1", "output_index": 1, "delta": d}),
            );
        }
        out += &ev(
            "response.function_call_arguments.done",
            json!({"item_id": "fc_1", "output_index": 1, "arguments": self.args}),
        );
        out += &ev(
            "response.completed",
            json!({"response": self.responses_json()}),
        );
        out
    }

    fn embeddings_json(&self, n: usize) -> Value {
        let data: Vec<Value> = (0..n)
            .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.25, -0.5, 0.125]}))
            .collect();
        json!({"object": "list", "data": data, "model": self.model,
            "usage": {"prompt_tokens": 10, "total_tokens": 10}})
    }

    fn anthropic_json(&self) -> Value {
        json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": self.model,
            "content": [
                {"type": "text", "text": self.text},
                {"type": "tool_use", "id": "toolu_1", "name": "send_email", "input": self.args_value}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 20}
        })
    }

    fn anthropic_sse(&self) -> String {
        let ev = |name: &str, mut data: Value| {
            data["type"] = json!(name);
            sse(Some(name), &self.add_extra(data))
        };
        let mut out = ev(
            "message_start",
            json!({"message": {"id": "msg_1", "type": "message", "role": "assistant",
                "model": self.model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 10, "output_tokens": 1}}}),
        );
        out += &ev(
            "content_block_start",
            json!({"index": 0, "content_block": {"type": "text", "text": ""}}),
        );
        out += &ev("ping", json!({}));
        for d in split_chars(&self.text, self.n) {
            out += &ev(
                "content_block_delta",
                json!({"index": 0, "delta": {"type": "text_delta", "text": d}}),
            );
        }
        out += &ev("content_block_stop", json!({"index": 0}));
        out += &ev(
            "content_block_start",
            json!({"index": 1, "content_block": {"type": "tool_use", "id": "toolu_1",
                "name": "send_email", "input": {}}}),
        );
        for d in split_chars(&self.args, self.n) {
            out += &ev(
                "content_block_delta",
                json!({"index": 1, "delta": {"type": "input_json_delta", "partial_json": d}}),
            );
        }
        out += &ev("content_block_stop", json!({"index": 1}));
        out += &ev(
            "message_delta",
            json!({"delta": {"stop_reason": "tool_use", "stop_sequence": null},
                "usage": {"output_tokens": 20}}),
        );
        out += &ev("message_stop", json!({}));
        out
    }

    fn gemini_json(&self, text: &str, last: bool) -> Value {
        let mut parts = vec![json!({"text": text})];
        let mut cand = json!({"content": null, "index": 0});
        if last {
            parts.push(json!({"functionCall": {"name": "send_email", "args": self.args_value}}));
            cand["finishReason"] = json!("STOP");
        }
        cand["content"] = json!({"role": "model", "parts": parts});
        let mut v = json!({"candidates": [cand], "modelVersion": self.model});
        if last {
            v["usageMetadata"] =
                json!({"promptTokenCount": 10, "candidatesTokenCount": 20, "totalTokenCount": 30});
        }
        v
    }

    /// Gemini separates events with CRLF CRLF, as the real service does.
    fn gemini_sse(&self) -> String {
        let pieces = split_chars(&self.text, self.n);
        let mut out = String::new();
        let k = pieces.len();
        for (i, d) in pieces.iter().enumerate() {
            let v = self.add_extra(self.gemini_json(d, i + 1 == k));
            out += &format!("data: {}\r\n\r\n", serde_json::to_string(&v).unwrap());
        }
        if k == 0 {
            let v = self.add_extra(self.gemini_json("", true));
            out += &format!("data: {}\r\n\r\n", serde_json::to_string(&v).unwrap());
        }
        out
    }
}
