//! End to end, Anthropic Messages: system blocks, tool_use input and tool_result content are
//! masked; text deltas and input_json_delta are restored however the stream is cut.

mod common;

use common::upstream::{extra_value, Behavior, Upstream};
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_json_masks_every_field_and_restores() {
    let up = Upstream::start().await;
    up.set(Behavior {
        extra_fields: true,
        ..Default::default()
    });
    let gw = gateway_for(&up, "");
    let sent = anthropic_request(false);
    let resp = gw
        .post_json_with(
            MESSAGES,
            &[
                ("x-api-key", "sk-ant-test"),
                ("anthropic-version", "2023-06-01"),
            ],
            &sent,
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let rec = up.last();
    assert_eq!(rec.uri, "/v1/messages");
    assert_eq!(rec.header("x-api-key").as_deref(), Some("sk-ant-test"));
    assert_eq!(
        rec.header("anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    let map = assert_masked(&sent, &rec);
    let echo = expected_echo(&sent);
    let v = resp.json();
    assert_eq!(v["content"][0]["text"].as_str(), Some(echo.as_str()));
    assert_args("tool_use input", &v["content"][1]["input"], &echo);
    assert_eq!(v["x_fixture_extra"], extra_value());
    assert_eq!(v["stop_reason"], json!("tool_use"));
    assert_no_placeholders("messages", &resp.text(), &map);
    assert_all_restored("messages", &resp.text());
}

async fn messages_stream_case(delta_chars: usize, write_chunk: Option<usize>) {
    let up = Upstream::start().await;
    up.set(Behavior {
        delta_chars,
        write_chunk,
        extra_fields: true,
        ..Default::default()
    });
    let gw = gateway_for(&up, "");
    let sent = anthropic_request(true);
    let resp = gw.post_json(MESSAGES, &sent).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.body_error.is_none(),
        "stream broke: {:?}",
        resp.body_error
    );
    let map = assert_masked(&sent, &up.last());
    let events = resp.events();
    let names: Vec<&str> = events.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    for e in &events {
        let v = e.json();
        assert_eq!(e.event.as_deref(), v["type"].as_str());
        assert_eq!(v["x_fixture_extra"], extra_value());
    }
    let (text, partial_json, stop) = anthropic_stream_parts(&events);
    let echo = expected_echo(&sent);
    assert_eq!(text, echo, "text deltas not restored exactly");
    assert!(stop);
    assert_args(
        "input_json_delta",
        &parse_args("input_json_delta", &partial_json),
        &echo,
    );
    assert_no_placeholders("messages stream", &resp.text(), &map);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sse_one_char_deltas() {
    messages_stream_case(1, Some(4096)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sse_split_placeholders() {
    messages_stream_case(4, Some(33)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sse_every_byte_boundary() {
    messages_stream_case(17, Some(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_as_plain_string_is_masked() {
    let up = Upstream::start().await;
    let gw = gateway_for(&up, "");
    let sent = json!({
        "model": "claude-haiku-4-5", "max_tokens": 64,
        "system": format!("Customer: {PROMPT}"),
        "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}]
    });
    let resp = gw.post_json(MESSAGES, &sent).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_masked(&sent, &up.last());
    assert_eq!(
        resp.json()["content"][0]["text"].as_str(),
        Some(expected_echo(&sent).as_str())
    );
}
