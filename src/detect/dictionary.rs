//! Dictionary detector: term lists (employee names, customers, project codenames) found with
//! one Aho-Corasick automaton, and allow lists that suppress findings of every detector.
//!
//! # Lists
//!
//! A [`TermList`] has a name, a kind ([`ListKind::Deny`] produces findings with the list's
//! label and score, [`ListKind::Allow`] suppresses findings), a case flag and its terms. Terms
//! come from files ([`load_terms`]: UTF-8, one term per line, surrounding whitespace trimmed,
//! blank lines and lines starting with `#` ignored; a `#` later in a line is part of the
//! term) or inline arrays in the configuration.
//!
//! # Matching
//!
//! All deny lists share one automaton (leftmost-longest), all allow lists another, so a text
//! is scanned once per kind whatever the number of lists. Case-insensitive lists fold ASCII
//! letters only (Hangul has no case; other scripts match exactly). When case-sensitive and
//! case-insensitive lists are mixed, the automaton folds and case-sensitive terms are checked
//! byte for byte after a match. Folding lowercases the patterns and a copy of each text that
//! has ASCII capitals (offsets are unchanged), which builds faster than the automaton's own
//! case-insensitive mode. A term in several lists is reported for the first list (in
//! configuration order) whose case rule accepts the match.
//!
//! Boundaries, checked in code after each match:
//! - a term that starts (ends) with an ASCII letter or digit must not be preceded (followed)
//!   by an ASCII letter, digit or `_` (`Kim` is not found in `Kimberly`);
//! - a term that starts with a Hangul syllable must not be preceded by one (`민준` is not
//!   found in `김민준`);
//! - a term that ends with a Hangul syllable may be followed by other syllables only when
//!   they split entirely into particles and titles ([`super::korean_name::is_suffix_chain`]):
//!   `김민준은`, `김민준에게서`, `김민준과장님` match the term `김민준`; `김민준호` does not.
//!
//! When the longest term at a position fails its boundary check, shorter terms starting at
//! the same position are tried (`Acme` in `Acme Corporation` when `Acme Corp` is also a
//! term), then the search resumes one character later.
//!
//! # Allow lists
//!
//! [`AllowList::suppress`] drops every finding whose span lies within (or equals) an
//! allow-listed match, optionally only findings of the list's label. [`AllowFilter`] wraps
//! the engine's detectors so that this holds for all of them (regex, dictionary, names):
//! `build_engine` puts it around the detectors when allow lists are configured. The allow
//! automaton only runs on texts that produced findings.
//!
//! Limits: only ASCII case folding; a term overlapping a longer leftmost term is not found
//! (leftmost-longest, non-overlapping); a case-sensitive term that fails its exact check in a
//! mixed automaton hides shorter terms at the same start only if none of them is accepted.
//! Building the automaton dominates load time: one million terms (11 MB) take about 10 s in
//! a release build on a busy 2-core machine (the `aho-corasick` NFA construction itself), 100k
//! terms under a second. Errors and Debug output name lists, files and line numbers, never a
//! term or scanned text.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aho_corasick::{AhoCorasick, Anchored, Input, MatchKind, StartKind};

use super::korean_name::{is_suffix_chain, is_syllable};
use super::{DetectError, Detector, Finding, Label};

/// Default score of deny-list findings.
pub const DEFAULT_SCORE: f32 = 0.9;

/// What a list does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Every match is a finding.
    Deny,
    /// Findings inside a match are dropped.
    Allow,
}

/// One named list of terms.
#[derive(Clone)]
pub struct TermList {
    /// Used in finding detector names (`dict:<name>`) and errors.
    pub name: String,
    /// Deny lists: the findings' label. Allow lists: when set, only findings of this label
    /// are suppressed; `None` suppresses findings of every label.
    pub label: Option<Label>,
    pub kind: ListKind,
    /// ASCII letters match regardless of case.
    pub case_insensitive: bool,
    /// Score of deny-list findings.
    pub score: f32,
    pub terms: Vec<String>,
}

impl fmt::Debug for TermList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TermList")
            .field("name", &self.name)
            .field("label", &self.label)
            .field("kind", &self.kind)
            .field("case_insensitive", &self.case_insensitive)
            .field("score", &self.score)
            .field("terms", &format_args!("<{} terms>", self.terms.len()))
            .finish()
    }
}

/// Why a dictionary could not be loaded or built. Never holds a term.
#[derive(Debug, thiserror::Error)]
pub enum DictError {
    #[error("dictionary `{list}`: cannot read `{file}`: {source}")]
    Io {
        list: String,
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dictionary `{list}`: `{file}` line {line} is not valid UTF-8")]
    NotUtf8 {
        list: String,
        file: PathBuf,
        line: usize,
    },
    #[error("dictionary `{list}`: a deny list needs a label")]
    NoLabel { list: String },
    #[error("dictionary `{list}`: score must be between 0.0 and 1.0")]
    BadScore { list: String },
    #[error("dictionaries ({kind}): cannot build the matcher: {message}")]
    Build { kind: &'static str, message: String },
}

impl DictError {
    /// Dictionaries are operator configuration: never the client's fault.
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::INTERNAL_SERVER_ERROR
    }

    pub fn fault(&self) -> &'static str {
        "internal"
    }
}

/// The error of [`super::build_engine`]: a rule pack or a dictionary failed to load.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Rules(#[from] super::regex::RuleError),
    #[error(transparent)]
    Dictionary(#[from] DictError),
}

impl BuildError {
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::INTERNAL_SERVER_ERROR
    }

    pub fn fault(&self) -> &'static str {
        "internal"
    }
}

/// The terms of a list text: trimmed lines, without blank lines and `#` comment lines.
pub fn parse_terms(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Reads a term file (see the module doc). `list` names the list in errors.
pub fn load_terms(list: &str, path: &Path) -> Result<Vec<String>, DictError> {
    let bytes = std::fs::read(path).map_err(|source| DictError::Io {
        list: list.to_owned(),
        file: path.to_owned(),
        source,
    })?;
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            return Err(DictError::NotUtf8 {
                list: list.to_owned(),
                file: path.to_owned(),
                line,
            });
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    Ok(parse_terms(text).map(str::to_owned).collect())
}

/// Which list a pattern belongs to, and the exact bytes when the automaton folds case but
/// the list does not.
struct Entry {
    list: u32,
    exact: Option<Box<str>>,
}

/// One automaton over the terms of several lists, with the boundary rules of the module doc.
struct Matcher {
    ac: AhoCorasick,
    /// Entry of each pattern (its first list).
    first: Vec<Entry>,
    /// Further entries of patterns that occur in several lists, in list order.
    more: HashMap<u32, Vec<Entry>>,
    /// Patterns are ASCII-lowercased; texts are lowercased before the search.
    fold: bool,
    /// Which 3-byte prefixes begin a pattern: bit [`prefix_bit`] of every pattern's first
    /// three bytes (8 KiB, stays in the L1 cache; a hash, so false positives only).
    prefixes: Box<[u64; PREFIX_WORDS]>,
    /// Bytes that begin a pattern shorter than three bytes.
    short: [bool; 256],
}

const PREFIX_BITS: u32 = 16;
const PREFIX_WORDS: usize = (1 << PREFIX_BITS) / 64;

/// The bit of the prefix table for the three bytes `b`.
fn prefix_bit(b: &[u8]) -> usize {
    let k = u32::from_le_bytes([b[0], b[1], b[2], 0]);
    (k.wrapping_mul(0x9E37_79B1) >> (32 - PREFIX_BITS)) as usize
}

impl Matcher {
    /// `lists`: `(list index, case_insensitive, terms)`.
    fn build(kind: &'static str, lists: &[(u32, bool, &[String])]) -> Result<Matcher, DictError> {
        let fold = lists.iter().any(|(_, ci, _)| *ci);
        let mixed = fold && lists.iter().any(|(_, ci, _)| !*ci);
        let total: usize = lists.iter().map(|(_, _, t)| t.len()).sum();
        let mut ids: HashMap<Cow<'_, [u8]>, u32> = HashMap::with_capacity(total);
        let mut count: u32 = 0;
        let mut first: Vec<Entry> = Vec::with_capacity(total);
        let mut more: HashMap<u32, Vec<Entry>> = HashMap::new();
        for &(list, ci, terms) in lists {
            for t in terms {
                if t.is_empty() {
                    continue;
                }
                let key: Cow<'_, [u8]> = if fold && t.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(t.as_bytes().to_ascii_lowercase())
                } else {
                    Cow::Borrowed(t.as_bytes())
                };
                let entry = Entry {
                    list,
                    exact: (mixed && !ci).then(|| t.as_str().into()),
                };
                match ids.get(&key) {
                    Some(&id) => {
                        let dup = first[id as usize].list == list
                            && first[id as usize].exact == entry.exact
                            || more.get(&id).is_some_and(|v| {
                                v.iter().any(|e| e.list == list && e.exact == entry.exact)
                            });
                        if !dup {
                            more.entry(id).or_default().push(entry);
                        }
                    }
                    None => {
                        let id = count;
                        count = count.checked_add(1).ok_or_else(|| DictError::Build {
                            kind,
                            message: "too many terms".into(),
                        })?;
                        first.push(entry);
                        ids.insert(key, id);
                    }
                }
            }
        }
        // Folded keys in pattern order. Folding lowercases the keys here and a copy of each
        // text at search time (same byte offsets): much faster to build than the automaton's
        // own ASCII case-insensitivity, which doubles its transitions.
        let mut patterns: Vec<Cow<'_, [u8]>> = vec![Cow::Borrowed(&[][..]); first.len()];
        for (k, id) in ids {
            patterns[id as usize] = k;
        }
        let mut prefixes = Box::new([0u64; PREFIX_WORDS]);
        let mut short = [false; 256];
        for p in &patterns {
            if p.len() >= 3 {
                let bit = prefix_bit(p);
                prefixes[bit / 64] |= 1 << (bit % 64);
            } else if let Some(&b) = p.first() {
                short[b as usize] = true;
            }
        }
        // Anchored searches only (see `for_each`): no unanchored start state to build.
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .start_kind(StartKind::Anchored)
            .build(&patterns)
            .map_err(|e| DictError::Build {
                kind,
                message: e.to_string(),
            })?;
        Ok(Matcher {
            ac,
            first,
            more,
            fold,
            prefixes,
            short,
        })
    }

    /// Calls `f(start, end, list)` for each accepted match, left to right, non-overlapping.
    ///
    /// Only places where a term can start are tried, each with an anchored search: three
    /// bytes that may begin some term ([`Matcher::may_begin`]) where the start boundary holds
    /// ([`start_ok`]: not inside an ASCII word or a run of Hangul syllables). This finds
    /// what an unanchored leftmost-longest scan resumed after each rejected match finds (a
    /// match at any other place is rejected by its start boundary), without walking the
    /// automaton over every byte: with 100k terms its states do not fit in the caches and
    /// the unanchored scan ran at ~60 MB/s.
    fn for_each(&self, text: &str, mut f: impl FnMut(usize, usize, u32)) {
        let lowered;
        let hay = if self.fold && text.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = text.to_ascii_lowercase();
            lowered.as_bytes()
        } else {
            text.as_bytes()
        };
        let mut pos = 0;
        while let Some(p) = self.next_candidate(text, hay, pos) {
            let mut cand = self
                .ac
                .find(Input::new(hay).span(p..hay.len()).anchored(Anchored::Yes));
            let mut accepted = None;
            while let Some(c) = cand {
                if let Some(list) = self.accept(text, c.start(), c.end(), c.pattern().as_u32()) {
                    accepted = Some((c.start(), c.end(), list));
                    break;
                }
                // Shorter terms at the same start.
                cand = if c.end() - c.start() > 1 {
                    self.ac.find(
                        Input::new(hay)
                            .span(c.start()..c.end() - 1)
                            .anchored(Anchored::Yes),
                    )
                } else {
                    None
                };
            }
            match accepted {
                Some((s, e, list)) => {
                    f(s, e, list);
                    pos = e;
                }
                None => pos = p + text[p..].chars().next().map_or(1, char::len_utf8),
            }
        }
    }

    /// Whether some pattern may begin at `hay[i..]`.
    fn may_begin(&self, hay: &[u8], i: usize) -> bool {
        if self.short[hay[i] as usize] {
            return true;
        }
        match hay.get(i..i + 3) {
            Some(b) => {
                let bit = prefix_bit(b);
                self.prefixes[bit / 64] & (1 << (bit % 64)) != 0
            }
            None => false,
        }
    }

    /// The first place at or after `from` (a char boundary) where a term may start.
    fn next_candidate(&self, text: &str, hay: &[u8], from: usize) -> Option<usize> {
        // Patterns are valid UTF-8: they begin on a char boundary (the prefix test is a
        // hash and can hit inside a char).
        (from..hay.len())
            .find(|&i| hay[i] & 0xC0 != 0x80 && self.may_begin(hay, i) && start_ok(text, i))
    }

    fn accept(&self, text: &str, start: usize, end: usize, pattern: u32) -> Option<u32> {
        if !boundaries_ok(text, start, end) {
            return None;
        }
        let matched = &text[start..end];
        let ok = |e: &Entry| e.exact.as_deref().is_none_or(|x| x == matched);
        let first = &self.first[pattern as usize];
        if ok(first) {
            return Some(first.list);
        }
        self.more
            .get(&pattern)?
            .iter()
            .find(|e| ok(e))
            .map(|e| e.list)
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether a term may start at byte `start` of `text` (a char boundary): the start half of
/// [`boundaries_ok`], which depends only on the char at `start` and the one before it.
fn start_ok(text: &str, start: usize) -> bool {
    let Some(first) = text[start..].chars().next() else {
        return false;
    };
    let Some(before) = text[..start].chars().next_back() else {
        return true;
    };
    !(first.is_ascii_alphanumeric() && before.is_ascii() && is_word_byte(before as u8)
        || is_syllable(first) && is_syllable(before))
}

/// The boundary rules of the module doc for a match `start..end` of `text`.
pub(crate) fn boundaries_ok(text: &str, start: usize, end: usize) -> bool {
    let m = &text[start..end];
    let (Some(first), Some(last)) = (m.chars().next(), m.chars().next_back()) else {
        return false;
    };
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    if first.is_ascii_alphanumeric()
        && before.is_some_and(|c| c.is_ascii() && is_word_byte(c as u8))
    {
        return false;
    }
    if last.is_ascii_alphanumeric() && after.is_some_and(|c| c.is_ascii() && is_word_byte(c as u8))
    {
        return false;
    }
    if is_syllable(first) && before.is_some_and(is_syllable) {
        return false;
    }
    if is_syllable(last) && after.is_some_and(is_syllable) {
        let rest = &text[end..];
        let run = rest
            .char_indices()
            .find(|&(_, c)| !is_syllable(c))
            .map_or(rest.len(), |(i, _)| i);
        return is_suffix_chain(&rest[..run]);
    }
    true
}

/// Interns detector names so findings borrow them (grows only with distinct list names).
fn intern(s: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(&n) = names.get(s) {
        return n;
    }
    let n: &'static str = Box::leak(s.to_owned().into_boxed_str());
    names.insert(n);
    n
}

struct DenyMeta {
    label: Label,
    score: f32,
    detector: &'static str,
}

/// Finds the terms of deny lists. Build it with [`build`].
pub struct DictionaryDetector {
    matcher: Matcher,
    lists: Vec<DenyMeta>,
    terms: usize,
}

impl fmt::Debug for DictionaryDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DictionaryDetector")
            .field(
                "lists",
                &self.lists.iter().map(|l| l.detector).collect::<Vec<_>>(),
            )
            .field("terms", &self.terms)
            .finish()
    }
}

impl DictionaryDetector {
    /// Number of distinct terms (after case folding where lists fold).
    pub fn len(&self) -> usize {
        self.terms
    }

    pub fn is_empty(&self) -> bool {
        self.terms == 0
    }
}

impl Detector for DictionaryDetector {
    fn name(&self) -> &str {
        "dictionary"
    }

    fn detect(&self, text: &str, out: &mut Vec<Finding>) -> Result<(), DetectError> {
        self.matcher.for_each(text, |start, end, list| {
            let meta = &self.lists[list as usize];
            out.push(Finding {
                start,
                end,
                label: meta.label,
                subtype: None,
                detector: Cow::Borrowed(meta.detector),
                score: meta.score,
            });
        });
        Ok(())
    }
}

/// Allow lists: spans whose findings are dropped. Build it with [`build`].
pub struct AllowList {
    matcher: Matcher,
    labels: Vec<Option<Label>>,
    names: Vec<String>,
}

impl fmt::Debug for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllowList")
            .field("lists", &self.names)
            .finish()
    }
}

impl AllowList {
    /// Drops from `findings[from..]` every finding that lies within an allow-listed match of
    /// `text` (and has the list's label, when the list has one). Scans only when there is
    /// something to drop.
    pub fn suppress(&self, text: &str, findings: &mut Vec<Finding>, from: usize) {
        if findings.len() <= from {
            return;
        }
        let mut spans: Vec<(usize, usize, Option<Label>)> = Vec::new();
        self.matcher.for_each(text, |s, e, list| {
            spans.push((s, e, self.labels[list as usize]));
        });
        if spans.is_empty() {
            return;
        }
        let mut i = from;
        while i < findings.len() {
            let f = &findings[i];
            let allowed = spans.iter().any(|&(s, e, label)| {
                s <= f.start && f.end <= e && label.is_none_or(|l| l == f.label)
            });
            if allowed {
                findings.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }
}

/// Builds the deny detector and the allow list from `lists` (either is `None` when no list
/// of its kind has a term). Deny lists need a label and a score in `0..=1`.
pub fn build(
    lists: &[TermList],
) -> Result<(Option<DictionaryDetector>, Option<AllowList>), DictError> {
    let mut deny_meta = Vec::new();
    let mut deny_src = Vec::new();
    let mut allow_labels = Vec::new();
    let mut allow_names = Vec::new();
    let mut allow_src = Vec::new();
    for l in lists {
        match l.kind {
            ListKind::Deny => {
                let label = l.label.ok_or_else(|| DictError::NoLabel {
                    list: l.name.clone(),
                })?;
                if !(0.0..=1.0).contains(&l.score) {
                    return Err(DictError::BadScore {
                        list: l.name.clone(),
                    });
                }
                let idx = deny_meta.len() as u32;
                deny_meta.push(DenyMeta {
                    label,
                    score: l.score,
                    detector: intern(&format!("dict:{}", l.name)),
                });
                deny_src.push((idx, l.case_insensitive, l.terms.as_slice()));
            }
            ListKind::Allow => {
                let idx = allow_labels.len() as u32;
                allow_labels.push(l.label);
                allow_names.push(l.name.clone());
                allow_src.push((idx, l.case_insensitive, l.terms.as_slice()));
            }
        }
    }
    let deny = if deny_src.iter().any(|(_, _, t)| !t.is_empty()) {
        let matcher = Matcher::build("deny", &deny_src)?;
        Some(DictionaryDetector {
            terms: matcher.first.len(),
            matcher,
            lists: deny_meta,
        })
    } else {
        None
    };
    let allow = if allow_src.iter().any(|(_, _, t)| !t.is_empty()) {
        Some(AllowList {
            matcher: Matcher::build("allow", &allow_src)?,
            labels: allow_labels,
            names: allow_names,
        })
    } else {
        None
    };
    Ok((deny, allow))
}

/// Runs detectors and drops what an [`AllowList`] allows, so allow lists apply to every
/// detector, whatever its kind. Errors of the inner detectors pass through unchanged.
pub struct AllowFilter {
    inner: Vec<Arc<dyn Detector>>,
    allow: Arc<AllowList>,
}

impl AllowFilter {
    pub fn new(inner: Vec<Arc<dyn Detector>>, allow: Arc<AllowList>) -> Self {
        AllowFilter { inner, allow }
    }
}

impl Detector for AllowFilter {
    fn name(&self) -> &str {
        "allow-filter"
    }

    fn detect(&self, text: &str, out: &mut Vec<Finding>) -> Result<(), DetectError> {
        let from = out.len();
        for d in &self.inner {
            d.detect(text, out)?;
        }
        self.allow.suppress(text, out, from);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(name: &str, label: Label, kind: ListKind, ci: bool, terms: &[&str]) -> TermList {
        TermList {
            name: name.into(),
            label: Some(label),
            kind,
            case_insensitive: ci,
            score: DEFAULT_SCORE,
            terms: terms.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn deny(lists: &[TermList]) -> DictionaryDetector {
        build(lists).unwrap().0.unwrap()
    }

    fn spans<'t>(d: &dyn Detector, text: &'t str) -> Vec<&'t str> {
        let mut out = Vec::new();
        d.detect(text, &mut out).unwrap();
        out.iter().map(|f| &text[f.start..f.end]).collect()
    }

    #[test]
    fn ascii_word_boundaries() {
        let d = deny(&[list(
            "people",
            Label::Person,
            ListKind::Deny,
            false,
            &["Kim", "Acme", "Acme Corp", "C#"],
        )]);
        assert_eq!(spans(&d, "Kim and Kimberly"), vec!["Kim"]);
        assert_eq!(spans(&d, "xKim Kim2 Kim_ _Kim"), Vec::<&str>::new());
        assert_eq!(spans(&d, "(Kim), Kim's"), vec!["Kim", "Kim"]);
        // Longest first; a shorter term at the same start when the longer one fails.
        assert_eq!(spans(&d, "Acme Corp."), vec!["Acme Corp"]);
        assert_eq!(spans(&d, "Acme Corporation"), vec!["Acme"]);
        // Non-alphanumeric ends are not boundary-checked.
        assert_eq!(spans(&d, "we use C#6"), vec!["C#"]);
        // Hangul next to an ASCII term is a boundary.
        assert_eq!(spans(&d, "Acme에서 Kim님"), vec!["Acme", "Kim"]);
    }

    #[test]
    fn resumes_inside_a_rejected_match() {
        let d = deny(&[list(
            "x",
            Label::Custom,
            ListKind::Deny,
            false,
            &["ab cd", "cd ef"],
        )]);
        assert_eq!(spans(&d, "xab cd ef"), vec!["cd ef"]);
    }

    #[test]
    fn hangul_boundaries_and_particles() {
        let d = deny(&[list(
            "emp",
            Label::Person,
            ListKind::Deny,
            false,
            &["김민준", "민준", "삼성"],
        )]);
        for (text, want) in [
            ("김민준 과장", vec!["김민준"]),
            ("김민준은 출장", vec!["김민준"]),
            ("김민준에게서 받은", vec!["김민준"]),
            ("김민준님께서는", vec!["김민준"]),
            ("김민준과장님이", vec!["김민준"]),
            ("저는 김민준입니다.", vec!["김민준"]),
            ("김민준ㅋㅋ 김민준123", vec!["김민준", "김민준"]),
            // Other syllables after the term make it another word.
            ("김민준호 선수", vec![]),
            // A term is not found inside a longer Hangul word.
            ("이민준 씨", vec![]),
            ("삼성전자", vec![]),
            ("(삼성)과 삼성의", vec!["삼성", "삼성"]),
            ("민준아 밥 먹자", vec!["민준"]),
        ] {
            assert_eq!(spans(&d, text), want, "{text}");
        }
    }

    /// Terms shorter than the 3-byte prefix filter, and terms ending the text, are found;
    /// a prefix-filter hit inside a multi-byte char is not a start.
    #[test]
    fn short_terms_and_text_ends() {
        let d = deny(&[list(
            "s",
            Label::Custom,
            ListKind::Deny,
            true,
            &["Q", "go", "abc", "박", "x9z"],
        )]);
        assert_eq!(spans(&d, "Q"), vec!["Q"]);
        assert_eq!(spans(&d, "let's GO"), vec!["GO"]);
        assert_eq!(spans(&d, "ab abc"), vec!["abc"]);
        assert_eq!(spans(&d, "박"), vec!["박"]);
        assert_eq!(spans(&d, "대박 x9"), Vec::<&str>::new());
        assert_eq!(spans(&d, "한글 사이 X9Z,"), vec!["X9Z"]);
        assert_eq!(spans(&d, "qq goo abcd"), Vec::<&str>::new());
    }

    #[test]
    fn case_insensitivity_per_list() {
        let d = deny(&[
            list(
                "codes",
                Label::Custom,
                ListKind::Deny,
                true,
                &["Project Falcon"],
            ),
            list(
                "exact",
                Label::Organization,
                ListKind::Deny,
                false,
                &["ACME"],
            ),
        ]);
        assert_eq!(
            spans(&d, "PROJECT FALCON and project falcon; ACME not acme"),
            vec!["PROJECT FALCON", "project falcon", "ACME"]
        );
        let mut out = Vec::new();
        d.detect("ACME", &mut out).unwrap();
        assert_eq!(out[0].label, Label::Organization);
        assert_eq!(out[0].detector, "dict:exact");
        assert!(matches!(out[0].detector, Cow::Borrowed(_)));
        // Only the case-sensitive list has the term: fold-matched text is rejected.
        let d = deny(&[list("exact", Label::Custom, ListKind::Deny, false, &["Go"])]);
        assert_eq!(spans(&d, "go Go GO"), vec!["Go"]);
    }

    #[test]
    fn duplicate_terms_report_the_first_accepting_list() {
        let d = deny(&[
            list("a", Label::Person, ListKind::Deny, false, &["Lee"]),
            list("b", Label::Organization, ListKind::Deny, true, &["lee"]),
        ]);
        let mut out = Vec::new();
        d.detect("Lee LEE", &mut out).unwrap();
        let got: Vec<_> = out.iter().map(|f| (f.start, f.label)).collect();
        assert_eq!(got, vec![(0, Label::Person), (4, Label::Organization)]);
    }

    #[test]
    fn allow_list_suppresses_other_detectors() {
        let rules = crate::detect::regex::RegexDetector::from_files::<&str>(&[], true).unwrap();
        // An allow list without a label suppresses findings of every label.
        let mut own = list(
            "own",
            Label::Custom,
            ListKind::Allow,
            true,
            &["support@acme.co.kr"],
        );
        own.label = None;
        let (deny_d, allow) = build(&[
            own,
            list(
                "names",
                Label::Organization,
                ListKind::Deny,
                false,
                &["acme"],
            ),
        ])
        .unwrap();
        let inner: Vec<Arc<dyn Detector>> = vec![Arc::new(rules), Arc::new(deny_d.unwrap())];
        let f = AllowFilter::new(inner, Arc::new(allow.unwrap()));
        let text = "Mail Support@ACME.co.kr or kim@example.com";
        let engine = crate::detect::Engine::new(vec![Arc::new(f)]);
        let found = engine.detect(text).unwrap();
        let got: Vec<_> = found
            .iter()
            .map(|f| (&text[f.start..f.end], f.label))
            .collect();
        assert_eq!(got, vec![("kim@example.com", Label::Email)]);
        // A finding only partly inside an allowed span is kept.
        let found = engine.detect("xsupport@acme.co.kr").unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn allow_list_label_filter() {
        let (_, allow) = build(&[list(
            "hq",
            Label::Location,
            ListKind::Allow,
            false,
            &["서울특별시 중구 세종대로 110"],
        )])
        .unwrap();
        let allow = allow.unwrap();
        let text = "주소: 서울특별시 중구 세종대로 110";
        let s = text.find('서').unwrap();
        let mk = |label| Finding {
            start: s,
            end: text.len(),
            label,
            subtype: None,
            detector: Cow::Borrowed("t"),
            score: 0.9,
        };
        let mut v = vec![mk(Label::Location), mk(Label::Person)];
        allow.suppress(text, &mut v, 0);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].label, Label::Person);
    }

    #[test]
    fn load_terms_file_format() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        std::fs::write(&p, "\u{feff}# comment\n\n  Alpha  \r\nC# dev\n#x\n베타\n").unwrap();
        assert_eq!(
            load_terms("t", &p).unwrap(),
            vec!["Alpha", "C# dev", "베타"]
        );
        std::fs::write(&p, b"ok\nok\n\xff\n").unwrap();
        let e = load_terms("secret-list", &p).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("secret-list"), "{e}");
        let e = load_terms("l", &dir.path().join("missing.txt")).unwrap_err();
        assert!(e.to_string().contains("missing.txt"), "{e}");
        assert_eq!(e.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.fault(), "internal");
    }

    #[test]
    fn deny_list_needs_label_and_valid_score() {
        let mut l = list("x", Label::Custom, ListKind::Deny, false, &["a"]);
        l.label = None;
        assert!(matches!(build(&[l]), Err(DictError::NoLabel { .. })));
        let mut l = list("x", Label::Custom, ListKind::Deny, false, &["a"]);
        l.score = 1.5;
        assert!(matches!(build(&[l]), Err(DictError::BadScore { .. })));
        // Debug never shows terms.
        let l = list("x", Label::Custom, ListKind::Deny, false, &["topsecret"]);
        assert!(!format!("{l:?}").contains("topsecret"));
    }

    /// A large synthetic dictionary builds in reasonable time and every probe is found.
    #[test]
    fn large_dictionary_builds_and_matches() {
        let n = if cfg!(debug_assertions) {
            200_000
        } else {
            1_000_000
        };
        let terms: Vec<String> = (0..n).map(|i| format!("emp{i:07}x")).collect();
        let t0 = std::time::Instant::now();
        let d = deny(&[TermList {
            name: "big".into(),
            label: Some(Label::Person),
            kind: ListKind::Deny,
            case_insensitive: true,
            score: 0.9,
            terms,
        }]);
        let built = t0.elapsed();
        assert_eq!(d.len(), n);
        let text = format!(
            "to EMP0000000X and emp{:07}x, not emp0000001 nor xemp0000002x",
            n - 1
        );
        let want = format!("emp{:07}x", n - 1);
        assert_eq!(spans(&d, &text), vec!["EMP0000000X", want.as_str()]);
        assert!(built.as_secs() < 60, "{built:?}");
    }
}
