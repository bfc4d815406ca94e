//! OpenAI Chat Completions (`POST .../chat/completions`) request bodies.
//!
//! Visited, per message in order: `content` (a string, or the `text` of every part that has a
//! string `text`, and the `refusal` of `refusal` parts), `name`, `refusal`,
//! `tool_calls[].function.arguments` (JSON held in a string: its string leaves), the
//! `tool_calls[].custom.input` of custom tools, and the legacy `function_call.arguments`. Then
//! `prediction.content` (predicted output, string or text parts).
//!
//! Left alone: image, audio and file parts, tool and function names, ids, tool definitions,
//! `response_format`, `metadata`, `user`, `web_search_options` and every other field.
//!
//! Shape checks: `messages` must be an array of objects; `content` a string, array or null;
//! parts objects; a `text` part's `text` a string; `tool_calls` an array of objects.

use super::{content_text, visit_opt_json_str, visit_opt_str, ApiError, JsonPath, Obj};
use serde_json::Value;

pub(crate) fn visit(obj: &mut Obj, f: &mut dyn FnMut(&mut String)) -> Result<(), ApiError> {
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
        visit_opt_str(msg, "name", &path, f)?;
        visit_opt_str(msg, "refusal", &path, f)?;
        visit_tool_calls(msg, &path, f)?;
        match msg.get_mut("function_call") {
            None | Some(Value::Null) => {}
            Some(Value::Object(fc)) => {
                visit_opt_json_str(fc, "arguments", &path.key("function_call"), f)?
            }
            Some(other) => return Err(path.key("function_call").shape("an object", other)),
        }
    }
    let pred_path = JsonPath::root("prediction");
    match obj.get_mut("prediction") {
        None | Some(Value::Null) => {}
        Some(Value::Object(p)) => visit_content(p, "content", &pred_path, f)?,
        Some(other) => return Err(pred_path.shape("an object", other)),
    }
    Ok(())
}

/// `obj[key]`: a string, an array of content parts, or null.
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
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter_mut().enumerate() {
                let ppath = path.index(j);
                let Value::Object(part) = part else {
                    return Err(ppath.shape("an object", part));
                };
                let ty = part.get("type").and_then(Value::as_str);
                let (is_text, is_refusal) = (ty == Some("text"), ty == Some("refusal"));
                if is_text && !matches!(part.get("text"), Some(Value::String(_))) {
                    let found = part.get("text").unwrap_or(&Value::Null);
                    return Err(ppath.key("text").shape("a string", found));
                }
                if let Some(Value::String(s)) = part.get_mut("text") {
                    f(s);
                }
                if is_refusal {
                    visit_opt_str(part, "refusal", &ppath, f)?;
                }
            }
            Ok(())
        }
        Some(other) => Err(path.shape("a string, an array of parts or null", other)),
    }
}

fn visit_tool_calls(
    msg: &mut Obj,
    parent: &JsonPath<'_>,
    f: &mut dyn FnMut(&mut String),
) -> Result<(), ApiError> {
    let path = parent.key("tool_calls");
    let calls = match msg.get_mut("tool_calls") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(c)) => c,
        Some(other) => return Err(path.shape("an array", other)),
    };
    for (k, call) in calls.iter_mut().enumerate() {
        let cpath = path.index(k);
        let Value::Object(call) = call else {
            return Err(cpath.shape("an object", call));
        };
        match call.get_mut("function") {
            None | Some(Value::Null) => {}
            Some(Value::Object(func)) => {
                visit_opt_json_str(func, "arguments", &cpath.key("function"), f)?
            }
            Some(other) => return Err(cpath.key("function").shape("an object", other)),
        }
        match call.get_mut("custom") {
            None | Some(Value::Null) => {}
            Some(Value::Object(custom)) => visit_opt_str(custom, "input", &cpath.key("custom"), f)?,
            Some(other) => return Err(cpath.key("custom").shape("an object", other)),
        }
    }
    Ok(())
}

/// (first system/developer text, first user text) for the conversation anchor.
pub(crate) fn anchor_parts(body: &Value) -> (Option<String>, Option<String>) {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return (None, None);
    };
    let first = |roles: &[&str]| {
        messages
            .iter()
            .find(|m| {
                m.get("role")
                    .and_then(Value::as_str)
                    .is_some_and(|r| roles.contains(&r))
            })
            .and_then(|m| m.get("content"))
            .and_then(content_text)
    };
    (first(&["system", "developer"]), first(&["user"]))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{conversation_anchor, ApiKind};

    const KIND: ApiKind = ApiKind::OpenAiChat;

    /// A realistic body with PII planted in every text-bearing field, and many fields that
    /// must not change.
    const BODY: &str = r#"{
      "model": "gpt-4o-2024-08-06",
      "messages": [
        {"role": "developer", "content": "You help PII-DEV Kim Minsu (minsu@corp.kr)."},
        {"role": "system", "content": [{"type": "text", "text": "PII-SYS call 010-1234-5678"}]},
        {"role": "user", "name": "PII-NAME alice_smith", "content": [
          {"type": "text", "text": "PII-USER1 my email is alice@example.com"},
          {"type": "image_url", "image_url": {"url": "https://example.com/alice.png", "detail": "high"}},
          {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
          {"type": "file", "file": {"filename": "alice.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}
        ]},
        {"role": "assistant", "content": null, "refusal": "PII-REFUSAL cannot share Bob's SSN",
         "tool_calls": [
          {"id": "call_abc", "type": "function", "function": {"name": "send_email",
            "arguments": "{\"to\": \"PII-ARG bob@example.com\", \"cc\": [\"PII-ARG2 carol@example.com\"], \"priority\": 1.50, \"meta\": {\"note\": \"PII-ARG3\"}}"}},
          {"id": "call_def", "type": "function", "function": {"name": "lookup", "arguments": "PII-ARGRAW not json 900101-1234567"}},
          {"id": "call_ghi", "type": "custom", "custom": {"name": "shell", "input": "PII-CUSTOM grep dave@example.com"}}
        ]},
        {"role": "tool", "tool_call_id": "call_abc", "content": "PII-TOOL sent to bob@example.com"},
        {"role": "tool", "tool_call_id": "call_def", "content": [{"type": "text", "text": "PII-TOOLPART 900101-1234567"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "PII-ASSIST done"}, {"type": "refusal", "refusal": "PII-REFPART no"}],
         "function_call": {"name": "legacy", "arguments": "{\"who\": \"PII-LEGACY eve@example.com\"}"}},
        {"role": "function", "name": "PII-FNNAME legacy", "content": "PII-FNRESULT ok"}
      ],
      "prediction": {"type": "content", "content": "PII-PRED alice@example.com"},
      "temperature": 0.7000,
      "top_p": 1.0e0,
      "seed": 12345678901234567890,
      "max_completion_tokens": 1024,
      "stream": true,
      "stream_options": {"include_usage": true},
      "user": "user-123",
      "metadata": {"team": "ml", "note": "not visited"},
      "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"a": {"type": "string", "description": "keep"}}}}},
      "tools": [{"type": "function", "function": {"name": "send_email", "description": "Send an email", "parameters": {"type": "object"}}}],
      "logit_bias": {"50256": -100},
      "x_unknown": {"deep": [1, 2.5e10, "ü한국어\u0000", {"k": null}]}
    }"#;

    #[test]
    fn identity_visit_keeps_body() {
        assert_identity(KIND, BODY);
    }

    #[test]
    fn exactly_the_text_fields_change() {
        let original = parse(BODY);
        let (seen, after) = tag_all(KIND, BODY);
        // Every visited string carries a planted marker, and every marker is visited.
        for s in &seen {
            assert!(s.contains("PII-"), "visited a non-text field: {s:?}");
        }
        let planted = BODY.matches("PII-").count();
        let visited: usize = seen.iter().map(|s| s.matches("PII-").count()).sum();
        assert_eq!(visited, planted);
        assert_eq!(
            changed_paths(&original, &after),
            [
                ".messages[0].content",
                ".messages[1].content[0].text",
                ".messages[2].name",
                ".messages[2].content[0].text",
                ".messages[3].refusal",
                ".messages[3].tool_calls[0].function.arguments",
                ".messages[3].tool_calls[1].function.arguments",
                ".messages[3].tool_calls[2].custom.input",
                ".messages[4].content",
                ".messages[5].content[0].text",
                ".messages[6].content[0].text",
                ".messages[6].content[1].refusal",
                ".messages[6].function_call.arguments",
                ".messages[7].name",
                ".messages[7].content",
                ".prediction.content",
            ]
        );
        // Arguments: leaves rewritten, re-serialised compactly, numbers kept as spelled.
        assert_eq!(
            after["messages"][3]["tool_calls"][0]["function"]["arguments"],
            r#"{"to":"<<PII-ARG bob@example.com>>","cc":["<<PII-ARG2 carol@example.com>>"],"priority":1.50,"meta":{"note":"<<PII-ARG3>>"}}"#
        );
        assert_eq!(
            after["messages"][3]["tool_calls"][1]["function"]["arguments"],
            "<<PII-ARGRAW not json 900101-1234567>>"
        );
    }

    #[test]
    fn visit_order_is_stable_for_two_passes() {
        let (first, _) = run(KIND, BODY, &mut |_| {});
        let (second, _) = run(KIND, BODY, &mut |s: &mut String| s.make_ascii_uppercase());
        assert_eq!(first, second);
    }

    #[test]
    fn shape_errors_name_the_path() {
        let cases = [
            (r#"{"model":"m"}"#, "messages: missing"),
            (
                r#"{"messages":{"role":"user"}}"#,
                "messages: expected an array",
            ),
            (
                r#"{"messages":["alice@example.com"]}"#,
                "messages[0]: expected an object",
            ),
            (
                r#"{"messages":[{"role":"user","content":"ok"},{"role":"user","content":"a"},{"role":"user","content":42}]}"#,
                "messages[2].content: expected a string, an array of parts or null, found number",
            ),
            (
                r#"{"messages":[{"role":"user","content":["alice@example.com"]}]}"#,
                "messages[0].content[0]: expected an object, found string",
            ),
            (
                r#"{"messages":[{"role":"user","content":[{"type":"text","text":{"x":"alice@example.com"}}]}]}"#,
                "messages[0].content[0].text: expected a string",
            ),
            (
                r#"{"messages":[{"role":"assistant","tool_calls":{"a":1}}]}"#,
                "messages[0].tool_calls: expected an array",
            ),
            (
                r#"{"messages":[{"role":"assistant","tool_calls":[{"function":{"arguments":{"to":"alice@example.com"}}}]}]}"#,
                "messages[0].tool_calls[0].function.arguments: expected a string, found object",
            ),
            (
                r#"{"messages":[{"role":"user","name":7}]}"#,
                "messages[0].name: expected a string",
            ),
            (
                r#"{"messages":[],"prediction":"alice@example.com"}"#,
                "prediction: expected an object",
            ),
        ];
        for (body, want) in cases {
            let msg = shape_err(KIND, body);
            assert!(msg.starts_with(want), "{msg:?} should start with {want:?}");
            assert!(!msg.contains("alice"), "{msg}");
        }
    }

    #[test]
    fn anchor_is_first_system_and_first_user() {
        let v = parse(BODY);
        assert_eq!(
            conversation_anchor(KIND, &v).unwrap(),
            "You help PII-DEV Kim Minsu (minsu@corp.kr).\u{0}PII-USER1 my email is alice@example.com"
        );
        let only_user = parse(r#"{"messages":[{"role":"user","content":"hi"}]}"#);
        assert_eq!(conversation_anchor(KIND, &only_user).unwrap(), "\u{0}hi");
        let none = parse(r#"{"messages":[{"role":"assistant","content":"hi"}]}"#);
        assert_eq!(conversation_anchor(KIND, &none), None);
    }

    fn parse(s: &str) -> serde_json::Value {
        super::super::parse_body(s.as_bytes()).unwrap()
    }
}
