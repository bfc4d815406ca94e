//! What each regex pattern of the rule packs costs alone, against the cost of one lazy-DFA
//! pass that nothing lets the engine skip: which rules keep the regex stage on its slow path.
//!
//! Why: all patterns run as one `regex_automata::meta::Regex` (see `detect::regex`), and a
//! multi-pattern regex only skips text with a prefilter when every one of its patterns
//! begins with a usable literal. One pattern that may begin at any letter (an e-mail's local
//! part, hex digits, a case-insensitive keyword the literal extractor gives up on) makes the
//! whole set pay a DFA transition per byte. This tool shows, per pattern, what the regex crate
//! can do with it alone: a pattern close to the floor row has no usable prefilter, one far
//! below it does. Rule authors: a new rule near the floor will not slow the stage today (the
//! set is already on the slow path) but it is one more rule to rewrite before the stage can
//! skip text.
//!
//! Rows (ms per pass over the text, every line scanned as its own text, best of 5 after one
//! warm-up pass, one thread; compare rows of one run only):
//! * `all patterns`: the built-in packs (plus any given) as one regex, as the detector scans;
//! * `floor`: one pattern that never matches, prefilter off: a bare lazy-DFA pass;
//! * `all but the N patterns at >= 0.9 x floor`: the set without the patterns that have no
//!   usable prefilter alone, as one regex: what rewriting those would buy;
//! * each pattern alone, slowest first;
//! * with `GARIM_LEAVE_ONE_OUT=1`, for each rule the set without it: what the rule adds to
//!   the set's states (its saving), largest first.
//!
//! Text: `GARIM_BENCH_TEXT` or `target/bench-text.txt` (`python3 scripts/make_bench_text.py`).
//! Run: `taskset -c 0 cargo bench --bench rule_costs [-- PACK.toml ...]`. Without `--bench`
//! (`cargo test --all-targets` runs it so) it checks itself on a few built-in lines instead:
//! every pattern compiles alone and the planted values are found, one pass each.
//!
//! Limits: it times the scan only (no validation, context or probe: see `benches/detect.rs`
//! for the detector itself), and prints pattern ids and timings, never text.

use garim::detect::regex::{RegexDetector, LAZY_DFA_CACHE_BYTES};
use regex_automata::{meta, Input, MatchKind};
use std::path::PathBuf;
use std::time::Instant;

const PASSES: usize = 5;
/// A pattern alone at this share of the floor or more has no prefilter the engine can use.
const FLOOR_SHARE: f64 = 0.9;
/// The text of the self-check (test mode): one value per line for rules of each pack.
const SMOKE_TEXT: &str = "담당자 메일 kim@example.co.kr 로 회신 바랍니다.\n\
    고객 연락처 010-2345-6789 로 안내했습니다.\n\
    leaked key AKIAIOSFODNN7EXAMPLE in CI logs\n\
    The album proved to be more commercial than its predecessor.\n";

fn build(patterns: &[&str], prefilter: bool) -> meta::Regex {
    meta::Builder::new()
        .configure(
            meta::Config::new()
                .match_kind(MatchKind::LeftmostFirst)
                .hybrid_cache_capacity(LAZY_DFA_CACHE_BYTES)
                .auto_prefilter(prefilter),
        )
        .build_many(patterns)
        .unwrap_or_else(|e| panic!("pattern does not compile: {e}"))
}

/// Matches of `re` over `lines`, resuming after each match, as the detector's scan loop.
fn scan(re: &meta::Regex, lines: &[&str]) -> usize {
    let mut n = 0;
    for l in lines {
        let mut at = 0;
        while at < l.len() {
            let Some(m) = re.search(&Input::new(*l).range(at..)) else {
                break;
            };
            n += 1;
            at = m.end().max(m.start() + 1);
            while !l.is_char_boundary(at) {
                at += 1;
            }
        }
    }
    n
}

/// Best time of `passes` passes after a warm-up pass, in ms, and the matches of one pass.
fn time(re: &meta::Regex, lines: &[&str], passes: usize) -> (f64, usize) {
    let n = scan(re, lines);
    let best = (0..passes)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(scan(re, lines));
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::MAX, f64::min);
    (best, n)
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let (text, passes, path) = if measuring {
        let path = bench_text_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            eprintln!(
                "cannot read {} ({e}): run `python3 scripts/make_bench_text.py` or set GARIM_BENCH_TEXT",
                path.display()
            );
            std::process::exit(2)
        });
        (text, PASSES, path.display().to_string())
    } else {
        (
            SMOKE_TEXT.to_owned(),
            1,
            "built-in self-check lines".to_owned(),
        )
    };
    report(&text, passes, &path, measuring);
}

fn bench_text_path() -> PathBuf {
    std::env::var_os("GARIM_BENCH_TEXT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-text.txt"))
}

/// Times the patterns over `text` and prints the table; in test mode (`!measuring`) also
/// checks that the planted values of [`SMOKE_TEXT`] were found.
fn report(text: &str, passes: usize, path: &str, measuring: bool) {
    let lines: Vec<&str> = text.lines().collect();
    // `cargo bench` passes `--bench`; other arguments are pack files, loaded (and checked)
    // after the built-in packs as the gateway loads them.
    let files: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let detector = RegexDetector::from_files(&files, true).unwrap_or_else(|e| panic!("{e}"));
    let pats: Vec<(&str, &str)> = detector
        .rules()
        .iter()
        .flat_map(|r| r.patterns().iter().map(move |p| (r.id(), p.as_str())))
        .collect();
    let mb = text.len() as f64 / 1e6;
    println!(
        "text: {path} ({:.2} MB, {} lines); {} patterns; ms per MB, best of {passes}",
        mb,
        lines.len(),
        pats.len()
    );
    let all: Vec<&str> = pats.iter().map(|&(_, p)| p).collect();
    let (t_all, n_all) = time(&build(&all, true), &lines, passes);
    let (floor, _) = time(
        &build(&["(?-u:\\b)[0-9]{40}(?-u:\\b)"], false),
        &lines,
        passes,
    );
    println!(
        "{:8.3}  {:5.2}x  {n_all:6}  all patterns",
        t_all / mb,
        t_all / floor
    );
    println!(
        "{:8.3}  {:5.2}x  {:6}  floor (bare lazy-DFA pass)",
        floor / mb,
        1.0,
        0
    );
    let mut rows: Vec<(f64, usize, &str, &str)> = pats
        .iter()
        .map(|&(id, p)| {
            let (t, n) = time(&build(&[p], true), &lines, passes);
            (t, n, id, p)
        })
        .collect();
    if !measuring {
        // The e-mail, the mobile number and the AWS key id (at least one match each).
        let found = |id: &str| rows.iter().any(|r| r.2 == id && r.1 > 0);
        assert!(
            n_all >= 3 && found("email") && found("kr_mobile") && found("aws_access_key_id"),
            "the self-check lines were not matched as expected ({n_all} matches)"
        );
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    // What the set would cost if the patterns at the floor (no prefilter of their own) were
    // rewritten or run apart: the rest as one regex.
    let fast: Vec<&str> = rows
        .iter()
        .filter(|r| r.0 < FLOOR_SHARE * floor)
        .map(|r| r.3)
        .collect();
    if !fast.is_empty() {
        let (t, n) = time(&build(&fast, true), &lines, passes);
        println!(
            "{:8.3}  {:5.2}x  {n:6}  all but the {} patterns at >= {FLOOR_SHARE} x floor",
            t / mb,
            t / floor,
            rows.len() - fast.len()
        );
    }
    for (t, n, id, p) in rows {
        let head: String = p.chars().take(48).collect();
        println!("{:8.3}  {:5.2}x  {n:6}  {id}  {head}", t / mb, t / floor);
    }
    if measuring && std::env::var_os("GARIM_LEAVE_ONE_OUT").is_some() {
        leave_one_out(&pats, &lines, passes, mb, t_all);
    }
}

/// For each rule, the set without that rule's patterns as one regex: what the rule costs
/// the set (its states multiply with the others', so this is not its cost alone), largest
/// saving first.
fn leave_one_out(pats: &[(&str, &str)], lines: &[&str], passes: usize, mb: f64, t_all: f64) {
    let mut ids: Vec<&str> = pats.iter().map(|&(id, _)| id).collect();
    ids.dedup();
    let mut rows: Vec<(f64, &str)> = ids
        .iter()
        .map(|&id| {
            let rest: Vec<&str> = pats.iter().filter(|p| p.0 != id).map(|p| p.1).collect();
            (time(&build(&rest, true), lines, passes).0, id)
        })
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!("leave one rule out (ms per MB of the set without it; saving against all patterns):");
    for (t, id) in rows {
        println!("{:8.3}  {:+6.3}  {id}", t / mb, (t - t_all) / mb);
    }
}
