//! A lean OpenAI-compatible upstream for benchmarks and the load script.
//!
//! `POST .../chat/completions` answers with the last message's text echoed back (so the
//! gateway has placeholders to restore), as JSON or, with `"stream": true`, as SSE chunks of
//! 16 characters. It keeps no record of requests (unlike the test fixture), so it can take
//! hundreds of thousands of them.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use tokio::net::TcpListener;

fn answer(req_body: &[u8]) -> (bool, String) {
    let v: serde_json::Value = serde_json::from_slice(req_body).unwrap_or_default();
    let stream = v["stream"].as_bool().unwrap_or(false);
    let text = v["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_owned();
    (stream, format!("You wrote: {text}"))
}

pub fn chat_json(content: &str) -> String {
    serde_json::json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": "bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    })
    .to_string()
}

pub fn chat_sse(content: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = content.chars().collect();
    for piece in chars.chunks(16) {
        let s: String = piece.iter().collect();
        let ev = serde_json::json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "bench",
            "choices": [{"index": 0, "delta": {"content": s}, "finish_reason": null}]});
        out.push_str(&format!("data: {ev}\n\n"));
    }
    let end = serde_json::json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "bench",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    out.push_str(&format!("data: {end}\n\ndata: [DONE]\n\n"));
    out
}

async fn handle(
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    if !req.uri().path().ends_with("/chat/completions") {
        let mut r = Response::new(Full::new(Bytes::from_static(
            b"{\"error\":{\"message\":\"not found\"}}",
        )));
        *r.status_mut() = http::StatusCode::NOT_FOUND;
        return Ok(r);
    }
    let body = req.into_body().collect().await?.to_bytes();
    let (stream, content) = answer(&body);
    let (ct, out) = if stream {
        ("text/event-stream", chat_sse(&content))
    } else {
        ("application/json", chat_json(&content))
    };
    let mut r = Response::new(Full::new(Bytes::from(out)));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(ct),
    );
    Ok(r)
}

/// Serves on `addr` until the process ends; returns the bound address once listening.
pub async fn spawn(addr: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind(addr)
        .await
        .expect("binding the mock upstream");
    let local = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service_fn(handle))
                    .await;
            });
        }
    });
    local
}

/// A 2 KB chat request with five findings (e-mail, card, RRN, phone, IPv4) in the last message.
pub fn chat_request_2kb(stream: bool) -> String {
    let filler =
        "Please summarise the quarterly report and list the open action items for the team. ";
    let mut text = String::new();
    while text.len() < 1700 {
        text.push_str(filler);
    }
    text.push_str("Contact kim.minsu@example.com, card 4111 1111 1111 1111, 주민번호 900101-1234568, call 010-2345-6789, server 10.1.2.3.");
    serde_json::json!({
        "model": "bench", "stream": stream,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": text}
        ]
    })
    .to_string()
}
