//! NER cost: latency of a 2 KB prompt on one core, throughput with batching, memory.
//!
//! What: loads the shipped models (models/ko-ner, models/en-ner) on the real ONNX Runtime
//! (scripts/install-onnxruntime.sh puts it in .ort/lib). The prompts are ~2 KB of held-out
//! sentences (tests/data/ner/{ko,en}_heldout.jsonl) joined into one text, as a chat message
//! would be.
//! * criterion `ner/ko_2kb`, `ner/en_2kb`: one `NerModel` (one session, one intra-op thread),
//!   one prompt per call: the time a request waits for NER on an idle gateway.
//! * criterion `ner/chat_12_messages_one_by_one` and `ner/chat_12_messages_together`: an
//!   [`Engine`] over the language router with one pool per model (two workers each), on a
//!   chat request of 12 messages (~200 B each, Korean and English in turn): each message
//!   detected after the other (what the gateway did before `Engine::detect_all` queued them
//!   all) against all at once (the pools batch them and the two models run side by side).
//! * printed before criterion runs: p50/p99 of 300 calls per model (criterion reports means and
//!   medians, the issue asks for p99 too); throughput of a `NerPool` with 2 workers (one per
//!   core) and micro-batching under 16 concurrent callers, in KB of prompt per second; RSS
//!   after both models are loaded and after the runs.
//!
//! Run: `scripts/install-onnxruntime.sh && cargo bench --bench ner` (pin with `taskset -c 0`
//! for the one-core figures; the throughput part needs both cores). `GARIM_BENCH_MODELS=DIR`
//! loads `DIR/ko-ner` and `DIR/en-ner` instead, to measure a baseline in the same session.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{black_box, Criterion};
use garim::config::NerLanguage;
use garim::detect::ner::{NerModel, NerPool, NerRouter, PoolConfig, TokenClassifier};
use garim::detect::{Detector, Engine};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(name: &str) -> Arc<TokenClassifier> {
    // GARIM_BENCH_MODELS: another directory of models (a baseline, e.g. the fp32 exports).
    let dir = std::env::var_os("GARIM_BENCH_MODELS")
        .map_or_else(|| root().join("models"), std::path::PathBuf::from)
        .join(name);
    Arc::new(TokenClassifier::load(&dir, None).unwrap_or_else(|e| {
        panic!(
            "loading {} failed (run scripts/install-onnxruntime.sh): {e}",
            dir.display()
        )
    }))
}

/// Held-out sentences joined (newline-separated) until the text reaches `bytes`.
fn prompt(file: &str, bytes: usize, skip: usize) -> String {
    let path = root().join("tests/data/ner").join(file);
    let data = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut out = String::new();
    for line in data.lines().skip(skip) {
        let v: serde_json::Value = serde_json::from_str(line).expect("held-out line is JSON");
        let t = v["text"].as_str().expect("held-out line has text");
        if out.len() + t.len() + 1 > bytes {
            break;
        }
        out.push_str(t);
        out.push('\n');
    }
    out
}

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn percentiles(d: &dyn Detector, texts: &[String], n: usize) -> (f64, f64) {
    let mut buf = Vec::new();
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t = &texts[i % texts.len()];
        let start = Instant::now();
        d.detect(t, &mut buf).expect("NER detect");
        times.push(start.elapsed().as_secs_f64() * 1e3);
        buf.clear();
    }
    times.sort_by(f64::total_cmp);
    (times[n / 2], times[(n * 99) / 100])
}

fn throughput(model: Arc<TokenClassifier>, texts: &[String], secs: f64) -> (f64, f64) {
    let pool = Arc::new(
        NerPool::new(
            model,
            &PoolConfig {
                workers: 2,
                intra_threads: 1,
                max_batch: 8,
                queue: 1024,
                budget: Duration::from_secs(30),
            },
        )
        .expect("pool"),
    );
    let texts = Arc::new(texts.to_vec());
    let start = Instant::now();
    let stop = start + Duration::from_secs_f64(secs);
    let callers: Vec<_> = (0..16)
        .map(|c| {
            let (pool, texts) = (pool.clone(), texts.clone());
            std::thread::spawn(move || {
                let mut bytes = 0usize;
                let mut i = c;
                while Instant::now() < stop {
                    let t = &texts[i % texts.len()];
                    pool.detect_within(t, Duration::from_secs(30))
                        .expect("pool detect");
                    bytes += t.len();
                    i += 1;
                }
                bytes
            })
        })
        .collect();
    let bytes: usize = callers.into_iter().map(|h| h.join().unwrap()).sum();
    let elapsed = start.elapsed().as_secs_f64();
    let st = pool.stats();
    (
        bytes as f64 / 1024.0 / elapsed,
        st.texts as f64 / st.batches.max(1) as f64,
    )
}

fn main() {
    let ko = load("ko-ner");
    let en = load("en-ner");
    eprintln!("RSS with both models loaded: {:.1} MiB", rss_mib());
    let ko_texts: Vec<String> = (0..8)
        .map(|i| prompt("ko_heldout.jsonl", 2048, i * 15))
        .collect();
    let en_texts: Vec<String> = (0..8)
        .map(|i| prompt("en_heldout.jsonl", 2048, i * 25))
        .collect();
    let ko_one = NerModel::new(ko.clone(), 1).expect("ko session");
    let en_one = NerModel::new(en.clone(), 1).expect("en session");
    // `cargo test --all-targets` runs benches without `--bench`: one pass each as a smoke
    // test, not the measurements.
    if !std::env::args().any(|a| a == "--bench") {
        let mut buf = Vec::new();
        ko_one.detect(&ko_texts[0], &mut buf).expect("ko detect");
        en_one.detect(&en_texts[0], &mut buf).expect("en detect");
        assert!(
            !buf.is_empty(),
            "the models found nothing in 4 KB of held-out text"
        );
        return;
    }
    for (name, d, texts) in [("ko", &ko_one, &ko_texts), ("en", &en_one, &en_texts)] {
        let avg = texts.iter().map(String::len).sum::<usize>() / texts.len();
        let (p50, p99) = percentiles(d, texts, 300);
        eprintln!(
            "{name}: {avg}-byte prompt, one session, one thread: p50 {p50:.2} ms, p99 {p99:.2} ms"
        );
    }
    for (name, m, texts) in [("ko", ko.clone(), &ko_texts), ("en", en.clone(), &en_texts)] {
        let (kbs, per_batch) = throughput(m, texts, 5.0);
        eprintln!("{name}: pool (2 workers, 16 callers): {kbs:.0} KB/s, {per_batch:.1} texts per model pass");
    }
    eprintln!("RSS after the runs: {:.1} MiB", rss_mib());

    let pool = |m: &Arc<TokenClassifier>| {
        // The gateway's default: two workers per model.
        let cfg = PoolConfig {
            workers: 2,
            budget: Duration::from_secs(30),
            ..PoolConfig::default()
        };
        Arc::new(NerPool::new(m.clone(), &cfg).expect("pool"))
    };
    let router = NerRouter::new(
        vec![
            (vec![NerLanguage::Ko], pool(&ko)),
            (vec![NerLanguage::En], pool(&en)),
        ],
        Duration::from_secs(30),
    );
    let engine = Engine::new(vec![Arc::new(router) as Arc<dyn Detector>]);
    let chat: Vec<String> = (0..12)
        .map(|i| {
            let file = if i % 2 == 0 {
                "ko_heldout.jsonl"
            } else {
                "en_heldout.jsonl"
            };
            prompt(file, 200, 300 + i)
        })
        .collect();
    let chat_bytes = chat.iter().map(String::len).sum::<usize>() as u64;

    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let mut g = c.benchmark_group("ner");
    g.throughput(criterion::Throughput::Bytes(ko_texts[0].len() as u64));
    g.bench_function("ko_2kb", |b| {
        let mut buf = Vec::new();
        b.iter(|| {
            ko_one.detect(black_box(&ko_texts[0]), &mut buf).unwrap();
            buf.clear();
        })
    });
    g.throughput(criterion::Throughput::Bytes(en_texts[0].len() as u64));
    g.bench_function("en_2kb", |b| {
        let mut buf = Vec::new();
        b.iter(|| {
            en_one.detect(black_box(&en_texts[0]), &mut buf).unwrap();
            buf.clear();
        })
    });
    g.throughput(criterion::Throughput::Bytes(chat_bytes));
    g.bench_function("chat_12_messages_one_by_one", |b| {
        b.iter(|| {
            for t in &chat {
                black_box(engine.detect(t).unwrap());
            }
        })
    });
    g.bench_function("chat_12_messages_together", |b| {
        b.iter(|| black_box(engine.detect_all(&chat).unwrap()))
    });
    g.finish();
    c.final_summary();
}
