//! Tests of [`SseRestorer`] on realistic event sequences of the four streaming APIs, fed whole,
//! in every two-piece split and byte by byte, with placeholders split across events at every
//! position.

use super::formats::StreamFormat;
use super::sse::SseRestorer;
use super::testutil::mapping;
use super::RestoreStats;
use serde_json::{json, Value};
use std::sync::Arc;

const EMAIL: &str = "kim.minsu@example.co.kr";
const SECRET: &str = "p\"a\\ss\nw\tord\r\ndata: x\u{1}";
const LOC: &str = "서울 \"강남\" [EMAIL_1]";

const MASKED_TEXT: &str = "안녕하세요 [PERSON_1]님, 메일 [EMAIL_1]로 보냈습니다. 비번은 \"[SECRET_1]\", 주소 [location 2], 모르는 [PHONE_9], 대괄호 [x] [ 끝 [EMAIL";
const MASKED_ARGS: &str =
    r#"{"to": "[EMAIL_1]", "pw": "[SECRET_1]", "note": "[PERSON_1]님 [LOCATION_2]"}"#;

fn expected_text() -> String {
    format!(
        "안녕하세요 김민수님, 메일 {EMAIL}로 보냈습니다. 비번은 \"{SECRET}\", 주소 {LOC}, 모르는 [PHONE_9], 대괄호 [x] [ 끝 [EMAIL"
    )
}

fn expected_args() -> Value {
    json!({"to": EMAIL, "pw": SECRET, "note": format!("김민수님 {LOC}")})
}

/// Splits `s` into pieces of about `n` bytes on char boundaries.
fn chop(s: &str, n: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < s.len() {
        let mut end = (at + n).min(s.len());
        while !s.is_char_boundary(end) {
            end += 1;
        }
        out.push(&s[at..end]);
        at = end;
    }
    out
}

/// Every split of `s` into two pieces at a char boundary.
fn two_way(s: &str) -> Vec<Vec<&str>> {
    (0..=s.len())
        .filter(|&i| s.is_char_boundary(i))
        .map(|i| vec![&s[..i], &s[i..]])
        .collect()
}

fn data(v: &Value) -> String {
    format!("data: {v}\n\n")
}

fn named(event: &str, v: &Value) -> String {
    format!("event: {event}\ndata: {v}\n\n")
}

// ---- stream builders (realistic event sequences) ----

fn chat_stream(text: &[&str], args: &[&str]) -> String {
    let chunk = |delta: Value, finish: Value| json!({"id":"chatcmpl-9x","object":"chat.completion.chunk","created":1718000000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_1","choices":[{"index":0,"delta":delta,"logprobs":null,"finish_reason":finish}]});
    let mut s = data(&chunk(
        json!({"role":"assistant","content":"","refusal":null}),
        Value::Null,
    ));
    s += ": keep-alive\n\n";
    for t in text {
        s += &data(&chunk(json!({"content": t}), Value::Null));
    }
    s += &data(&chunk(
        json!({"tool_calls":[{"index":0,"id":"call_Ab1","type":"function","function":{"name":"send_mail","arguments":""}}]}),
        Value::Null,
    ));
    for a in args {
        s += &data(&chunk(
            json!({"tool_calls":[{"index":0,"function":{"arguments": a}}]}),
            Value::Null,
        ));
    }
    s += &data(&chunk(json!({}), json!("tool_calls")));
    s += &data(
        &json!({"id":"chatcmpl-9x","object":"chat.completion.chunk","created":1718000000,"model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":50,"completion_tokens":40,"total_tokens":90}}),
    );
    s += "data: [DONE]\n\n";
    s
}

fn responses_stream(text: &[&str], args: &[&str]) -> String {
    let mut seq = 0;
    let mut ev = |ty: &str, mut v: Value| {
        v["type"] = json!(ty);
        v["sequence_number"] = json!(seq);
        seq += 1;
        // type first, like the API
        let mut o = serde_json::Map::new();
        o.insert("type".into(), json!(ty));
        for (k, x) in v.as_object().unwrap() {
            if k != "type" {
                o.insert(k.clone(), x.clone());
            }
        }
        named(ty, &Value::Object(o))
    };
    let full_text: String = text.concat();
    let full_args: String = args.concat();
    let msg = |t: &str, status: &str| json!({"id":"msg_1","type":"message","status":status,"role":"assistant","content":[{"type":"output_text","text":t,"annotations":[]}]});
    let fc = |a: &str, status: &str| json!({"id":"fc_1","type":"function_call","status":status,"call_id":"call_1","name":"send_mail","arguments":a});
    let resp = |status: &str, output: Value| json!({"id":"resp_1","object":"response","created_at":1718000000,"status":status,"model":"gpt-4.1","output":output,"usage":null});
    let mut s = ev(
        "response.created",
        json!({"response": resp("in_progress", json!([]))}),
    );
    s += &ev(
        "response.in_progress",
        json!({"response": resp("in_progress", json!([]))}),
    );
    s += &ev(
        "response.output_item.added",
        json!({"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant","content":[]}}),
    );
    s += &ev(
        "response.content_part.added",
        json!({"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}),
    );
    for t in text {
        s += &ev(
            "response.output_text.delta",
            json!({"item_id":"msg_1","output_index":0,"content_index":0,"delta":t,"logprobs":[]}),
        );
    }
    s += &ev(
        "response.output_text.done",
        json!({"item_id":"msg_1","output_index":0,"content_index":0,"text":full_text,"logprobs":[]}),
    );
    s += &ev(
        "response.content_part.done",
        json!({"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":full_text,"annotations":[]}}),
    );
    s += &ev(
        "response.output_item.done",
        json!({"output_index":0,"item":msg(&full_text, "completed")}),
    );
    s += &ev(
        "response.output_item.added",
        json!({"output_index":1,"item":fc("", "in_progress")}),
    );
    for a in args {
        s += &ev(
            "response.function_call_arguments.delta",
            json!({"item_id":"fc_1","output_index":1,"delta":a}),
        );
    }
    s += &ev(
        "response.function_call_arguments.done",
        json!({"item_id":"fc_1","output_index":1,"arguments":full_args}),
    );
    s += &ev(
        "response.output_item.done",
        json!({"output_index":1,"item":fc(&full_args, "completed")}),
    );
    s += &ev(
        "response.completed",
        json!({"response": resp("completed", json!([msg(&full_text, "completed"), fc(&full_args, "completed")]))}),
    );
    s
}

fn anthropic_stream(text: &[&str], args: &[&str]) -> String {
    let mut s = named(
        "message_start",
        &json!({"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}),
    );
    s += &named(
        "content_block_start",
        &json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
    );
    s += &named("ping", &json!({"type":"ping"}));
    for t in text {
        s += &named(
            "content_block_delta",
            &json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":t}}),
        );
    }
    s += &named(
        "content_block_stop",
        &json!({"type":"content_block_stop","index":0}),
    );
    s += &named(
        "content_block_start",
        &json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01","name":"send_mail","input":{}}}),
    );
    for a in args {
        s += &named(
            "content_block_delta",
            &json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":a}}),
        );
    }
    s += &named(
        "content_block_stop",
        &json!({"type":"content_block_stop","index":1}),
    );
    s += &named(
        "message_delta",
        &json!({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}),
    );
    s += &named("message_stop", &json!({"type":"message_stop"}));
    s
}

fn gemini_stream(text: &[&str], _args: &[&str]) -> String {
    let mut s = String::new();
    let n = text.len();
    for (i, t) in text.iter().enumerate() {
        let mut c = json!({"content":{"parts":[{"text":t}],"role":"model"},"index":0});
        // the last text chunk also finishes the candidate, as Gemini does
        if i + 1 == n {
            c["finishReason"] = json!("STOP");
        }
        s += &data(
            &json!({"candidates":[c],"usageMetadata":{"promptTokenCount":9,"totalTokenCount":20},"modelVersion":"gemini-2.5-flash","responseId":"r1"}),
        );
    }
    s += &data(
        &json!({"candidates":[{"content":{"parts":[{"functionCall":{"name":"send_mail","args":{"to":"[EMAIL_1]","pw":"[SECRET_1]","note":"[PERSON_1]님 [LOCATION_2]"}}}],"role":"model"},"finishReason":"STOP","index":1}],"modelVersion":"gemini-2.5-flash","responseId":"r1"}),
    );
    s.replace("\n\n", "\r\n\r\n")
}

/// A Gemini stream whose last text chunk does not finish the candidate: held text must come
/// out in a copy before the finishing chunk.
fn gemini_stream_late_finish(text: &[&str]) -> String {
    let mut s = String::new();
    for t in text {
        s += &data(
            &json!({"candidates":[{"content":{"parts":[{"text":t}],"role":"model"},"index":0}],"modelVersion":"gemini-2.5-flash"}),
        );
    }
    s += &data(
        &json!({"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"totalTokenCount":20},"modelVersion":"gemini-2.5-flash"}),
    );
    s
}

// ---- reading the output ----

/// An independent SSE reader for the output (which uses `\n` only).
fn events(out: &[u8]) -> Vec<(Option<String>, String)> {
    let s = std::str::from_utf8(out).expect("output is UTF-8");
    assert!(
        s.is_empty() || s.ends_with("\n\n"),
        "output ends with a complete event"
    );
    s.split("\n\n")
        .filter(|b| !b.is_empty())
        .filter_map(|b| {
            let mut ev = None;
            let mut data: Option<String> = None;
            for l in b.split('\n') {
                if let Some(v) = l.strip_prefix("event: ") {
                    ev = Some(v.to_owned());
                } else if let Some(v) = l.strip_prefix("data: ") {
                    data = Some(match data {
                        Some(d) => d + "\n" + v,
                        None => v.to_owned(),
                    });
                }
            }
            data.map(|d| (ev, d))
        })
        .collect()
}

fn json_events(out: &[u8]) -> Vec<Value> {
    events(out)
        .into_iter()
        .filter(|(_, d)| d != "[DONE]")
        .map(|(_, d)| serde_json::from_str(&d).expect("every data is JSON"))
        .collect()
}

/// (concatenated text deltas, concatenated argument deltas, parsed arguments, other checks).
struct Seen {
    text: String,
    args: String,
}

fn seen(format: StreamFormat, out: &[u8]) -> Seen {
    let mut text = String::new();
    let mut args = String::new();
    let evs = json_events(out);
    for v in &evs {
        match format {
            StreamFormat::OpenAiChat => {
                for c in v["choices"].as_array().unwrap() {
                    text += c["delta"]["content"].as_str().unwrap_or("");
                    if let Some(tcs) = c["delta"]["tool_calls"].as_array() {
                        for tc in tcs {
                            args += tc["function"]["arguments"].as_str().unwrap_or("");
                        }
                    }
                }
            }
            StreamFormat::OpenAiResponses => match v["type"].as_str().unwrap() {
                "response.output_text.delta" => text += v["delta"].as_str().unwrap(),
                "response.function_call_arguments.delta" => args += v["delta"].as_str().unwrap(),
                "response.output_text.done" => assert_eq!(v["text"], expected_text()),
                "response.function_call_arguments.done" => {
                    let a: Value = serde_json::from_str(v["arguments"].as_str().unwrap()).unwrap();
                    assert_eq!(a, expected_args());
                }
                "response.completed" => {
                    assert_eq!(
                        v["response"]["output"][0]["content"][0]["text"],
                        expected_text()
                    );
                    let a: Value = serde_json::from_str(
                        v["response"]["output"][1]["arguments"].as_str().unwrap(),
                    )
                    .unwrap();
                    assert_eq!(a, expected_args());
                }
                _ => {}
            },
            StreamFormat::Anthropic => {
                if v["type"] == "content_block_delta" {
                    match v["delta"]["type"].as_str().unwrap() {
                        "text_delta" => text += v["delta"]["text"].as_str().unwrap(),
                        "input_json_delta" => args += v["delta"]["partial_json"].as_str().unwrap(),
                        other => panic!("unexpected delta {other}"),
                    }
                }
            }
            StreamFormat::Gemini => {
                for c in v["candidates"].as_array().unwrap() {
                    for p in c["content"]["parts"].as_array().unwrap() {
                        if let Some(t) = p["text"].as_str() {
                            text += t;
                        }
                        if let Some(f) = p.get("functionCall") {
                            assert_eq!(f["args"], expected_args());
                        }
                    }
                }
            }
        }
    }
    Seen { text, args }
}

fn run(format: StreamFormat, pieces: &[&[u8]]) -> (Vec<u8>, RestoreStats) {
    let mut r = SseRestorer::new(format, Arc::new(mapping()));
    let mut out = Vec::new();
    for p in pieces {
        out.extend_from_slice(&r.push(p).expect("push"));
    }
    out.extend_from_slice(&r.finish());
    (out, r.stats())
}

type Builder = fn(&[&str], &[&str]) -> String;

const FORMATS: [(StreamFormat, Builder); 4] = [
    (StreamFormat::OpenAiChat, chat_stream),
    (StreamFormat::OpenAiResponses, responses_stream),
    (StreamFormat::Anthropic, anthropic_stream),
    (StreamFormat::Gemini, gemini_stream),
];

fn check_semantics(format: StreamFormat, out: &[u8], has_args: bool) {
    let s = seen(format, out);
    assert_eq!(s.text, expected_text(), "{format:?}");
    if has_args {
        let a: Value = serde_json::from_str(&s.args)
            .unwrap_or_else(|e| panic!("{format:?}: args not JSON: {e}"));
        assert_eq!(a, expected_args(), "{format:?}");
    }
}

#[test]
fn placeholder_split_across_events_at_every_position() {
    for (format, build) in FORMATS {
        let has_args = format != StreamFormat::Gemini;
        for text in two_way(MASKED_TEXT) {
            let input = build(&text, &chop(MASKED_ARGS, 5));
            let (out, _) = run(format, &[input.as_bytes()]);
            check_semantics(format, &out, has_args);
        }
        if has_args {
            for args in two_way(MASKED_ARGS) {
                let input = build(&chop(MASKED_TEXT, 4), &args);
                let (out, _) = run(format, &[input.as_bytes()]);
                check_semantics(format, &out, true);
            }
        }
        // one character per event
        let one: Vec<&str> = chop(MASKED_TEXT, 1);
        let input = build(&one, &chop(MASKED_ARGS, 1));
        let (out, _) = run(format, &[input.as_bytes()]);
        check_semantics(format, &out, has_args);
    }
}

#[test]
fn bytes_split_anywhere_give_the_same_output() {
    for (format, build) in FORMATS {
        let has_args = format != StreamFormat::Gemini;
        // Coarse deltas keep the stream short enough to try every split in a debug build;
        // placeholders still straddle events (fine-grained event splits are tested above).
        let input = build(&chop(MASKED_TEXT, 61), &chop(MASKED_ARGS, 37));
        let b = input.as_bytes();
        let (reference, ref_stats) = run(format, &[b]);
        check_semantics(format, &reference, has_args);
        // every expected placeholder restored: text 5 (+ args 3 when streamed), plus the
        // non-delta copies (done/completed events, Gemini's functionCall)
        assert!(ref_stats.restored >= 5, "{format:?}");
        assert!(ref_stats.unresolved >= 1, "{format:?}");
        for i in 0..=b.len() {
            let (out, st) = run(format, &[&b[..i], &b[i..]]);
            assert_eq!(out, reference, "{format:?} split at {i}");
            assert_eq!(st, ref_stats);
        }
        let ones: Vec<&[u8]> = b.chunks(1).collect();
        let (out, st) = run(format, &ones);
        assert_eq!(out, reference, "{format:?} byte by byte");
        assert_eq!(st, ref_stats);
        check_semantics(format, &out, has_args);
    }
}

#[test]
fn held_text_comes_out_before_the_ending_event() {
    // Chat: the text ends with "[EMAIL" (never completed); it must appear before the chunk
    // with finish_reason, in a minimal copy without the tool call's id or name.
    let input = chat_stream(&["a [EMAIL"], &["{}"]);
    let (out, _) = run(StreamFormat::OpenAiChat, &[input.as_bytes()]);
    let evs = json_events(&out);
    let fin = evs
        .iter()
        .position(|v| v["choices"][0]["finish_reason"] == "tool_calls")
        .unwrap();
    assert_eq!(
        evs[fin - 1]["choices"][0]["delta"],
        json!({"content": "[EMAIL"})
    );
    assert_eq!(evs[fin - 1]["id"], "chatcmpl-9x");
    assert!(evs[fin - 1].get("usage").is_none());
    let names = evs
        .iter()
        .filter(|v| v["choices"][0]["delta"]["tool_calls"][0]["function"]["name"].is_string())
        .count();
    assert_eq!(names, 1, "tool name not duplicated");

    // Anthropic: before content_block_stop of that index.
    let input = anthropic_stream(&["x [PERSON_"], &["{}"]);
    let (out, _) = run(StreamFormat::Anthropic, &[input.as_bytes()]);
    let evs = events(&out);
    let stop = evs
        .iter()
        .position(|(e, _)| e.as_deref() == Some("content_block_stop"))
        .unwrap();
    assert_eq!(evs[stop - 1].0.as_deref(), Some("content_block_delta"));
    let v: Value = serde_json::from_str(&evs[stop - 1].1).unwrap();
    assert_eq!(
        v,
        json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"[PERSON_"}})
    );

    // Responses: before response.output_text.done.
    let input = responses_stream(&["y [SECRET"], &["{}"]);
    let (out, _) = run(StreamFormat::OpenAiResponses, &[input.as_bytes()]);
    let evs = events(&out);
    let done = evs
        .iter()
        .position(|(e, _)| e.as_deref() == Some("response.output_text.done"))
        .unwrap();
    let v: Value = serde_json::from_str(&evs[done - 1].1).unwrap();
    assert_eq!(v["type"], "response.output_text.delta");
    assert_eq!(v["delta"], "[SECRET");

    // Gemini, finishing chunk carries text: appended to it.
    let input = gemini_stream(&["z [PHONE"], &[]);
    let (out, _) = run(StreamFormat::Gemini, &[input.as_bytes()]);
    let evs = json_events(&out);
    assert_eq!(
        evs[0]["candidates"][0]["content"]["parts"][0]["text"],
        "z [PHONE"
    );
    assert_eq!(evs[0]["usageMetadata"]["totalTokenCount"], 20);

    // Gemini, finishing chunk without that text: a copy before it, without usage.
    for text in two_way(MASKED_TEXT) {
        let input = gemini_stream_late_finish(&text);
        let (out, _) = run(StreamFormat::Gemini, &[input.as_bytes()]);
        assert_eq!(seen(StreamFormat::Gemini, &out).text, expected_text());
        let evs = json_events(&out);
        assert_eq!(
            evs.iter()
                .filter(|v| v.get("usageMetadata").is_some())
                .count(),
            1
        );
    }
}

#[test]
fn eof_flushes_and_keeps_a_truncated_event() {
    // No finish_reason, no [DONE], last event without its blank line.
    let chunk = |t: &str| json!({"id":"c","choices":[{"index":0,"delta":{"content":t},"finish_reason":null}]});
    let input = format!(
        "data: {}\n\ndata: {}",
        chunk("hi [PERSON_1] and [EMA"),
        chunk("IL_1] bye [PER")
    );
    let (out, st) = run(StreamFormat::OpenAiChat, &[input.as_bytes()]);
    assert_eq!(
        seen(StreamFormat::OpenAiChat, &out).text,
        format!("hi 김민수 and {EMAIL} bye [PER")
    );
    assert_eq!(st.restored, 2);
    assert!(out.ends_with(b"\n\n"));
}

#[test]
fn first_token_is_not_delayed() {
    let mut r = SseRestorer::new(StreamFormat::Anthropic, Arc::new(mapping()));
    let ev = named(
        "content_block_delta",
        &json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"안녕하세요"}}),
    );
    let out = r.push(ev.as_bytes()).unwrap();
    // unchanged events go out byte for byte, as soon as their blank line is in
    assert_eq!(&out[..], ev.as_bytes());
    // a delta ending in a possible placeholder: the event is still sent, with the rest of its text
    let ev = named(
        "content_block_delta",
        &json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"고객 [PERS"}}),
    );
    let out = r.push(ev.as_bytes()).unwrap();
    let v: Value = serde_json::from_str(&events(&out)[0].1).unwrap();
    assert_eq!(v["delta"]["text"], "고객 ");
    // an incomplete event is not sent yet
    assert!(r
        .push(b"event: content_block_delta\ndata: {\"type\"")
        .unwrap()
        .is_empty());
}

#[test]
fn sse_syntax_is_kept() {
    let input = "\u{feff}: ping\r\n\r\nid: 7\rretry: 3000\revent: content_block_delta\rdata: {\"type\":\"content_block_delta\",\r\ndata: \"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"[PERSON_1]\"}}\r\r: done\n\ndata:no-space\nunknown: x\n\ndata: [DONE]\n\n\n\n";
    for i in 0..=input.len() {
        let (a, b) = input.as_bytes().split_at(i);
        let (out, st) = run(StreamFormat::Anthropic, &[a, b]);
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            ": ping\n\nid: 7\nretry: 3000\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"김민수\"}}\n\n: done\n\ndata:no-space\nunknown: x\n\ndata: [DONE]\n\n",
            "split at {i}"
        );
        assert_eq!(st.restored, 1);
    }
}

#[test]
fn non_json_and_unknown_shapes() {
    // not JSON: passes through untouched, even with a placeholder in it
    let (out, st) = run(
        StreamFormat::OpenAiChat,
        &[b"data: not json [PERSON_1]\n\n"],
    );
    assert_eq!(out, b"data: not json [PERSON_1]\n\n");
    assert_eq!(st.restored, 0);
    // JSON of another shape: all strings restored whole
    let (out, _) = run(StreamFormat::OpenAiChat, &[b"data: {\"error\":{\"message\":\"bad [EMAIL_1]\",\"arguments\":\"{\\\"a\\\":\\\"[SECRET_1]\\\"}\"}}\n\n"]);
    let v = &json_events(&out)[0];
    assert_eq!(v["error"]["message"], format!("bad {EMAIL}"));
    let a: Value = serde_json::from_str(v["error"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(a["a"], SECRET);
    // invalid UTF-8 in data passes through
    let (out, _) = run(StreamFormat::Gemini, &[b"data: \xff[EMAIL_1]\n\n"]);
    assert_eq!(out, b"data: \xff[EMAIL_1]\n\n");
}

#[test]
fn too_large_event_fails() {
    let mut r = SseRestorer::with_limit(StreamFormat::OpenAiChat, Arc::new(mapping()), 64);
    assert!(r.push(b"data: {\"a\":1}\n\n").is_ok());
    let err = r
        .push(&[b'x'; 40])
        .and_then(|_| r.push(&[b'y'; 40]))
        .unwrap_err();
    assert_eq!(err.fault(), "upstream");
    // the message holds no stream content
    assert!(!err.to_string().contains("xx") && !err.to_string().contains("yy"));
    assert!(r.push(b"\n\n").is_err());
    assert!(r.finish().is_empty());
    // many lines in one event count too
    let mut r = SseRestorer::with_limit(StreamFormat::OpenAiChat, Arc::new(mapping()), 64);
    let lines = "data: 0123456789\n".repeat(10);
    assert!(r.push(lines.as_bytes()).is_err());
}

#[test]
fn several_choices_and_tool_calls_keep_their_streams() {
    let chunk = |i: u64, delta: Value, fin: Value| {
        data(&json!({"id":"c","choices":[{"index":i,"delta":delta,"finish_reason":fin}]}))
    };
    let mut s = String::new();
    s += &chunk(0, json!({"content":"A [EMA"}), Value::Null);
    s += &chunk(1, json!({"content":"B [PERSON"}), Value::Null);
    s += &chunk(
        0,
        json!({"tool_calls":[{"index":0,"id":"t0","function":{"name":"f","arguments":"{\"x\":\"[PHO"}},{"index":1,"id":"t1","function":{"name":"g","arguments":"{\"y\":\"[SEC"}}]}),
        Value::Null,
    );
    s += &chunk(0, json!({"content":"IL_1]"}), Value::Null);
    s += &chunk(1, json!({"content":"_1]"}), json!("stop"));
    s += &chunk(
        0,
        json!({"tool_calls":[{"index":1,"function":{"arguments":"RET_1]\"}"}},{"index":0,"function":{"arguments":"NE_1]\"}"}}]}),
        json!("tool_calls"),
    );
    s += "data: [DONE]\n\n";
    let (out, st) = run(StreamFormat::OpenAiChat, &[s.as_bytes()]);
    assert_eq!(
        st,
        RestoreStats {
            restored: 4,
            unresolved: 0
        }
    );
    let mut text = [String::new(), String::new()];
    let mut args = [String::new(), String::new()];
    for v in json_events(&out) {
        let c = &v["choices"][0];
        let i = c["index"].as_u64().unwrap() as usize;
        text[i] += c["delta"]["content"].as_str().unwrap_or("");
        for tc in c["delta"]["tool_calls"].as_array().into_iter().flatten() {
            args[tc["index"].as_u64().unwrap() as usize] +=
                tc["function"]["arguments"].as_str().unwrap();
        }
    }
    assert_eq!(text, [format!("A {EMAIL}"), "B 김민수".to_owned()]);
    assert_eq!(
        serde_json::from_str::<Value>(&args[0]).unwrap(),
        json!({"x":"010-1234-5678"})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&args[1]).unwrap(),
        json!({"y": SECRET})
    );
}

#[test]
fn restorer_is_send() {
    fn send<T: Send + 'static>() {}
    send::<SseRestorer>();
}

mod prop {
    use super::*;
    use crate::restore::text::{restore_str, Escape};
    use proptest::prelude::*;

    fn cut<'a>(s: &'a str, cuts: &[usize]) -> Vec<&'a str> {
        let mut pts: Vec<usize> = cuts
            .iter()
            .map(|&c| {
                let mut c = c % (s.len() + 1);
                while !s.is_char_boundary(c) {
                    c -= 1;
                }
                c
            })
            .collect();
        pts.extend([0, s.len()]);
        pts.sort_unstable();
        pts.windows(2).map(|w| &s[w[0]..w[1]]).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any text, cut into any events, the bytes cut anywhere: the client sees the text
        /// restored exactly as restore_str restores it whole.
        #[test]
        fn any_text_any_cuts(
            text in "([a-z가-힣 \\[\\]_0-9\"\\\\]|\\[EMAIL_1\\]|\\[PERSON|_1\\]|\\[SECRET_1\\]|\\[PHONE_9\\]){0,30}",
            event_cuts in proptest::collection::vec(any::<usize>(), 0..8),
            byte_cuts in proptest::collection::vec(any::<usize>(), 0..8),
            fmt in 0usize..4,
        ) {
            let (format, build) = FORMATS[fmt];
            let input = build(&cut(&text, &event_cuts), &["{}"]);
            let b = input.as_bytes();
            let mut pts: Vec<usize> = byte_cuts.iter().map(|c| c % (b.len() + 1)).collect();
            pts.extend([0, b.len()]);
            pts.sort_unstable();
            let pieces: Vec<&[u8]> = pts.windows(2).map(|w| &b[w[0]..w[1]]).collect();
            let (out, _) = run(format, &pieces);
            let m = mapping();
            let mut st = RestoreStats::default();
            let want = restore_str(&text, &m, Escape::None, &mut st);
            let mut got = String::new();
            for v in json_events(&out) {
                match format {
                    StreamFormat::OpenAiChat => {
                        for c in v["choices"].as_array().unwrap() {
                            got += c["delta"]["content"].as_str().unwrap_or("");
                        }
                    }
                    StreamFormat::OpenAiResponses => {
                        if v["type"] == "response.output_text.delta" {
                            got += v["delta"].as_str().unwrap();
                        }
                        if v["type"] == "response.output_text.done" {
                            prop_assert_eq!(v["text"].as_str().unwrap(), want.as_ref());
                        }
                    }
                    StreamFormat::Anthropic => {
                        if v["delta"]["type"] == "text_delta" {
                            got += v["delta"]["text"].as_str().unwrap();
                        }
                    }
                    StreamFormat::Gemini => {
                        for c in v["candidates"].as_array().unwrap() {
                            for p in c["content"]["parts"].as_array().unwrap() {
                                got += p["text"].as_str().unwrap_or("");
                            }
                        }
                    }
                }
            }
            prop_assert_eq!(got, want.into_owned());
        }
    }
}
