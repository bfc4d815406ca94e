//! Throughput of the detection stage on mixed Korean/English text, one core.
//!
//! Text: `target/bench-text.txt` written by `python3 scripts/make_bench_text.py` (~1 MB of KLUE
//! sentences interleaved with English NER-corpus sentences, PII planted every ~2 KB; the same
//! file scripts/compare_presidio.py measures), or the file named by `GARIM_BENCH_TEXT`. When
//! neither exists (a fresh checkout) a built-in synthetic text of the same size is used and a
//! notice says so: the figures to report come from the real file.
//!
//! The dictionary is the real [`DictionaryDetector`] (`dictionary::build`) over 100k generated
//! terms in three deny lists, as a company would configure them: Korean full names
//! (case-sensitive), English "First Last" names and project codenames (both ASCII
//! case-insensitive), plus the capitalised words of the text so that it does find things.
//!
//! Benchmarks (criterion, `Throughput::Bytes`, single thread, every line of the text scanned
//! as its own message, as `garim scan` and the gateway do):
//! * `detect/regex`: the built-in rule packs alone (the detector, no engine);
//! * `detect/dictionary_100k`: the 100k-term dictionary alone;
//! * `detect/korean_names`: the Korean name detector alone;
//! * `detect/regex_plus_dictionary_100k`: an [`Engine`] over regex + dictionary (normalisation
//!   and merging included): the "regex + dictionary stage";
//! * `detect/full_engine`: `build_engine` with the default settings (regex, Korean names) plus
//!   the dictionary;
//! * `detect/regex_then_dictionary_100k`: the two detectors, each over all lines in turn, no
//!   engine: what the stage would cost if neither evicted the other's tables from the cache;
//! * `detect/regex_and_dictionary_per_line`: both detectors on each line in turn, no engine
//!   (the stage minus this is the engine's own work);
//! * `detect/regex_plus_dictionary_100k_2kb_messages`: the stage over the same text cut into
//!   ~2 KB messages (a chat prompt) instead of lines;
//! * `detect/regex_2kb_messages`, `detect/dictionary_100k_2kb_messages`: each detector alone
//!   on those messages (against the line benches: what the per-text work costs).
//!
//! Before the measurements, the cold first pass over the text (a freshly built engine: lazy
//! automata start empty) and the build times are printed to stderr.
//!
//! Run: `python3 scripts/make_bench_text.py && taskset -c 0 cargo bench --bench detect`.
//!
//! `GARIM_BENCH_DUMP=<file>` writes, instead of measuring, every finding of the regex detector
//! and of the regex + dictionary engine over the text (line number, byte span, detector,
//! label, score; never the text), so that the findings of two builds can be compared with
//! `cmp` before and after a change to the detectors.
//!
//! `GARIM_BENCH_REPEAT=<what>:<n>` runs, instead of measuring, `n` passes of one of `regex`,
//! `dictionary`, `per_line` (both detectors per line, no engine) or `stage` (the engine) over
//! the text after the setup, for `perf stat`: the instructions of `n` passes minus those of
//! 0 passes are the passes' own, a count the machine's load does not move (time does, by
//! more than a small change saves).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use garim::detect::dictionary::{self, DictionaryDetector, ListKind, TermList};
use garim::detect::korean_name::KoreanNameDetector;
use garim::detect::regex::RegexDetector;
use garim::detect::{Detector, Engine, Label};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// A small deterministic generator (xorshift64*), so the dictionary is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// 100k terms in three lists: (Korean names, English names, codenames). Distinct within a list.
fn dictionary_lists(text: &str, n: usize) -> Vec<TermList> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seen = std::collections::HashSet::new();
    // Korean full names: surname + one or two given-name syllables.
    let surnames: Vec<char> = "김이박최정강조윤장임한오서신권황안송류홍전고문양손배백허유남심노하곽성차주우구민진나지엄변채원천방공현함염여추도소석선설마길연위표명기반왕금옥육인맹제모탁국어은편용예경봉사부가복태목형피두감음빈동온호범좌팽승간상시갈단견당"
        .chars()
        .collect();
    let given: Vec<char> = "민서지현준우도윤하은수영진호성예채아연승재유경태희정혜원주동시건소나빈다인규석훈상철미숙자순옥진환용기종대광명한선화란애보람슬별솔결찬혁"
        .chars()
        .collect();
    let mut ko = Vec::with_capacity(n / 2);
    while ko.len() < n / 2 {
        let mut t = String::new();
        t.push(*rng.pick(&surnames));
        t.push(*rng.pick(&given));
        if rng.next() % 8 != 0 {
            t.push(*rng.pick(&given));
        }
        if seen.insert(t.clone()) {
            ko.push(t);
        }
    }
    // English names, plus the capitalised words of the text (so the dictionary finds things).
    let first = [
        "James",
        "Mary",
        "Robert",
        "Patricia",
        "John",
        "Jennifer",
        "Michael",
        "Linda",
        "David",
        "Elizabeth",
        "William",
        "Barbara",
        "Richard",
        "Susan",
        "Joseph",
        "Jessica",
        "Thomas",
        "Sarah",
        "Charles",
        "Karen",
        "Daniel",
        "Nancy",
        "Matthew",
        "Lisa",
        "Anthony",
        "Betty",
        "Mark",
        "Margaret",
        "Donald",
        "Sandra",
        "Steven",
        "Ashley",
        "Paul",
        "Kimberly",
        "Andrew",
        "Emily",
        "Joshua",
        "Donna",
        "Kenneth",
        "Michelle",
        "Kevin",
        "Carol",
        "Brian",
        "Amanda",
        "George",
        "Melissa",
        "Timothy",
        "Deborah",
        "Ronald",
        "Stephanie",
        "Jason",
        "Rebecca",
        "Edward",
        "Laura",
        "Jeffrey",
        "Sharon",
        "Ryan",
        "Cynthia",
        "Jacob",
        "Kathleen",
        "Gary",
        "Amy",
        "Nicholas",
        "Angela",
        "Eric",
        "Shirley",
        "Jonathan",
        "Anna",
        "Stephen",
        "Brenda",
    ];
    let last = [
        "Smith",
        "Johnson",
        "Williams",
        "Brown",
        "Jones",
        "Garcia",
        "Miller",
        "Davis",
        "Rodriguez",
        "Martinez",
        "Hernandez",
        "Lopez",
        "Gonzalez",
        "Wilson",
        "Anderson",
        "Thomas",
        "Taylor",
        "Moore",
        "Jackson",
        "Martin",
        "Lee",
        "Perez",
        "Thompson",
        "White",
        "Harris",
        "Sanchez",
        "Clark",
        "Ramirez",
        "Lewis",
        "Robinson",
        "Walker",
        "Young",
        "Allen",
        "King",
        "Wright",
        "Scott",
        "Torres",
        "Nguyen",
        "Hill",
        "Flores",
        "Green",
        "Adams",
        "Nelson",
        "Baker",
        "Hall",
        "Rivera",
        "Campbell",
        "Mitchell",
        "Carter",
        "Roberts",
        "Gomez",
        "Phillips",
        "Evans",
        "Turner",
        "Diaz",
        "Parker",
        "Cruz",
        "Edwards",
        "Collins",
        "Reyes",
        "Stewart",
        "Morris",
        "Morales",
        "Murphy",
        "Cook",
        "Rogers",
        "Gutierrez",
        "Ortiz",
        "Morgan",
        "Cooper",
        "Peterson",
        "Bailey",
        "Reed",
        "Kelly",
        "Howard",
        "Ramos",
        "Kim",
        "Cox",
        "Ward",
        "Richardson",
        "Watson",
        "Brooks",
        "Chavez",
        "Wood",
        "James",
        "Bennett",
    ];
    let mut en = Vec::with_capacity(n / 5);
    for w in text.split(|c: char| !c.is_ascii_alphabetic()) {
        if en.len() >= n / 100 {
            break;
        }
        if w.len() >= 5 && w.as_bytes()[0].is_ascii_uppercase() && seen.insert(w.to_owned()) {
            en.push(w.to_owned());
        }
    }
    for f in first {
        for l in last {
            let t = format!("{f} {l}");
            if en.len() < n / 5 && seen.insert(t.clone()) {
                en.push(t);
            }
        }
    }
    let mut k = 0u32;
    while en.len() < n / 5 {
        let t = format!("{} {}-{k}", rng.pick(&first), rng.pick(&last));
        k += 1;
        if seen.insert(t.clone()) {
            en.push(t);
        }
    }
    // Project codenames: "Adjective Noun", "Noun-123", "PRJ-ABC-1234".
    let adj = [
        "Blue", "Silent", "Crimson", "Golden", "Iron", "Northern", "Rapid", "Hidden", "Lunar",
        "Solar", "Swift", "Quiet", "Amber", "Frozen", "Wild", "Bright", "Dark", "Electric",
        "Emerald", "Hollow",
    ];
    let noun = [
        "Falcon", "Aurora", "Cobalt", "Ember", "Granite", "Harbor", "Juniper", "Orchid", "Phoenix",
        "Raven", "Summit", "Tundra", "Vertex", "Willow", "Zephyr", "Comet", "Nebula", "Otter",
        "Sparrow", "Titan",
    ];
    let mut code = Vec::with_capacity(n - ko.len() - en.len());
    let mut k = 0u32;
    while ko.len() + en.len() + code.len() < n {
        let t = match k % 3 {
            0 => format!(
                "{} {}-{}",
                rng.pick(&adj),
                rng.pick(&noun),
                rng.next() % 1000
            ),
            1 => format!("{}-{}", rng.pick(&noun), rng.next() % 100_000),
            _ => format!(
                "PRJ-{}{}{}-{:04}",
                (b'A' + (rng.next() % 26) as u8) as char,
                (b'A' + (rng.next() % 26) as u8) as char,
                (b'A' + (rng.next() % 26) as u8) as char,
                rng.next() % 10_000
            ),
        };
        k += 1;
        if seen.insert(t.clone()) {
            code.push(t);
        }
    }
    let list = |name: &str, label, ci, terms| TermList {
        name: name.into(),
        label: Some(label),
        kind: ListKind::Deny,
        case_insensitive: ci,
        score: dictionary::DEFAULT_SCORE,
        terms,
    };
    vec![
        list("employees_ko", Label::Person, false, ko),
        list("employees_en", Label::Person, true, en),
        list("codenames", Label::Organization, true, code),
    ]
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let v = f();
    eprintln!("{what}: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    v
}

/// Findings of `d` over every line.
fn run_detector(d: &dyn Detector, lines: &[&str], buf: &mut Vec<garim::detect::Finding>) -> usize {
    let mut n = 0;
    for l in lines {
        buf.clear();
        d.detect(black_box(l), buf).unwrap();
        n += buf.len();
    }
    n
}

fn run_engine(e: &Engine, lines: &[&str]) -> usize {
    lines
        .iter()
        .map(|l| e.detect(black_box(l)).unwrap().len())
        .sum()
}

/// `lines` joined with newlines into messages of just over `bytes` bytes.
fn join_lines(lines: &[&str], bytes: usize) -> Vec<String> {
    let mut out = vec![String::new()];
    for l in lines {
        let cur = out.last_mut().expect("never empty");
        if !cur.is_empty() {
            cur.push('\n');
        }
        cur.push_str(l);
        if cur.len() >= bytes {
            out.push(String::new());
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

/// Prints the throughput of the first pass of a freshly built engine over `lines`.
fn cold_pass(what: &str, bytes: usize, f: impl FnOnce() -> usize) {
    let t = Instant::now();
    let n = f();
    let s = t.elapsed().as_secs_f64();
    eprintln!(
        "cold first pass {what}: {:.1} MB/s ({n} findings)",
        bytes as f64 / s / 1e6
    );
}

/// Writes the findings of the regex detector and of the regex + dictionary engine, one line
/// each, to `path` (see the module docs).
fn dump(
    path: &std::ffi::OsStr,
    regex: &Arc<RegexDetector>,
    dict: &Arc<DictionaryDetector>,
    lines: &[&str],
) {
    use std::fmt::Write as _;
    let stage = Engine::new(vec![regex.clone(), dict.clone()]);
    let mut out = String::new();
    let mut buf = Vec::new();
    let (mut n_regex, mut n_stage) = (0, 0);
    for (i, l) in lines.iter().enumerate() {
        buf.clear();
        regex.detect(l, &mut buf).unwrap();
        for f in &buf {
            n_regex += 1;
            let _ = writeln!(
                out,
                "regex {i} {}..{} {} {} {:?} {}",
                f.start, f.end, f.detector, f.label, f.subtype, f.score
            );
        }
        for f in stage.detect(l).unwrap() {
            n_stage += 1;
            let _ = writeln!(
                out,
                "stage {i} {}..{} {} {} {:?} {}",
                f.start, f.end, f.detector, f.label, f.subtype, f.score
            );
        }
    }
    std::fs::write(path, out).expect("write the dump");
    eprintln!("dumped {n_regex} regex and {n_stage} engine findings");
}

fn benches(c: &mut Criterion) {
    let text = bench_text();
    let lines: Vec<&str> = text.lines().collect();
    let bytes = text.len();
    let lists = dictionary_lists(&text, 100_000);
    let terms: usize = lists.iter().map(|l| l.terms.len()).sum();

    let regex = Arc::new(timed("build regex (builtin packs)", RegexDetector::builtin));
    let dict: Arc<DictionaryDetector> = Arc::new(
        timed("build dictionary 100k", || dictionary::build(&lists))
            .expect("dictionary builds")
            .0
            .expect("deny lists"),
    );
    let names = Arc::new(KoreanNameDetector::new(0.0));
    let mut buf = Vec::new();
    if let Some(path) = std::env::var_os("GARIM_BENCH_DUMP") {
        dump(&path, &regex, &dict, &lines);
        return;
    }
    if let Ok(spec) = std::env::var("GARIM_BENCH_REPEAT") {
        let (what, n) = spec.split_once(':').expect("GARIM_BENCH_REPEAT=<what>:<n>");
        let n: usize = n.parse().expect("a number of passes");
        let stage = Engine::new(vec![regex.clone(), dict.clone()]);
        let mut found = 0;
        for _ in 0..n {
            found += match what {
                "regex" => run_detector(&*regex, &lines, &mut buf),
                "dictionary" => run_detector(&*dict, &lines, &mut buf),
                "per_line" => lines
                    .iter()
                    .map(|l| {
                        buf.clear();
                        regex.detect(black_box(l), &mut buf).unwrap();
                        dict.detect(black_box(l), &mut buf).unwrap();
                        buf.len()
                    })
                    .sum(),
                "stage" => run_engine(&stage, &lines),
                other => panic!("GARIM_BENCH_REPEAT: unknown `{other}`"),
            };
        }
        eprintln!("{n} passes of {what}: {found} findings");
        return;
    }
    cold_pass("regex", bytes, || run_detector(&*regex, &lines, &mut buf));
    cold_pass("dictionary", bytes, || {
        run_detector(&*dict, &lines, &mut buf)
    });

    let stage = Engine::new(vec![regex.clone(), dict.clone()]);
    let mut cfg = garim::config::Config::embedded_default().detect;
    cfg.dictionaries.clear();
    let full = {
        let default = timed("build_engine (default settings)", || {
            garim::detect::build_engine(&cfg)
        })
        .expect("default engine");
        let mut ds: Vec<Arc<dyn Detector>> = vec![Arc::new(RegexDetector::builtin()), dict.clone()];
        if cfg.korean_names.enabled {
            ds.push(names.clone());
        }
        let e = Engine::new(ds).with_thresholds(cfg.min_score, cfg.thresholds.clone());
        cold_pass("full engine (fresh regex)", bytes, || {
            run_engine(&e, &lines)
        });
        drop(default);
        e
    };

    // Sanity, and what the text holds.
    let mut per_label = std::collections::BTreeMap::new();
    for l in &lines {
        for f in full.detect(l).expect("detect") {
            *per_label.entry(f.label.as_str()).or_insert(0usize) += 1;
        }
    }
    eprintln!(
        "{} lines; dictionary: {terms} terms, {} hits; full engine findings {per_label:?}",
        lines.len(),
        run_detector(&*dict, &lines, &mut buf)
    );
    assert!(
        per_label.contains_key("EMAIL") && per_label.contains_key("PERSON"),
        "the engine found too little in the bench text"
    );

    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("regex", |b| {
        b.iter(|| run_detector(&*regex, &lines, &mut buf))
    });
    g.bench_function("dictionary_100k", |b| {
        b.iter(|| run_detector(&*dict, &lines, &mut buf))
    });
    g.bench_function("korean_names", |b| {
        b.iter(|| run_detector(&*names, &lines, &mut buf))
    });
    // The two detectors one after the other on each line, without the engine's own work
    // (normalisation check, threshold, merge): what the engine adds is the difference.
    g.bench_function("regex_then_dictionary_100k", |b| {
        b.iter(|| run_detector(&*regex, &lines, &mut buf) + run_detector(&*dict, &lines, &mut buf))
    });
    // Both detectors on each line in turn into one buffer, no engine: the stage minus this is
    // the engine's own work; this minus `regex_then_dictionary_100k` is the cache interference.
    g.bench_function("regex_and_dictionary_per_line", |b| {
        b.iter(|| {
            let mut n = 0;
            for l in &lines {
                buf.clear();
                regex.detect(black_box(l), &mut buf).unwrap();
                dict.detect(black_box(l), &mut buf).unwrap();
                n += buf.len();
            }
            n
        })
    });
    g.bench_function("regex_plus_dictionary_100k", |b| {
        b.iter(|| run_engine(&stage, &lines))
    });
    g.bench_function("full_engine", |b| b.iter(|| run_engine(&full, &lines)));
    // The same text as ~2 KB messages (lines joined until they pass 2,000 bytes): a chat
    // prompt's size. Each detector then runs longer at a time with its tables in cache.
    let prompts = join_lines(&lines, 2000);
    let prompt_refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    g.bench_function("regex_plus_dictionary_100k_2kb_messages", |b| {
        b.iter(|| run_engine(&stage, &prompt_refs))
    });
    // Each detector alone on the ~2 KB messages: against `regex` and `dictionary_100k`, what
    // the per-text work costs.
    g.bench_function("regex_2kb_messages", |b| {
        b.iter(|| run_detector(&*regex, &prompt_refs, &mut buf))
    });
    g.bench_function("dictionary_100k_2kb_messages", |b| {
        b.iter(|| run_detector(&*dict, &prompt_refs, &mut buf))
    });
    g.finish();
}

criterion_group!(detect, benches);
criterion_main!(detect);
