//! Shared pieces of the end-to-end tests: planted values, request bodies for every API with
//! the planted prompt in every text-bearing field, leak checks, SSE parsing and reassembly,
//! error-shape checks.
//!
//! Why: every e2e file asks the same questions (did a planted value reach the upstream? did
//! the client get it back? is this error in the API's shape?), so the answers live here once.
//! Limits: the leak check searches the forms listed in [`leak_forms`]; a gateway that leaked a
//! value in some other encoding (base64, say) would not be caught.
#![allow(dead_code)]

pub mod gateway;
pub mod upstream;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The values planted in every prompt, with the label each must be masked as.
pub const PLANTED: [(&str, &str); 4] = [
    ("kim.minsu@example.com", "EMAIL"),
    ("4111 1111 1111 1111", "CREDIT_CARD"),
    ("900101-1234568", "NATIONAL_ID"),
    ("010-2345-6789", "PHONE"),
];

pub const EMAIL: &str = "kim.minsu@example.com";

/// The planted prompt.
pub const PROMPT: &str = "I'm Kim, kim.minsu@example.com, card 4111 1111 1111 1111, 주민번호 900101-1234568, call 010-2345-6789";

/// Every byte form in which a planted value must not show up: raw, JSON-escaped (once and
/// twice, as inside tool-call arguments), `@` unicode-escaped, digits only, and the e-mail's
/// local part.
pub fn leak_forms() -> Vec<String> {
    let mut out = Vec::new();
    for (v, _) in PLANTED {
        out.push(v.to_string());
        let once = serde_json::to_string(v).unwrap();
        let once = once[1..once.len() - 1].to_string();
        out.push(once.clone());
        let twice = serde_json::to_string(&once).unwrap();
        out.push(twice[1..twice.len() - 1].to_string());
        let digits: String = v.chars().filter(|c| c.is_ascii_digit()).collect();
        if digits.len() >= 8 {
            out.push(digits);
        }
    }
    out.push("kim.minsu\\u0040example.com".into());
    out.push("kim.minsu".into());
    out.sort();
    out.dedup();
    out
}

/// Panics when any leak form of a planted value occurs in `bytes` (case-insensitive for the
/// e-mail forms).
pub fn assert_no_leak(what: &str, bytes: &[u8]) {
    let hay = String::from_utf8_lossy(bytes).to_ascii_lowercase();
    for f in leak_forms() {
        assert!(
            !hay.contains(&f.to_ascii_lowercase()),
            "{what} contains a planted value (form `{f}`)"
        );
    }
}

/// True when `s` holds at least one planted value, raw.
pub fn has_planted(s: &str) -> bool {
    PLANTED.iter().any(|(v, _)| s.contains(v))
}

/// Placeholders in `text`, in order, no repeats.
pub fn placeholders(text: &str) -> Vec<String> {
    upstream::placeholders(text)
}

/// The placeholder of `label` in `masked` (first one), e.g. `[EMAIL_1]`.
pub fn placeholder_of(masked: &str, label: &str) -> Option<String> {
    placeholders(masked)
        .into_iter()
        .find(|p| p.starts_with(&format!("[{label}_")))
}

/// Checks a recorded upstream request against the request the client sent:
/// * no planted value anywhere in the raw request (line, headers, body);
/// * same JSON structure, same keys in the same order, equal numbers/bools/nulls (so unknown
///   fields pass unchanged);
/// * every string that held a planted value now holds the placeholder of that value's label,
///   the same placeholder everywhere in the request (stable within a conversation);
/// * strings without planted values are unchanged unless the gateway put a placeholder in;
/// * strings that were JSON documents (tool arguments) are still valid JSON.
///
/// Returns label -> placeholder.
pub fn assert_masked(sent: &Value, rec: &upstream::Recorded) -> BTreeMap<String, String> {
    assert_no_leak("the request the upstream received", &rec.raw());
    let got = rec.json();
    let mut map = BTreeMap::new();
    compare(sent, &got, "$", &mut map);
    for (_, label) in PLANTED {
        assert!(
            map.contains_key(label),
            "no {label} placeholder seen by the upstream; got: {}",
            String::from_utf8_lossy(&rec.body)
        );
    }
    map
}

fn compare(sent: &Value, got: &Value, path: &str, map: &mut BTreeMap<String, String>) {
    match (sent, got) {
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<&String> = a.keys().collect();
            let kb: Vec<&String> = b.keys().collect();
            assert_eq!(ka, kb, "keys differ at {path}");
            for (k, v) in a {
                compare(v, &b[k], &format!("{path}.{k}"), map);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "array length differs at {path}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                compare(x, y, &format!("{path}[{i}]"), map);
            }
        }
        (Value::String(s), Value::String(g)) => {
            if serde_json::from_str::<Value>(s).is_ok_and(|v| v.is_object()) {
                assert!(
                    serde_json::from_str::<Value>(g).is_ok_and(|v| v.is_object()),
                    "JSON string at {path} is no longer a JSON object after masking: {g}"
                );
            }
            let mut any = false;
            for (v, label) in PLANTED {
                if s.contains(v) {
                    any = true;
                    let ph = placeholder_of(g, label).unwrap_or_else(|| {
                        panic!("{path}: no {label} placeholder in the masked text: {g}")
                    });
                    let prev = map.entry(label.to_string()).or_insert_with(|| ph.clone());
                    assert_eq!(
                        *prev, ph,
                        "{path}: {label} masked as {ph} here but {prev} elsewhere in the request"
                    );
                }
            }
            if !any && s != g {
                assert!(
                    !placeholders(g).is_empty(),
                    "{path}: a string without planted values was changed: {s:?} -> {g:?}"
                );
            }
        }
        (a, b) => assert_eq!(a, b, "value differs at {path}"),
    }
}

/// Text of the echo the fixture makes from `sent`: what the client must get back restored.
pub fn expected_echo(sent: &Value) -> String {
    upstream::echo_text(sent)
}

/// Panics when `text` still holds a placeholder that the request produced (`map` from
/// [`assert_masked`]).
pub fn assert_no_placeholders(what: &str, text: &str, map: &BTreeMap<String, String>) {
    for p in map.values() {
        assert!(
            !text.contains(p.as_str()),
            "{what} still contains {p}: {text}"
        );
    }
}

/// Checks restored tool-call arguments: valid JSON, `to` is the planted e-mail, `note` is the
/// expected echo.
pub fn assert_args(what: &str, args: &Value, echo: &str) {
    assert_eq!(
        args["to"],
        json!(EMAIL),
        "{what}: tool-call `to` not restored: {args}"
    );
    assert_eq!(
        args["note"].as_str(),
        Some(echo),
        "{what}: tool-call `note` not restored"
    );
}

/// Parses an arguments string as JSON, with a readable panic.
pub fn parse_args(what: &str, s: &str) -> Value {
    serde_json::from_str(s)
        .unwrap_or_else(|e| panic!("{what}: restored arguments are not valid JSON ({e}): {s}"))
}

// ---------------------------------------------------------------------------------------
// Request bodies: the planted prompt in every text-bearing field.

fn lookup_args() -> String {
    serde_json::to_string(&json!({"email": EMAIL, "card": "4111 1111 1111 1111", "note": PROMPT}))
        .unwrap()
}

fn unknown_top() -> Value {
    serde_json::from_str(
        r#"{"big":98765432109876543210987,"dec":2.50,"flags":[true,false,null],"label":"no pii here"}"#,
    )
    .unwrap()
}

/// OpenAI chat: system, user (string and parts), assistant tool_calls arguments, tool result.
pub fn chat_request(stream: bool) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": format!("You help the customer. Customer: {PROMPT}")},
            {"role": "user", "content": PROMPT, "x_msg_meta": {"keep": 1}},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_0", "type": "function",
                "function": {"name": "lookup", "arguments": lookup_args()}}]},
            {"role": "tool", "tool_call_id": "call_0", "content": format!("Found: {PROMPT}")},
            {"role": "user", "content": [{"type": "text", "text": format!("Again: {PROMPT}")}]}
        ],
        "temperature": 0.2,
        "stream": stream,
        "x_unknown_top": unknown_top()
    })
}

/// OpenAI Responses: instructions, input items of each kind.
pub fn responses_request(stream: bool) -> Value {
    json!({
        "model": "gpt-4.1-mini",
        "instructions": format!("Be brief. Customer: {PROMPT}"),
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": PROMPT}]},
            {"type": "message", "role": "assistant",
             "content": [{"type": "output_text", "text": format!("Noted: {PROMPT}")}]},
            {"type": "function_call", "call_id": "call_0", "name": "lookup", "arguments": lookup_args()},
            {"type": "function_call_output", "call_id": "call_0", "output": format!("Found: {PROMPT}")},
            {"role": "user", "content": format!("Again: {PROMPT}")}
        ],
        "stream": stream,
        "x_unknown_top": unknown_top()
    })
}

pub fn embeddings_request() -> Value {
    json!({
        "model": "text-embedding-3-small",
        "input": [PROMPT, format!("second: {PROMPT}")],
        "x_unknown_top": unknown_top()
    })
}

/// Anthropic: system blocks, user text, assistant tool_use input, tool_result (string and
/// blocks).
pub fn anthropic_request(stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "system": [{"type": "text", "text": format!("Customer: {PROMPT}")}],
        "messages": [
            {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Looking it up."},
                {"type": "tool_use", "id": "toolu_0", "name": "lookup",
                 "input": {"email": EMAIL, "note": PROMPT}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_0", "content": format!("Found: {PROMPT}")},
                {"type": "tool_result", "tool_use_id": "toolu_0",
                 "content": [{"type": "text", "text": format!("Also: {PROMPT}")}]},
                {"type": "text", "text": format!("Again: {PROMPT}")}
            ]}
        ],
        "stream": stream,
        "x_unknown_top": unknown_top()
    })
}

/// Gemini: systemInstruction, contents text, functionCall args, functionResponse.
pub fn gemini_request() -> Value {
    json!({
        "systemInstruction": {"parts": [{"text": format!("Customer: {PROMPT}")}]},
        "contents": [
            {"role": "user", "parts": [{"text": PROMPT}]},
            {"role": "model", "parts": [{"functionCall": {"name": "lookup",
                "args": {"email": EMAIL, "note": PROMPT}}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "lookup", "response": {"result": format!("Found: {PROMPT}")}}},
                {"text": format!("Again: {PROMPT}")}
            ]}
        ],
        "generationConfig": {"temperature": 0.2},
        "x_unknown_top": unknown_top()
    })
}

// ---------------------------------------------------------------------------------------
// SSE.

#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {}", self.data))
    }
}

/// Parses an SSE body (LF, CRLF or CR line ends). Comments and events without data are
/// skipped; multi-line data is joined with `\n`.
pub fn parse_sse(body: &[u8]) -> Vec<SseEvent> {
    let text = String::from_utf8_lossy(body)
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    let mut out = Vec::new();
    let mut event = None;
    let mut data: Vec<String> = Vec::new();
    for line in text.split('\n') {
        if line.is_empty() {
            if !data.is_empty() {
                out.push(SseEvent {
                    event: event.take(),
                    data: data.join("\n"),
                });
            }
            event = None;
            data.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.find(':') {
            Some(i) => (
                &line[..i],
                line[i + 1..].strip_prefix(' ').unwrap_or(&line[i + 1..]),
            ),
            None => (line, ""),
        };
        match field {
            "event" => event = Some(value.to_string()),
            "data" => data.push(value.to_string()),
            _ => {}
        }
    }
    out
}

/// OpenAI chat stream -> (content, arguments of tool call 0, saw `[DONE]`).
pub fn chat_stream_parts(events: &[SseEvent]) -> (String, String, bool) {
    let mut content = String::new();
    let mut args = String::new();
    let mut done = false;
    for e in events {
        if e.data == "[DONE]" {
            done = true;
            continue;
        }
        let v = e.json();
        let d = &v["choices"][0]["delta"];
        if let Some(s) = d["content"].as_str() {
            content += s;
        }
        if let Some(s) = d["tool_calls"][0]["function"]["arguments"].as_str() {
            args += s;
        }
    }
    (content, args, done)
}

/// Responses stream -> (text deltas, done text, argument deltas, completed event data).
pub fn responses_stream_parts(events: &[SseEvent]) -> (String, String, String, Option<Value>) {
    let (mut deltas, mut done, mut args, mut completed) =
        (String::new(), String::new(), String::new(), None);
    for e in events {
        let v = e.json();
        match v["type"].as_str().unwrap_or("") {
            "response.output_text.delta" => deltas += v["delta"].as_str().unwrap_or(""),
            "response.output_text.done" => done = v["text"].as_str().unwrap_or("").to_string(),
            "response.function_call_arguments.delta" => args += v["delta"].as_str().unwrap_or(""),
            "response.completed" => completed = Some(v),
            _ => {}
        }
    }
    (deltas, done, args, completed)
}

/// Anthropic stream -> (text, tool_use partial_json joined, saw message_stop).
pub fn anthropic_stream_parts(events: &[SseEvent]) -> (String, String, bool) {
    let (mut text, mut json, mut stop) = (String::new(), String::new(), false);
    for e in events {
        let v = e.json();
        match v["type"].as_str().unwrap_or("") {
            "content_block_delta" => {
                if let Some(s) = v["delta"]["text"].as_str() {
                    text += s;
                }
                if let Some(s) = v["delta"]["partial_json"].as_str() {
                    json += s;
                }
            }
            "message_stop" => stop = true,
            _ => {}
        }
    }
    (text, json, stop)
}

/// Gemini stream -> (text joined, functionCall args of the last chunk that has one).
pub fn gemini_stream_parts(events: &[SseEvent]) -> (String, Option<Value>) {
    let (mut text, mut args) = (String::new(), None);
    for e in events {
        let v = e.json();
        if let Some(parts) = v["candidates"][0]["content"]["parts"].as_array() {
            for p in parts {
                if let Some(s) = p["text"].as_str() {
                    text += s;
                }
                if p.get("functionCall").is_some() {
                    args = Some(p["functionCall"]["args"].clone());
                }
            }
        }
    }
    (text, args)
}

// ---------------------------------------------------------------------------------------
// Error shapes.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    OpenAi,
    Anthropic,
    Gemini,
}

/// Checks that `resp` is a gateway error with `status` in the shape of the API, and that it
/// holds no planted value.
pub fn assert_error(resp: &gateway::Resp, status: u16, shape: Shape) {
    assert_eq!(
        resp.status.as_u16(),
        status,
        "status; body: {}",
        resp.text()
    );
    assert_no_leak("an error response", &resp.body);
    let ct = resp.header("content-type").unwrap_or_default();
    assert!(ct.contains("json"), "error content-type is {ct:?}");
    let v = resp.json();
    match shape {
        Shape::OpenAi => {
            let e = &v["error"];
            assert!(
                e["message"].is_string(),
                "OpenAI error without message: {v}"
            );
            assert!(e["type"].is_string(), "OpenAI error without type: {v}");
            let o = e.as_object().unwrap();
            assert!(
                o.contains_key("param") && o.contains_key("code"),
                "OpenAI error lacks param/code: {v}"
            );
        }
        Shape::Anthropic => {
            assert_eq!(v["type"], json!("error"), "Anthropic error: {v}");
            assert!(
                v["error"]["type"].is_string(),
                "Anthropic error without error.type: {v}"
            );
            assert!(
                v["error"]["message"].is_string(),
                "Anthropic error without message: {v}"
            );
        }
        Shape::Gemini => {
            assert_eq!(v["error"]["code"], json!(status), "Gemini error code: {v}");
            assert!(
                v["error"]["message"].is_string(),
                "Gemini error without message: {v}"
            );
            assert!(
                v["error"]["status"].is_string(),
                "Gemini error without status: {v}"
            );
        }
    }
}

/// Repeats `check` until it returns true or `timeout` passes (for state without a signal,
/// like metrics updated after the response). Returns the last result.
pub async fn eventually(timeout: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A gateway with `/openai`, `/anthropic` and `/gemini` all routed to `up`, plus `config`.
pub fn gateway_for(up: &upstream::Upstream, config: &str) -> gateway::Gateway {
    gateway::Gateway::builder()
        .config(config)
        .route("/openai", &up.url())
        .route("/anthropic", &up.url())
        .route("/gemini", &up.url())
        .start()
}

pub const CHAT: &str = "/openai/v1/chat/completions";
pub const RESPONSES: &str = "/openai/v1/responses";
pub const EMBEDDINGS: &str = "/openai/v1/embeddings";
pub const MESSAGES: &str = "/anthropic/v1/messages";
pub const GEMINI: &str = "/gemini/v1beta/models/gemini-2.0-flash:generateContent";
pub const GEMINI_SSE: &str = "/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse";

/// Panics unless every planted value occurs in `text` (the client got them back).
pub fn assert_all_restored(what: &str, text: &str) {
    for (v, _) in PLANTED {
        assert!(
            text.contains(v),
            "{what}: `{v}` was not restored in: {text}"
        );
    }
}
