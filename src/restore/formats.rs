//! Where each streaming API puts its deltas, and when a delta stream ends.
//!
//! For one parsed SSE event, [`plan`] lists the delta strings (a [`StreamKey`] naming the
//! text they continue, the JSON path to the string, and whether it is JSON source) and which
//! streams the event ends. [`template`] builds the event that carries text held back for a
//! stream when the stream ends in an event that does not carry it.
//!
//! | format | delta (key) | ends |
//! |---|---|---|
//! | OpenAI chat | `choices[i].delta.{content,refusal,reasoning_content,reasoning}` (choice), `choices[i].delta.tool_calls[j].function.arguments` (choice, tool index; JSON source) | `finish_reason` non-null for the choice; `[DONE]` |
//! | OpenAI Responses | `delta` of `response.output_text.delta`, `.refusal.delta`, `.reasoning_text.delta` (output, content index), `.reasoning_summary_text.delta` (output, summary index), `.function_call_arguments.delta` / `.mcp_call_arguments.delta` (output; JSON source), `.custom_tool_call_input.delta` (output) | the matching `.done`, `content_part.done`, `reasoning_summary_part.done`, `output_item.done`; `response.completed` / `failed` / `incomplete`, `error` |
//! | Anthropic | `content_block_delta` `text_delta.text`, `thinking_delta.thinking`, `input_json_delta.partial_json` (JSON source) (block index) | `content_block_stop` for the index; `message_delta`, `message_stop`, `error` |
//! | Gemini | `candidates[k].content.parts[m].text` (candidate; thought parts apart) | `finishReason` on the candidate |
//!
//! Templates are minimal on purpose: the OpenAI and Gemini copies keep only the top-level ids
//! and the one delta, because SDKs concatenate repeated strings (a copied tool-call `id` or
//! `name` would be doubled by openai-python's accumulator); usage blocks are dropped so they
//! are not counted twice.

use crate::restore::text::Escape;
use serde_json::{Map, Value};

/// The API whose stream is being restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// OpenAI Chat Completions (`/v1/chat/completions`, `stream: true`) and compatibles.
    OpenAiChat,
    /// OpenAI Responses (`/v1/responses`, `stream: true`).
    OpenAiResponses,
    /// Anthropic Messages (`/v1/messages`, `stream: true`).
    Anthropic,
    /// Gemini `streamGenerateContent?alt=sse`.
    Gemini,
}

/// Which kind of text a delta stream carries (part of its key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Content,
    Refusal,
    Reasoning,
    ReasoningAlt,
    ToolArgs,
    ToolInput,
    Summary,
    Thinking,
    Thought,
}

/// Identity of one delta stream within an SSE stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct StreamKey {
    pub kind: Kind,
    /// Choice (OpenAI chat), output index (Responses), block index (Anthropic), candidate (Gemini).
    pub group: u64,
    /// Tool-call index, content index or summary index; 0 when unused.
    pub sub: u64,
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    K(&'static str),
    I(usize),
}

/// A delta string in an event.
#[derive(Debug, Clone)]
pub(crate) struct DeltaLoc {
    pub key: StreamKey,
    pub path: Vec<Seg>,
    pub escape: Escape,
}

/// Streams an event ends (after its own deltas are applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    Key(StreamKey),
    Group(u64),
    All,
}

#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub deltas: Vec<DeltaLoc>,
    pub endings: Vec<Ending>,
}

pub(crate) fn get<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, s| match s {
        Seg::K(k) => v.get(*k),
        Seg::I(i) => v.get(*i),
    })
}

pub(crate) fn get_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, s| match s {
        Seg::K(k) => v.get_mut(*k),
        Seg::I(i) => v.get_mut(*i),
    })
}

fn index_or(v: &Value, field: &str, pos: usize) -> u64 {
    v.get(field).and_then(Value::as_u64).unwrap_or(pos as u64)
}

fn key(kind: Kind, group: u64, sub: u64) -> StreamKey {
    StreamKey { kind, group, sub }
}

/// What the event `v` carries and ends, for `format`.
pub(crate) fn plan(format: StreamFormat, v: &Value) -> Plan {
    match format {
        StreamFormat::OpenAiChat => plan_chat(v),
        StreamFormat::OpenAiResponses => plan_responses(v),
        StreamFormat::Anthropic => plan_anthropic(v),
        StreamFormat::Gemini => plan_gemini(v),
    }
}

const CHAT_TEXT_FIELDS: [(&str, Kind); 4] = [
    ("content", Kind::Content),
    ("refusal", Kind::Refusal),
    ("reasoning_content", Kind::Reasoning),
    ("reasoning", Kind::ReasoningAlt),
];

fn plan_chat(v: &Value) -> Plan {
    let mut p = Plan::default();
    let Some(choices) = v.get("choices").and_then(Value::as_array) else {
        return p;
    };
    for (pos, ch) in choices.iter().enumerate() {
        let i = index_or(ch, "index", pos);
        if let Some(delta) = ch.get("delta") {
            for (field, kind) in CHAT_TEXT_FIELDS {
                if delta.get(field).is_some_and(Value::is_string) {
                    p.deltas.push(DeltaLoc {
                        key: key(kind, i, 0),
                        path: vec![
                            Seg::K("choices"),
                            Seg::I(pos),
                            Seg::K("delta"),
                            Seg::K(field),
                        ],
                        escape: Escape::None,
                    });
                }
            }
            if let Some(tcs) = delta.get("tool_calls").and_then(Value::as_array) {
                for (tpos, tc) in tcs.iter().enumerate() {
                    let path = vec![
                        Seg::K("choices"),
                        Seg::I(pos),
                        Seg::K("delta"),
                        Seg::K("tool_calls"),
                        Seg::I(tpos),
                        Seg::K("function"),
                        Seg::K("arguments"),
                    ];
                    if get(v, &path).is_some_and(Value::is_string) {
                        p.deltas.push(DeltaLoc {
                            key: key(Kind::ToolArgs, i, index_or(tc, "index", tpos)),
                            path,
                            escape: Escape::Json,
                        });
                    }
                }
            }
            // legacy `function_call`
            let path = vec![
                Seg::K("choices"),
                Seg::I(pos),
                Seg::K("delta"),
                Seg::K("function_call"),
                Seg::K("arguments"),
            ];
            if get(v, &path).is_some_and(Value::is_string) {
                p.deltas.push(DeltaLoc {
                    key: key(Kind::ToolArgs, i, u64::MAX),
                    path,
                    escape: Escape::Json,
                });
            }
        }
        if ch.get("finish_reason").is_some_and(|f| !f.is_null()) {
            p.endings.push(Ending::Group(i));
        }
    }
    p
}

fn plan_responses(v: &Value) -> Plan {
    let mut p = Plan::default();
    let Some(ty) = v.get("type").and_then(Value::as_str) else {
        return p;
    };
    let oi = v.get("output_index").and_then(Value::as_u64);
    let ci = v.get("content_index").and_then(Value::as_u64).unwrap_or(0);
    let si = v.get("summary_index").and_then(Value::as_u64).unwrap_or(0);
    let delta = |kind, sub, escape| -> Option<DeltaLoc> {
        let oi = oi?;
        v.get("delta").filter(|d| d.is_string())?;
        Some(DeltaLoc {
            key: key(kind, oi, sub),
            path: vec![Seg::K("delta")],
            escape,
        })
    };
    let d = match ty {
        "response.output_text.delta" => delta(Kind::Content, ci, Escape::None),
        "response.refusal.delta" => delta(Kind::Refusal, ci, Escape::None),
        "response.reasoning_text.delta" => delta(Kind::Reasoning, ci, Escape::None),
        "response.reasoning_summary_text.delta" => delta(Kind::Summary, si, Escape::None),
        "response.function_call_arguments.delta" | "response.mcp_call_arguments.delta" => {
            delta(Kind::ToolArgs, 0, Escape::Json)
        }
        "response.custom_tool_call_input.delta" => delta(Kind::ToolInput, 0, Escape::None),
        _ => None,
    };
    p.deltas.extend(d);
    let end = |kind, sub| oi.map(|oi| Ending::Key(key(kind, oi, sub)));
    match ty {
        "response.output_text.done" => p.endings.extend(end(Kind::Content, ci)),
        "response.refusal.done" => p.endings.extend(end(Kind::Refusal, ci)),
        "response.reasoning_text.done" => p.endings.extend(end(Kind::Reasoning, ci)),
        "response.reasoning_summary_text.done" | "response.reasoning_summary_part.done" => {
            p.endings.extend(end(Kind::Summary, si))
        }
        "response.function_call_arguments.done" | "response.mcp_call_arguments.done" => {
            p.endings.extend(end(Kind::ToolArgs, 0))
        }
        "response.custom_tool_call_input.done" => p.endings.extend(end(Kind::ToolInput, 0)),
        "response.content_part.done" => {
            for k in [Kind::Content, Kind::Refusal, Kind::Reasoning] {
                p.endings.extend(end(k, ci));
            }
        }
        "response.output_item.done" => p.endings.extend(oi.map(Ending::Group)),
        "response.completed" | "response.failed" | "response.incomplete" | "error" => {
            p.endings.push(Ending::All)
        }
        _ => {}
    }
    p
}

fn plan_anthropic(v: &Value) -> Plan {
    let mut p = Plan::default();
    let ty = v.get("type").and_then(Value::as_str).unwrap_or("");
    let idx = v.get("index").and_then(Value::as_u64);
    match (ty, idx) {
        ("content_block_delta", Some(i)) => {
            let (kind, field, escape) = match v.pointer("/delta/type").and_then(Value::as_str) {
                Some("text_delta") => (Kind::Content, "text", Escape::None),
                Some("thinking_delta") => (Kind::Thinking, "thinking", Escape::None),
                Some("input_json_delta") => (Kind::ToolArgs, "partial_json", Escape::Json),
                _ => return p,
            };
            let path = vec![Seg::K("delta"), Seg::K(field)];
            if get(v, &path).is_some_and(Value::is_string) {
                p.deltas.push(DeltaLoc {
                    key: key(kind, i, 0),
                    path,
                    escape,
                });
            }
        }
        ("content_block_stop", Some(i)) => p.endings.push(Ending::Group(i)),
        ("message_delta" | "message_stop" | "error", _) => p.endings.push(Ending::All),
        _ => {}
    }
    p
}

fn plan_gemini(v: &Value) -> Plan {
    let mut p = Plan::default();
    let Some(cands) = v.get("candidates").and_then(Value::as_array) else {
        return p;
    };
    for (cpos, cand) in cands.iter().enumerate() {
        let k = index_or(cand, "index", cpos);
        if let Some(parts) = cand.pointer("/content/parts").and_then(Value::as_array) {
            for (m, part) in parts.iter().enumerate() {
                if part.get("text").is_some_and(Value::is_string) {
                    let thought = part.get("thought").and_then(Value::as_bool) == Some(true);
                    p.deltas.push(DeltaLoc {
                        key: key(
                            if thought {
                                Kind::Thought
                            } else {
                                Kind::Content
                            },
                            k,
                            0,
                        ),
                        path: vec![
                            Seg::K("candidates"),
                            Seg::I(cpos),
                            Seg::K("content"),
                            Seg::K("parts"),
                            Seg::I(m),
                            Seg::K("text"),
                        ],
                        escape: Escape::None,
                    });
                }
            }
        }
        if cand.get("finishReason").is_some_and(|f| !f.is_null()) {
            p.endings.push(Ending::Group(k));
        }
    }
    p
}

/// A minimal event, shaped like `event`, that carries only the delta `loc` (set to "" here).
/// Returns it with the path of its delta string.
pub(crate) fn template(format: StreamFormat, event: &Value, loc: &DeltaLoc) -> (Value, Vec<Seg>) {
    let empty = || Value::String(String::new());
    match format {
        StreamFormat::OpenAiResponses | StreamFormat::Anthropic => {
            // These delta events hold nothing but ids and the delta.
            let mut t = event.clone();
            if let Some(d) = get_mut(&mut t, &loc.path) {
                *d = empty();
            }
            if let Some(l) = t.get_mut("logprobs").filter(|l| l.is_array()) {
                *l = Value::Array(Vec::new());
            }
            (t, loc.path.clone())
        }
        StreamFormat::OpenAiChat => {
            let mut t = top_level_without(event, &["choices", "usage"]);
            let cpos = match loc.path.get(1) {
                Some(Seg::I(p)) => *p,
                _ => 0,
            };
            let mut choice = Map::new();
            if let Some(ix) = event.pointer(&format!("/choices/{cpos}/index")) {
                choice.insert("index".into(), ix.clone());
            }
            let mut delta = Map::new();
            let rel: Vec<Seg> = loc.path[3..].to_vec();
            match rel.first() {
                Some(Seg::K("tool_calls")) => {
                    let mut f = Map::new();
                    f.insert("arguments".into(), empty());
                    let mut tc = Map::new();
                    if let Some(ix) = get(event, &loc.path[..5]).and_then(|tc| tc.get("index")) {
                        tc.insert("index".into(), ix.clone());
                    }
                    tc.insert("function".into(), Value::Object(f));
                    delta.insert("tool_calls".into(), Value::Array(vec![Value::Object(tc)]));
                }
                Some(Seg::K("function_call")) => {
                    let mut f = Map::new();
                    f.insert("arguments".into(), empty());
                    delta.insert("function_call".into(), Value::Object(f));
                }
                Some(Seg::K(field)) => {
                    delta.insert((*field).into(), empty());
                }
                _ => {}
            }
            choice.insert("delta".into(), Value::Object(delta));
            choice.insert("finish_reason".into(), Value::Null);
            if let Value::Object(o) = &mut t {
                o.insert("choices".into(), Value::Array(vec![Value::Object(choice)]));
            }
            let mut path = vec![Seg::K("choices"), Seg::I(0), Seg::K("delta")];
            match rel.first() {
                Some(Seg::K("tool_calls")) => path.extend([
                    Seg::K("tool_calls"),
                    Seg::I(0),
                    Seg::K("function"),
                    Seg::K("arguments"),
                ]),
                Some(Seg::K("function_call")) => {
                    path.extend([Seg::K("function_call"), Seg::K("arguments")])
                }
                Some(Seg::K(field)) => path.push(Seg::K(field)),
                _ => {}
            }
            (t, path)
        }
        StreamFormat::Gemini => {
            let mut t = top_level_without(event, &["candidates", "usageMetadata"]);
            let cpos = match loc.path.get(1) {
                Some(Seg::I(p)) => *p,
                _ => 0,
            };
            let cand = event.get("candidates").and_then(|c| c.get(cpos));
            let mut part = Map::new();
            part.insert("text".into(), empty());
            if loc.key.kind == Kind::Thought {
                part.insert("thought".into(), Value::Bool(true));
            }
            let mut content = Map::new();
            content.insert("parts".into(), Value::Array(vec![Value::Object(part)]));
            let role = cand
                .and_then(|c| c.pointer("/content/role"))
                .cloned()
                .unwrap_or_else(|| Value::String("model".into()));
            content.insert("role".into(), role);
            let mut c = Map::new();
            c.insert("content".into(), Value::Object(content));
            if let Some(ix) = cand.and_then(|c| c.get("index")) {
                c.insert("index".into(), ix.clone());
            }
            if let Value::Object(o) = &mut t {
                o.insert("candidates".into(), Value::Array(vec![Value::Object(c)]));
            }
            let path = vec![
                Seg::K("candidates"),
                Seg::I(0),
                Seg::K("content"),
                Seg::K("parts"),
                Seg::I(0),
                Seg::K("text"),
            ];
            (t, path)
        }
    }
}

fn top_level_without(event: &Value, drop: &[&str]) -> Value {
    match event {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| !drop.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => Value::Object(Map::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_plan_finds_content_tools_and_finish() {
        let v = json!({"choices":[{"index":1,"delta":{"content":"a","reasoning_content":"r","tool_calls":[{"index":2,"function":{"arguments":"{"}}]},"finish_reason":"stop"}]});
        let p = plan(StreamFormat::OpenAiChat, &v);
        let keys: Vec<_> = p.deltas.iter().map(|d| (d.key, d.escape)).collect();
        assert_eq!(
            keys,
            [
                (key(Kind::Content, 1, 0), Escape::None),
                (key(Kind::Reasoning, 1, 0), Escape::None),
                (key(Kind::ToolArgs, 1, 2), Escape::Json)
            ]
        );
        assert_eq!(get(&v, &p.deltas[2].path), Some(&json!("{")));
        assert_eq!(p.endings, [Ending::Group(1)]);
        let p = plan(
            StreamFormat::OpenAiChat,
            &json!({"choices":[{"index":0,"delta":{"content":null},"finish_reason":null}]}),
        );
        assert!(p.deltas.is_empty() && p.endings.is_empty());
    }

    #[test]
    fn chat_template_is_minimal() {
        let v = json!({"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":3,"id":"call_1","type":"function","function":{"name":"send","arguments":"{\"a"}}]},"finish_reason":null}],"usage":{"total_tokens":1}});
        let p = plan(StreamFormat::OpenAiChat, &v);
        let (mut t, path) = template(StreamFormat::OpenAiChat, &v, &p.deltas[0]);
        *get_mut(&mut t, &path).unwrap() = json!("X");
        assert_eq!(
            t,
            json!({"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":3,"function":{"arguments":"X"}}]},"finish_reason":null}]})
        );
    }

    #[test]
    fn responses_plan() {
        let v = json!({"type":"response.output_text.delta","item_id":"msg_1","output_index":1,"content_index":2,"delta":"x"});
        let p = plan(StreamFormat::OpenAiResponses, &v);
        assert_eq!(p.deltas[0].key, key(Kind::Content, 1, 2));
        let v = json!({"type":"response.function_call_arguments.delta","item_id":"fc_1","output_index":3,"delta":"{"});
        assert_eq!(
            plan(StreamFormat::OpenAiResponses, &v).deltas[0].escape,
            Escape::Json
        );
        let v = json!({"type":"response.output_text.done","output_index":1,"content_index":2,"text":"x"});
        let p = plan(StreamFormat::OpenAiResponses, &v);
        assert!(p.deltas.is_empty());
        assert_eq!(p.endings, [Ending::Key(key(Kind::Content, 1, 2))]);
        let p = plan(
            StreamFormat::OpenAiResponses,
            &json!({"type":"response.completed","response":{}}),
        );
        assert_eq!(p.endings, [Ending::All]);
    }

    #[test]
    fn anthropic_and_gemini_plans() {
        let v = json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a"}});
        let p = plan(StreamFormat::Anthropic, &v);
        assert_eq!(
            (p.deltas[0].key, p.deltas[0].escape),
            (key(Kind::ToolArgs, 1, 0), Escape::Json)
        );
        let p = plan(
            StreamFormat::Anthropic,
            &json!({"type":"content_block_stop","index":1}),
        );
        assert_eq!(p.endings, [Ending::Group(1)]);
        let p = plan(
            StreamFormat::Anthropic,
            &json!({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"x"}}),
        );
        assert!(p.deltas.is_empty());

        let v = json!({"candidates":[{"content":{"parts":[{"text":"a","thought":true},{"text":"b"}],"role":"model"},"index":0,"finishReason":"STOP"}],"usageMetadata":{"x":1},"modelVersion":"g"});
        let p = plan(StreamFormat::Gemini, &v);
        assert_eq!(p.deltas.len(), 2);
        assert_eq!(p.deltas[0].key.kind, Kind::Thought);
        assert_eq!(p.endings, [Ending::Group(0)]);
        let (mut t, path) = template(StreamFormat::Gemini, &v, &p.deltas[0]);
        *get_mut(&mut t, &path).unwrap() = json!("X");
        assert_eq!(
            t,
            json!({"candidates":[{"content":{"parts":[{"text":"X","thought":true}],"role":"model"},"index":0}],"modelVersion":"g"})
        );
    }
}
