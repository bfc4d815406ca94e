//! OpenAI Embeddings (`POST .../embeddings`) request bodies.
//!
//! Visited: `input` when it is a string, and every string element of an `input` array.
//! Token-id inputs (an array of integers, or an array of such arrays) are left alone: they
//! cannot be scanned as text. Limit: token ids can encode the same PII; they pass unmasked.
//!
//! Shape checks: `input` is required and must be a string or an array whose elements are
//! strings, numbers or arrays of numbers.

use super::{ApiError, JsonPath, Obj};
use serde_json::Value;

pub(crate) fn visit(obj: &mut Obj, f: &mut dyn FnMut(&mut String)) -> Result<(), ApiError> {
    let path = JsonPath::root("input");
    match obj.get_mut("input") {
        None => Err(path.missing()),
        Some(Value::String(s)) => {
            f(s);
            Ok(())
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.iter_mut().enumerate() {
                match item {
                    Value::String(s) => f(s),
                    Value::Number(_) => {}
                    Value::Array(tokens) if tokens.iter().all(Value::is_number) => {}
                    other => {
                        return Err(path
                            .index(i)
                            .shape("a string, a token id or an array of token ids", other))
                    }
                }
            }
            Ok(())
        }
        Some(other) => Err(path.shape("a string or an array", other)),
    }
}

/// The first text input, used as conversation anchor (embeddings have nothing to restore, but
/// a stable anchor keeps placeholders consistent across calls for the same text).
pub(crate) fn first_input(body: &Value) -> Option<String> {
    match body.get("input")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => items.iter().find_map(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{conversation_anchor, parse_body, ApiKind};

    const KIND: ApiKind = ApiKind::OpenAiEmbeddings;

    #[test]
    fn string_and_array_inputs() {
        let body = r#"{"model":"text-embedding-3-small","input":"PII alice@example.com","dimensions":256,"encoding_format":"float","user":"u-1"}"#;
        assert_identity(KIND, body);
        let (seen, after) = tag_all(KIND, body);
        assert_eq!(seen, ["PII alice@example.com"]);
        let before = parse_body(body.as_bytes()).unwrap();
        assert_eq!(changed_paths(&before, &after), [".input"]);

        let body = r#"{"model":"text-embedding-3-large","input":["PII-1 010-1234-5678","PII-2 bob@example.com", 1.0e3],"x":{"s":"keep"}}"#;
        assert_identity(KIND, body);
        let (seen, after) = tag_all(KIND, body);
        assert_eq!(seen, ["PII-1 010-1234-5678", "PII-2 bob@example.com"]);
        let before = parse_body(body.as_bytes()).unwrap();
        assert_eq!(changed_paths(&before, &after), [".input[0]", ".input[1]"]);
    }

    #[test]
    fn token_ids_are_left_alone() {
        for body in [
            r#"{"model":"m","input":[1212, 318, 257]}"#,
            r#"{"model":"m","input":[[1212, 318], [257, 1332]]}"#,
        ] {
            assert_identity(KIND, body);
            let (seen, _) = run(KIND, body, &mut |_| {});
            assert!(seen.is_empty());
        }
    }

    #[test]
    fn shape_errors_name_the_path() {
        for (body, want) in [
            (r#"{"model":"m"}"#, "input: missing"),
            (
                r#"{"input":{"text":"alice@example.com"}}"#,
                "input: expected a string or an array, found object",
            ),
            (
                r#"{"input":["ok",{"t":"alice@example.com"}]}"#,
                "input[1]: expected a string, a token id",
            ),
            (
                r#"{"input":[["alice@example.com"]]}"#,
                "input[0]: expected a string, a token id",
            ),
        ] {
            let msg = shape_err(KIND, body);
            assert!(msg.starts_with(want), "{msg:?} should start with {want:?}");
            assert!(!msg.contains("alice"));
        }
    }

    #[test]
    fn anchor_is_first_text_input() {
        let v = parse_body(br#"{"input":[[1,2],"first","second"]}"#).unwrap();
        assert_eq!(conversation_anchor(KIND, &v).unwrap(), "\u{0}first");
        let v = parse_body(br#"{"input":[1,2]}"#).unwrap();
        assert_eq!(conversation_anchor(KIND, &v), None);
    }
}
