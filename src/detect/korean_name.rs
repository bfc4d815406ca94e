//! Korean person names without a model: surname list, given-name syllables, context cues.
//!
//! Korean text separates words (eojeol) with spaces; a name is the start of a word, followed
//! in the same word by particles (`김민준은`) or a title (`김민준과장님`), or alone with a title
//! in the next word (`김민준 과장`). The detector looks at every maximal run of Hangul
//! syllables that is not preceded by a syllable and tries to split it as
//! surname (1 or 2 syllables, `rules/dict/ko_surnames.txt`) + given name (0, 1 or 2 syllables
//! from `rules/dict/ko_given_syllables.txt`) + a rest that splits entirely into particles and
//! titles (`ko_particles.txt`, `ko_titles.txt`). Candidates in `ko_not_names.txt` (고객님,
//! 선생님, 한국 선수, 이사장 ...) are never names. The span is the name only, without title
//! or particle.
//!
//! Evidence and score (the engine's default threshold is 0.5):
//! - title right after, attached or after a space, optionally after `(35)` or `전`/`현`
//!   (`홍길동 씨`, `김민준과장님께`, `강한승 전 비서관`): 0.85 (0.8 for two-syllable names);
//! - a field label before with a colon-like separator (`성명: 홍길동`, `[작성자] 김민준`), or
//!   an English field name of `rules/dict/en_field_labels.txt` with `:` or `=` and quotes
//!   (`{"name": "정하늘"}`, `customer_name=김민준`, `Contact: 이서연`: JSON payloads and
//!   tool calls): 0.85; a label or role word before with only spaces (`고객 홍길동이`,
//!   `배우 전지현`): 0.75 for names of three or more syllables; further names in a comma list after such a
//!   name (`참조: 김민준, 이서연`): 0.8;
//! - a bare surname with a title (`김 과장`, `박대리님`, `이 씨`, `김모씨`, `최 판사는`): 0.7
//!   (0.6 for `이`, which is also the word "this"); attached titles of one syllable other than
//!   씨 (`장군`, `태양`) and the surnames 남/여/부/전/현 before attached titles are not taken;
//! - another occurrence, in the same text, of a full name found with evidence ≥ 0.7: 0.75;
//! - a name-shaped word with particles only (`김민준이`): 0.4 (three syllables) or 0.3,
//!   below the default threshold: reported for evaluation and for lower thresholds.
//!
//! Limits: foreign names, nicknames and names written without any cue are not found (an NER
//! model does that); names of rare surnames or unusual given-name syllables are missed; a
//! word list, not a grammar, decides what is a particle. Findings never hold text in errors.

use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use super::dictionary::parse_terms;
use super::{DetectError, Detector, Finding, Label};

/// The detector name in findings.
pub const DETECTOR_NAME: &str = "korean_name";

/// Scores by evidence; see the module doc.
const SCORE_TITLE: f32 = 0.85;
const SCORE_TITLE_SHORT: f32 = 0.8;
const SCORE_FIELD: f32 = 0.85;
const SCORE_LIST: f32 = 0.8;
const SCORE_CUE: f32 = 0.75;
const SCORE_COREF: f32 = 0.75;
const SCORE_SURNAME_TITLE: f32 = 0.7;
const SCORE_SURNAME_I: f32 = 0.6;
const SCORE_WEAK: f32 = 0.4;
const SCORE_WEAK_SHORT: f32 = 0.3;
/// Third syllables that make `word + syllable` an inflected word rather than a name when
/// the first two syllables are a listed word (강조한, 한국인, 정부의).
const ENDINGS: &[&str] = &[
    "한", "된", "할", "인", "적", "은", "을", "의", "에", "과", "와", "로", "도", "만", "들", "해",
    "히", "하", "되", "이", "가", "는", "를",
];
/// Findings at or above this make other occurrences of the same name findings too.
const COREF_MIN: f32 = 0.7;

/// True for a precomposed Hangul syllable (가..힣).
pub fn is_syllable(c: char) -> bool {
    ('\u{AC00}'..='\u{D7A3}').contains(&c)
}

/// FNV-1a: the word sets hold short keys, and SipHash dominated the detector's time (the
/// regex detector's validated-names set uses it too).
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type WordSet = HashSet<&'static str, BuildHasherDefault<Fnv>>;

/// A set of Hangul syllables as a bitmap (11,172 bits).
struct SylSet([u64; 175]);

impl SylSet {
    fn new(items: impl Iterator<Item = char>) -> Self {
        let mut bits = [0u64; 175];
        for c in items.filter(|&c| is_syllable(c)) {
            let i = c as usize - 0xAC00;
            bits[i / 64] |= 1 << (i % 64);
        }
        SylSet(bits)
    }

    fn contains(&self, c: char) -> bool {
        is_syllable(c) && {
            let i = c as usize - 0xAC00;
            self.0[i / 64] & (1 << (i % 64)) != 0
        }
    }

    /// `s` is one syllable of the set.
    fn has(&self, s: &str) -> bool {
        let mut it = s.chars();
        matches!((it.next(), it.next()), (Some(c), None) if self.contains(c))
    }
}

struct Lexicon {
    surnames: WordSet,
    /// First syllables of surnames: a quick test before the set lookups.
    surname_first: SylSet,
    given: SylSet,
    titles: WordSet,
    surname_titles: WordSet,
    particles: WordSet,
    cues: WordSet,
    /// English field names (normalised by [`field_key`]) whose value is a name.
    en_fields: WordSet,
    not_names: WordSet,
    /// Longest particle or title, in syllables.
    max_morph: usize,
}

fn set(text: &'static str) -> WordSet {
    parse_terms(text).collect()
}

fn lexicon() -> &'static Lexicon {
    static LEX: OnceLock<Lexicon> = OnceLock::new();
    LEX.get_or_init(|| {
        let titles = set(include_str!("../../rules/dict/ko_titles.txt"));
        let particles = set(include_str!("../../rules/dict/ko_particles.txt"));
        let max_morph = titles
            .iter()
            .chain(particles.iter())
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(1);
        let surnames = set(include_str!("../../rules/dict/ko_surnames.txt"));
        Lexicon {
            surname_first: SylSet::new(surnames.iter().filter_map(|s| s.chars().next())),
            surnames,
            given: SylSet::new(
                parse_terms(include_str!("../../rules/dict/ko_given_syllables.txt"))
                    .filter_map(|s| s.chars().next()),
            ),
            surname_titles: set(include_str!("../../rules/dict/ko_surname_titles.txt")),
            cues: set(include_str!("../../rules/dict/ko_label_cues.txt")),
            en_fields: set(include_str!("../../rules/dict/en_field_labels.txt")),
            not_names: set(include_str!("../../rules/dict/ko_not_names.txt")),
            titles,
            particles,
            max_morph,
        }
    })
}

/// Syllable `k` of a string of syllables (each is 3 bytes in UTF-8).
fn syl(s: &str, k: usize) -> &str {
    &s[3 * k..3 * k + 3]
}

fn nsyl(s: &str) -> usize {
    s.len() / 3
}

impl Lexicon {
    fn morpheme(&self, m: &str) -> bool {
        self.particles.contains(m) || self.titles.contains(m)
    }

    /// `s` (syllables only) splits entirely into particles and titles.
    fn chain(&self, s: &str) -> bool {
        let n = nsyl(s);
        if n == 0 {
            return true;
        }
        if n > 16 {
            return false;
        }
        let mut ok = [false; 17];
        ok[0] = true;
        for i in 0..n {
            if !ok[i] {
                continue;
            }
            for l in 1..=self.max_morph.min(n - i) {
                if self.morpheme(&s[3 * i..3 * (i + l)]) {
                    ok[i + l] = true;
                }
            }
        }
        ok[n]
    }

    /// `s` starts with a title of `titles` and the rest is a chain; returns the title.
    fn title_first<'s>(&self, s: &'s str, titles: &WordSet) -> Option<&'s str> {
        let n = nsyl(s);
        (1..=self.max_morph.min(n))
            .rev()
            .map(|l| (&s[..3 * l], &s[3 * l..]))
            .find(|(t, rest)| titles.contains(t) && self.chain(rest))
            .map(|(t, _)| t)
    }
}

/// True when `s` is empty or splits entirely into Korean particles and titles (`은`, `에게서`,
/// `과장님께서는`). Used for the boundary after dictionary terms that end in Hangul.
pub fn is_suffix_chain(s: &str) -> bool {
    s.chars().all(is_syllable) && lexicon().chain(s)
}

/// A maximal run of Hangul syllables: byte range.
#[derive(Clone, Copy)]
struct Run {
    start: usize,
    end: usize,
}

fn syllable_runs(text: &str) -> Vec<Run> {
    let b = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    let mut cur: Option<usize> = None;
    while i < b.len() {
        // Syllables U+AC00..U+D7A3 have lead bytes 0xEA..=0xED.
        if (0xEA..=0xED).contains(&b[i]) {
            let c = text[i..].chars().next().unwrap_or('\0');
            if is_syllable(c) {
                cur.get_or_insert(i);
                i += 3;
                continue;
            }
        }
        if let Some(s) = cur.take() {
            runs.push(Run { start: s, end: i });
        }
        i += if b[i] < 0x80 {
            1
        } else {
            text[i..].chars().next().map_or(1, char::len_utf8)
        };
    }
    if let Some(s) = cur {
        runs.push(Run {
            start: s,
            end: b.len(),
        });
    }
    runs
}

/// What precedes a word.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Before {
    Nothing,
    /// A field label and a colon-like separator.
    Field,
    /// A label or role word and spaces only.
    Cue,
    /// A comma after a name found with field/cue/list evidence.
    List,
}

fn classify_gap(gap: &str) -> Option<bool> {
    // Some(true): colon-like separator; Some(false): spaces only; None: anything else.
    if gap.len() > 12 || gap.is_empty() {
        return None;
    }
    let mut sep = false;
    for c in gap.chars() {
        match c {
            ' ' | '\t' | '\u{3000}' | '\n' | '\r' => {}
            ':' | '：' | '=' | '|' | ']' | ')' | '>' | '】' | '-' if !sep => sep = true,
            _ => return None,
        }
    }
    Some(sep)
}

/// Whether `before` (the text before a name candidate) ends with an English field name of
/// `en_field_labels.txt` and a `:` or `=`, quotes and spaces allowed around them:
/// `{"name": "`, `customer_name=`, `Contact: `.
fn english_field(lx: &Lexicon, before: &str) -> bool {
    const QUOTES: [char; 2] = ['"', '\''];
    const SPACES: [char; 2] = [' ', '\t'];
    // Look back at most 64 bytes (a key, quotes, spaces), from a char boundary.
    let mut at = before.len().saturating_sub(64);
    while !before.is_char_boundary(at) {
        at += 1;
    }
    let tail = &before[at..];
    let b = tail.trim_end_matches(SPACES);
    let b = b.strip_suffix(QUOTES).unwrap_or(b).trim_end_matches(SPACES);
    let Some(b) = b.strip_suffix([':', '=', '：']) else {
        return false;
    };
    let b = b.trim_end_matches(SPACES);
    let b = b.strip_suffix(QUOTES).unwrap_or(b);
    let key_start = b
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .map_or(0, |i| i + b[i..].chars().next().map_or(1, char::len_utf8));
    let key = field_key(&b[key_start..]);
    !key.is_empty() && lx.en_fields.contains(key.as_str())
}

/// A field name lower-cased without `_` and `-` (`customer_name`, `customerName` ->
/// `customername`).
fn field_key(key: &str) -> String {
    key.chars()
        .filter(|&c| c != '_' && c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn is_list_gap(gap: &str) -> bool {
    let t = gap.trim_matches([' ', '\t']);
    matches!(t, "," | "，" | "、" | "·" | "/" | "ㆍ")
}

/// Gap between a name and a title in the next word: spaces, or an age `(35)`.
fn is_title_gap(gap: &str) -> bool {
    if gap.is_empty() || gap.len() > 12 || gap.contains(['\n', '\r']) {
        return false;
    }
    let t = gap.trim_matches([' ', '\t']);
    if t.is_empty() {
        return true;
    }
    t.strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .is_some_and(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit() || b == b','))
}

/// The Korean name detector. Cheap to build; the word lists are shared and loaded once.
#[derive(Debug, Clone)]
pub struct KoreanNameDetector {
    min_score: f32,
}

impl Default for KoreanNameDetector {
    fn default() -> Self {
        KoreanNameDetector::new(0.0)
    }
}

struct Cand {
    start: usize,
    end: usize,
    score: f32,
    /// Has a given name (not a bare surname).
    full: bool,
}

impl KoreanNameDetector {
    /// Candidates scoring below `min_score` are not reported.
    pub fn new(min_score: f32) -> Self {
        KoreanNameDetector { min_score }
    }

    fn next_has_title(lx: &Lexicon, text: &str, runs: &[Run], i: usize, titles: &WordSet) -> bool {
        let Some(next) = runs.get(i + 1) else {
            return false;
        };
        if !is_title_gap(&text[runs[i].end..next.start]) {
            return false;
        }
        let w = &text[next.start..next.end];
        if lx.title_first(w, titles).is_some() {
            return true;
        }
        // 전/현 (former/current) between name and title.
        if (w == "전" || w == "현") && i + 2 < runs.len() {
            let n2 = runs[i + 2];
            return is_title_gap(&text[next.end..n2.start])
                && lx.title_first(&text[n2.start..n2.end], titles).is_some();
        }
        false
    }

    /// Word `i + 1` is `모` and a title follows it (`김 모 씨`, `김 모(35) 씨`).
    fn next_is_mo_title(lx: &Lexicon, text: &str, runs: &[Run], i: usize) -> bool {
        let Some(m) = runs.get(i + 1) else {
            return false;
        };
        let t = runs.get(i + 2).copied().unwrap_or(Run {
            start: text.len(),
            end: text.len(),
        });
        let mw = &text[m.start..m.end];
        if !is_title_gap(&text[runs[i].end..m.start]) {
            return false;
        }
        if let Some(after) = mw.strip_prefix("모").filter(|a| !a.is_empty()) {
            // 윤 모씨의
            return matches!(lx.title_first(after, &lx.titles), Some("씨" | "군" | "양"));
        }
        mw == "모"
            && is_title_gap(&text[m.end..t.start])
            && matches!(
                lx.title_first(&text[t.start..t.end], &lx.titles),
                Some("씨" | "군" | "양")
            )
    }

    /// The best name at the start of word `i`.
    fn candidate(
        &self,
        lx: &Lexicon,
        text: &str,
        runs: &[Run],
        i: usize,
        before: Before,
    ) -> Option<Cand> {
        let r = runs[i];
        // 1차 검사, 3선 의원, A양: a letter or digit before is part of the word.
        if text[..r.start]
            .bytes()
            .next_back()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        {
            return None;
        }
        let w = &text[r.start..r.end];
        if !text[r.start..]
            .chars()
            .next()
            .is_some_and(|c| lx.surname_first.contains(c))
        {
            return None;
        }
        let n = nsyl(w);
        let mut best: Option<Cand> = None;
        let mut consider = |len: usize, score: f32, full: bool| {
            if best
                .as_ref()
                .is_none_or(|b| score > b.score || (score == b.score && 3 * len > b.end - b.start))
            {
                best = Some(Cand {
                    start: r.start,
                    end: r.start + 3 * len,
                    score,
                    full,
                });
            }
        };
        for slen in [2usize, 1] {
            if n < slen || !lx.surnames.contains(&w[..3 * slen]) {
                continue;
            }
            let surname = &w[..3 * slen];
            // A bare surname with a title.
            if slen == 1 {
                let rest = &w[3..];
                let i_ = surname == "이";
                let s_score = if i_ {
                    SCORE_SURNAME_I
                } else {
                    SCORE_SURNAME_TITLE
                };
                // 전/현 (former/current), 당 (the party), 두 (two) before a title.
                let spaced_ok = !matches!(surname, "전" | "현" | "당" | "두");
                // 남기자, 여사장, 부사장: male/female/vice.
                let attach_ok = spaced_ok && !matches!(surname, "남" | "여" | "부");
                if rest.is_empty() {
                    if spaced_ok && Self::next_has_title(lx, text, runs, i, &lx.surname_titles) {
                        consider(1, s_score, false);
                    } else if spaced_ok && Self::next_is_mo_title(lx, text, runs, i) {
                        // 김 모 씨
                        consider(1, SCORE_SURNAME_TITLE, false);
                    }
                } else if let Some(t) = lx.title_first(rest, &lx.surname_titles) {
                    let head = &w[..3 + t.len()];
                    if attach_ok && (t == "씨" || nsyl(t) >= 2) && !lx.not_names.contains(head) {
                        consider(1, s_score, false);
                    }
                } else if let Some(after_mo) = rest.strip_prefix("모") {
                    // 김모씨, 박모(35) 씨, 박모 상경
                    let ok = if after_mo.is_empty() {
                        let gap_ok = runs.get(i + 1).is_some_and(|nx| {
                            is_title_gap(&text[r.end..nx.start])
                                && lx
                                    .title_first(&text[nx.start..nx.end], &lx.titles)
                                    .is_some()
                        });
                        gap_ok || text[r.end..].starts_with('(')
                    } else {
                        matches!(
                            lx.title_first(after_mo, &lx.titles),
                            Some("씨" | "군" | "양")
                        )
                    };
                    if ok {
                        consider(1, SCORE_SURNAME_TITLE, false);
                    }
                }
            }
            for glen in [2usize, 1] {
                let len = slen + glen;
                if len > n {
                    continue;
                }
                if !(slen..len).all(|k| lx.given.has(syl(w, k))) {
                    continue;
                }
                let name = &w[..3 * len];
                if lx.not_names.contains(name) {
                    continue;
                }
                // The given name is (the start of) a title: 박대리님 is 박 + 대리님.
                if let Some(t) = lx.title_first(&w[3 * slen..], &lx.titles) {
                    if nsyl(t) >= glen {
                        continue;
                    }
                }
                // Universities before 교수: 부산대, 한양대.
                if glen == 2 && syl(w, len - 1) == "대" {
                    continue;
                }
                // A word + an ending: 강조한, 한국인, 이상한 (but 이상민).
                if len == 3
                    && slen == 1
                    && lx.not_names.contains(&w[..6])
                    && ENDINGS.contains(&syl(w, 2))
                {
                    continue;
                }
                let rest = &w[3 * len..];
                let titled = if rest.is_empty() {
                    Self::next_has_title(lx, text, runs, i, &lx.titles)
                } else {
                    // Attached 군/양 end place names (순창군, 태평양): only 씨/님 or longer.
                    // After a two-syllable name, a long attached title is mostly the end of a
                    // compound (공관위원장, 사무국장): only 씨/님 there.
                    lx.title_first(rest, &lx.titles)
                        .is_some_and(|t| t == "씨" || t == "님" || (nsyl(t) >= 2 && len >= 3))
                };
                if !titled && !lx.chain(rest) {
                    continue;
                }
                let long = len >= 3;
                let mut score = if titled {
                    if long {
                        SCORE_TITLE
                    } else {
                        SCORE_TITLE_SHORT
                    }
                } else if long {
                    SCORE_WEAK
                } else {
                    SCORE_WEAK_SHORT
                };
                score = score.max(match before {
                    Before::Field => SCORE_FIELD,
                    Before::List if long => SCORE_LIST,
                    Before::Cue if long => SCORE_CUE,
                    _ => 0.0,
                });
                consider(len, score, true);
            }
        }
        best
    }

    fn before(
        lx: &Lexicon,
        text: &str,
        runs: &[Run],
        i: usize,
        last: Option<(usize, Before)>,
    ) -> Before {
        let r = runs[i];
        if english_field(lx, &text[..r.start]) {
            return Before::Field;
        }
        let Some(prev) = i.checked_sub(1).map(|p| runs[p]) else {
            return Before::Nothing;
        };
        let gap = &text[prev.end..r.start];
        if let Some((li, ev)) = last {
            if li + 1 == i && ev != Before::Nothing && is_list_gap(gap) {
                return Before::List;
            }
        }
        let Some(colon) = classify_gap(gap) else {
            return Before::Nothing;
        };
        let pw = &text[prev.start..prev.end];
        // A label at the end of a longer word (신청인성명:) only with a colon: 영화가 is not 화가.
        let is_cue = lx.cues.contains(pw)
            || colon
                && lx
                    .cues
                    .iter()
                    .any(|c| nsyl(c) >= 2 && pw.len() > c.len() && pw.ends_with(c));
        match (is_cue, colon) {
            (false, _) => Before::Nothing,
            (true, true) => Before::Field,
            (true, false) => Before::Cue,
        }
    }
}

impl Detector for KoreanNameDetector {
    fn name(&self) -> &str {
        DETECTOR_NAME
    }

    fn detect(&self, text: &str, out: &mut Vec<Finding>) -> Result<(), DetectError> {
        let runs = syllable_runs(text);
        if runs.is_empty() {
            return Ok(());
        }
        let lx = lexicon();
        let mut cands: Vec<(usize, Cand)> = Vec::new();
        let mut last: Option<(usize, Before)> = None;
        for i in 0..runs.len() {
            let first = text[runs[i].start..].chars().next().unwrap_or('\0');
            if !lx.surname_first.contains(first) {
                continue;
            }
            let before = Self::before(lx, text, &runs, i, last);
            if let Some(c) = self.candidate(lx, text, &runs, i, before) {
                // Only field/cue/list evidence continues a comma list.
                let ev = if c.full && c.score >= SCORE_CUE && before != Before::Nothing {
                    before
                } else {
                    Before::Nothing
                };
                last = Some((i, ev));
                cands.push((i, c));
            }
        }
        // Other occurrences of names found with good evidence.
        let mut known: Vec<&str> = cands
            .iter()
            .filter(|(_, c)| c.full && c.score >= COREF_MIN)
            .map(|(_, c)| &text[c.start..c.end])
            .collect();
        known.sort_unstable();
        known.dedup();
        if !known.is_empty() {
            let mut j = 0;
            for (i, r) in runs.iter().enumerate() {
                while j < cands.len() && cands[j].0 < i {
                    j += 1;
                }
                let existing = (j < cands.len() && cands[j].0 == i).then_some(j);
                if existing.is_some_and(|k| cands[k].1.score >= SCORE_COREF) {
                    continue;
                }
                let w = &text[r.start..r.end];
                let hit = known
                    .iter()
                    .filter(|k| w.starts_with(*k) && lx.chain(&w[k.len()..]))
                    .max_by_key(|k| k.len());
                if let Some(k) = hit {
                    let c = Cand {
                        start: r.start,
                        end: r.start + k.len(),
                        score: SCORE_COREF,
                        full: true,
                    };
                    match existing {
                        Some(k) => cands[k].1 = c,
                        None => {
                            cands.insert(j, (i, c));
                        }
                    }
                }
            }
        }
        out.extend(
            cands
                .into_iter()
                .filter(|(_, c)| c.score >= self.min_score)
                .map(|(_, c)| Finding {
                    start: c.start,
                    end: c.end,
                    label: Label::Person,
                    subtype: None,
                    detector: Cow::Borrowed(DETECTOR_NAME),
                    score: c.score,
                }),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str, min: f32) -> Vec<(&str, f32)> {
        let mut out = Vec::new();
        KoreanNameDetector::new(min).detect(text, &mut out).unwrap();
        out.iter()
            .map(|f| (&text[f.start..f.end], f.score))
            .collect()
    }

    fn names(text: &str) -> Vec<&str> {
        found(text, 0.5).into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn suffix_chains() {
        for s in [
            "",
            "은",
            "에게서",
            "님께서는",
            "과장님이",
            "입니다",
            "씨가",
            "이랑은",
        ] {
            assert!(is_suffix_chain(s), "{s}");
        }
        for s in ["호", "전자", "번에", "abc", "치가"] {
            assert!(!is_suffix_chain(s), "{s}");
        }
    }

    #[test]
    fn titles_make_names() {
        for (text, want) in [
            ("김민준 과장님께 보고드립니다.", vec!["김민준"]),
            ("김민준과장님이 오셨어요", vec!["김민준"]),
            ("이서연 대리, 박지훈 팀장 참석", vec!["이서연", "박지훈"]),
            ("남궁민수 씨는 오늘 휴가입니다", vec!["남궁민수"]),
            ("황보영 선생님께서", vec!["황보영"]),
            ("강한승 전 비서관으로", vec!["강한승"]),
            ("홍길동(35) 씨가 체포됐다", vec!["홍길동"]),
            ("제갈현우 교수와 면담", vec!["제갈현우"]),
            ("장혁 씨가 왔다", vec!["장혁"]),
        ] {
            assert_eq!(names(text), want, "{text}");
        }
        let f = found("김민준 과장님", 0.0);
        assert!((f[0].1 - SCORE_TITLE).abs() < 1e-6);
    }

    #[test]
    fn bare_surnames_with_titles() {
        for (text, want) in [
            ("김 과장님, 자료 보냈습니다", vec!["김"]),
            ("박대리님 확인 부탁드려요", vec!["박"]),
            ("경찰은 김모(35)씨를 입건했다", vec!["김"]),
            ("정 군은 지난해", vec!["정"]),
            ("최 판사는 말했다", vec!["최"]),
            ("김씨는 이것이", vec!["김"]),
            ("범인 윤 모씨의 전 남편", vec!["윤"]),
            ("보육교사 김 모 씨(26)와", vec!["김"]),
        ] {
            assert_eq!(names(text), want, "{text}");
        }
        // Ordinary words: a general, the sun, a parking lot, a vice president, a customer.
        for text in [
            "장군이 말했다",
            "태양이 뜬다",
            "주차장에 차를",
            "부사장님 보고",
            "고객님 감사합니다",
            "선생님께서 오셨다",
            "하나님 감사합니다",
            "전 사장은 사임했다",
            "이사장이 발표했다",
            "손님이 왔다",
            "성씨는 김이다",
            "다음은 부산대 교수 일동이",
            "1차 검사를 진행했으며",
            "연기자들과 함께",
            "국회의원 당선자",
            "태평양 상공에서",
            "순창군 순창읍",
        ] {
            assert_eq!(names(text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn labelled_fields_and_cues() {
        for (text, want) in [
            ("성명: 홍길동\n연락처: 010-1234-5678", vec!["홍길동"]),
            ("[작성자] 김민준", vec!["김민준"]),
            ("이름 : 이서연", vec!["이서연"]),
            (
                "참조: 김민준, 이서연, 박지훈",
                vec!["김민준", "이서연", "박지훈"],
            ),
            ("고객 홍길동이 문의했습니다", vec!["홍길동"]),
            ("담당자 최수진에게 연락 바랍니다", vec!["최수진"]),
            ("배우 전지현은 말했다", vec!["전지현"]),
            ("신청인성명: 박영희", vec!["박영희"]),
            // English field names, as in JSON payloads and forms.
            (r#"{"name": "정하늘", "dept": "인사팀"}"#, vec!["정하늘"]),
            (r#"{"customer_name":"정하늘"}"#, vec!["정하늘"]),
            ("customerName = '정하늘'", vec!["정하늘"]),
            ("Contact: 정하늘, 이서연", vec!["정하늘", "이서연"]),
        ] {
            assert_eq!(names(text), want, "{text}");
        }
        // A cue without colon needs three syllables; commas need a cued name first.
        assert_eq!(names("고객 만족도"), Vec::<&str>::new());
        assert_eq!(names("김치, 정말, 한국"), Vec::<&str>::new());
        // Other English keys, or no separator: nothing.
        assert_eq!(names(r#"{"team": "정하늘"}"#), Vec::<&str>::new());
        assert_eq!(names(r#"{"filename": "정하늘"}"#), Vec::<&str>::new());
        assert_eq!(names("name 정하늘"), Vec::<&str>::new());
    }

    #[test]
    fn particles_alone_are_weak_and_coreference_lifts() {
        let f = found("김민준이 보고서를 제출했다", 0.0);
        assert_eq!(f.len(), 1);
        assert!(f[0].1 < 0.5, "{f:?}");
        assert_eq!(
            names("김민준 대리가 왔다. 김민준은 보고서를 냈고, 김민준에게 답했다."),
            vec!["김민준", "김민준", "김민준"]
        );
    }

    #[test]
    fn ordinary_text_has_no_names() {
        let text = "이번 회의에서 정말 중요한 안건은 김치 수출과 한국 시장 조사였다. \
                    신문 기사에서 강조한 장관의 발언, 정부 대표의 입장, 국가 대표 선수 선발, \
                    한국 선수들의 활약과 이사회 결정이 보도됐다. 주요 기업 대표 회의가 열렸다.";
        assert_eq!(names(text), Vec::<&str>::new());
    }

    #[test]
    fn business_text_spans() {
        let text = "안녕하세요 박지훈 팀장님,\n회의록 공유드립니다.\n참석: 이서연, 최민호\n\
                    작성자: 정하늘 (인사팀)\n문의는 김 대리에게 주세요.";
        let got: Vec<(usize, usize)> = {
            let mut out = Vec::new();
            KoreanNameDetector::new(0.5).detect(text, &mut out).unwrap();
            out.iter().map(|f| (f.start, f.end)).collect()
        };
        let want: Vec<(usize, usize)> = ["박지훈", "이서연", "최민호", "정하늘", "김"]
            .iter()
            .map(|n| {
                let s = text.find(n).unwrap();
                (s, s + n.len())
            })
            .collect();
        assert_eq!(got, want, "{:?}", names(text));
    }
}
