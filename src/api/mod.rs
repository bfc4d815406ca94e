//! API adapters: one file per LLM API format.
//!
//! What: recognise which API a request is for (from method and upstream-side path), find every
//! text-bearing string in its JSON body and hand each one to a caller-supplied rewriter, and
//! produce the gateway's own errors in that API's error shape.
//!
//! Why: masking must reach every field that carries user or model text, and must leave every
//! other byte of meaning untouched (unknown fields, number spellings, key order), so that the
//! upstream sees exactly what the client sent, minus the sensitive values. The crate enables
//! serde_json's `preserve_order` and `arbitrary_precision`, so a body parsed with
//! [`parse_body`], visited with an identity rewriter and serialised with `serde_json::to_vec`
//! equals the compact serialisation of the original: every digit of every number is kept (no
//! float rounding); only the exponent marker is normalised (`1.0E10` -> `1.0e+10`), string
//! escapes are normalised (`\u00e9` -> `é`), and duplicate keys collapse to the last one.
//!
//! Visiting order is deterministic: a first pass may collect the texts and a second pass write
//! the replacements in the same order.
//!
//! Limits (each adapter's file lists its own):
//! * Object KEYS are never visited, only values (tool-call arguments included).
//! * Tool/function definitions, JSON schemas, `metadata`, `user` ids and similar developer
//!   configuration are not visited.
//! * Opaque or signed model output (Anthropic `thinking`/`redacted_thinking` blocks, OpenAI
//!   `encrypted_content`) is left alone: rewriting it would break its signature. This is only
//!   private if the restore stage leaves those blocks as the model wrote them (placeholders and
//!   all), so that clients never see raw values in them and never send any back.
//! * Unknown item or part types are forwarded untouched; parts of any type that carry a string
//!   `text` field are visited anyway.
//! * Errors name JSON paths built from fixed field names and indices only, never from body
//!   content or keys, so they can be logged and returned.

use http::{Method, StatusCode};
use serde_json::Value;
use std::fmt;

pub mod anthropic;
pub mod gemini;
pub mod openai_chat;
pub mod openai_embeddings;
pub mod openai_responses;

/// One recognised API operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiKind {
    /// OpenAI `POST .../chat/completions`.
    OpenAiChat,
    /// OpenAI `POST .../responses`.
    OpenAiResponses,
    /// OpenAI `POST .../embeddings`.
    OpenAiEmbeddings,
    /// Anthropic `POST .../messages`.
    AnthropicMessages,
    /// Anthropic `POST .../messages/count_tokens`.
    AnthropicCountTokens,
    /// Gemini `POST .../models/{model}:generateContent`.
    GeminiGenerate,
    /// Gemini `POST .../models/{model}:streamGenerateContent`.
    GeminiStreamGenerate,
    /// Gemini `POST .../models/{model}:countTokens`.
    GeminiCountTokens,
    /// Gemini `POST .../models/{model}:embedContent`.
    GeminiEmbedContent,
    /// Gemini `POST .../models/{model}:batchEmbedContents`.
    GeminiBatchEmbedContents,
    /// `GET .../models` or `GET .../models/{id}` (any family): no body, forwarded as is.
    ListModels,
}

/// Which vendor's conventions (error shape) apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiFamily {
    OpenAi,
    Anthropic,
    Gemini,
}

impl ApiKind {
    pub const ALL: [ApiKind; 11] = [
        ApiKind::OpenAiChat,
        ApiKind::OpenAiResponses,
        ApiKind::OpenAiEmbeddings,
        ApiKind::AnthropicMessages,
        ApiKind::AnthropicCountTokens,
        ApiKind::GeminiGenerate,
        ApiKind::GeminiStreamGenerate,
        ApiKind::GeminiCountTokens,
        ApiKind::GeminiEmbedContent,
        ApiKind::GeminiBatchEmbedContents,
        ApiKind::ListModels,
    ];

    /// The vendor family. `ListModels` cannot be told apart from its path alone and reports
    /// `OpenAi`; use [`guess_family`] with the request headers when it matters.
    pub fn family(self) -> ApiFamily {
        match self {
            ApiKind::OpenAiChat
            | ApiKind::OpenAiResponses
            | ApiKind::OpenAiEmbeddings
            | ApiKind::ListModels => ApiFamily::OpenAi,
            ApiKind::AnthropicMessages | ApiKind::AnthropicCountTokens => ApiFamily::Anthropic,
            ApiKind::GeminiGenerate
            | ApiKind::GeminiStreamGenerate
            | ApiKind::GeminiCountTokens
            | ApiKind::GeminiEmbedContent
            | ApiKind::GeminiBatchEmbedContents => ApiFamily::Gemini,
        }
    }

    /// Stable identifier for metrics and audit records.
    pub fn name(self) -> &'static str {
        match self {
            ApiKind::OpenAiChat => "openai.chat",
            ApiKind::OpenAiResponses => "openai.responses",
            ApiKind::OpenAiEmbeddings => "openai.embeddings",
            ApiKind::AnthropicMessages => "anthropic.messages",
            ApiKind::AnthropicCountTokens => "anthropic.count_tokens",
            ApiKind::GeminiGenerate => "gemini.generate",
            ApiKind::GeminiStreamGenerate => "gemini.stream_generate",
            ApiKind::GeminiCountTokens => "gemini.count_tokens",
            ApiKind::GeminiEmbedContent => "gemini.embed",
            ApiKind::GeminiBatchEmbedContents => "gemini.batch_embed",
            ApiKind::ListModels => "models.list",
        }
    }

    /// Whether requests of this kind carry a JSON body to scan.
    pub fn has_body(self) -> bool {
        !matches!(self, ApiKind::ListModels)
    }
}

impl ApiFamily {
    pub fn name(self) -> &'static str {
        match self {
            ApiFamily::OpenAi => "openai",
            ApiFamily::Anthropic => "anthropic",
            ApiFamily::Gemini => "gemini",
        }
    }
}

/// Why a request body cannot be scanned. Messages never contain body text.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request body is not valid UTF-8")]
    InvalidUtf8,
    /// Position and category of the syntax error only.
    #[error("request body is not valid JSON ({0})")]
    MalformedJson(String),
    /// A JSON path and what was expected there.
    #[error("request body has an unexpected shape: {0}")]
    InvalidShape(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    pub fn fault(&self) -> &'static str {
        "client"
    }

    /// Machine-readable code for [`error_body`].
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidUtf8 => "invalid_utf8",
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::InvalidShape(_) => "invalid_shape",
        }
    }
}

/// Splits the path (any query or fragment dropped) into segments. Refuses empty, `.` and `..`
/// segments, so that what is recognised is what the upstream will route.
fn segments(path: &str) -> Option<Vec<&str>> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let path = path.strip_prefix('/').unwrap_or(path);
    if path.is_empty() {
        return Some(Vec::new());
    }
    let segs: Vec<&str> = path.split('/').collect();
    if segs.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return None;
    }
    Some(segs)
}

/// Recognises the API from the method and the upstream-side path (after the route prefix,
/// possibly with a base path such as `/v1`). `None` means "not an API the gateway scans": the
/// caller refuses it.
pub fn recognize(method: &Method, path: &str) -> Option<ApiKind> {
    let segs = segments(path)?;
    let n = segs.len();
    let last = *segs.last()?;
    let prev = if n >= 2 { Some(segs[n - 2]) } else { None };

    if *method == Method::GET {
        if last == "models" {
            return Some(ApiKind::ListModels);
        }
        if prev == Some("models") {
            return Some(ApiKind::ListModels);
        }
        return None;
    }
    if *method != Method::POST {
        return None;
    }
    // Gemini: .../models/{model}:{method} (also tunedModels).
    if let Some((model, op)) = last.rsplit_once(':') {
        if model.is_empty() || !matches!(prev, Some("models") | Some("tunedModels")) {
            return None;
        }
        return match op {
            "generateContent" => Some(ApiKind::GeminiGenerate),
            "streamGenerateContent" => Some(ApiKind::GeminiStreamGenerate),
            "countTokens" => Some(ApiKind::GeminiCountTokens),
            "embedContent" => Some(ApiKind::GeminiEmbedContent),
            "batchEmbedContents" => Some(ApiKind::GeminiBatchEmbedContents),
            _ => None,
        };
    }
    // OpenAI's Assistants API also has .../threads/{id}/messages: a different body.
    if segs.contains(&"threads") {
        return None;
    }
    match (prev, last) {
        (Some("chat"), "completions") => Some(ApiKind::OpenAiChat),
        (Some("messages"), "count_tokens") => Some(ApiKind::AnthropicCountTokens),
        (_, "responses") => Some(ApiKind::OpenAiResponses),
        (_, "embeddings") => Some(ApiKind::OpenAiEmbeddings),
        (_, "messages") => Some(ApiKind::AnthropicMessages),
        _ => None,
    }
}

/// Best guess of the family whose error shape the client expects, for refusals of
/// unrecognised paths and for [`ApiKind::ListModels`]: a recognised kind's family, else
/// Anthropic when an `anthropic-version` header is present, Gemini when an `x-goog-api-key`
/// header or a `v1beta`/`v1alpha` segment is, else OpenAI.
pub fn guess_family(path: &str, headers: &http::HeaderMap) -> ApiFamily {
    for m in [Method::POST, Method::GET] {
        match recognize(&m, path) {
            Some(ApiKind::ListModels) | None => {}
            Some(kind) => return kind.family(),
        }
    }
    if headers.contains_key("anthropic-version") {
        return ApiFamily::Anthropic;
    }
    let path_only = path.split(['?', '#']).next().unwrap_or("");
    if headers.contains_key("x-goog-api-key")
        || path_only
            .split('/')
            .any(|s| s == "v1beta" || s == "v1alpha")
    {
        return ApiFamily::Gemini;
    }
    ApiFamily::OpenAi
}

/// Parses a request body into a JSON object.
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::InvalidUtf8)?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        // Built from the category and position only: serde_json's own message is free of body
        // text for `Value`, but this keeps it so by construction.
        let what = match e.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "invalid data",
            serde_json::error::Category::Eof => "unexpected end of input",
        };
        ApiError::MalformedJson(format!("{what} at line {} column {}", e.line(), e.column()))
    })?;
    if !value.is_object() {
        return Err(ApiError::InvalidShape(format!(
            "body: expected an object, found {}",
            type_name(&value)
        )));
    }
    Ok(value)
}

/// Calls `f` on every text-bearing string of the request, in a deterministic order. Checks the
/// shape of the fields it walks; errors name the JSON path, never the content.
pub fn visit_texts(
    kind: ApiKind,
    body: &mut Value,
    f: &mut dyn FnMut(&mut String),
) -> Result<(), ApiError> {
    if kind == ApiKind::ListModels {
        return Ok(());
    }
    let Some(obj) = body.as_object_mut() else {
        return Err(ApiError::InvalidShape(format!(
            "body: expected an object, found {}",
            type_name(body)
        )));
    };
    match kind {
        ApiKind::OpenAiChat => openai_chat::visit(obj, f),
        ApiKind::OpenAiResponses => openai_responses::visit(obj, f),
        ApiKind::OpenAiEmbeddings => openai_embeddings::visit(obj, f),
        ApiKind::AnthropicMessages | ApiKind::AnthropicCountTokens => anthropic::visit(obj, f),
        ApiKind::GeminiGenerate | ApiKind::GeminiStreamGenerate => gemini::visit_generate(obj, f),
        ApiKind::GeminiCountTokens => gemini::visit_count_tokens(obj, f),
        ApiKind::GeminiEmbedContent => gemini::visit_embed(obj, f),
        ApiKind::GeminiBatchEmbedContents => gemini::visit_batch_embed(obj, f),
        ApiKind::ListModels => Ok(()),
    }
}

/// Whether the client asked for a streamed response.
pub fn wants_stream(kind: ApiKind, body: &Value) -> bool {
    match kind {
        ApiKind::OpenAiChat | ApiKind::OpenAiResponses | ApiKind::AnthropicMessages => {
            body.get("stream").and_then(Value::as_bool) == Some(true)
        }
        ApiKind::GeminiStreamGenerate => true,
        _ => false,
    }
}

/// Text from which the pipeline derives a conversation id when no header gives one: the first
/// system/developer/instructions text and the first user message text of the ORIGINAL body,
/// joined by a NUL. `None` when neither is present (or both are empty).
pub fn conversation_anchor(kind: ApiKind, body: &Value) -> Option<String> {
    let (system, user) = match kind {
        ApiKind::OpenAiChat => openai_chat::anchor_parts(body),
        ApiKind::OpenAiResponses => {
            // A stored conversation object is the best anchor: it stays the same every turn.
            if let Some(id) = openai_responses::conversation_id(body) {
                return Some(format!("conversation:{id}"));
            }
            openai_responses::anchor_parts(body)
        }
        ApiKind::OpenAiEmbeddings => (None, openai_embeddings::first_input(body)),
        ApiKind::AnthropicMessages | ApiKind::AnthropicCountTokens => anthropic::anchor_parts(body),
        ApiKind::GeminiGenerate
        | ApiKind::GeminiStreamGenerate
        | ApiKind::GeminiCountTokens
        | ApiKind::GeminiEmbedContent
        | ApiKind::GeminiBatchEmbedContents => gemini::anchor_parts(kind, body),
        ApiKind::ListModels => (None, None),
    };
    let system = system.filter(|s| !s.is_empty());
    let user = user.filter(|s| !s.is_empty());
    if system.is_none() && user.is_none() {
        return None;
    }
    Some(format!(
        "{}\u{0}{}",
        system.unwrap_or_default(),
        user.unwrap_or_default()
    ))
}

/// Longest model name reported; longer (or oddly spelled) names are not reported, as they are
/// client-controlled and end up in metric labels.
pub const MAX_MODEL_LEN: usize = 128;

/// The model named by the request, if any (body `model` for OpenAI/Anthropic, the path for
/// Gemini and `GET .../models/{id}`). Only plain identifiers (`[A-Za-z0-9._:/@+-]`, at most
/// [`MAX_MODEL_LEN`] bytes) are reported.
pub fn model(kind: ApiKind, path: &str, body: &Value) -> Option<String> {
    let segs;
    let raw: &str = if kind == ApiKind::ListModels {
        segs = segments(path)?;
        match segs.as_slice() {
            [.., "models", id] => id,
            _ => return None,
        }
    } else {
        match kind.family() {
            ApiFamily::OpenAi | ApiFamily::Anthropic => body.get("model")?.as_str()?,
            ApiFamily::Gemini => {
                segs = segments(path)?;
                segs.last()?.rsplit_once(':')?.0
            }
        }
    };
    let ok = !raw.is_empty()
        && raw.len() <= MAX_MODEL_LEN
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/@+-".contains(&b));
    ok.then(|| raw.to_owned())
}

/// The gateway's own error, serialised in the error shape of `family`.
///
/// * OpenAI: `{"error":{"message","type","param":null,"code"}}`
/// * Anthropic: `{"type":"error","error":{"type","message"}}`
/// * Gemini: `{"error":{"code":<status>,"message","status":"INVALID_ARGUMENT"|...,
///   "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":<code>,
///   "domain":"garim"}]}}`
///
/// `message` must not contain detected values (the caller's duty).
pub fn error_body(family: ApiFamily, status: StatusCode, code: &str, message: &str) -> Vec<u8> {
    let value = match family {
        ApiFamily::OpenAi => serde_json::json!({
            "error": {
                "message": message,
                "type": openai_error_type(status),
                "param": null,
                "code": code,
            }
        }),
        ApiFamily::Anthropic => anthropic::error_value(status, message),
        ApiFamily::Gemini => gemini::error_value(status, code, message),
    };
    serde_json::to_vec(&value).expect("serialising a JSON value cannot fail")
}

/// OpenAI's `error.type` for a status.
fn openai_error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers for the adapters.

/// A JSON path for error messages, as a linked list on the stack (no allocation unless an
/// error is built). Made of fixed field names and indices only.
#[derive(Clone, Copy)]
pub(crate) struct JsonPath<'a> {
    parent: Option<&'a JsonPath<'a>>,
    seg: Seg,
}

#[derive(Clone, Copy)]
enum Seg {
    Key(&'static str),
    Index(usize),
}

impl<'a> JsonPath<'a> {
    pub(crate) fn root(key: &'static str) -> JsonPath<'static> {
        JsonPath {
            parent: None,
            seg: Seg::Key(key),
        }
    }

    pub(crate) fn key(&'a self, key: &'static str) -> JsonPath<'a> {
        JsonPath {
            parent: Some(self),
            seg: Seg::Key(key),
        }
    }

    pub(crate) fn index(&'a self, i: usize) -> JsonPath<'a> {
        JsonPath {
            parent: Some(self),
            seg: Seg::Index(i),
        }
    }

    /// An [`ApiError::InvalidShape`] at this path.
    pub(crate) fn shape(&self, expected: &str, found: &Value) -> ApiError {
        ApiError::InvalidShape(format!(
            "{self}: expected {expected}, found {}",
            type_name(found)
        ))
    }

    /// An [`ApiError::InvalidShape`] for a missing required field.
    pub(crate) fn missing(&self) -> ApiError {
        ApiError::InvalidShape(format!("{self}: missing"))
    }
}

impl fmt::Display for JsonPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.parent {
            write!(f, "{p}")?;
            match self.seg {
                Seg::Key(k) => write!(f, ".{k}"),
                Seg::Index(i) => write!(f, "[{i}]"),
            }
        } else {
            match self.seg {
                Seg::Key(k) => write!(f, "{k}"),
                Seg::Index(i) => write!(f, "[{i}]"),
            }
        }
    }
}

/// The JSON type of a value, for error messages (never the value itself).
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(crate) type Obj = serde_json::Map<String, Value>;

/// Visits `obj[key]` when it is a string; absent or null is fine; anything else is an error.
pub(crate) fn visit_opt_str(
    obj: &mut Obj,
    key: &'static str,
    path: &JsonPath<'_>,
    f: &mut dyn FnMut(&mut String),
) -> Result<(), ApiError> {
    match obj.get_mut(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) => {
            f(s);
            Ok(())
        }
        Some(other) => Err(path.key(key).shape("a string", other)),
    }
}

/// Visits every string leaf of `v`: object values and array elements, recursively; keys are
/// not visited. Nesting is bounded by serde_json's parse recursion limit.
pub(crate) fn visit_string_leaves(v: &mut Value, f: &mut dyn FnMut(&mut String)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter_mut().for_each(|i| visit_string_leaves(i, f)),
        Value::Object(map) => map.values_mut().for_each(|i| visit_string_leaves(i, f)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Visits a string that should hold JSON (tool-call `arguments`): when it parses to an object
/// or array, its string leaves are visited and it is re-serialised compactly only if one of
/// them changed; otherwise (not JSON, or a bare scalar) it is visited as one plain string.
pub(crate) fn visit_json_string(s: &mut String, f: &mut dyn FnMut(&mut String)) {
    match serde_json::from_str::<Value>(s) {
        Ok(mut v) if v.is_object() || v.is_array() => {
            let mut changed = false;
            visit_string_leaves(&mut v, &mut |leaf: &mut String| {
                let before = leaf.clone();
                f(leaf);
                if *leaf != before {
                    changed = true;
                }
            });
            if changed {
                *s = serde_json::to_string(&v).expect("serialising a JSON value cannot fail");
            }
        }
        _ => f(s),
    }
}

/// Visits `obj[key]` as a JSON-holding string (see [`visit_json_string`]).
pub(crate) fn visit_opt_json_str(
    obj: &mut Obj,
    key: &'static str,
    path: &JsonPath<'_>,
    f: &mut dyn FnMut(&mut String),
) -> Result<(), ApiError> {
    match obj.get_mut(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) => {
            visit_json_string(s, f);
            Ok(())
        }
        Some(other) => Err(path.key(key).shape("a string", other)),
    }
}

/// The text of a content value for anchors: a string, or the `text` fields of an array of
/// parts joined by newlines.
pub(crate) fn content_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers shared by the adapters' tests.
    use super::*;

    /// Compact serialisation of a JSON text, as serde_json writes it.
    pub fn compact(json: &str) -> Vec<u8> {
        serde_json::to_vec(&parse_body(json.as_bytes()).unwrap()).unwrap()
    }

    /// Visits with `f`, returning the visited strings (before rewriting) and the rebuilt body.
    pub fn run(kind: ApiKind, json: &str, f: &mut dyn FnMut(&mut String)) -> (Vec<String>, Value) {
        let mut v = parse_body(json.as_bytes()).unwrap();
        let mut seen = Vec::new();
        visit_texts(kind, &mut v, &mut |s: &mut String| {
            seen.push(s.clone());
            f(s);
        })
        .unwrap();
        (seen, v)
    }

    /// Asserts that an identity visit leaves the body byte-identical to its compact form.
    pub fn assert_identity(kind: ApiKind, json: &str) {
        let (_, v) = run(kind, json, &mut |_| {});
        assert_eq!(
            String::from_utf8(serde_json::to_vec(&v).unwrap()).unwrap(),
            String::from_utf8(compact(json)).unwrap()
        );
    }

    /// Tags every visited string with `<<…>>` and returns the rebuilt body.
    pub fn tag_all(kind: ApiKind, json: &str) -> (Vec<String>, Value) {
        run(kind, json, &mut |s: &mut String| *s = format!("<<{s}>>"))
    }

    /// Visits `json` tagging every string; asserts that only strings holding a `PII-` marker
    /// were visited and that every marker was; returns the paths that changed.
    pub fn planted_fields_changed(kind: ApiKind, json: &str) -> Vec<String> {
        let original = parse_body(json.as_bytes()).unwrap();
        let (seen, after) = tag_all(kind, json);
        for s in &seen {
            assert!(s.contains("PII-"), "visited a non-text field: {s:?}");
        }
        let planted = json.matches("PII-").count();
        let visited: usize = seen.iter().map(|s| s.matches("PII-").count()).sum();
        assert_eq!(visited, planted);
        changed_paths(&original, &after)
    }

    /// Every string leaf of `v` with its path, keys included, for comparing bodies.
    pub fn leaves(v: &Value) -> Vec<(String, String)> {
        fn walk(v: &Value, path: String, out: &mut Vec<(String, String)>) {
            match v {
                Value::String(s) => out.push((path, s.clone())),
                Value::Array(a) => a
                    .iter()
                    .enumerate()
                    .for_each(|(i, x)| walk(x, format!("{path}[{i}]"), out)),
                Value::Object(m) => m
                    .iter()
                    .for_each(|(k, x)| walk(x, format!("{path}.{k}"), out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(v, String::new(), &mut out);
        out
    }

    /// Paths of the string leaves that differ between two bodies of the same structure.
    pub fn changed_paths(before: &Value, after: &Value) -> Vec<String> {
        let a = leaves(before);
        let b = leaves(after);
        assert_eq!(a.len(), b.len(), "structure changed");
        a.into_iter()
            .zip(b)
            .filter(|(x, y)| {
                assert_eq!(x.0, y.0, "structure changed");
                x.1 != y.1
            })
            .map(|(x, _)| x.0)
            .collect()
    }

    pub fn shape_err(kind: ApiKind, json: &str) -> String {
        let mut v = parse_body(json.as_bytes()).unwrap();
        match visit_texts(kind, &mut v, &mut |_| {}) {
            Err(ApiError::InvalidShape(m)) => m,
            other => panic!("expected InvalidShape, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognize_table() {
        use ApiKind::*;
        let post = Method::POST;
        let get = Method::GET;
        let cases: &[(&Method, &str, Option<ApiKind>)] = &[
            (&post, "/v1/chat/completions", Some(OpenAiChat)),
            (&post, "/chat/completions", Some(OpenAiChat)),
            (&post, "chat/completions", Some(OpenAiChat)),
            (&post, "/v1/chat/completions?api-version=1", Some(OpenAiChat)),
            (
                &post,
                "/openai/deployments/gpt4/chat/completions",
                Some(OpenAiChat),
            ),
            (&post, "/v1/responses", Some(OpenAiResponses)),
            (&post, "/responses", Some(OpenAiResponses)),
            (&post, "/v1/embeddings", Some(OpenAiEmbeddings)),
            (&post, "/v1/messages", Some(AnthropicMessages)),
            (&post, "/v1/messages?beta=true", Some(AnthropicMessages)),
            (&post, "/v1/messages/count_tokens", Some(AnthropicCountTokens)),
            (
                &post,
                "/v1beta/models/gemini-2.0-flash:generateContent",
                Some(GeminiGenerate),
            ),
            (
                &post,
                "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
                Some(GeminiStreamGenerate),
            ),
            (
                &post,
                "/v1/projects/p/locations/us/publishers/google/models/gemini-2.0-flash:generateContent",
                Some(GeminiGenerate),
            ),
            (
                &post,
                "/v1beta/tunedModels/my-model:generateContent",
                Some(GeminiGenerate),
            ),
            (
                &post,
                "/v1beta/models/gemini-2.0-flash:countTokens",
                Some(GeminiCountTokens),
            ),
            (
                &post,
                "/v1beta/models/text-embedding-004:embedContent",
                Some(GeminiEmbedContent),
            ),
            (
                &post,
                "/v1beta/models/text-embedding-004:batchEmbedContents",
                Some(GeminiBatchEmbedContents),
            ),
            (&get, "/v1/models", Some(ListModels)),
            (&get, "/v1/models?limit=20", Some(ListModels)),
            (&get, "/v1/models/gpt-4o", Some(ListModels)),
            (&get, "/v1beta/models/gemini-2.0-flash", Some(ListModels)),
            (&get, "/v1/models/ft:gpt-4o-mini:org::abc", Some(ListModels)),
            // Refusals.
            (&post, "/v1/files", None),
            (&post, "/v1/audio/transcriptions", None),
            (&post, "/v1/chat/completionsX", None),
            (&post, "/v1/chat/completions/", None),
            (&post, "/v1/chat//completions", None),
            (&post, "/v1/embeddings/../files", None),
            (&post, "/v1/completions", None),
            (&post, "/v1/images/generations", None),
            (&post, "/v1/threads/thread_1/messages", None),
            (&post, "/v1/messages/batches", None),
            (&post, "/v1/responses/resp_1/cancel", None),
            (&post, "/v1beta/models/gemini-2.0-flash:generateContentX", None),
            (&post, "/v1beta/models/:generateContent", None),
            (&post, "/v1beta/cachedContents", None),
            (&post, "/v1beta/files:upload", None),
            (&post, "/v1/models", None),
            (&post, "/", None),
            (&post, "", None),
            (&get, "/v1/chat/completions", None),
            (&get, "/v1/responses/resp_1", None),
            (&Method::DELETE, "/v1/models/ft:x", None),
            (&Method::PUT, "/v1/messages", None),
        ];
        for (m, p, want) in cases {
            assert_eq!(recognize(m, p), *want, "{m} {p}");
        }
    }

    #[test]
    fn kind_properties() {
        let mut names = std::collections::HashSet::new();
        for k in ApiKind::ALL {
            assert!(names.insert(k.name()), "duplicate name {}", k.name());
            assert_eq!(k.has_body(), k != ApiKind::ListModels);
        }
        assert_eq!(ApiKind::OpenAiChat.name(), "openai.chat");
        assert_eq!(ApiKind::AnthropicCountTokens.family(), ApiFamily::Anthropic);
        assert_eq!(ApiKind::GeminiStreamGenerate.family(), ApiFamily::Gemini);
        assert_eq!(ApiKind::OpenAiEmbeddings.family(), ApiFamily::OpenAi);
    }

    #[test]
    fn guess_family_uses_kind_then_headers() {
        let none = http::HeaderMap::new();
        assert_eq!(guess_family("/v1/messages", &none), ApiFamily::Anthropic);
        assert_eq!(
            guess_family("/v1beta/models/g:generateContent", &none),
            ApiFamily::Gemini
        );
        assert_eq!(guess_family("/v1beta/models", &none), ApiFamily::Gemini);
        assert_eq!(guess_family("/v1/files", &none), ApiFamily::OpenAi);
        let mut h = http::HeaderMap::new();
        h.insert("anthropic-version", "2023-06-01".parse().unwrap());
        assert_eq!(guess_family("/v1/models", &h), ApiFamily::Anthropic);
        let mut h = http::HeaderMap::new();
        h.insert("x-goog-api-key", "k".parse().unwrap());
        assert_eq!(guess_family("/v1/models", &h), ApiFamily::Gemini);
    }

    #[test]
    fn parse_body_errors_never_echo_the_body() {
        assert!(matches!(
            parse_body(b"{\"a\":\"\xff\"}"),
            Err(ApiError::InvalidUtf8)
        ));
        let secret = "alice@example.com";
        for bad in [
            format!("{{\"messages\": [\"{secret}\" \"x\"]}}"),
            format!("{{\"{secret}\": tru}}"),
            format!("{{\"m\": \"{secret}"),
            secret.to_string(),
            format!("{{\"a\": 1}} {secret}"),
        ] {
            match parse_body(bad.as_bytes()) {
                Err(e @ ApiError::MalformedJson(_)) => {
                    let shown = format!("{e} {e:?}");
                    assert!(!shown.contains("alice"), "{shown}");
                    assert!(shown.contains("line 1 column"), "{shown}");
                    assert_eq!(e.status(), StatusCode::BAD_REQUEST);
                    assert_eq!(e.fault(), "client");
                }
                other => panic!("expected MalformedJson, got {other:?}"),
            }
        }
        for not_obj in ["[1,2]", "\"alice@example.com\"", "3", "null"] {
            match parse_body(not_obj.as_bytes()) {
                Err(e @ ApiError::InvalidShape(_)) => {
                    assert!(!format!("{e:?}").contains("alice"));
                    assert_eq!(e.code(), "invalid_shape");
                }
                other => panic!("expected InvalidShape, got {other:?}"),
            }
        }
        assert!(parse_body(b"{}").is_ok());
    }

    #[test]
    fn numbers_and_strings_keep_their_spelling() {
        // Digits are kept exactly (no float rounding); serde_json only normalises the exponent
        // marker (`e`, explicit sign) and string escapes.
        let body = r#"{"a": 1.0e10, "b": 0.1000, "c": -0, "d": 12345678901234567890123, "e": "\u00e9 한국어 \ud83d\ude00", "f": [1E-7]}"#;
        let out = serde_json::to_string(&parse_body(body.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            out,
            "{\"a\":1.0e+10,\"b\":0.1000,\"c\":-0,\"d\":12345678901234567890123,\"e\":\"é 한국어 😀\",\"f\":[1e-7]}"
        );
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_only() {
        // The rebuilt body must be what is forwarded: it holds only the value that was scanned.
        let mut v = parse_body(
            br#"{"messages":[{"role":"user","content":"first"}],"messages":[{"role":"user","content":"second"}]}"#,
        )
        .unwrap();
        let mut seen = Vec::new();
        visit_texts(ApiKind::OpenAiChat, &mut v, &mut |s: &mut String| {
            seen.push(s.clone())
        })
        .unwrap();
        assert_eq!(seen, ["second"]);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"messages":[{"role":"user","content":"second"}]}"#
        );
    }

    proptest::proptest! {
        /// Unknown fields of any shape, next to the known ones, survive an identity visit and
        /// are never visited.
        #[test]
        fn unknown_fields_are_untouched(extra in arb_json(3), key in "[a-z_]{1,12}") {
            proptest::prop_assume!(!["messages", "model", "prediction", "input", "instructions",
                "prompt", "system", "contents", "systemInstruction", "system_instruction",
                "generateContentRequest", "generate_content_request", "content", "title",
                "requests"].contains(&key.as_str()));
            let bodies = [
                (ApiKind::OpenAiChat, serde_json::json!({"messages": [{"role": "user", "content": "T"}]})),
                (ApiKind::OpenAiResponses, serde_json::json!({"input": "T"})),
                (ApiKind::OpenAiEmbeddings, serde_json::json!({"input": ["T"]})),
                (ApiKind::AnthropicMessages, serde_json::json!({"system": "T", "messages": []})),
                (ApiKind::GeminiGenerate, serde_json::json!({"contents": [{"parts": [{"text": "T"}]}]})),
                (ApiKind::GeminiEmbedContent, serde_json::json!({"content": {"parts": [{"text": "T"}]}})),
            ];
            for (kind, mut body) in bodies {
                body.as_object_mut().unwrap().insert(key.clone(), extra.clone());
                let before = serde_json::to_vec(&body).unwrap();
                let mut body = parse_body(&before).unwrap();
                let mut seen = Vec::new();
                visit_texts(kind, &mut body, &mut |s: &mut String| seen.push(s.clone())).unwrap();
                proptest::prop_assert_eq!(&seen, &["T".to_owned()]);
                proptest::prop_assert_eq!(serde_json::to_vec(&body).unwrap(), before);
            }
        }
    }

    fn arb_json(depth: u32) -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "-?[1-9][0-9]{0,4}\\.[0-9]{1,5}([eE][-+]?[0-9]{1,2})?"
                .prop_map(|n| serde_json::from_str::<Value>(&n).unwrap()),
            "\\PC{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(depth, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(("\\PC{0,6}", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn json_path_display() {
        let root = JsonPath::root("messages");
        let m = root.index(2);
        let c = m.key("content");
        let p = c.index(0);
        assert_eq!(p.to_string(), "messages[2].content[0]");
        let e = c.shape("a string", &Value::Bool(true));
        assert_eq!(
            e.to_string(),
            "request body has an unexpected shape: messages[2].content: expected a string, found boolean"
        );
    }

    #[test]
    fn json_string_visit_reserialises_only_on_change() {
        let original = r#"{ "to": "bob@example.com", "n": 1.50, "tags": ["a", {"k": "v"}] }"#;
        let mut s = original.to_owned();
        let mut seen = Vec::new();
        visit_json_string(&mut s, &mut |t: &mut String| seen.push(t.clone()));
        assert_eq!(s, original, "unchanged arguments keep their spelling");
        assert_eq!(seen, ["bob@example.com", "a", "v"]);

        visit_json_string(&mut s, &mut |t: &mut String| {
            if t.contains('@') {
                *t = "[EMAIL_1]".into()
            }
        });
        assert_eq!(s, r#"{"to":"[EMAIL_1]","n":1.50,"tags":["a",{"k":"v"}]}"#);

        // Not JSON, or a bare scalar: one plain string.
        for plain in ["call bob@example.com", "01012345678", "\"quoted\"", "12"] {
            let mut s = plain.to_owned();
            let mut seen = Vec::new();
            visit_json_string(&mut s, &mut |t: &mut String| {
                seen.push(t.clone());
                t.push('!');
            });
            assert_eq!(seen, [plain]);
            assert_eq!(s, format!("{plain}!"));
        }
    }

    #[test]
    fn wants_stream_per_kind() {
        let on = serde_json::json!({"stream": true});
        let off = serde_json::json!({"stream": false});
        let odd = serde_json::json!({"stream": "true"});
        assert!(wants_stream(ApiKind::OpenAiChat, &on));
        assert!(wants_stream(ApiKind::OpenAiResponses, &on));
        assert!(wants_stream(ApiKind::AnthropicMessages, &on));
        assert!(!wants_stream(ApiKind::OpenAiChat, &off));
        assert!(!wants_stream(ApiKind::OpenAiChat, &odd));
        assert!(!wants_stream(ApiKind::OpenAiEmbeddings, &on));
        assert!(!wants_stream(ApiKind::AnthropicCountTokens, &on));
        assert!(!wants_stream(ApiKind::GeminiGenerate, &on));
        assert!(wants_stream(ApiKind::GeminiStreamGenerate, &off));
    }

    #[test]
    fn model_from_body_or_path() {
        let body = serde_json::json!({"model": "gpt-4o-mini"});
        assert_eq!(
            model(ApiKind::OpenAiChat, "/v1/chat/completions", &body).as_deref(),
            Some("gpt-4o-mini")
        );
        assert_eq!(
            model(
                ApiKind::GeminiGenerate,
                "/v1beta/models/gemini-2.0-flash:generateContent?alt=sse",
                &body
            )
            .as_deref(),
            Some("gemini-2.0-flash")
        );
        assert_eq!(
            model(ApiKind::ListModels, "/v1/models/claude-3-5-haiku", &body).as_deref(),
            Some("claude-3-5-haiku")
        );
        assert_eq!(model(ApiKind::ListModels, "/v1/models", &body), None);
        let weird = serde_json::json!({"model": "call alice@example.com now"});
        assert_eq!(
            model(ApiKind::AnthropicMessages, "/v1/messages", &weird),
            None
        );
        let long = serde_json::json!({"model": "m".repeat(MAX_MODEL_LEN + 1)});
        assert_eq!(
            model(ApiKind::AnthropicMessages, "/v1/messages", &long),
            None
        );
        assert_eq!(
            model(
                ApiKind::OpenAiChat,
                "/v1/chat/completions",
                &serde_json::json!({})
            ),
            None
        );
    }

    #[test]
    fn error_bodies_have_each_family_shape() {
        let statuses = [400, 401, 403, 404, 413, 415, 429, 500, 502, 503, 504];
        for s in statuses {
            let status = StatusCode::from_u16(s).unwrap();

            let v: Value = serde_json::from_slice(&error_body(
                ApiFamily::OpenAi,
                status,
                "pii_blocked",
                "blocked",
            ))
            .unwrap();
            let e = v["error"].as_object().unwrap();
            assert_eq!(e.len(), 4);
            assert_eq!(e["message"], "blocked");
            assert_eq!(e["code"], "pii_blocked");
            assert!(e["param"].is_null());
            let t = e["type"].as_str().unwrap();
            match s {
                400 | 413 | 415 => assert_eq!(t, "invalid_request_error"),
                403 => assert_eq!(t, "permission_error"),
                s if s >= 500 => assert_eq!(t, "server_error"),
                _ => assert!(!t.is_empty()),
            }

            let v: Value = serde_json::from_slice(&error_body(
                ApiFamily::Anthropic,
                status,
                "pii_blocked",
                "blocked",
            ))
            .unwrap();
            assert_eq!(v["type"], "error");
            let e = v["error"].as_object().unwrap();
            assert_eq!(e.len(), 2);
            assert_eq!(e["message"], "blocked");
            let t = e["type"].as_str().unwrap();
            match s {
                400 | 415 => assert_eq!(t, "invalid_request_error"),
                403 => assert_eq!(t, "permission_error"),
                413 => assert_eq!(t, "request_too_large"),
                500 | 502 => assert_eq!(t, "api_error"),
                503 => assert_eq!(t, "overloaded_error"),
                504 => assert_eq!(t, "timeout_error"),
                _ => assert!(!t.is_empty()),
            }

            let v: Value = serde_json::from_slice(&error_body(
                ApiFamily::Gemini,
                status,
                "pii_blocked",
                "blocked",
            ))
            .unwrap();
            let e = v["error"].as_object().unwrap();
            assert_eq!(e["code"].as_u64(), Some(u64::from(s)));
            assert_eq!(e["message"], "blocked");
            assert_eq!(e["details"][0]["reason"], "pii_blocked");
            let st = e["status"].as_str().unwrap();
            let want = match s {
                400 | 413 | 415 => "INVALID_ARGUMENT",
                401 => "UNAUTHENTICATED",
                403 => "PERMISSION_DENIED",
                404 => "NOT_FOUND",
                429 => "RESOURCE_EXHAUSTED",
                500 => "INTERNAL",
                502 | 503 => "UNAVAILABLE",
                504 => "DEADLINE_EXCEEDED",
                _ => unreachable!(),
            };
            assert_eq!(st, want, "{s}");
        }
    }

    #[test]
    fn error_body_escapes_message() {
        let b = error_body(
            ApiFamily::OpenAi,
            StatusCode::FORBIDDEN,
            "path_refused",
            "quote \" and \\ and\nnewline",
        );
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["error"]["message"], "quote \" and \\ and\nnewline");
    }

    #[test]
    fn list_models_has_no_texts() {
        let mut v = serde_json::json!({"anything": "alice@example.com"});
        let mut n = 0;
        visit_texts(ApiKind::ListModels, &mut v, &mut |_| n += 1).unwrap();
        assert_eq!(n, 0);
        assert_eq!(conversation_anchor(ApiKind::ListModels, &v), None);
    }
}
