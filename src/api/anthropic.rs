//! Anthropic Messages (`POST .../messages`) and token counting
//! (`POST .../messages/count_tokens`) request bodies, and Anthropic's error shape.
//!
//! Visited: `system` (a string, or blocks), then each message's `content` (a string, or
//! blocks). In blocks, by `type`:
//! * `text`: `text`, and `citations[].cited_text` (quotes of earlier documents);
//! * `document`: `title`, `context`, a plain-text source's `data`, a content source's
//!   `content` (string or blocks);
//! * `search_result`: `title` and `content` blocks;
//! * `tool_use`, `server_tool_use`, `mcp_tool_use`: every string leaf of `input` (values, not
//!   keys);
//! * `tool_result`, `mcp_tool_result`: `content`, a string or blocks;
//! * any other type: a string `text` field if it has one.
//!
//! Left alone: `thinking` and `redacted_thinking` blocks. They are the model's own output sent
//! back with a `signature` the API checks; rewriting them would make the request fail. They
//! were produced from masked input, so they hold placeholders, not raw values, provided the
//! restore stage does not unmask them in responses. Also left alone: images, PDF/base64 and
//! file sources, `tools` definitions, `metadata`, `tool_choice`, web search results
//! (encrypted), every unknown field.
//!
//! Shape checks: `messages` must be an array of objects, `system` a string, array or null,
//! `content` a string or array of blocks, blocks objects, a `text` block's `text` a string.

use super::{content_text, visit_opt_str, visit_string_leaves, ApiError, JsonPath, Obj};
use http::StatusCode;
use serde_json::Value;

pub(crate) fn visit(obj: &mut Obj, f: &mut dyn FnMut(&mut String)) -> Result<(), ApiError> {
    let spath = JsonPath::root("system");
    match obj.get_mut("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => f(s),
        Some(Value::Array(blocks)) => visit_blocks(blocks, &spath, f)?,
        Some(other) => return Err(spath.shape("a string or an array of blocks", other)),
    }
    let root = JsonPath::root("messages");
    let messages = match obj.get_mut("messages") {
        Some(Value::Array(m)) => m,
        Some(other) => return Err(root.shape("an array", other)),
        None => return Err(root.missing()),
    };
    for (i, msg) in messages.iter_mut().enumerate() {
        let path = root.index(i);
        let Value::Object(msg) = msg else {
            return Err(path.shape("an object", msg));
        };
        visit_content(msg, "content", &path, f)?;
    }
    Ok(())
}

/// `obj[key]`: a string, an array of blocks, or absent/null.
fn visit_content(
    obj: &mut Obj,
    key: &'static str,
    parent: &JsonPath<'_>,
    f: &mut dyn FnMut(&mut String),
) -> Result<(), ApiError> {
    let path = parent.key(key);
    match obj.get_mut(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) => {
            f(s);
            Ok(())
        }
        Some(Value::Array(blocks)) => visit_blocks(blocks, &path, f),
        Some(other) => Err(path.shape("a string or an array of blocks", other)),
    }
}

fn visit_blocks(
    blocks: &mut [Value],
    path: &JsonPath<'_>,
    f: &mut dyn FnMut(&mut String),
) -> Result<(), ApiError> {
    for (j, block) in blocks.iter_mut().enumerate() {
        let bpath = path.index(j);
        let Value::Object(block) = block else {
            return Err(bpath.shape("an object", block));
        };
        let ty = match block.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(other) => return Err(bpath.key("type").shape("a string", other)),
            None => return Err(bpath.key("type").missing()),
        };
        match ty.as_str() {
            "text" => {
                match block.get_mut("text") {
                    Some(Value::String(s)) => f(s),
                    Some(other) => return Err(bpath.key("text").shape("a string", other)),
                    None => return Err(bpath.key("text").missing()),
                }
                if let Some(Value::Array(citations)) = block.get_mut("citations") {
                    for c in citations.iter_mut() {
                        if let Some(Value::String(s)) = c.get_mut("cited_text") {
                            f(s);
                        }
                    }
                }
            }
            "document" => {
                visit_opt_str(block, "title", &bpath, f)?;
                visit_opt_str(block, "context", &bpath, f)?;
                let srcpath = bpath.key("source");
                match block.get_mut("source") {
                    Some(Value::Object(src)) => {
                        match src.get("type").and_then(Value::as_str) {
                            Some("text") => visit_opt_str(src, "data", &srcpath, f)?,
                            Some("content") => visit_content(src, "content", &srcpath, f)?,
                            _ => {} // base64, url, file: not text
                        }
                    }
                    None | Some(Value::Null) => {}
                    Some(other) => return Err(srcpath.shape("an object", other)),
                }
            }
            "search_result" => {
                visit_opt_str(block, "title", &bpath, f)?;
                visit_content(block, "content", &bpath, f)?;
            }
            "tool_use" | "server_tool_use" | "mcp_tool_use" => {
                if let Some(input) = block.get_mut("input") {
                    visit_string_leaves(input, f);
                }
            }
            "tool_result" | "mcp_tool_result" => visit_content(block, "content", &bpath, f)?,
            // Signed model output: see the module documentation.
            "thinking" | "redacted_thinking" => {}
            _ => {
                if let Some(Value::String(s)) = block.get_mut("text") {
                    f(s);
                }
            }
        }
    }
    Ok(())
}

/// (system text, first user message text).
pub(crate) fn anchor_parts(body: &Value) -> (Option<String>, Option<String>) {
    let system = body.get("system").and_then(content_text);
    let user = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .and_then(|m| m.get("content"))
        .and_then(content_text);
    (system, user)
}

/// `{"type":"error","error":{"type","message"}}` with Anthropic's type for the status.
pub(crate) fn error_value(status: StatusCode, message: &str) -> Value {
    let ty = match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    };
    serde_json::json!({
        "type": "error",
        "error": { "type": ty, "message": message },
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{conversation_anchor, parse_body, ApiKind};

    const KIND: ApiKind = ApiKind::AnthropicMessages;

    const BODY: &str = r#"{
      "model": "claude-sonnet-4-5",
      "max_tokens": 1024,
      "system": [
        {"type": "text", "text": "PII-SYS You help Kim Minsu (minsu@corp.kr).", "cache_control": {"type": "ephemeral"}}
      ],
      "messages": [
        {"role": "user", "content": "PII-USER my RRN is 900101-1234567"},
        {"role": "assistant", "content": [
          {"type": "thinking", "thinking": "The user Kim Minsu ... keep as signed", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"},
          {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj"},
          {"type": "text", "text": "PII-ASSIST I'll look up alice@example.com", "citations": [{"type": "char_location", "cited_text": "PII-CITED alice lives in Seoul", "document_index": 0, "start_char_index": 0, "end_char_index": 5}]},
          {"type": "tool_use", "id": "toolu_01", "name": "lookup", "input": {"email": "PII-TOOLIN1 alice@example.com", "limit": 5, "filters": {"city": "PII-TOOLIN2 Seoul", "tags": ["PII-TOOLIN3"]}, "exact": true, "score": 0.50}}
        ]},
        {"role": "user", "content": [
          {"type": "tool_result", "tool_use_id": "toolu_01", "content": "PII-RESULT1 phone 010-1234-5678"},
          {"type": "tool_result", "tool_use_id": "toolu_02", "is_error": false, "content": [
            {"type": "text", "text": "PII-RESULT2 bob@example.com"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
          ]},
          {"type": "image", "source": {"type": "url", "url": "https://example.com/alice.jpg"}},
          {"type": "document", "title": "PII-DOCTITLE Alice's record", "context": "PII-DOCCTX medical", "source": {"type": "text", "media_type": "text/plain", "data": "PII-DOCDATA Alice, born 1990-01-01"}, "citations": {"enabled": true}},
          {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "PII-DOCCONTENT chunk with carol@example.com"}]}},
          {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQ="}},
          {"type": "search_result", "source": "https://kb.example.com/1", "title": "PII-SRTITLE Dave", "content": [{"type": "text", "text": "PII-SRTEXT dave@example.com"}]},
          {"type": "text", "text": "PII-USER2 thanks, Alice"}
        ]},
        {"role": "assistant", "content": [
          {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "PII-SERVERQ alice seoul"}},
          {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [{"type": "web_search_result", "url": "https://x.example", "title": "keep", "encrypted_content": "Eq0x", "page_age": null}]}
        ]}
      ],
      "tools": [{"name": "lookup", "description": "Look up a person", "input_schema": {"type": "object", "properties": {"email": {"type": "string"}}}}],
      "tool_choice": {"type": "auto"},
      "thinking": {"type": "enabled", "budget_tokens": 2000},
      "metadata": {"user_id": "u-123"},
      "temperature": 1.0,
      "stop_sequences": ["\n\nHuman:"],
      "stream": false,
      "x_unknown": [1.0e10, 0.1000, "한국어 ü", {"nested": {"s": "keep"}}]
    }"#;

    #[test]
    fn identity_visit_keeps_body() {
        assert_identity(KIND, BODY);
        assert_identity(ApiKind::AnthropicCountTokens, BODY);
    }

    #[test]
    fn exactly_the_text_fields_change() {
        let original = parse_body(BODY.as_bytes()).unwrap();
        let (seen, after) = tag_all(KIND, BODY);
        for s in &seen {
            assert!(s.contains("PII-"), "visited a non-text field: {s:?}");
        }
        let planted = BODY.matches("PII-").count();
        let visited: usize = seen.iter().map(|s| s.matches("PII-").count()).sum();
        assert_eq!(visited, planted);
        assert_eq!(
            changed_paths(&original, &after),
            [
                ".system[0].text",
                ".messages[0].content",
                ".messages[1].content[2].text",
                ".messages[1].content[2].citations[0].cited_text",
                ".messages[1].content[3].input.email",
                ".messages[1].content[3].input.filters.city",
                ".messages[1].content[3].input.filters.tags[0]",
                ".messages[2].content[0].content",
                ".messages[2].content[1].content[0].text",
                ".messages[2].content[3].title",
                ".messages[2].content[3].context",
                ".messages[2].content[3].source.data",
                ".messages[2].content[4].source.content[0].text",
                ".messages[2].content[6].title",
                ".messages[2].content[6].content[0].text",
                ".messages[2].content[7].text",
                ".messages[3].content[0].input.query",
            ]
        );
        // Thinking blocks are untouched, signature and all.
        assert_eq!(
            after["messages"][1]["content"][0],
            original["messages"][1]["content"][0]
        );
    }

    #[test]
    fn count_tokens_and_string_system() {
        let body = r#"{"model":"claude-3-5-haiku-latest","system":"PII-S Alice's assistant","messages":[{"role":"user","content":"PII-U hi, I'm Alice"}]}"#;
        let (seen, _) = tag_all(ApiKind::AnthropicCountTokens, body);
        assert_eq!(seen, ["PII-S Alice's assistant", "PII-U hi, I'm Alice"]);
        let v = parse_body(body.as_bytes()).unwrap();
        assert_eq!(
            conversation_anchor(ApiKind::AnthropicCountTokens, &v).unwrap(),
            "PII-S Alice's assistant\u{0}PII-U hi, I'm Alice"
        );
    }

    #[test]
    fn visit_order_is_stable_for_two_passes() {
        let (a, _) = run(KIND, BODY, &mut |_| {});
        let (b, _) = run(KIND, BODY, &mut |s: &mut String| s.push('!'));
        assert_eq!(a, b);
    }

    #[test]
    fn shape_errors_name_the_path() {
        for (body, want) in [
            (r#"{"model":"m"}"#, "messages: missing"),
            (
                r#"{"messages":"alice@example.com"}"#,
                "messages: expected an array, found string",
            ),
            (
                r#"{"system":5,"messages":[]}"#,
                "system: expected a string or an array of blocks",
            ),
            (
                r#"{"system":["alice@example.com"],"messages":[]}"#,
                "system[0]: expected an object",
            ),
            (
                r#"{"messages":[{"role":"user","content":"a"},{"role":"user","content":{"text":"alice@example.com"}}]}"#,
                "messages[1].content: expected a string or an array of blocks, found object",
            ),
            (
                r#"{"messages":[{"role":"user","content":[{"text":"alice@example.com"}]}]}"#,
                "messages[0].content[0].type: missing",
            ),
            (
                r#"{"messages":[{"role":"user","content":[{"type":"text","text":["alice@example.com"]}]}]}"#,
                "messages[0].content[0].text: expected a string, found array",
            ),
            (
                r#"{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":{"a":"alice@example.com"}}]}]}"#,
                "messages[0].content[0].content: expected a string or an array of blocks",
            ),
            (
                r#"{"messages":[{"role":"user","content":[{"type":"tool_result","content":[{"type":"text","text":1}]}]}]}"#,
                "messages[0].content[0].content[0].text: expected a string, found number",
            ),
        ] {
            let msg = shape_err(KIND, body);
            assert!(msg.starts_with(want), "{msg:?} should start with {want:?}");
            assert!(!msg.contains("alice"));
        }
    }

    #[test]
    fn anchor_is_system_and_first_user() {
        let v = parse_body(BODY.as_bytes()).unwrap();
        assert_eq!(
            conversation_anchor(KIND, &v).unwrap(),
            "PII-SYS You help Kim Minsu (minsu@corp.kr).\u{0}PII-USER my RRN is 900101-1234567"
        );
        let v = parse_body(br#"{"messages":[]}"#).unwrap();
        assert_eq!(conversation_anchor(KIND, &v), None);
    }
}
