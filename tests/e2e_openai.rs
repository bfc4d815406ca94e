//! End to end, OpenAI formats (chat completions, Responses, embeddings): the upstream sees
//! placeholders only, the client gets every value back in JSON and in SSE however the stream is
//! cut, unknown fields pass both ways.

mod common;

use common::upstream::{extra_value, Behavior, Upstream};
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_json_masks_every_field_and_restores_the_answer() {
    let up = Upstream::start().await;
    up.set(Behavior {
        extra_fields: true,
        ..Default::default()
    });
    let gw = gateway_for(&up, "");
    let sent = chat_request(false);
    let resp = gw
        .post_json_with(CHAT, &[("authorization", "Bearer sk-test-123")], &sent)
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let rec = up.last();
    assert_eq!(rec.method, "POST");
    assert_eq!(rec.uri, "/v1/chat/completions");
    assert_eq!(
        rec.header("authorization").as_deref(),
        Some("Bearer sk-test-123")
    );
    let map = assert_masked(&sent, &rec);

    let echo = expected_echo(&sent);
    let v = resp.json();
    let msg = &v["choices"][0]["message"];
    assert_eq!(
        msg["content"].as_str(),
        Some(echo.as_str()),
        "content not restored exactly"
    );
    let args = parse_args(
        "chat tool call",
        msg["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    );
    assert_args("chat tool call", &args, &echo);
    assert_no_placeholders("chat response", &resp.text(), &map);
    assert_all_restored("chat response", &resp.text());
    // unknown fields of the response, at every level, reach the client unchanged
    assert_eq!(v["x_fixture_extra"], extra_value());
    assert_eq!(v["choices"][0]["x_choice_extra"], json!({"kept": true}));
    assert_eq!(msg["x_message_extra"], json!("kept"));
    assert!(
        resp.text().contains("\"dec\":1.50"),
        "number text changed: {}",
        resp.text()
    );
    assert_eq!(v["usage"]["total_tokens"], json!(30));
}

async fn chat_stream_case(delta_chars: usize, write_chunk: Option<usize>) {
    let up = Upstream::start().await;
    up.set(Behavior {
        delta_chars,
        write_chunk,
        extra_fields: true,
        ..Default::default()
    });
    let gw = gateway_for(&up, "");
    let sent = chat_request(true);
    let resp = gw.post_json(CHAT, &sent).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.body_error.is_none(),
        "stream broke: {:?}",
        resp.body_error
    );
    let ct = resp.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("text/event-stream"), "content-type {ct}");
    let map = assert_masked(&sent, &up.last());
    let events = resp.events();
    for e in &events {
        if e.data != "[DONE]" {
            assert_eq!(
                e.json()["x_fixture_extra"],
                extra_value(),
                "unknown field lost in a chunk"
            );
        }
    }
    let (content, args, done) = chat_stream_parts(&events);
    let echo = expected_echo(&sent);
    assert_eq!(content, echo, "streamed content not restored exactly");
    assert!(done, "no [DONE]");
    assert_args(
        "streamed tool call",
        &parse_args("streamed tool call", &args),
        &echo,
    );
    assert_no_placeholders("chat stream", &resp.text(), &map);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_sse_one_char_deltas() {
    chat_stream_case(1, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_sse_deltas_split_placeholders_odd_writes() {
    chat_stream_case(3, Some(61)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_sse_every_byte_boundary() {
    chat_stream_case(11, Some(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_gzip_upstream_json_and_sse() {
    let up = Upstream::start().await;
    up.set(Behavior {
        gzip: true,
        delta_chars: 4,
        write_chunk: Some(5),
        ..Default::default()
    });
    let gw = gateway_for(&up, "");
    let sent = chat_request(false);
    let resp = gw.post_json(CHAT, &sent).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let echo = expected_echo(&sent);
    assert_eq!(
        resp.json()["choices"][0]["message"]["content"].as_str(),
        Some(echo.as_str())
    );
    let sent = chat_request(true);
    let resp = gw.post_json(CHAT, &sent).await;
    assert_eq!(resp.status, 200);
    let (content, _, done) = chat_stream_parts(&resp.events());
    assert_eq!(content, echo);
    assert!(done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_string_is_kept() {
    let up = Upstream::start().await;
    let gw = gateway_for(&up, "");
    let resp = gw
        .post_json(
            &format!("{CHAT}?api-version=2024-06-01&x=a%20b"),
            &chat_request(false),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        up.last().uri,
        "/v1/chat/completions?api-version=2024-06-01&x=a%20b"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_json_masks_and_restores() {
    let up = Upstream::start().await;
    up.set(Behavior {
        extra_fields: true,
        ..Default::default()
    });
    let gw = gateway_for(&up, "");
    let sent = responses_request(false);
    let resp = gw.post_json(RESPONSES, &sent).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let rec = up.last();
    assert_eq!(rec.uri, "/v1/responses");
    let map = assert_masked(&sent, &rec);
    let echo = expected_echo(&sent);
    let v = resp.json();
    assert_eq!(
        v["output"][0]["content"][0]["text"].as_str(),
        Some(echo.as_str())
    );
    let args = parse_args(
        "responses function_call",
        v["output"][1]["arguments"].as_str().unwrap(),
    );
    assert_args("responses function_call", &args, &echo);
    assert_eq!(v["x_fixture_extra"], extra_value());
    assert_no_placeholders("responses", &resp.text(), &map);
}

async fn responses_stream_case(delta_chars: usize, write_chunk: Option<usize>) {
    let up = Upstream::start().await;
    up.set(Behavior {
        delta_chars,
        write_chunk,
        extra_fields: true,
        ..Default::default()
    });
    let gw = gateway_for(&up, "");
    let sent = responses_request(true);
    let resp = gw.post_json(RESPONSES, &sent).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.body_error.is_none(),
        "stream broke: {:?}",
        resp.body_error
    );
    let map = assert_masked(&sent, &up.last());
    let events = resp.events();
    for e in &events {
        let v = e.json();
        assert_eq!(
            e.event.as_deref(),
            v["type"].as_str(),
            "event name and type disagree"
        );
        assert_eq!(v["x_fixture_extra"], extra_value());
    }
    let (deltas, done, args, completed) = responses_stream_parts(&events);
    let echo = expected_echo(&sent);
    assert_eq!(deltas, echo, "output_text deltas not restored exactly");
    assert_eq!(done, echo, "output_text.done not restored");
    assert_args(
        "responses stream",
        &parse_args("responses stream", &args),
        &echo,
    );
    let completed = completed.expect("no response.completed");
    assert_eq!(
        completed["response"]["output"][0]["content"][0]["text"].as_str(),
        Some(echo.as_str())
    );
    assert_no_placeholders("responses stream", &resp.text(), &map);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_sse_split_placeholders() {
    responses_stream_case(2, Some(97)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_sse_every_byte_boundary() {
    responses_stream_case(13, Some(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_input_is_masked() {
    let up = Upstream::start().await;
    up.set(Behavior {
        extra_fields: true,
        ..Default::default()
    });
    let gw = gateway_for(&up, "");
    let sent = embeddings_request();
    let resp = gw.post_json(EMBEDDINGS, &sent).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let rec = up.last();
    assert_eq!(rec.uri, "/v1/embeddings");
    assert_masked(&sent, &rec);
    let v = resp.json();
    assert_eq!(v["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["data"][1]["embedding"], json!([0.25, -0.5, 0.125]));
    assert_eq!(v["x_fixture_extra"], extra_value());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_string_embedding_input() {
    let up = Upstream::start().await;
    let gw = gateway_for(&up, "");
    let sent = json!({"model": "text-embedding-3-small", "input": PROMPT});
    let resp = gw.post_json(EMBEDDINGS, &sent).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_masked(&sent, &up.last());
}
