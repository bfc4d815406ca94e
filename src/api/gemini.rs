//! Gemini (`generativelanguage` / Vertex AI) request bodies: `:generateContent`,
//! `:streamGenerateContent`, `:countTokens`, `:embedContent`, `:batchEmbedContents`; and
//! Google's error shape.
//!
//! Visited, in `systemInstruction` (also spelled `system_instruction`) then each of
//! `contents[]`: every part's `text` (thought parts included), every string leaf of
//! `functionCall.args` and `functionResponse.response` (values, not keys),
//! `executableCode.code` and `codeExecutionResult.output`. Proto field names in snake case
//! (`function_call`, ...) are accepted as well, as the REST API does. `:countTokens` visits
//! `contents` and `generateContentRequest`; the embedding methods visit `content` and `title`
//! (per request for the batch).
//!
//! Left alone: `inlineData`, `fileData`, `thoughtSignature`, function names, `tools`,
//! `toolConfig`, `generationConfig` (schemas included), `safetySettings`, `cachedContent`,
//! `labels`, unknown fields.
//!
//! Shape checks: `contents` (required for generation) must be an array of objects, `parts`
//! arrays of objects, `text` a string, function call/response payloads objects.

use super::{content_text, visit_opt_str, visit_string_leaves, ApiError, ApiKind, JsonPath, Obj};
use http::StatusCode;
use serde_json::Value;

/// Path of `key` under an optional parent.
fn child<'a>(parent: Option<&'a JsonPath<'a>>, key: &'static str) -> JsonPath<'a> {
    match parent {
        Some(p) => p.key(key),
        None => JsonPath::root(key),
    }
}

pub(crate) fn visit_generate(
    obj: &mut Obj,
    f: &mut dyn FnMut(&mut String),
) -> Result<(), ApiError> {
    visit_request(obj, None, true, f)
}

pub(crate) fn visit_count_tokens(
    obj: &mut Obj,
    f: &mut dyn FnMut(&mut String),
) -> Result<(), ApiError> {
    visit_request(obj, None, false, f)?;
    for key in ["generateContentRequest", "generate_content_request"] {
        let path = JsonPath::root(key);
        match obj.get_mut(key) {
            None | Some(Value::Null) => {}
            Some(Value::Object(req)) => visit_request(req, Some(&path), false, f)?,
            Some(other) => return Err(path.shape("an object", other)),
        }
    }
    Ok(())
}

pub(crate) fn visit_embed(obj: &mut Obj, f: &mut dyn FnMut(&mut String)) -> Result<(), ApiError> {
    visit_embed_request(obj, None, f)
}

pub(crate) fn visit_batch_embed(
    obj: &mut Obj,
    f: &mut dyn FnMut(&mut String),
) -> Result<(), ApiError> {
    let root = JsonPath::root("requests");
    let requests = match obj.get_mut("requests") {
        Some(Value::Array(r)) => r,
        Some(other) => return Err(root.shape("an array", other)),
        None => return Err(root.missing()),
    };
    for (i, req) in requests.iter_mut().enumerate() {
        let path = root.index(i);
        let Value::Object(req) = req else {
            return Err(path.shape("an object", req));
        };
        visit_embed_request(req, Some(&path), f)?;
    }
    Ok(())
}

fn visit_embed_request(
    obj: &mut Obj,
    parent: Option<&JsonPath<'_>>,
    f: &mut dyn FnMut(&mut String),
) -> Result<(), ApiError> {
    let cpath = child(parent, "content");
    match obj.get_mut("content") {
        Some(Value::Object(content)) => visit_content(content, &cpath, f)?,
        Some(other) => return Err(cpath.shape("an object", other)),
        None => return Err(cpath.missing()),
    }
    match obj.get_mut("title") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) => {
            f(s);
            Ok(())
        }
        Some(other) => Err(child(parent, "title").shape("a string", other)),
    }
}

/// A GenerateContentRequest: system instruction, then contents.
fn visit_request(
    obj: &mut Obj,
    parent: Option<&JsonPath<'_>>,
    contents_required: bool,
    f: &mut dyn FnMut(&mut String),
) -> Result<(), ApiError> {
    for key in ["systemInstruction", "system_instruction"] {
        let path = child(parent, key);
        match obj.get_mut(key) {
            None | Some(Value::Null) => {}
            Some(Value::Object(content)) => visit_content(content, &path, f)?,
            Some(other) => return Err(path.shape("an object", other)),
        }
    }
    let root = child(parent, "contents");
    let contents = match obj.get_mut("contents") {
        Some(Value::Array(c)) => c,
        None | Some(Value::Null) if !contents_required => return Ok(()),
        Some(other) => return Err(root.shape("an array", other)),
        None => return Err(root.missing()),
    };
    for (i, content) in contents.iter_mut().enumerate() {
        let path = root.index(i);
        let Value::Object(content) = content else {
            return Err(path.shape("an object", content));
        };
        visit_content(content, &path, f)?;
    }
    Ok(())
}

/// A Content: `{role, parts: [Part]}`.
fn visit_content(
    content: &mut Obj,
    path: &JsonPath<'_>,
    f: &mut dyn FnMut(&mut String),
) -> Result<(), ApiError> {
    let ppath = path.key("parts");
    let parts = match content.get_mut("parts") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(p)) => p,
        Some(other) => return Err(ppath.shape("an array", other)),
    };
    for (j, part) in parts.iter_mut().enumerate() {
        let path = ppath.index(j);
        let Value::Object(part) = part else {
            return Err(path.shape("an object", part));
        };
        visit_opt_str(part, "text", &path, f)?;
        for (key, field) in [
            ("functionCall", "args"),
            ("function_call", "args"),
            ("functionResponse", "response"),
            ("function_response", "response"),
        ] {
            let kpath = path.key(key);
            match part.get_mut(key) {
                None | Some(Value::Null) => {}
                Some(Value::Object(call)) => match call.get_mut(field) {
                    None | Some(Value::Null) => {}
                    Some(v @ Value::Object(_)) => visit_string_leaves(v, f),
                    Some(other) => return Err(kpath.key(field).shape("an object", other)),
                },
                Some(other) => return Err(kpath.shape("an object", other)),
            }
        }
        for (key, field) in [
            ("executableCode", "code"),
            ("executable_code", "code"),
            ("codeExecutionResult", "output"),
            ("code_execution_result", "output"),
        ] {
            let kpath = path.key(key);
            match part.get_mut(key) {
                None | Some(Value::Null) => {}
                Some(Value::Object(inner)) => visit_opt_str(inner, field, &kpath, f)?,
                Some(other) => return Err(kpath.shape("an object", other)),
            }
        }
    }
    Ok(())
}

/// The text of a Content's parts, joined by newlines.
fn parts_text(content: &Value) -> Option<String> {
    content_text(content.get("parts")?)
}

/// (system instruction text, first user content text); for embeddings, the first content.
pub(crate) fn anchor_parts(kind: ApiKind, body: &Value) -> (Option<String>, Option<String>) {
    match kind {
        ApiKind::GeminiEmbedContent => (None, body.get("content").and_then(parts_text)),
        ApiKind::GeminiBatchEmbedContents => (
            None,
            body.get("requests")
                .and_then(Value::as_array)
                .and_then(|r| r.first())
                .and_then(|r| r.get("content"))
                .and_then(parts_text),
        ),
        _ => {
            let req = match body.get("contents") {
                None => body.get("generateContentRequest").unwrap_or(body),
                Some(_) => body,
            };
            let system = req
                .get("systemInstruction")
                .or_else(|| req.get("system_instruction"))
                .and_then(parts_text);
            let user = req
                .get("contents")
                .and_then(Value::as_array)
                .and_then(|c| {
                    c.iter().find(|c| match c.get("role") {
                        None | Some(Value::Null) => true,
                        Some(r) => r.as_str() == Some("user"),
                    })
                })
                .and_then(parts_text);
            (system, user)
        }
    }
}

/// `{"error":{"code","message","status","details":[ErrorInfo]}}` (google.rpc.Status).
pub(crate) fn error_value(status: StatusCode, code: &str, message: &str) -> Value {
    let rpc = match status.as_u16() {
        400 | 411 | 413 | 414 | 415 | 422 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        400..=499 => "FAILED_PRECONDITION",
        501 => "UNIMPLEMENTED",
        502 | 503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    };
    serde_json::json!({
        "error": {
            "code": status.as_u16(),
            "message": message,
            "status": rpc,
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": code,
                "domain": "garim",
            }],
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{conversation_anchor, parse_body, ApiKind};

    const KIND: ApiKind = ApiKind::GeminiGenerate;

    const BODY: &str = r#"{
      "systemInstruction": {"parts": [{"text": "PII-SYS You help Kim Minsu, minsu@corp.kr"}]},
      "contents": [
        {"role": "user", "parts": [
          {"text": "PII-USER my phone is 010-1234-5678"},
          {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}},
          {"fileData": {"mimeType": "application/pdf", "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}}
        ]},
        {"role": "model", "parts": [
          {"text": "PII-THOUGHT thinking about alice", "thought": true},
          {"functionCall": {"name": "find_contact", "args": {"email": "PII-ARG1 alice@example.com", "max": 3, "opts": {"city": "PII-ARG2 Busan", "list": ["PII-ARG3"]}}}, "thoughtSignature": "CiQBVKhc7v=="},
          {"executableCode": {"language": "PYTHON", "code": "PII-CODE print('alice@example.com')"}},
          {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "PII-CODEOUT alice@example.com"}}
        ]},
        {"role": "user", "parts": [
          {"functionResponse": {"name": "find_contact", "response": {"result": {"phone": "PII-RESP1 010-9999-8888", "ok": true}, "names": ["PII-RESP2 Alice Kim"]}}},
          {"function_response": {"name": "legacy", "response": {"note": "PII-RESP3 snake"}}}
        ]}
      ],
      "tools": [{"functionDeclarations": [{"name": "find_contact", "description": "Find a contact", "parameters": {"type": "OBJECT", "properties": {"email": {"type": "STRING"}}}}]}],
      "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
      "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH"}],
      "generationConfig": {"temperature": 0.90, "topP": 1.0e0, "maxOutputTokens": 8192, "responseMimeType": "application/json", "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true}},
      "cachedContent": "cachedContents/abc",
      "x_unknown": {"s": "keep 한국어", "n": 0.1000}
    }"#;

    #[test]
    fn identity_visit_keeps_body() {
        assert_identity(KIND, BODY);
        assert_identity(ApiKind::GeminiStreamGenerate, BODY);
    }

    #[test]
    fn exactly_the_text_fields_change() {
        assert_eq!(
            planted_fields_changed(KIND, BODY),
            [
                ".systemInstruction.parts[0].text",
                ".contents[0].parts[0].text",
                ".contents[1].parts[0].text",
                ".contents[1].parts[1].functionCall.args.email",
                ".contents[1].parts[1].functionCall.args.opts.city",
                ".contents[1].parts[1].functionCall.args.opts.list[0]",
                ".contents[1].parts[2].executableCode.code",
                ".contents[1].parts[3].codeExecutionResult.output",
                ".contents[2].parts[0].functionResponse.response.result.phone",
                ".contents[2].parts[0].functionResponse.response.names[0]",
                ".contents[2].parts[1].function_response.response.note",
            ]
        );
    }

    #[test]
    fn snake_case_system_instruction() {
        let body = r#"{"system_instruction":{"parts":[{"text":"PII-S be kind to Alice"}]},"contents":[{"parts":[{"text":"PII-U hi"}]}]}"#;
        let (seen, _) = tag_all(KIND, body);
        assert_eq!(seen, ["PII-S be kind to Alice", "PII-U hi"]);
        let v = parse_body(body.as_bytes()).unwrap();
        assert_eq!(
            conversation_anchor(KIND, &v).unwrap(),
            "PII-S be kind to Alice\u{0}PII-U hi"
        );
    }

    #[test]
    fn count_tokens_and_embeddings() {
        let body = r#"{"generateContentRequest":{"model":"models/gemini-2.0-flash","systemInstruction":{"parts":[{"text":"PII-A"}]},"contents":[{"role":"user","parts":[{"text":"PII-B"}]}]}}"#;
        assert_identity(ApiKind::GeminiCountTokens, body);
        let (seen, _) = tag_all(ApiKind::GeminiCountTokens, body);
        assert_eq!(seen, ["PII-A", "PII-B"]);
        let v = parse_body(body.as_bytes()).unwrap();
        assert_eq!(
            conversation_anchor(ApiKind::GeminiCountTokens, &v).unwrap(),
            "PII-A\u{0}PII-B"
        );
        let body = r#"{"contents":[{"parts":[{"text":"PII-C"}]}]}"#;
        let (seen, _) = tag_all(ApiKind::GeminiCountTokens, body);
        assert_eq!(seen, ["PII-C"]);

        let body = r#"{"model":"models/text-embedding-004","content":{"parts":[{"text":"PII-E alice@example.com"}]},"taskType":"RETRIEVAL_DOCUMENT","title":"PII-T Alice's CV","outputDimensionality":256}"#;
        assert_identity(ApiKind::GeminiEmbedContent, body);
        let (seen, _) = tag_all(ApiKind::GeminiEmbedContent, body);
        assert_eq!(seen, ["PII-E alice@example.com", "PII-T Alice's CV"]);
        let v = parse_body(body.as_bytes()).unwrap();
        assert_eq!(
            conversation_anchor(ApiKind::GeminiEmbedContent, &v).unwrap(),
            "\u{0}PII-E alice@example.com"
        );

        let body = r#"{"requests":[{"model":"models/text-embedding-004","content":{"parts":[{"text":"PII-1"}]}},{"model":"models/text-embedding-004","content":{"parts":[{"text":"PII-2"},{"text":"PII-3"}]},"title":"PII-4"}]}"#;
        assert_identity(ApiKind::GeminiBatchEmbedContents, body);
        let (seen, _) = tag_all(ApiKind::GeminiBatchEmbedContents, body);
        assert_eq!(seen, ["PII-1", "PII-2", "PII-3", "PII-4"]);
    }

    #[test]
    fn shape_errors_name_the_path() {
        for (kind, body, want) in [
            (KIND, r#"{"generationConfig":{}}"#, "contents: missing"),
            (
                KIND,
                r#"{"contents":{"parts":[]}}"#,
                "contents: expected an array, found object",
            ),
            (
                KIND,
                r#"{"contents":["alice@example.com"]}"#,
                "contents[0]: expected an object",
            ),
            (
                KIND,
                r#"{"contents":[{"parts":[{"text":"a"}]},{"parts":{"text":"alice@example.com"}}]}"#,
                "contents[1].parts: expected an array, found object",
            ),
            (
                KIND,
                r#"{"contents":[{"parts":[{"text":["alice@example.com"]}]}]}"#,
                "contents[0].parts[0].text: expected a string, found array",
            ),
            (
                KIND,
                r#"{"contents":[{"parts":[{"functionCall":{"name":"f","args":"alice@example.com"}}]}]}"#,
                "contents[0].parts[0].functionCall.args: expected an object, found string",
            ),
            (
                KIND,
                r#"{"systemInstruction":"alice@example.com","contents":[]}"#,
                "systemInstruction: expected an object, found string",
            ),
            (
                ApiKind::GeminiCountTokens,
                r#"{"generateContentRequest":{"contents":[{"parts":[{"text":1}]}]}}"#,
                "generateContentRequest.contents[0].parts[0].text: expected a string",
            ),
            (
                ApiKind::GeminiEmbedContent,
                r#"{"model":"m"}"#,
                "content: missing",
            ),
            (
                ApiKind::GeminiBatchEmbedContents,
                r#"{"requests":[{"content":{"parts":[]},"title":5}]}"#,
                "requests[0].title: expected a string, found number",
            ),
        ] {
            let msg = shape_err(kind, body);
            assert!(msg.starts_with(want), "{msg:?} should start with {want:?}");
            assert!(!msg.contains("alice"));
        }
    }

    #[test]
    fn anchor_skips_model_turns() {
        let body = r#"{"contents":[{"role":"model","parts":[{"text":"hello"}]},{"role":"user","parts":[{"text":"a"},{"text":"b"}]}]}"#;
        let v = parse_body(body.as_bytes()).unwrap();
        assert_eq!(conversation_anchor(KIND, &v).unwrap(), "\u{0}a\nb");
        let v = parse_body(br#"{"contents":[]}"#).unwrap();
        assert_eq!(conversation_anchor(KIND, &v), None);
    }
}
