//! Restoring a whole JSON response body (non-streamed answers, Gemini's JSON-array stream).
//!
//! The body is parsed with `serde_json` (the crate enables `preserve_order` and
//! `arbitrary_precision`, so keys keep their order and numbers their exact digits), every
//! string value and object key is restored, and the value is written back. Strings under the
//! keys `arguments` (OpenAI tool calls, Responses function calls) and `partial_json` (Anthropic)
//! are JSON source, so values are escaped into them ([`Escape::Json`]); every other string is
//! plain text. When nothing changed the original bytes are returned untouched, so formatting
//! and escapes the upstream chose survive byte for byte.
//!
//! A body that is not JSON (an HTML error page, plain text) is restored as plain text; bytes
//! that are not UTF-8 pass through, with the UTF-8 runs between them restored.
//!
//! Limit: a changed body is re-serialised compactly (whitespace and `\uXXXX` escapes of the
//! upstream are not kept); nesting is bounded by `serde_json`'s recursion limit (128).

use crate::mask::Mapping;
use crate::restore::text::{restore_str, Escape};
use crate::restore::{RestoreError, RestoreStats};
use memchr::memchr;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Keys whose string value is JSON source.
pub(crate) fn is_json_source_key(k: &str) -> bool {
    k == "arguments" || k == "partial_json"
}

/// Restores every string (and object key) in `v`. `json_source` says that strings directly
/// under this position are JSON source. Returns whether anything changed.
pub(crate) fn restore_value(
    v: &mut Value,
    json_source: bool,
    mapping: &Mapping,
    stats: &mut RestoreStats,
) -> bool {
    match v {
        Value::String(s) => {
            let esc = if json_source {
                Escape::Json
            } else {
                Escape::None
            };
            match restore_str(s, mapping, esc, stats) {
                Cow::Borrowed(_) => false,
                Cow::Owned(n) => {
                    *s = n;
                    true
                }
            }
        }
        Value::Array(a) => {
            let mut changed = false;
            for x in a {
                changed |= restore_value(x, json_source, mapping, stats);
            }
            changed
        }
        Value::Object(o) => {
            let mut changed = false;
            let mut keys_change = false;
            for (k, x) in o.iter_mut() {
                changed |= restore_value(x, is_json_source_key(k), mapping, stats);
                keys_change |= memchr(b'[', k.as_bytes()).is_some();
            }
            if keys_change {
                changed |= restore_keys(o, mapping, stats);
            }
            changed
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Restores object keys, keeping their order. Rare (a model writing a placeholder as a key).
fn restore_keys(o: &mut Map<String, Value>, mapping: &Mapping, stats: &mut RestoreStats) -> bool {
    let mut probe = RestoreStats::default();
    let any = o.keys().any(|k| {
        matches!(
            restore_str(k, mapping, Escape::None, &mut probe),
            Cow::Owned(_)
        )
    });
    if !any {
        // still count unresolved placeholders in keys
        *stats += probe;
        return false;
    }
    let old = std::mem::take(o);
    for (k, x) in old {
        let k = restore_str(&k, mapping, Escape::None, stats).into_owned();
        // Two keys restoring to the same text: the later wins, as in any JSON parser.
        o.insert(k, x);
    }
    true
}

/// Restores a whole response body. Returns the body to send and what was done.
///
/// Never fails on the content: a body that is not JSON is restored as text.
pub fn restore_json_body(
    body: &[u8],
    mapping: &Mapping,
) -> Result<(Vec<u8>, RestoreStats), RestoreError> {
    let mut stats = RestoreStats::default();
    if memchr(b'[', body).is_none() {
        return Ok((body.to_vec(), stats));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            if !restore_value(&mut v, false, mapping, &mut stats) {
                return Ok((body.to_vec(), stats));
            }
            let out = serde_json::to_vec(&v).map_err(|_| RestoreError::Serialize)?;
            Ok((out, stats))
        }
        Err(_) => Ok((restore_bytes(body, mapping, &mut stats), stats)),
    }
}

/// Restores text that may not be valid UTF-8: the valid runs are restored, other bytes kept.
pub(crate) fn restore_bytes(body: &[u8], mapping: &Mapping, stats: &mut RestoreStats) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for chunk in body.utf8_chunks() {
        out.extend_from_slice(restore_str(chunk.valid(), mapping, Escape::None, stats).as_bytes());
        out.extend_from_slice(chunk.invalid());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::testutil::mapping;
    use serde_json::json;

    fn run(body: &[u8]) -> (Vec<u8>, RestoreStats) {
        restore_json_body(body, &mapping()).unwrap()
    }

    #[test]
    fn openai_chat_completion() {
        let body = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1712345678,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"[PERSON_1]님의 메일은 [EMAIL_1]입니다.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"send","arguments":"{\"to\":\"[EMAIL_1]\",\"pw\":\"[SECRET_1]\",\"where\":\"[LOCATION_2]\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":20,"total_tokens":30},"price":0.1000000000000000055511151231257827}"#;
        let (out, st) = run(body.as_bytes());
        assert_eq!(
            st,
            RestoreStats {
                restored: 5,
                unresolved: 0
            }
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "김민수님의 메일은 kim.minsu@example.co.kr입니다."
        );
        let args: Value = serde_json::from_str(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap(),
        )
        .expect("arguments stay valid JSON");
        assert_eq!(
            args,
            json!({"to": "kim.minsu@example.co.kr", "pw": "p\"a\\ss\nw\tord\r\ndata: x\u{1}", "where": "서울 \"강남\" [EMAIL_1]"})
        );
        // key order and exact numbers survive
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with(
            r#"{"id":"chatcmpl-1","object":"chat.completion","created":1712345678,"model""#
        ));
        assert!(
            s.ends_with(r#""price":0.1000000000000000055511151231257827}"#),
            "{s}"
        );
    }

    #[test]
    fn anthropic_message_with_tool_use_object() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"Hi [PERSON_1]"},{"type":"tool_use","id":"toolu_1","name":"mail","input":{"to":"[EMAIL_1]","arguments":"[SECRET_1]","[PHONE_1]":1}}],"stop_reason":"tool_use"}"#;
        let (out, st) = run(body);
        assert_eq!(st.restored, 4);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["content"][0]["text"], "Hi 김민수");
        assert_eq!(v["content"][1]["input"]["to"], "kim.minsu@example.co.kr");
        // a string under `arguments` is JSON source: escaped
        assert_eq!(
            v["content"][1]["input"]["arguments"],
            "p\\\"a\\\\ss\\nw\\tord\\r\\ndata: x\\u0001"
        );
        // keys are restored too, in place
        let keys: Vec<&String> = v["content"][1]["input"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, ["to", "arguments", "010-1234-5678"]);
    }

    #[test]
    fn gemini_top_level_array() {
        let body = "[{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"안녕 [PERSON_1]\"}],\"role\":\"model\"},\"index\":0}]},\n{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{\"a\":\"[SECRET_1]\"}}}]},\"finishReason\":\"STOP\",\"index\":0}]}]";
        let (out, st) = run(body.as_bytes());
        assert_eq!(st.restored, 2);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v[0]["candidates"][0]["content"]["parts"][0]["text"],
            "안녕 김민수"
        );
        assert_eq!(
            v[1]["candidates"][0]["content"]["parts"][0]["functionCall"]["args"]["a"],
            "p\"a\\ss\nw\tord\r\ndata: x\u{1}"
        );
    }

    #[test]
    fn unchanged_body_is_returned_byte_for_byte() {
        for body in [
            &b"{ \"a\" : [1, 2.50, \"\\u00e9\"],\n \"b\": \"[PHONE_7]\" }"[..],
            b"{\"no\":\"brackets\"}",
            b"",
        ] {
            let (out, _) = run(body);
            assert_eq!(out, body);
        }
        let (_, st) = run(b"{\"b\":\"[PHONE_7]\"}");
        assert_eq!(
            st,
            RestoreStats {
                restored: 0,
                unresolved: 1
            }
        );
    }

    #[test]
    fn non_json_is_restored_as_text() {
        let (out, st) = run("<html>[EMAIL_1] 오류</html>".as_bytes());
        assert_eq!(out, "<html>kim.minsu@example.co.kr 오류</html>".as_bytes());
        assert_eq!(st.restored, 1);
        // invalid UTF-8 around the text is kept as is
        let mut body = vec![0xff, b'['];
        body.extend_from_slice(b"PERSON_1] x");
        body.push(0xc3);
        let (out, st) = run(&body);
        let mut want = vec![0xff];
        want.extend_from_slice("김민수 x".as_bytes());
        want.push(0xc3);
        assert_eq!(out, want);
        assert_eq!(st.restored, 1);
    }

    #[test]
    fn restore_value_reports_changes() {
        let m = mapping();
        let mut st = RestoreStats::default();
        let mut v = json!({"a": ["[x]", 1, null, true, {"b": "[EMAIL_9]"}]});
        assert!(!restore_value(&mut v, false, &m, &mut st));
        assert_eq!(st.unresolved, 1);
        let mut v = json!({"[EMAIL_9]": 1, "x": 2});
        assert!(!restore_value(&mut v, false, &m, &mut st));
        assert_eq!(st.unresolved, 2);
        let mut v = json!(["[PERSON_1]"]);
        assert!(restore_value(&mut v, false, &m, &mut st));
        assert_eq!(v, json!(["김민수"]));
    }
}
