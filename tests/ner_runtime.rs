//! NER on the real ONNX Runtime with the tiny test model in models/test-tiny.
//!
//! The library comes from GARIM_ORT_DYLIB / ORT_DYLIB_PATH or ./.ort/lib (run
//! scripts/install-onnxruntime.sh). These tests FAIL when it is missing: they never skip.
//!
//! The test model's tokens are context-free (see models/scripts/make_test_model.py), so
//! window splitting and batching must not change any prediction.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use garim::detect::ner::{NerModel, NerPool, PoolConfig, TokenClassifier};
use garim::detect::{DetectError, Detector, Engine, Finding};

fn load() -> TokenClassifier {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/test-tiny");
    TokenClassifier::load(&dir, None).unwrap_or_else(|e| {
        panic!("loading models/test-tiny failed (run scripts/install-onnxruntime.sh): {e}")
    })
}

fn model() -> Arc<TokenClassifier> {
    Arc::new(load())
}

const TEXT: &str = "Please forward this to Sarah Connor at Acme Corporation in Leeds. \
    John Smith met Maria Garcia in Berlin at Siemens on Monday, then flew to Toronto \
    with Ahmed Khan from the Ottawa office of Shopify. The meeting notes were sent to \
    Emily Chen and Robert Brown at Contoso Ltd in Seattle, Washington.";

fn key(fs: &[Finding]) -> Vec<(usize, usize, &'static str)> {
    fs.iter()
        .map(|f| (f.start, f.end, f.label.as_str()))
        .collect()
}

#[test]
fn graph_shapes_and_outputs() {
    let m = model();
    let mut s = m.new_session(1).unwrap();
    let names: Vec<&str> = s.inputs().iter().map(|i| i.name()).collect();
    assert_eq!(names, ["input_ids", "attention_mask", "token_type_ids"]);
    assert_eq!(s.outputs()[0].name(), "logits");
    let ids = ndarray::Array2::<i64>::from_elem((3, 7), 1000);
    let mask = ndarray::Array2::<i64>::ones((3, 7));
    let types = ndarray::Array2::<i64>::zeros((3, 7));
    let out = s
        .run(ort::inputs![
            "input_ids" => ort::value::Tensor::from_array(ids).unwrap(),
            "attention_mask" => ort::value::Tensor::from_array(mask).unwrap(),
            "token_type_ids" => ort::value::Tensor::from_array(types).unwrap(),
        ])
        .unwrap();
    let logits = out["logits"].try_extract_array::<f32>().unwrap();
    assert_eq!(logits.shape(), [3, 7, m.manifest().labels.len()]);
    assert!(logits.iter().all(|v| v.is_finite()));
    // The same token gives the same logits in every row (deterministic runtime).
    assert_eq!(
        logits.slice(ndarray::s![0, .., ..]),
        logits.slice(ndarray::s![2, .., ..])
    );
}

#[test]
fn finds_spans_on_the_real_runtime() {
    let m = NerModel::new(model(), 1).unwrap();
    assert_eq!(m.name(), "ner:test-tiny");
    let mut out = Vec::new();
    m.detect(TEXT, &mut out).unwrap();
    assert!(!out.is_empty(), "the test model finds something in TEXT");
    for f in &out {
        assert!(f.start < f.end && f.end <= TEXT.len());
        assert!((0.0..=1.0).contains(&f.score), "{}", f.score);
        assert_eq!(f.detector, "ner:test-tiny");
        // Spans are whole words: never start or end inside one, never edged by spaces.
        let b = TEXT.as_bytes();
        let span = &TEXT[f.start..f.end];
        assert_eq!(span.trim(), span);
        assert!(
            f.start == 0
                || !(b[f.start - 1].is_ascii_alphanumeric() && b[f.start].is_ascii_alphanumeric())
        );
        assert!(
            f.end == b.len()
                || !(b[f.end - 1].is_ascii_alphanumeric() && b[f.end].is_ascii_alphanumeric())
        );
    }
    let mut empty = Vec::new();
    m.detect("", &mut empty).unwrap();
    assert!(empty.is_empty());
}

#[test]
fn windows_do_not_change_findings() {
    let whole = load();
    let n = whole.token_spans(TEXT).unwrap().len();
    assert!(n > 40 && n + 2 <= whole.manifest().max_len, "{n} tokens");
    let mut split = load();
    split.set_window(18, 5); // 16 content tokens per window, 5 shared
    let a = NerModel::new(Arc::new(whole), 1).unwrap();
    let b = NerModel::new(Arc::new(split), 1).unwrap();
    let fa = a.detect_many(&[TEXT]).unwrap().remove(0);
    let fb = b.detect_many(&[TEXT]).unwrap().remove(0);
    assert!(!fa.is_empty());
    assert_eq!(key(&fa), key(&fb));
    for (x, y) in fa.iter().zip(&fb) {
        assert!(
            (x.score - y.score).abs() < 1e-4,
            "{} vs {}",
            x.score,
            y.score
        );
    }
    // Batching several texts (padded to the longest) changes nothing either.
    let texts = [TEXT, "Sarah Connor", TEXT.split_at(100).1.trim_start()];
    let together = b.detect_many(&texts).unwrap();
    for (t, got) in texts.iter().zip(&together) {
        assert_eq!(key(got), key(&b.detect_many(&[t]).unwrap()[0]));
    }
}

#[test]
fn offsets_are_char_boundaries_in_korean_and_emoji_text() {
    let m = load();
    let text = "김민준 과장님께 전달 부탁드립니다 😀👍🏽 Café São Paulo — 서울특별시 강남구 e\u{301}t\u{e9} 👨‍👩‍👧 Acme";
    let spans = m.token_spans(text).unwrap();
    assert!(!spans.is_empty());
    let mut prev_end = 0;
    for &(s, e) in &spans {
        assert!(
            text.is_char_boundary(s) && text.is_char_boundary(e),
            "{s}..{e}"
        );
        assert!(s < e && e <= text.len() && s >= prev_end.min(s));
        assert!(!text[s..e].trim().is_empty());
        prev_end = e;
    }
    // Every non-space character is covered by some token.
    for (i, c) in text.char_indices() {
        if !c.is_whitespace() {
            assert!(
                spans.iter().any(|&(s, e)| s <= i && i < e),
                "char at byte {i} is not covered"
            );
        }
    }
    let m = NerModel::new(Arc::new(m), 1).unwrap();
    let mut out = Vec::new();
    m.detect(text, &mut out).unwrap();
    for f in &out {
        assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
    }
    // Through the engine (which checks boundaries and fails closed otherwise).
    Engine::new(vec![Arc::new(m)]).detect(text).unwrap();
}

#[test]
fn pool_zero_budget_times_out() {
    let pool = NerPool::new(model(), &PoolConfig::default()).unwrap();
    match pool.detect_within(TEXT, Duration::ZERO) {
        Err(DetectError::Timeout { detector }) => assert_eq!(detector, "ner:test-tiny"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    // The pool still works afterwards, and the error never holds the text.
    let ok = pool.detect_within(TEXT, Duration::from_secs(30)).unwrap();
    assert!(!ok.is_empty());
    let cfg = PoolConfig {
        budget: Duration::ZERO,
        ..PoolConfig::default()
    };
    let pool = NerPool::new(model(), &cfg).unwrap();
    let err = Engine::new(vec![Arc::new(pool)]).detect(TEXT).unwrap_err();
    assert!(matches!(err, DetectError::Timeout { .. }));
    assert!(!err.to_string().contains("Sarah"));
}

#[test]
fn pool_serves_many_threads_with_batching() {
    let m = model();
    let reference = NerModel::new(m.clone(), 1).unwrap();
    let cfg = PoolConfig {
        workers: 2,
        max_batch: 4,
        queue: 64,
        budget: Duration::from_secs(60),
        ..PoolConfig::default()
    };
    let pool = Arc::new(NerPool::new(m, &cfg).unwrap());
    let texts: Vec<String> = (0..16)
        .map(|i| {
            format!(
                "{} Ticket {i}: call Olivia Park in Busan.",
                &TEXT[..(i * 13) % 200]
            )
        })
        .collect();
    let expect: Vec<_> = texts
        .iter()
        .map(|t| key(&reference.detect_many(&[t]).unwrap()[0]))
        .collect();
    let handles: Vec<_> = (0..8)
        .map(|k| {
            let (pool, texts, expect) = (pool.clone(), texts.clone(), expect.clone());
            std::thread::spawn(move || {
                for r in 0..10 {
                    let i = (k * 7 + r * 3) % texts.len();
                    let mut out = Vec::new();
                    pool.detect(&texts[i], &mut out).unwrap();
                    assert_eq!(key(&out), expect[i], "text {i}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// A pool of one worker, batches of up to 8, a budget no test reaches.
fn one_worker_pool() -> Arc<NerPool> {
    let cfg = PoolConfig {
        workers: 1,
        max_batch: 8,
        budget: Duration::from_secs(120),
        ..PoolConfig::default()
    };
    Arc::new(NerPool::new(model(), &cfg).unwrap())
}

/// Starts a long text on `pool`'s only worker and returns once the worker has taken it:
/// whatever is submitted next queues up behind it. Join the handle for its findings.
fn keep_busy(pool: &Arc<NerPool>) -> std::thread::JoinHandle<Result<Vec<Finding>, DetectError>> {
    let before = pool.stats().batches;
    let long: String = TEXT.repeat(300);
    let busy = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.detect_within(&long, Duration::from_secs(120)))
    };
    while pool.stats().batches == before {
        std::thread::yield_now();
    }
    busy
}

#[test]
fn pool_batches_requests_queued_behind_a_long_one() {
    let pool = one_worker_pool();
    let busy = keep_busy(&pool);
    let small: Vec<_> = (0..8)
        .map(|i| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let t = format!("Ticket {i} from Olivia Park in Busan");
                pool.detect_within(&t, Duration::from_secs(120)).unwrap()
            })
        })
        .collect();
    for h in small {
        h.join().unwrap();
    }
    assert!(!busy.join().unwrap().unwrap().is_empty());
    let st = pool.stats();
    assert_eq!(st.texts, 9);
    assert!(st.batches < 9, "no micro-batching: {st:?}");
    assert_eq!(st.expired, 0);
}

#[test]
fn engine_batches_the_texts_of_one_request() {
    use garim::config::NerLanguage;
    use garim::detect::ner::NerRouter;
    let pool = one_worker_pool();
    let router = Arc::new(NerRouter::new(
        vec![(vec![NerLanguage::En, NerLanguage::Ko], pool.clone())],
        Duration::from_secs(120),
    ));
    let engine = Engine::new(vec![router as Arc<dyn Detector>]);
    // Messages of one chat request: English, Korean, and mixed (three runs).
    let texts: Vec<String> = (0..6)
        .map(|i| match i % 3 {
            0 => format!("Ticket {i} from Olivia Park in Busan."),
            1 => format!("김민준 과장님께 {i}번 티켓을 전달해 주세요."),
            _ => format!("Sarah Connor wrote. 서울 지사 {i}층에서 만나요.\nThanks, John Smith"),
        })
        .collect();
    let one_by_one: Vec<_> = texts.iter().map(|t| engine.detect(t).unwrap()).collect();
    assert!(
        one_by_one.iter().any(|f| !f.is_empty()),
        "the test model found nothing"
    );
    let before = pool.stats();

    // The request's runs queue up behind a long text.
    let busy = keep_busy(&pool);
    let together = engine.detect_all(&texts).unwrap();
    assert!(!busy.join().unwrap().unwrap().is_empty());
    let key_all = |fs: &[Vec<Finding>]| fs.iter().map(|f| key(f)).collect::<Vec<_>>();
    assert_eq!(key_all(&together), key_all(&one_by_one));
    let st = pool.stats();
    let runs = st.texts - before.texts - 1;
    assert_eq!(runs, before.texts, "the same runs as one by one");
    assert_eq!(runs, 2 + 2 + 2 * 3);
    assert!(
        st.batches - before.batches - 1 < runs,
        "the runs of one request were not batched: {st:?} after {before:?}"
    );
}
