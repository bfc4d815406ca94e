//! OpenAI Responses (`POST .../responses`) request bodies.
//!
//! Visited: `instructions` (a string, or a list of input items), `input` (a string, or a list
//! of items), and `prompt.variables` values (strings, or parts with `text`). Items, by `type`
//! (a bare `{role, content}` is a message):
//! * `message`: `content` string, or every part's string `text` (`input_text`,
//!   `output_text`) and `refusal` parts' `refusal`;
//! * `function_call`: `arguments` (JSON in a string: its string leaves);
//! * `function_call_output`, `custom_tool_call_output`: `output`, string or parts;
//! * `custom_tool_call`: `input`;
//! * `reasoning`: the `text` of `summary` and `content` parts (`encrypted_content` is opaque);
//! * `mcp_call` (`arguments`, `output`), `mcp_approval_request` (`arguments`);
//! * `local_shell_call_output`: `output`;
//! * `file_search_call`: `queries[]` and `results[].text`; `web_search_call`: `action.query`.
//!
//! Left alone: images, files, audio, computer-use screenshots, shell commands and patches,
//! annotations, ids, tools, `text.format` schemas, `metadata`, `user`, unknown item types.
//!
//! Limit: with `previous_response_id` the input holds only the new turn, so the anchor text
//! changes each turn; the `conversation` id, when given, is used as anchor instead.

use super::{content_text, visit_opt_json_str, visit_opt_str, ApiError, JsonPath, Obj};
use serde_json::Value;

pub(crate) fn visit(obj: &mut Obj, f: &mut dyn FnMut(&mut String)) -> Result<(), ApiError> {
    for key in ["instructions", "input"] {
        let path = JsonPath::root(key);
        match obj.get_mut(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => f(s),
            Some(Value::Array(items)) => visit_items(items, &path, f)?,
            Some(other) => return Err(path.shape("a string or an array of items", other)),
        }
    }
    let ppath = JsonPath::root("prompt");
    match obj.get_mut("prompt") {
        None | Some(Value::Null) => {}
        Some(Value::Object(prompt)) => {
            let vpath = ppath.key("variables");
            match prompt.get_mut("variables") {
                None | Some(Value::Null) => {}
                Some(Value::Object(vars)) => {
                    for var in vars.values_mut() {
                        match var {
                            Value::String(s) => f(s),
                            Value::Object(part) => {
                                if let Some(Value::String(s)) = part.get_mut("text") {
                                    f(s);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                Some(other) => return Err(vpath.shape("an object", other)),
            }
        }
        Some(other) => return Err(ppath.shape("an object", other)),
    }
    Ok(())
}

fn visit_items(
    items: &mut [Value],
    path: &JsonPath<'_>,
    f: &mut dyn FnMut(&mut String),
) -> Result<(), ApiError> {
    for (i, item) in items.iter_mut().enumerate() {
        let ipath = path.index(i);
        let Value::Object(item) = item else {
            return Err(ipath.shape("an object", item));
        };
        let ty = match item.get("type") {
            Some(Value::String(t)) => t.clone(),
            None | Some(Value::Null) if item.contains_key("role") => "message".to_owned(),
            None | Some(Value::Null) => String::new(),
            Some(other) => return Err(ipath.key("type").shape("a string", other)),
        };
        match ty.as_str() {
            "message" => match item.get_mut("content") {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => f(s),
                Some(Value::Array(parts)) => visit_parts(parts, &ipath.key("content"), f)?,
                Some(other) => {
                    return Err(ipath
                        .key("content")
                        .shape("a string or an array of parts", other))
                }
            },
            "function_call" => visit_opt_json_str(item, "arguments", &ipath, f)?,
            "function_call_output" | "custom_tool_call_output" => match item.get_mut("output") {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => f(s),
                Some(Value::Array(parts)) => visit_parts(parts, &ipath.key("output"), f)?,
                Some(other) => {
                    return Err(ipath
                        .key("output")
                        .shape("a string or an array of parts", other))
                }
            },
            "custom_tool_call" => visit_opt_str(item, "input", &ipath, f)?,
            "reasoning" => {
                for key in ["summary", "content"] {
                    match item.get_mut(key) {
                        None | Some(Value::Null) => {}
                        Some(Value::Array(parts)) => visit_parts(parts, &ipath.key(key), f)?,
                        Some(other) => return Err(ipath.key(key).shape("an array", other)),
                    }
                }
            }
            "mcp_call" => {
                visit_opt_json_str(item, "arguments", &ipath, f)?;
                visit_opt_str(item, "output", &ipath, f)?;
            }
            "mcp_approval_request" => visit_opt_json_str(item, "arguments", &ipath, f)?,
            "local_shell_call_output" => visit_opt_str(item, "output", &ipath, f)?,
            "file_search_call" => {
                if let Some(Value::Array(queries)) = item.get_mut("queries") {
                    for q in queries.iter_mut() {
                        if let Value::String(s) = q {
                            f(s);
                        }
                    }
                }
                if let Some(Value::Array(results)) = item.get_mut("results") {
                    for r in results.iter_mut() {
                        if let Some(Value::String(s)) = r.get_mut("text") {
                            f(s);
                        }
                    }
                }
            }
            "web_search_call" => {
                if let Some(Value::Object(action)) = item.get_mut("action") {
                    if let Some(Value::String(s)) = action.get_mut("query") {
                        f(s);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Content parts: any part's string `text`; `refusal` parts' `refusal`. Text-typed parts must
/// have a string `text`.
fn visit_parts(
    parts: &mut [Value],
    path: &JsonPath<'_>,
    f: &mut dyn FnMut(&mut String),
) -> Result<(), ApiError> {
    for (j, part) in parts.iter_mut().enumerate() {
        let ppath = path.index(j);
        let Value::Object(part) = part else {
            return Err(ppath.shape("an object", part));
        };
        let ty = part.get("type").and_then(Value::as_str);
        let texty = matches!(
            ty,
            Some("input_text" | "output_text" | "summary_text" | "reasoning_text" | "text")
        );
        let is_refusal = ty == Some("refusal");
        match part.get_mut("text") {
            Some(Value::String(s)) => f(s),
            Some(other) if texty => return Err(ppath.key("text").shape("a string", other)),
            None if texty => return Err(ppath.key("text").missing()),
            _ => {}
        }
        if is_refusal {
            visit_opt_str(part, "refusal", &ppath, f)?;
        }
    }
    Ok(())
}

/// The id of the stored conversation this request continues, if any.
pub(crate) fn conversation_id(body: &Value) -> Option<&str> {
    match body.get("conversation")? {
        Value::String(id) => Some(id.as_str()),
        Value::Object(c) => c.get("id")?.as_str(),
        _ => None,
    }
    .filter(|id| !id.is_empty())
}

/// (instructions or first system/developer text, first user text).
pub(crate) fn anchor_parts(body: &Value) -> (Option<String>, Option<String>) {
    let input = body.get("input");
    let items = input.and_then(Value::as_array);
    let first = |roles: &[&str]| {
        items?
            .iter()
            .find(|m| {
                m.get("role")
                    .and_then(Value::as_str)
                    .is_some_and(|r| roles.contains(&r))
            })
            .and_then(|m| m.get("content"))
            .and_then(content_text)
    };
    let system = match body.get("instructions") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => first(&["system", "developer"]),
    };
    let user = match input {
        Some(Value::String(s)) => Some(s.clone()),
        _ => first(&["user"]),
    };
    (system, user)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{conversation_anchor, parse_body, ApiKind};

    const KIND: ApiKind = ApiKind::OpenAiResponses;

    const BODY: &str = r#"{
      "model": "gpt-5",
      "instructions": "PII-INSTR You assist Kim Minsu, 010-1234-5678.",
      "input": [
        {"role": "developer", "content": "PII-DEV internal note"},
        {"role": "user", "content": "PII-EASY my card is 4111 1111 1111 1111"},
        {"type": "message", "role": "user", "content": [
          {"type": "input_text", "text": "PII-INTEXT alice@example.com"},
          {"type": "input_image", "image_url": "https://example.com/alice.png", "detail": "auto"},
          {"type": "input_file", "filename": "alice.pdf", "file_data": "JVBERi0="}
        ]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "PII-SUMMARY user is alice"}],
         "encrypted_content": "gAAAAABo-opaque"},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed", "content": [
          {"type": "output_text", "text": "PII-OUTTEXT I will email alice@example.com", "annotations": [{"type": "url_citation", "url": "https://x.example", "title": "keep", "start_index": 0, "end_index": 3}]},
          {"type": "refusal", "refusal": "PII-REFUSAL no"}
        ]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "send_email",
         "arguments": "{\"to\":\"PII-ARG alice@example.com\",\"n\":3}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "PII-FCOUT sent to alice@example.com"},
        {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "PII-FCOUTPART bob"}]},
        {"type": "custom_tool_call", "call_id": "call_3", "name": "sql", "input": "PII-CUSTOM select * where email='bob@example.com'"},
        {"type": "custom_tool_call_output", "call_id": "call_3", "output": "PII-CUSTOMOUT 1 row"},
        {"type": "mcp_call", "id": "mcp_1", "server_label": "crm", "name": "find", "arguments": "{\"q\":\"PII-MCPARG carol\"}", "output": "PII-MCPOUT carol@example.com"},
        {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": ["PII-FSQ carol"], "results": [{"file_id": "f_1", "text": "PII-FSRES carol's file", "score": 0.9}]},
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "PII-WSQ carol lee seoul"}},
        {"type": "local_shell_call_output", "call_id": "ls_1", "output": "PII-SHELLOUT /home/carol"},
        {"type": "item_reference", "id": "msg_0"},
        {"type": "computer_call_output", "call_id": "cc_1", "output": {"type": "computer_screenshot", "image_url": "data:image/png;base64,AAA="}}
      ],
      "prompt": {"id": "pmpt_1", "version": "2", "variables": {"customer": "PII-VAR Dave Jones", "doc": {"type": "input_text", "text": "PII-VARPART dave@example.com"}, "pic": {"type": "input_image", "image_url": "https://x"}}},
      "previous_response_id": null,
      "reasoning": {"effort": "low", "summary": "auto"},
      "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": true}},
      "tools": [{"type": "function", "name": "send_email", "description": "keep", "parameters": {"type": "object"}}],
      "temperature": 1.0,
      "max_output_tokens": 2048,
      "store": false,
      "stream": true,
      "metadata": {"k": "v"},
      "x_future": {"n": 0.1000, "s": "keep ü"}
    }"#;

    #[test]
    fn identity_visit_keeps_body() {
        assert_identity(KIND, BODY);
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
                ".instructions",
                ".input[0].content",
                ".input[1].content",
                ".input[2].content[0].text",
                ".input[3].summary[0].text",
                ".input[4].content[0].text",
                ".input[4].content[1].refusal",
                ".input[5].arguments",
                ".input[6].output",
                ".input[7].output[0].text",
                ".input[8].input",
                ".input[9].output",
                ".input[10].arguments",
                ".input[10].output",
                ".input[11].queries[0]",
                ".input[11].results[0].text",
                ".input[12].action.query",
                ".input[13].output",
                ".prompt.variables.customer",
                ".prompt.variables.doc.text",
            ]
        );
        assert_eq!(
            after["input"][5]["arguments"],
            r#"{"to":"<<PII-ARG alice@example.com>>","n":3}"#
        );
    }

    #[test]
    fn string_input_and_visit_order() {
        let body = r#"{"model":"gpt-4.1","input":"PII my phone is 010-1111-2222","instructions":"be brief"}"#;
        let (seen, after) = tag_all(KIND, body);
        assert_eq!(seen, ["be brief", "PII my phone is 010-1111-2222"]);
        assert_eq!(after["input"], "<<PII my phone is 010-1111-2222>>");
        let (a, _) = run(KIND, BODY, &mut |_| {});
        let (b, _) = run(KIND, BODY, &mut |s: &mut String| s.push('x'));
        assert_eq!(a, b);
    }

    #[test]
    fn shape_errors_name_the_path() {
        let cases = [
            (
                r#"{"input": 5}"#,
                "input: expected a string or an array of items, found number",
            ),
            (
                r#"{"instructions": {"a": 1}}"#,
                "instructions: expected a string or an array",
            ),
            (
                r#"{"input": ["alice@example.com"]}"#,
                "input[0]: expected an object, found string",
            ),
            (
                r#"{"input": [{"role":"user","content":"ok"},{"role":"user","content":7}]}"#,
                "input[1].content: expected a string or an array of parts",
            ),
            (
                r#"{"input": [{"role":"user","content":[{"type":"input_text","text":["alice@example.com"]}]}]}"#,
                "input[0].content[0].text: expected a string, found array",
            ),
            (
                r#"{"input": [{"type":"function_call","arguments":{"to":"alice@example.com"}}]}"#,
                "input[0].arguments: expected a string, found object",
            ),
            (
                r#"{"input": [{"type":"function_call_output","output":1}]}"#,
                "input[0].output: expected a string or an array of parts",
            ),
            (
                r#"{"prompt": "alice@example.com"}"#,
                "prompt: expected an object",
            ),
        ];
        for (body, want) in cases {
            let msg = shape_err(KIND, body);
            assert!(msg.starts_with(want), "{msg:?} should start with {want:?}");
            assert!(!msg.contains("alice"), "{msg}");
        }
        // No input at all is valid (e.g. a stored prompt).
        let (seen, _) = run(KIND, r#"{"model":"m","prompt":{"id":"p"}}"#, &mut |_| {});
        assert!(seen.is_empty());
    }

    #[test]
    fn anchor_prefers_conversation_then_instructions_and_user() {
        let v = parse_body(BODY.as_bytes()).unwrap();
        assert_eq!(
            conversation_anchor(KIND, &v).unwrap(),
            "PII-INSTR You assist Kim Minsu, 010-1234-5678.\u{0}PII-EASY my card is 4111 1111 1111 1111"
        );
        let v = parse_body(br#"{"input":"hello"}"#).unwrap();
        assert_eq!(conversation_anchor(KIND, &v).unwrap(), "\u{0}hello");
        let v = parse_body(
            br#"{"conversation":{"id":"conv_123"},"input":[{"role":"developer","content":[{"type":"input_text","text":"sys"}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            conversation_anchor(KIND, &v).unwrap(),
            "conversation:conv_123"
        );
        let v = parse_body(
            br#"{"input":[{"role":"developer","content":[{"type":"input_text","text":"sys"}]}]}"#,
        )
        .unwrap();
        assert_eq!(conversation_anchor(KIND, &v).unwrap(), "sys\u{0}");
        let v = parse_body(br#"{"input":[]}"#).unwrap();
        assert_eq!(conversation_anchor(KIND, &v), None);
    }
}
