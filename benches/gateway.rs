//! End-to-end overhead of the gateway, against a direct call to the same upstream in the same
//! run (the baseline), plus the per-stage costs.
//!
//! * `chat_2kb_json/{direct,via_garim}`: a 2 KB chat request with five findings, JSON answer.
//! * `chat_2kb_sse_first_byte/{direct,via_garim}`: the same with `"stream": true`, timed to
//!   the first byte of the body (time-to-first-token as a client sees it).
//! * `stages/*`: detection on the 2 KB prompt, mask+restore of the JSON answer, SSE restore.
//! * `normalize/*`: the normalisation pre-pass on ~60 KB texts: ASCII and Korean with nothing
//!   to fold (fast path), Korean with full-width phones (slow path), and detection with and
//!   without it.
//! * `reload/build_engine`: building the engine from the configuration, as a hot reload does.
//!
//! The gateway runs in-process (the real library stack: server, pipeline, client) on port 0;
//! the upstream is `common::mock_upstream`. Run: `cargo bench --bench gateway`.

mod common;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use garim::config::Config;
use garim::pipeline::Gateway;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn post(client: &HttpClient, url: &str, body: &str, first_byte_only: bool) -> Bytes {
    let req = http::Request::post(url)
        .header("content-type", "application/json")
        .header("authorization", "Bearer bench")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let resp = client.request(req).await.expect("request");
    assert!(resp.status().is_success(), "status {}", resp.status());
    let mut body = resp.into_body();
    if first_byte_only {
        let first = body
            .frame()
            .await
            .expect("a first frame")
            .expect("frame")
            .into_data()
            .unwrap_or_default();
        // Drain the rest so the connection goes back to the pool.
        while body.frame().await.is_some() {}
        return first;
    }
    body.collect().await.expect("body").to_bytes()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let (direct, via, gateway) = rt.block_on(async {
        let up = common::mock_upstream::spawn("127.0.0.1:0".parse().unwrap()).await;
        let mut cfg = Config::embedded_default();
        cfg.apply_overrides(
            Some("127.0.0.1:0"),
            &[format!("/openai=http://{up}")],
            Some(audit.to_str().unwrap()),
        )
        .unwrap();
        let gw = Arc::new(Gateway::from_config(Arc::new(cfg)).unwrap());
        let listener = garim::server::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let server = garim::server::Server::new(gw.clone());
        tokio::spawn(server.serve(listener, None, std::future::pending()));
        (
            format!("http://{up}/v1/chat/completions"),
            format!("http://{addr}/openai/v1/chat/completions"),
            gw,
        )
    });
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let json_body = common::mock_upstream::chat_request_2kb(false);
    let sse_body = common::mock_upstream::chat_request_2kb(true);

    // Guard: the gateway must really mask and restore, or the figures mean nothing.
    rt.block_on(async {
        let out = post(&client, &via, &json_body, false).await;
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("kim.minsu@example.com") && text.contains("900101-1234568"),
            "not restored: {text}"
        );
    });

    let mut g = c.benchmark_group("chat_2kb_json");
    for (name, url) in [("direct", &direct), ("via_garim", &via)] {
        g.bench_function(name, |b| {
            b.to_async(&rt)
                .iter(|| post(&client, url, &json_body, false))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("chat_2kb_sse_first_byte");
    for (name, url) in [("direct", &direct), ("via_garim", &via)] {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| post(&client, url, &sse_body, true))
        });
    }
    g.finish();

    let prompt: serde_json::Value = serde_json::from_str(&json_body).unwrap();
    let text = prompt["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut g = c.benchmark_group("stages");
    g.throughput(criterion::Throughput::Bytes(text.len() as u64));
    g.bench_function("detect_2kb", |b| {
        b.iter(|| gateway.engine.current().detect(&text).unwrap())
    });
    g.finish();

    // Restoring the mock's answer to this prompt, with the mapping the vault holds for it.
    let engine = gateway.engine.current();
    let findings = engine.detect(&text).unwrap();
    let mut mapping = garim::mask::Mapping::default();
    let mut placeholders = Vec::new();
    for (i, f) in findings.iter().enumerate() {
        let p = garim::mask::Placeholder {
            label: f.label,
            n: i as u32 + 1,
        };
        mapping.insert(p, &text[f.start..f.end]);
        placeholders.push(p);
    }
    let masked = garim::mask::apply(&text, &findings, &placeholders);
    let mapping = Arc::new(mapping);
    let json = common::mock_upstream::chat_json(&masked);
    let sse = common::mock_upstream::chat_sse(&masked);
    let mut g = c.benchmark_group("restore");
    g.throughput(criterion::Throughput::Bytes(json.len() as u64));
    g.bench_function("json_2kb", |b| {
        b.iter(|| garim::restore::restore_json_body(json.as_bytes(), &mapping).unwrap())
    });
    g.throughput(criterion::Throughput::Bytes(sse.len() as u64));
    g.bench_function("sse_2kb", |b| {
        b.iter(|| {
            let mut r = garim::restore::SseRestorer::new(
                garim::restore::StreamFormat::OpenAiChat,
                mapping.clone(),
            );
            r.push(sse.as_bytes()).unwrap().len() + r.finish().len()
        })
    });
    g.finish();

    // Normalisation: the fast path (nothing to fold) must cost next to nothing.
    let ascii = "Order 1234 shipped to kim.minsu@example.com; call +1 415 555 0100. ".repeat(1000);
    let korean =
        "홍길동 고객님, “주문하신” 상품이 발송되었습니다… 문의: 02-123-4567 (평일 9시~6시). "
            .repeat(700);
    let folded = korean.replace("02-123-4567", "０２－１２３－４５６７\u{200b}");
    let mut g = c.benchmark_group("normalize");
    for (name, t) in [
        ("ascii_fast", &ascii),
        ("korean_fast", &korean),
        ("korean_folded", &folded),
    ] {
        g.throughput(criterion::Throughput::Bytes(t.len() as u64));
        g.bench_function(name, |b| b.iter(|| garim::detect::normalize::normalize(t)));
    }
    let engine = gateway.engine.current();
    let raw = (*engine).clone().with_normalization(false);
    for (name, t) in [("korean", &korean), ("korean_folded", &folded)] {
        g.throughput(criterion::Throughput::Bytes(t.len() as u64));
        g.bench_function(format!("detect_{name}/normalising"), |b| {
            b.iter(|| engine.detect(t).unwrap())
        });
        g.bench_function(format!("detect_{name}/raw"), |b| {
            b.iter(|| raw.detect(t).unwrap())
        });
    }
    g.finish();

    // What a hot reload costs: building the engine from the configuration (built-in packs).
    let mut g = c.benchmark_group("reload");
    g.sample_size(10);
    let detect_settings = gateway.config.detect.clone();
    g.bench_function("build_engine", |b| {
        b.iter(|| garim::detect::build_engine(&detect_settings).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
