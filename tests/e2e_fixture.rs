//! Tests of the test fixture itself (no gateway): the fake upstream records what it gets and
//! answers each API's format, its knobs work, and the shared assertion helpers can fail.

mod common;

use common::gateway::{post_json, request};
use common::upstream::{echo_text, extra_value, Behavior, Canned, Recorded, Upstream};
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn masked(v: &Value) -> Value {
    let mut s = serde_json::to_string(v).unwrap();
    for (i, (val, label)) in PLANTED.iter().enumerate() {
        s = s.replace(val, &format!("[{label}_{}]", i + 1));
    }
    serde_json::from_str(&s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_exactly_and_echoes_chat_json() {
    let up = Upstream::start().await;
    let req = masked(&chat_request(false));
    let bytes = serde_json::to_vec(&req).unwrap();
    let resp = request(
        "POST",
        &format!("{}/v1/chat/completions?x=1&y=two", up.url()),
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer sk-test"),
        ],
        bytes.clone(),
    )
    .await;
    assert_eq!(resp.status, 200);
    let rec = up.last();
    assert_eq!(rec.method, "POST");
    assert_eq!(rec.uri, "/v1/chat/completions?x=1&y=two");
    assert_eq!(rec.body.as_ref(), bytes.as_slice());
    assert_eq!(
        rec.header("Authorization").as_deref(),
        Some("Bearer sk-test")
    );
    let v = resp.json();
    let echo = echo_text(&req);
    assert!(echo.contains("[EMAIL_1]") && echo.contains("Again: I'm Kim"));
    assert_eq!(
        v["choices"][0]["message"]["content"].as_str(),
        Some(echo.as_str())
    );
    let args = parse_args(
        "fixture",
        v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(args["to"], json!("[EMAIL_1]"));
    assert_eq!(args["note"].as_str(), Some(echo.as_str()));
    assert!(v.get("x_fixture_extra").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_sse_byte_by_byte_reassembles() {
    let up = Upstream::start().await;
    up.set(Behavior {
        delta_chars: 3,
        write_chunk: Some(1),
        extra_fields: true,
        ..Default::default()
    });
    let req = masked(&chat_request(true));
    let resp = post_json(&format!("{}/v1/chat/completions", up.url()), &req).await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    assert!(resp.body_error.is_none());
    assert!(
        resp.frames > 10,
        "K=1 should arrive in many frames, got {}",
        resp.frames
    );
    let events = resp.events();
    let (content, args, done) = chat_stream_parts(&events);
    let echo = echo_text(&req);
    assert_eq!(content, echo);
    assert!(done);
    let args = parse_args("fixture", &args);
    assert_eq!(args["to"], json!("[EMAIL_1]"));
    // deltas of 3 chars: every content delta is at most 3 chars
    for e in &events[..events.len() - 1] {
        let v = e.json();
        assert_eq!(v["x_fixture_extra"], extra_value());
        if let Some(s) = v["choices"][0]["delta"]["content"].as_str() {
            assert!(s.chars().count() <= 3);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_answers_in_its_format() {
    let up = Upstream::start().await;
    up.set(Behavior {
        delta_chars: 5,
        write_chunk: Some(17),
        ..Default::default()
    });
    // Responses, JSON and SSE
    let req = masked(&responses_request(false));
    let echo = echo_text(&req);
    let v = post_json(&format!("{}/v1/responses", up.url()), &req)
        .await
        .json();
    assert_eq!(
        v["output"][0]["content"][0]["text"].as_str(),
        Some(echo.as_str())
    );
    assert_eq!(
        parse_args("r", v["output"][1]["arguments"].as_str().unwrap())["to"],
        json!("[EMAIL_1]")
    );
    let req = masked(&responses_request(true));
    let r = post_json(&format!("{}/v1/responses", up.url()), &req).await;
    let (deltas, done, args, completed) = responses_stream_parts(&r.events());
    assert_eq!(deltas, echo);
    assert_eq!(done, echo);
    assert_eq!(parse_args("r", &args)["note"].as_str(), Some(echo.as_str()));
    assert_eq!(
        completed.unwrap()["response"]["output"][0]["content"][0]["text"].as_str(),
        Some(echo.as_str())
    );
    assert!(r
        .events()
        .iter()
        .all(|e| e.event.as_deref() == e.json()["type"].as_str()));
    // Embeddings
    let req = masked(&embeddings_request());
    let v = post_json(&format!("{}/v1/embeddings", up.url()), &req)
        .await
        .json();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    // Anthropic
    let req = masked(&anthropic_request(false));
    let echo = echo_text(&req);
    let v = post_json(&format!("{}/v1/messages", up.url()), &req)
        .await
        .json();
    assert_eq!(v["content"][0]["text"].as_str(), Some(echo.as_str()));
    assert_eq!(v["content"][1]["input"]["to"], json!("[EMAIL_1]"));
    let req = masked(&anthropic_request(true));
    let r = post_json(&format!("{}/v1/messages", up.url()), &req).await;
    let (text, pj, stop) = anthropic_stream_parts(&r.events());
    assert_eq!(text, echo);
    assert!(stop);
    assert_eq!(parse_args("a", &pj)["to"], json!("[EMAIL_1]"));
    // Gemini
    let req = masked(&gemini_request());
    let echo = echo_text(&req);
    let v = post_json(
        &format!(
            "{}/v1beta/models/gemini-2.0-flash:generateContent",
            up.url()
        ),
        &req,
    )
    .await
    .json();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"].as_str(),
        Some(echo.as_str())
    );
    assert_eq!(v["modelVersion"], json!("gemini-2.0-flash"));
    let r = post_json(
        &format!(
            "{}/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            up.url()
        ),
        &req,
    )
    .await;
    assert!(r.text().contains("\r\n\r\n"), "Gemini SSE uses CRLF");
    let (text, args) = gemini_stream_parts(&r.events());
    assert_eq!(text, echo);
    assert_eq!(args.unwrap()["to"], json!("[EMAIL_1]"));
    assert_eq!(
        up.last().uri,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    );
    // Unknown path: echo object
    let v = post_json(&format!("{}/v1/files", up.url()), &json!({"a": "b"}))
        .await
        .json();
    assert_eq!(v["fixture"], json!("unknown-path"));
    assert_eq!(up.count(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knobs_status_delay_close_truncate_gzip() {
    let up = Upstream::start().await;
    let url = format!("{}/v1/chat/completions", up.url());
    let req = masked(&chat_request(false));

    let body =
        json!({"error": {"message": "boom", "type": "server_error", "param": null, "code": null}});
    let mut canned = Canned::json(503, &body);
    canned.headers.push(("retry-after".into(), "7".into()));
    up.set(Behavior {
        respond: Some(canned),
        ..Default::default()
    });
    let r = post_json(&url, &req).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json(), body);
    assert_eq!(r.header("retry-after").as_deref(), Some("7"));

    up.set(Behavior {
        delay_headers: Some(Duration::from_millis(300)),
        ..Default::default()
    });
    let t = Instant::now();
    assert_eq!(post_json(&url, &req).await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));

    up.set(Behavior {
        close_after: Some(40),
        write_chunk: Some(8),
        ..Default::default()
    });
    let r = post_json(&url, &req).await;
    assert!(r.body_error.is_some(), "close_after must break the body");
    assert_eq!(r.raw.len(), 40);

    let sreq = masked(&chat_request(true));
    up.set(Behavior {
        close_after: Some(100),
        ..Default::default()
    });
    let r = post_json(&url, &sreq).await;
    assert!(
        r.body_error.is_some(),
        "close_after must break a stream too"
    );
    assert_eq!(r.raw.len(), 100);

    up.set(Behavior {
        truncate_after: Some(123),
        ..Default::default()
    });
    let r = post_json(&url, &sreq).await;
    assert!(
        r.body_error.is_none(),
        "truncate_after ends cleanly: {:?}",
        r.body_error
    );
    assert_eq!(r.raw.len(), 123);

    up.set(Behavior {
        gzip: true,
        ..Default::default()
    });
    let r = post_json(&url, &req).await;
    assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"));
    assert_ne!(r.raw, r.body);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"].as_str(),
        Some(echo_text(&req).as_str())
    );

    up.set(Behavior {
        reply_text: Some("hello [EMAIL_9]".into()),
        extra_fields: true,
        ..Default::default()
    });
    let v = post_json(&url, &req).await.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        json!("hello [EMAIL_9]")
    );
    assert_eq!(v["x_fixture_extra"], extra_value());
    assert!(v.to_string().contains("12345678901234567890123"));
    assert!(serde_json::to_string(&v).unwrap().contains("\"dec\":1.50"));
    assert!(up.wait_for_requests(7, Duration::from_secs(1)).await);
    assert!(!up.wait_for_requests(8, Duration::from_millis(100)).await);
}

#[test]
fn sse_parser_handles_crlf_multiline_comments() {
    let ev = parse_sse(
        b": ping\r\nevent: a\r\ndata: {\"x\":1}\r\n\r\ndata: l1\ndata: l2\n\n\rdata:nospace\r\r",
    );
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[0].event.as_deref(), Some("a"));
    assert_eq!(ev[0].json(), json!({"x": 1}));
    assert_eq!(ev[1].data, "l1\nl2");
    assert_eq!(ev[2].data, "nospace");
}

fn rec(body: &Value) -> Recorded {
    Recorded {
        method: "POST".into(),
        uri: "/v1/chat/completions".into(),
        headers: vec![],
        body: serde_json::to_vec(body).unwrap().into(),
    }
}

#[test]
fn assert_masked_accepts_masking_and_catches_leaks() {
    let sent = chat_request(false);
    let map = assert_masked(&sent, &rec(&masked(&sent)));
    assert_eq!(map["EMAIL"], "[EMAIL_1]");
    assert_eq!(map["PHONE"], "[PHONE_4]");

    // a raw value left in place
    let leaky = sent.clone();
    assert!(std::panic::catch_unwind(|| assert_masked(&sent, &rec(&leaky))).is_err());
    // a digits-only variant leaked
    let mut v = masked(&sent);
    v["messages"][1]["content"] =
        json!("card 4111111111111111 [EMAIL_1] [CREDIT_CARD_2] [NATIONAL_ID_3] [PHONE_4]");
    assert!(std::panic::catch_unwind(|| assert_masked(&sent, &rec(&v))).is_err());
    // an unknown field changed
    let mut v = masked(&sent);
    v["x_unknown_top"]["dec"] = json!(2.5);
    assert!(std::panic::catch_unwind(|| assert_masked(&sent, &rec(&v))).is_err());
    // the same value under two placeholders
    let mut v = masked(&sent);
    let s = v["messages"][1]["content"]
        .as_str()
        .unwrap()
        .replace("[EMAIL_1]", "[EMAIL_2]");
    v["messages"][1]["content"] = json!(s);
    assert!(std::panic::catch_unwind(|| assert_masked(&sent, &rec(&v))).is_err());
    // tool arguments no longer JSON
    let mut v = masked(&sent);
    v["messages"][2]["tool_calls"][0]["function"]["arguments"] = json!("{\"email\":[EMAIL_1]");
    assert!(std::panic::catch_unwind(|| assert_masked(&sent, &rec(&v))).is_err());
}

#[test]
fn leak_forms_cover_escapes_and_digits() {
    let f = leak_forms();
    for want in [
        "4111111111111111",
        "9001011234568",
        "01023456789",
        "kim.minsu\\u0040example.com",
    ] {
        assert!(f.iter().any(|x| x == want), "{want}");
    }
    assert!(std::panic::catch_unwind(|| assert_no_leak("x", b"KIM.MINSU@EXAMPLE.COM")).is_err());
    assert_no_leak("x", b"[EMAIL_1] [PHONE_1]");
}

/// Reads the raw bytes the fixture puts on the socket for one request until it closes.
async fn raw_exchange(up: &Upstream, body: &Value, path: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = serde_json::to_vec(body).unwrap();
    let mut s = tokio::net::TcpStream::connect(up.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("fixture did not close")
        .ok();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_after_puts_n_body_bytes_on_the_wire() {
    let up = Upstream::start().await;
    let req = masked(&chat_request(false));
    up.set(Behavior {
        close_after: Some(40),
        write_chunk: Some(8),
        ..Default::default()
    });
    let out = raw_exchange(&up, &req, "/v1/chat/completions").await;
    let text = String::from_utf8_lossy(&out);
    let i = text.find("\r\n\r\n").unwrap() + 4;
    assert!(text.contains("content-length:"), "{text}");
    assert_eq!(out.len() - i, 40, "{text}");
    assert!(text[i..].starts_with("{\"id\":\"chatcmpl-1\""), "{text}");
}
