//! End to end, Gemini generateContent / streamGenerateContent?alt=sse: systemInstruction,
//! contents, functionCall args and functionResponse are masked; text and functionCall args are
//! restored; the query string (alt, key) is kept.

mod common;

use common::upstream::{extra_value, Behavior, Upstream};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_json_masks_every_field_and_restores() {
    let up = Upstream::start().await;
    up.set(Behavior {
        extra_fields: true,
        ..Default::default()
    });
    let gw = gateway_for(&up, "");
    let sent = gemini_request();
    let resp = gw
        .post_json_with(GEMINI, &[("x-goog-api-key", "gk-test")], &sent)
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let rec = up.last();
    assert_eq!(rec.uri, "/v1beta/models/gemini-2.0-flash:generateContent");
    assert_eq!(rec.header("x-goog-api-key").as_deref(), Some("gk-test"));
    let map = assert_masked(&sent, &rec);
    let echo = expected_echo(&sent);
    let v = resp.json();
    let parts = &v["candidates"][0]["content"]["parts"];
    assert_eq!(parts[0]["text"].as_str(), Some(echo.as_str()));
    assert_args(
        "functionCall args",
        &parts[1]["functionCall"]["args"],
        &echo,
    );
    assert_eq!(v["x_fixture_extra"], extra_value());
    assert_no_placeholders("gemini", &resp.text(), &map);
    assert_all_restored("gemini", &resp.text());
}

async fn gemini_stream_case(delta_chars: usize, write_chunk: Option<usize>) {
    let up = Upstream::start().await;
    up.set(Behavior {
        delta_chars,
        write_chunk,
        extra_fields: true,
        ..Default::default()
    });
    let gw = gateway_for(&up, "");
    let sent = gemini_request();
    let resp = gw
        .post_json(&format!("{GEMINI_SSE}&key=gk-query"), &sent)
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.body_error.is_none(),
        "stream broke: {:?}",
        resp.body_error
    );
    let rec = up.last();
    assert_eq!(
        rec.uri,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse&key=gk-query"
    );
    let map = assert_masked(&sent, &rec);
    let events = resp.events();
    assert!(
        events.len() > 1,
        "expected several chunks, got {}",
        events.len()
    );
    for e in &events {
        assert_eq!(e.json()["x_fixture_extra"], extra_value());
    }
    let (text, args) = gemini_stream_parts(&events);
    let echo = expected_echo(&sent);
    assert_eq!(text, echo, "streamed text not restored exactly");
    assert_args(
        "streamed functionCall",
        &args.expect("no functionCall"),
        &echo,
    );
    assert_no_placeholders("gemini stream", &resp.text(), &map);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_sse_one_char_chunks() {
    gemini_stream_case(1, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_sse_split_placeholders() {
    gemini_stream_case(5, Some(29)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_sse_every_byte_boundary() {
    gemini_stream_case(19, Some(1)).await;
}
