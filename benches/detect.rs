//! Throughput of the detection stage on mixed Korean/English text, one core.
//!
//! Text: `target/bench-text.txt` written by `python3 scripts/make_bench_text.py` (~1 MB of KLUE
//! sentences interleaved with English NER-corpus sentences, PII planted every ~2 KB; the same
//! file scripts/compare_presidio.py measures), or the file named by `GARIM_BENCH_TEXT`. When
//! neither exists (a fresh checkout) a built-in synthetic text of the same size is used and a
//! notice says so: the figures to report come from the real file.
//!
//! Benchmarks (criterion, `Throughput::Bytes`, single thread):
//! * `detect/regex_lines`: `build_engine` with the default settings over every line, as
//!   `garim scan` and the gateway (one message at a time) use it;
//! * `detect/regex_whole`: the same engine over the whole text in one call;
//! * `detect/dictionary_100k`: a 100k-term dictionary alone;
//! * `detect/regex_plus_dictionary_100k`: both, per line: the "regex + dictionary stage".
//!
//! The dictionary is a STAND-IN: `aho_corasick::AhoCorasick` (leftmost-longest, ASCII case
//! insensitive) over 100k terms, because `DictionaryDetector` (src/detect/dictionary.rs) had
//! not landed when this bench was written. Switch it to the real detector once it exists.
//!
//! Run: `python3 scripts/make_bench_text.py && taskset -c 0 cargo bench --bench detect`.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::path::PathBuf;
use std::time::Duration;

fn bench_text() -> String {
    let path = std::env::var_os("GARIM_BENCH_TEXT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-text.txt"));
    match std::fs::read_to_string(&path) {
        Ok(t) => {
            eprintln!("bench text: {} ({} bytes)", path.display(), t.len());
            t
        }
        Err(_) => {
            eprintln!(
                "NOTICE: {} not found (run scripts/make_bench_text.py); using a built-in synthetic text",
                path.display()
            );
            synthetic_text(1_000_000)
        }
    }
}

/// A deterministic mixed text for fresh checkouts: not the text the figures are reported on.
fn synthetic_text(bytes: usize) -> String {
    let ko = [
        "특히 영동고속도로 강릉 방향 문막휴게소에서 만종분기점까지 5km 구간에는 임시 갓길차로제를 운영하기로 했다.",
        "이번 만남을 토대로 대학생기자단 3기는 앞으로 5개월간 활약을 펼치게 된다.",
        "회의는 3월 15일 오후 2시에 본관 7층 대회의실에서 열립니다.",
        "지난해 매출은 1,234억 원으로 전년 대비 12.3% 늘었다.",
    ];
    let en = [
        "The album proved to be more commercial and more techno-based than its predecessor.",
        "We're always on the lookout for more submissions to our workshop, details at the site.",
        "Revenue for the quarter was $4.2 million, up 8% from a year earlier, the company said.",
        "Version 2.13.4 fixes a crash when the export job runs longer than 30 minutes.",
    ];
    let pii = [
        "담당자 메일 kim@example.co.kr 로 회신 바랍니다.",
        "고객 연락처 010-2345-6789 로 안내했습니다.",
        "카드번호 4111 1111 1111 1111 로 결제되었습니다.",
        "주민등록번호 900101-1234568 확인 완료.",
        "Please wire the amount to IBAN DE89370400440532013000 by Friday.",
        "leaked key AKIAIOSFODNN7EXAMPLE in CI logs",
    ];
    let mut out = String::with_capacity(bytes + 256);
    let (mut i, mut since) = (0usize, 0usize);
    while out.len() < bytes {
        let line = if since >= 2000 {
            since = 0;
            pii[i % pii.len()]
        } else if i % 2 == 0 {
            ko[(i / 2) % ko.len()]
        } else {
            en[(i / 2) % en.len()]
        };
        out.push_str(line);
        out.push('\n');
        since += line.len() + 1;
        i += 1;
    }
    out
}

/// 100k dictionary terms: every distinct capitalised word of 5+ letters in the text (so the
/// dictionary does find things), then Korean full names and project codenames to fill up.
fn dictionary_terms(text: &str, n: usize) -> Vec<String> {
    let mut terms: Vec<String> = Vec::with_capacity(n);
    let mut seen = std::collections::HashSet::new();
    for w in text.split(|c: char| !c.is_ascii_alphabetic()) {
        if terms.len() >= n / 100 {
            break;
        }
        if w.len() >= 5 && w.as_bytes()[0].is_ascii_uppercase() && seen.insert(w) {
            terms.push(w.to_owned());
        }
    }
    let surnames = [
        "김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오", "서", "신", "권",
        "황", "안", "송", "류", "홍",
    ];
    let syllables: Vec<char> = "민서지현준우도윤하은수영진호성예채아연승재유경태희정혜"
        .chars()
        .collect();
    'names: for s in surnames {
        for &a in &syllables {
            for &b in &syllables {
                if terms.len() >= n / 2 {
                    break 'names;
                }
                terms.push(format!("{s}{a}{b}"));
            }
        }
    }
    let words = [
        "Aurora", "Borealis", "Cobalt", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Indigo",
        "Juniper",
    ];
    let mut k = 0u32;
    while terms.len() < n {
        terms.push(format!(
            "Project-{}-{k:05}",
            words[k as usize % words.len()]
        ));
        k += 1;
    }
    terms
}

fn dictionary(terms: &[String]) -> AhoCorasick {
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostLongest)
        .ascii_case_insensitive(true)
        .build(terms)
        .expect("dictionary builds")
}

fn benches(c: &mut Criterion) {
    let text = bench_text();
    let lines: Vec<&str> = text.lines().collect();
    let cfg = garim::config::Config::embedded_default();
    let engine = garim::detect::build_engine(&cfg.detect).expect("default engine");
    let terms = dictionary_terms(&text, 100_000);
    let dict = dictionary(&terms);

    // Sanity, and what the text holds: findings per label over the text.
    let mut per_label = std::collections::BTreeMap::new();
    let mut dict_hits = 0usize;
    for l in &lines {
        for f in engine.detect(l).expect("detect") {
            *per_label.entry(f.label.as_str()).or_insert(0usize) += 1;
        }
        dict_hits += dict.find_iter(l).count();
    }
    eprintln!(
        "{} lines; findings {per_label:?}; dictionary: {} terms, {dict_hits} hits",
        lines.len(),
        terms.len()
    );
    assert!(
        !per_label.is_empty(),
        "the engine found nothing in the bench text"
    );

    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("regex_lines", |b| {
        b.iter(|| {
            let mut n = 0;
            for l in &lines {
                n += engine.detect(black_box(l)).unwrap().len();
            }
            n
        })
    });
    g.bench_function("regex_whole", |b| {
        b.iter(|| engine.detect(black_box(&text)).unwrap().len())
    });
    g.bench_function("dictionary_100k", |b| {
        b.iter(|| {
            let mut n = 0;
            for l in &lines {
                n += dict.find_iter(black_box(*l)).count();
            }
            n
        })
    });
    g.bench_function("regex_plus_dictionary_100k", |b| {
        b.iter(|| {
            let mut n = 0;
            for l in &lines {
                n += engine.detect(black_box(l)).unwrap().len();
                n += dict.find_iter(black_box(*l)).count();
            }
            n
        })
    });
    g.finish();
}

criterion_group!(detect, benches);
criterion_main!(detect);
