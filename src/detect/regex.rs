//! Regex detector: rules as data (TOML packs), checksum-validated, one pass per text.
//!
//! # Rule packs
//!
//! A pack is a TOML file of `[[rule]]` tables. The built-in packs (`rules/global.toml`,
//! `rules/korea.toml`, `rules/secrets.toml`) are embedded with `include_str!`; operators can
//! load more from files ([`RegexDetector::from_files`]). Schema of one rule (unknown keys are
//! errors):
//!
//! ```toml
//! [[rule]]
//! id = "kr_rrn"                 # unique across all packs
//! label = "NATIONAL_ID"         # a SPEC.md label
//! subtype = "KR_RRN"            # optional
//! patterns = ['...']            # one or more regexes (regex-automata syntax)
//! validator = "kr_rrn"          # optional, see detect::validate::Validator
//! score = 0.9                   # base score, 0..=1
//! invalid_score = 0.5           # optional: score when only the checksum fails; absent => drop
//! context = { ko = ["주민번호"], en = ["resident"] }  # optional, any language keys
//! context_boost = 0.1           # optional (default 0.1): added when a context word occurs
//!                               # within 40 chars before the match (ASCII case ignored), or in
//!                               # the header of its column in a `|` table; cap 1.0
//! context_required = false      # optional: true drops matches without a context word
//! examples = { match = ["..."], no_match = ["..."] }
//! ```
//!
//! A `match` example must produce exactly one finding of its rule, covering the whole example;
//! or, when the example contains `«` and `»`, covering exactly the text between them (the
//! markers are removed before scanning), so examples can show a value inside a sentence. A
//! `no_match` example must produce no finding of its rule. [`RegexDetector::check_examples`]
//! runs them; a test runs it over the built-in packs.
//!
//! A pattern may name one capture group `v` (`(?P<v>...)`): the finding is then that group
//! only, and the rest of the match is context the value must follow. This is how rules
//! anchored on a keyword report just the value (`password=«hunter2»`, `여권번호 «M12345678»`):
//! the regex crates have no look-behind. Context words are searched before the whole match,
//! and a rejected match of such a pattern resumes the scan one byte after its start, so a
//! value that another rule knows better (a JWT after `Bearer`) is still found. Keep the part
//! before `v` to keywords, spaces and punctuation: text it covers is not scanned again.
//!
//! Pattern rules: write `[0-9]`, not `\d` (Unicode digits); never use the Unicode word
//! boundary `\b` (it drops the engine off its fast path on non-ASCII text, ~250x slower), use
//! `(?-u:\b)`, which also makes Hangul next to a digit a boundary (`번호900101-...`). A loader
//! check rejects Unicode `\b` and patterns that can match the empty string.
//!
//! # Matching
//!
//! All patterns of all rules are compiled into one `regex_automata::meta::Regex` and each text
//! is scanned once, leftmost-first. Leftmost-first alone would let the first-listed pattern
//! win wherever two rules fit the same text (a card and a resident number, `+82` and E.164
//! phones, `sk-ant-` and `sk-` keys), so at every match start a second regex built with
//! `MatchKind::All` reports, in one anchored pass, every pattern that matches there; each of
//! those is matched (anchored) for its own extent and validated, and the best survivor wins:
//! highest score before context (`score`, or `invalid_score` when only the checksum failed:
//! the more specific rule should have the higher score), then longest, then highest score
//! after context, then earliest rule in pack order. Where the match begins with a literal
//! that only a few other patterns (usually none) can begin with, read off the patterns when
//! the detector is built (`http://`: none; `https://`: the Slack webhook rule), those few are
//! matched instead of running the probe. If none
//! survives, scanning resumes after the rejected match. Matches are rare in ordinary text, so
//! the extra work costs little; scanning itself runs at the lazy DFA's speed.
//!
//! A code-level boundary check backs the patterns' own: a finding that starts (ends) with an
//! ASCII letter or digit must not be preceded (followed) by an ASCII letter, digit or `_`. A
//! `PHONE` finding must also not be one piece of a longer run of digit groups joined by `-` or
//! `.` (`196-9026-5940` in the serial `196-9026-5940-74`).
//!
//! Findings are named `regex:<id>`; one scored with `invalid_score` (the shape fits, the check
//! digit does not: resident numbers issued since October 2020) is named
//! `regex:<id>:checksum_failed`. [`Detector::priority`] ranks findings of a rule with a
//! validator that passed as [`Priority::Validated`], all others as [`Priority::Pattern`].
//!
//! Limits: findings of this detector never overlap each other, and a match nested inside a
//! rejected one is not looked for. Versions written as four dotted numbers without a `v`
//! (`version 1.2.3.4`) are indistinguishable from IPv4 and are reported as `IP_ADDRESS`
//! (`v1.2.3.4` and `1.2.3` are not). No error or Debug output holds scanned text.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

use aho_corasick::AhoCorasick;
use regex_automata::meta;
use regex_automata::{Anchored, Input, MatchKind, PatternID, PatternSet};
use serde::Deserialize;

use super::validate::{Outcome, Validator};
use super::{DetectError, Detector, Finding, Label, Priority, UnknownLabel};

/// The embedded rule packs, as `(name, TOML text)`, in priority order.
pub const BUILTIN_PACKS: &[(&str, &str)] = &[
    (
        "builtin:global.toml",
        include_str!("../../rules/global.toml"),
    ),
    ("builtin:korea.toml", include_str!("../../rules/korea.toml")),
    (
        "builtin:secrets.toml",
        include_str!("../../rules/secrets.toml"),
    ),
];

/// Characters before a match searched for context words.
const CONTEXT_CHARS: usize = 40;
/// How far above a match [`column_header`] looks for its table's header line.
const TABLE_SCAN_BYTES: usize = 64 << 10;
const DEFAULT_CONTEXT_BOOST: f32 = 0.1;
/// Lazy DFA cache per regex and thread (the default is 2 MiB). With the full rule packs the
/// default is too small on URL-rich English text: the cache is cleared over and over and the
/// engine falls back to its NFA simulation (measured 60-90 MB/s instead of 260+ MB/s). The
/// cache grows only as states are built, so this is a ceiling, not an allocation.
pub const LAZY_DFA_CACHE_BYTES: usize = 16 << 20;
/// The capture group whose span is the finding (see the module docs).
const VALUE_GROUP: &str = "v";

/// Why a rule pack could not be loaded. Messages name the file and rule, never scanned text.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("cannot read rule file `{file}`: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or the top level is not a list of `[[rule]]` tables.
    #[error("rule file `{file}` is not a valid rule pack: {message}")]
    Parse { file: String, message: String },
    /// A rule table has an unknown key, a missing key or a value of the wrong type.
    #[error("rule `{rule}` in `{file}`: {message}")]
    Schema {
        file: String,
        rule: String,
        message: String,
    },
    #[error("rule `{rule}` in `{file}`: {source}")]
    UnknownLabel {
        file: String,
        rule: String,
        #[source]
        source: UnknownLabel,
    },
    #[error("rule `{rule}` in `{file}`: pattern #{index} is not a valid regex: {message}")]
    BadRegex {
        file: String,
        rule: String,
        index: usize,
        message: String,
    },
    #[error("rule `{rule}` in `{file}`: pattern #{index} uses the Unicode word boundary `\\b`; write `(?-u:\\b)`")]
    UnicodeWordBoundary {
        file: String,
        rule: String,
        index: usize,
    },
    #[error("rule `{rule}` in `{file}`: pattern #{index} can match the empty string")]
    EmptyMatch {
        file: String,
        rule: String,
        index: usize,
    },
    #[error("rule `{rule}` in `{file}`: {source}")]
    UnknownValidator {
        file: String,
        rule: String,
        #[source]
        source: super::validate::UnknownValidator,
    },
    #[error("rule `{rule}` in `{file}`: duplicate id (first defined in `{first_file}`)")]
    DuplicateId {
        file: String,
        rule: String,
        first_file: String,
    },
    /// Any other bad value: a score outside 0..=1, no patterns, an empty id.
    #[error("rule `{rule}` in `{file}`: {problem}")]
    Invalid {
        file: String,
        rule: String,
        problem: String,
    },
    /// The patterns are fine one by one but too large together.
    #[error("rule patterns could not be compiled together: {message}")]
    Build { message: String },
}

impl RuleError {
    /// Rule packs are operator configuration: a bad one is never the client's fault.
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::INTERNAL_SERVER_ERROR
    }

    pub fn fault(&self) -> &'static str {
        "internal"
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDef {
    id: String,
    label: String,
    subtype: Option<String>,
    patterns: Vec<String>,
    validator: Option<String>,
    score: f32,
    invalid_score: Option<f32>,
    #[serde(default)]
    context: BTreeMap<String, Vec<String>>,
    context_boost: Option<f32>,
    #[serde(default)]
    context_required: bool,
    #[serde(default)]
    examples: ExamplesDef,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExamplesDef {
    #[serde(rename = "match", default)]
    matches: Vec<String>,
    #[serde(default)]
    no_match: Vec<String>,
}

/// One compiled rule.
pub struct Rule {
    id: String,
    file: String,
    label: Label,
    /// Interned, like `detector` (`regex:<id>`), so findings borrow instead of allocating.
    subtype: Option<&'static str>,
    detector: &'static str,
    /// `regex:<id>:checksum_failed`: the name of findings scored with `invalid_score` (the
    /// shape fits, the check digit does not), so [`Detector::priority`] can tell them apart.
    detector_unverified: &'static str,
    validator: Option<Validator>,
    score: f32,
    invalid_score: Option<f32>,
    /// The context words, found ignoring ASCII case; `None` without any.
    context: Option<AhoCorasick>,
    context_boost: f32,
    /// Matches without a context word are dropped.
    context_required: bool,
    examples: ExamplesDef,
    /// The rule's patterns, as written in its pack.
    patterns: Vec<String>,
}

impl Rule {
    /// The rule's patterns, as written in its pack (`benches/rule_costs.rs` times them).
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The pack the rule came from (`builtin:korea.toml` or a path).
    pub fn file(&self) -> &str {
        &self.file
    }
    pub fn label(&self) -> Label {
        self.label
    }
    pub fn subtype(&self) -> Option<&'static str> {
        self.subtype
    }
    /// The name findings of this rule carry: `regex:<id>`, or `regex:<id>:checksum_failed`
    /// for a finding scored with `invalid_score` (its check digit failed).
    pub fn detector_name(&self) -> &'static str {
        self.detector
    }
    pub fn validator(&self) -> Option<Validator> {
        self.validator
    }
    pub fn score(&self) -> f32 {
        self.score
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("id", &self.id)
            .field("file", &self.file)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// A candidate that passed its rule's checks.
#[derive(Clone, Copy)]
struct Candidate {
    rule: usize,
    start: usize,
    end: usize,
    /// The rule's score for this candidate before context (`score` or `invalid_score`).
    base: f32,
    score: f32,
    /// The rule's validator passed (false without a validator or when only the checksum
    /// failed).
    validated: bool,
}

/// The regex detector. Cheap to share: wrap it in an `Arc`; searches from many threads at once
/// are fine.
pub struct RegexDetector {
    rules: Vec<Rule>,
    /// Pattern id -> index into `rules`.
    pattern_rule: Vec<usize>,
    /// Pattern id -> for a pattern with a value group `v` (the finding is that group only),
    /// the pattern alone, used to read the group's span within a match `scan` found. A
    /// captures search on `scan` itself would run its backtracker over the NFA of every
    /// pattern, clearing a visited set of (all states x haystack) bits per call: that was a
    /// third of the detector's instructions.
    value_group: Vec<Option<meta::Regex>>,
    /// Leftmost-first: finds the next match start and each pattern's anchored extent.
    scan: meta::Regex,
    /// `MatchKind::All`: which patterns match at a given start.
    probe: meta::Regex,
    /// Pattern id -> the few other patterns that can match where a match of it begins, by
    /// the literal it begins with ([`rivals`]); where they are known, the probe is skipped.
    rivals: Vec<Rivals>,
    /// Detector names (`regex:<id>`) of rules with a validator: their findings passed it.
    /// Looked up for every finding ([`Detector::priority`]): hashed with FNV-1a (the names
    /// are the rules' own, not text; SipHash was a visible part of the engine's work).
    validated_names: HashSet<&'static str, std::hash::BuildHasherDefault<super::korean_name::Fnv>>,
    /// The unanchored search of `scan`, two halves of the text at a time
    /// ([`super::split_scan`]); `None` where its lazy DFAs cannot be built.
    split: Option<super::split_scan::SplitScan>,
}

impl fmt::Debug for RegexDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegexDetector")
            .field("rules", &self.rules.len())
            .field("patterns", &self.pattern_rule.len())
            .finish()
    }
}

impl RegexDetector {
    /// The embedded packs. Panics only if they are broken, which a test guards.
    pub fn builtin() -> RegexDetector {
        match RegexDetector::from_sources(BUILTIN_PACKS) {
            Ok(d) => d,
            Err(e) => panic!("embedded rule packs are broken: {e}"),
        }
    }

    /// Compiles packs given as `(name, TOML text)`; `name` only appears in errors and in
    /// [`Rule::file`]. Rule ids must be unique across all packs.
    pub fn from_sources<N: AsRef<str>, T: AsRef<str>>(
        sources: &[(N, T)],
    ) -> Result<RegexDetector, RuleError> {
        let mut rules = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut pattern_rule = Vec::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        for (name, text) in sources {
            let file = name.as_ref();
            for def in parse_pack(file, text.as_ref())? {
                if let Some(first) = seen.get(&def.id) {
                    return Err(RuleError::DuplicateId {
                        file: file.to_owned(),
                        rule: def.id,
                        first_file: first.clone(),
                    });
                }
                seen.insert(def.id.clone(), file.to_owned());
                for p in &def.patterns {
                    patterns.push(p.clone());
                    pattern_rule.push(rules.len());
                }
                rules.push(def);
            }
        }
        let build = |kind: MatchKind, patterns: &[String]| {
            meta::Builder::new()
                .configure(
                    meta::Config::new()
                        .match_kind(kind)
                        .hybrid_cache_capacity(LAZY_DFA_CACHE_BYTES),
                )
                .build_many(patterns)
                .map_err(|e| RuleError::Build {
                    message: e.to_string(),
                })
        };
        let scan = build(MatchKind::LeftmostFirst, &patterns)?;
        let probe = build(MatchKind::All, &patterns)?;
        let rivals = rivals(&patterns);
        let value_group = (0..patterns.len())
            .map(|i| {
                let has_group = PatternID::new(i)
                    .ok()
                    .and_then(|pid| scan.group_info().to_index(pid, VALUE_GROUP))
                    .is_some();
                if !has_group {
                    return Ok(None);
                }
                build(MatchKind::LeftmostFirst, &patterns[i..=i]).map(Some)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let validated_names = rules
            .iter()
            .filter(|r: &&Rule| r.validator.is_some())
            .map(|r| r.detector)
            .collect();
        let split = super::split_scan::SplitScan::new(&patterns, LAZY_DFA_CACHE_BYTES);
        Ok(RegexDetector {
            split,
            validated_names,
            rules,
            pattern_rule,
            value_group,
            scan,
            probe,
            rivals,
        })
    }

    /// Loads packs from files, after the built-in packs when `with_builtin` is true.
    pub fn from_files<P: AsRef<Path>>(
        paths: &[P],
        with_builtin: bool,
    ) -> Result<RegexDetector, RuleError> {
        let mut sources: Vec<(String, String)> = Vec::new();
        if with_builtin {
            sources.extend(
                BUILTIN_PACKS
                    .iter()
                    .map(|(n, t)| (n.to_string(), t.to_string())),
            );
        }
        for p in paths {
            let p = p.as_ref();
            let file = p.display().to_string();
            let text = std::fs::read_to_string(p).map_err(|source| RuleError::Io {
                file: file.clone(),
                source,
            })?;
            sources.push((file, text));
        }
        RegexDetector::from_sources(&sources)
    }

    /// The compiled rules, in priority order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Runs every rule's examples (see the module docs). Returns one line per failure, naming
    /// the rule and the example by index and span; empty when all hold.
    pub fn check_examples(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for (ri, rule) in self.rules.iter().enumerate() {
            let of_rule = |text: &str| -> Vec<(usize, usize)> {
                let mut out = Vec::new();
                self.scan_text(text, |c| {
                    if c.rule == ri {
                        out.push((c.start, c.end));
                    }
                });
                out
            };
            if rule.examples.matches.is_empty() {
                failures.push(format!(
                    "rule `{}` ({}): has no `match` example",
                    rule.id, rule.file
                ));
            }
            for (i, ex) in rule.examples.matches.iter().enumerate() {
                let Some((text, want)) = strip_markers(ex) else {
                    failures.push(format!(
                        "rule `{}` ({}): match example #{i}: needs exactly one «...» pair",
                        rule.id, rule.file
                    ));
                    continue;
                };
                let got = of_rule(&text);
                if got != [want] {
                    failures.push(format!(
                        "rule `{}` ({}): match example #{i}: expected one finding at bytes {}..{}, got {:?}{}",
                        rule.id,
                        rule.file,
                        want.0,
                        want.1,
                        got,
                        self.winner_note(&text, want)
                    ));
                }
            }
            for (i, ex) in rule.examples.no_match.iter().enumerate() {
                let got = of_rule(ex);
                if !got.is_empty() {
                    failures.push(format!(
                        "rule `{}` ({}): no_match example #{i}: found {:?}",
                        rule.id, rule.file, got
                    ));
                }
            }
        }
        failures
    }

    /// For example failures: which other rules found something at the expected span.
    fn winner_note(&self, text: &str, want: (usize, usize)) -> String {
        let mut others = Vec::new();
        self.scan_text(text, |c| {
            if c.start < want.1 && want.0 < c.end {
                others.push(self.rules[c.rule].id.clone());
            }
        });
        if others.is_empty() {
            String::new()
        } else {
            format!(" (overlapping findings of: {})", others.join(", "))
        }
    }

    /// The scan loop: calls `emit` for every accepted candidate, left to right.
    fn scan_text(&self, text: &str, mut emit: impl FnMut(Candidate)) {
        // The probe's answer for `best_at`, allocated at the first probe and reused across
        // the matches of the text: most texts have no match, most matches no probe.
        let mut set: Option<PatternSet> = None;
        // The split scan's searches of this text share its cache and its work ahead.
        let mut split = self.split.as_ref().map(|s| s.session(text));
        let mut at = 0;
        while at < text.len() {
            let Some(m) = self.next_match(&mut split, text, at) else {
                break;
            };
            match self.best_at(text, m.start(), m.pattern(), m.end(), &mut set) {
                Some(c) => {
                    emit(c);
                    at = c.end.max(m.start() + 1);
                }
                // A keyword-anchored match may hold a value another rule wants.
                None if self.value_group[m.pattern().as_usize()].is_some() => at = m.start() + 1,
                None => at = m.end(),
            }
            // Stay on a char boundary (ends are; `start + 1` may not be).
            while !text.is_char_boundary(at) {
                at += 1;
            }
        }
    }

    /// The leftmost-first match of `scan` in `text[at..]`: by the split scan where it can
    /// answer, else by `scan` itself (the same match).
    fn next_match(
        &self,
        split: &mut Option<super::split_scan::Session<'_>>,
        text: &str,
        at: usize,
    ) -> Option<regex_automata::Match> {
        if let Some(Ok(m)) = split.as_mut().map(|s| s.find(at)) {
            return m;
        }
        self.scan.search(&Input::new(text).range(at..))
    }

    /// Every pattern matching at `start`, validated; the best one.
    fn best_at(
        &self,
        text: &str,
        start: usize,
        first: PatternID,
        first_end: usize,
        set: &mut Option<PatternSet>,
    ) -> Option<Candidate> {
        let mut best: Option<Candidate> = None;
        let mut consider = |pid: PatternID, end: usize| {
            let (vs, ve) = if let Some(alone) = &self.value_group[pid.as_usize()] {
                match value_span(alone, text, start, end) {
                    Some(span) => span,
                    None => return,
                }
            } else {
                (start, end)
            };
            if let Some(c) = self.evaluate(text, self.pattern_rule[pid.as_usize()], vs, ve) {
                let better = match best {
                    None => true,
                    Some(b) => (c.base, c.end - c.start, c.score, usize::MAX - c.rule)
                        .partial_cmp(&(b.base, b.end - b.start, b.score, usize::MAX - b.rule))
                        .is_some_and(|o| o.is_gt()),
                };
                if better {
                    best = Some(c);
                }
            }
        };
        consider(first, first_end);
        if let Some(rivals) = self.rivals[first.as_usize()].at(&text.as_bytes()[start..]) {
            // Only these can match here besides `first` (for most URLs none, or the Slack
            // webhook rule): what the probe and the loop below would find, in the same order.
            for &pid in rivals {
                let input = Input::new(text)
                    .range(start..)
                    .anchored(Anchored::Pattern(pid));
                if let Some(m) = self.scan.search(&input) {
                    consider(pid, m.end());
                }
            }
            return best;
        }
        let set = set.get_or_insert_with(|| PatternSet::new(self.pattern_rule.len()));
        set.clear();
        let anchored = Input::new(text)
            .range(start..)
            .anchored(Anchored::Yes)
            .earliest(false);
        self.probe.which_overlapping_matches(&anchored, set);
        // Usually the probe finds just the first pattern: skip walking the whole set then.
        if set.len() == 1 && set.contains(first) {
            return best;
        }
        for pid in set.iter() {
            if pid == first {
                continue;
            }
            let input = Input::new(text)
                .range(start..)
                .anchored(Anchored::Pattern(pid));
            if let Some(m) = self.scan.search(&input) {
                consider(pid, m.end());
            }
        }
        best
    }

    /// Applies rule `ri` to the match `start..end`: boundaries, validator, context.
    fn evaluate(&self, text: &str, ri: usize, start: usize, end: usize) -> Option<Candidate> {
        let rule = &self.rules[ri];
        let (score, end, validated) = match rule.validator {
            None => (rule.score, end, false),
            Some(v) => match v.check(&text[start..end]) {
                Outcome::Valid(len) => (rule.score, start + len, true),
                Outcome::ChecksumFailed(len) => (rule.invalid_score?, start + len, false),
                Outcome::Invalid => return None,
            },
        };
        if end <= start || !text.is_char_boundary(end) || !at_boundaries(text, start, end) {
            return None;
        }
        if rule.label == Label::Phone && joined_to_digits(text, start, end) {
            return None;
        }
        let in_context = rule
            .context
            .as_ref()
            .is_some_and(|words| has_context(text, start, words));
        if rule.context_required && !in_context {
            return None;
        }
        let boosted = if in_context {
            (score + rule.context_boost).min(1.0)
        } else {
            score
        };
        Some(Candidate {
            rule: ri,
            start,
            end,
            base: score,
            score: boosted,
            validated,
        })
    }
}

impl Detector for RegexDetector {
    fn name(&self) -> &str {
        "regex"
    }

    fn detect(&self, text: &str, out: &mut Vec<Finding>) -> Result<(), DetectError> {
        self.scan_text(text, |c| {
            let rule = &self.rules[c.rule];
            out.push(Finding {
                start: c.start,
                end: c.end,
                label: rule.label,
                subtype: rule.subtype.map(Cow::Borrowed),
                detector: Cow::Borrowed(if rule.validator.is_some() && !c.validated {
                    rule.detector_unverified
                } else {
                    rule.detector
                }),
                score: c.score,
            });
        });
        Ok(())
    }

    /// [`Priority::Validated`] for findings of a rule whose validator passed (checksum or
    /// structure: Luhn, mod-97, resident-number check digit, IP octets...); findings of rules
    /// without a validator, and those scored with `invalid_score` (named
    /// `regex:<id>:checksum_failed`), stay [`Priority::Pattern`].
    fn priority(&self, finding: &Finding) -> Priority {
        if self.validated_names.contains(finding.detector.as_ref()) {
            Priority::Validated
        } else {
            Priority::from_detector_name(&finding.detector)
        }
    }
}

/// For one pattern: which other patterns can match where a match of it begins, by the literal
/// the match begins with; see [`rivals`]. Empty (`by_len` empty) when nothing is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Rivals {
    /// Literal prefixes grouped by length (binary search: the URL rule has 48 of them), with
    /// the patterns that may match at a place beginning so.
    by_len: Vec<LenGroup>,
}

/// The literal prefixes of one length, sorted by literal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct LenGroup {
    len: usize,
    /// For literals of up to eight bytes, each one as a big-endian word (the same order as
    /// the bytes): the search compares words, not slices through `memcmp`. Empty otherwise.
    words: Vec<u64>,
    lits: Vec<LiteralRivals>,
}

/// A literal prefix and the patterns that may match at a place beginning with it.
type LiteralRivals = (Vec<u8>, Vec<PatternID>);

/// `b` (at most eight bytes) as a big-endian word, zero-padded on the right.
fn be_word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w[..b.len()].copy_from_slice(b);
    u64::from_be_bytes(w)
}

impl Rivals {
    /// The patterns other than this one that may match at the start of `rest` (where a match
    /// of this one begins), in pattern order; `None` when not known (run the probe).
    fn at(&self, rest: &[u8]) -> Option<&[PatternID]> {
        self.by_len.iter().find_map(|g| {
            let head = rest.get(..g.len)?;
            let i = if g.words.is_empty() {
                g.lits.binary_search_by(|(l, _)| l.as_slice().cmp(head))
            } else {
                g.words.binary_search(&be_word(head))
            }
            .ok()?;
            Some(g.lits[i].1.as_slice())
        })
    }
}

/// Literal prefix sets longer than this are not analysed (the pattern's probe always runs).
const RIVALS_MAX_LITERALS: usize = 128;
/// More possible rivals than this and the probe is cheaper than matching each of them.
const RIVALS_MAX: usize = 3;

/// For each pattern, the other patterns that can match where a match of it begins, so that
/// [`RegexDetector::best_at`] can match those few (usually none) instead of running the
/// all-patterns probe (an anchored pass over the whole match: for a URL, a second walk over
/// it). Read off the patterns, never guessed: every match of pattern `p` begins with one of
/// its literal prefixes (`regex-syntax`'s extractor; a pattern without a finite set gets none),
/// and another pattern `q` is a rival at prefix `l` unless `q`'s anchored lazy DFA, started
/// with every kind of byte before it (none, word, non-word, line ends, non-ASCII), dies on `l`
/// without passing a match state. Anything the DFA cannot decide (a quit byte, a full cache,
/// a build error) makes `q` a rival, so a rival set is only ever too large. Costs one more NFA
/// and lazy DFA build of all patterns when the detector is built; the DFA is dropped
/// afterwards.
fn rivals(patterns: &[String]) -> Vec<Rivals> {
    use regex_automata::hybrid::dfa::DFA;
    use regex_automata::util::start;
    use regex_syntax::hir::literal::{ExtractKind, Extractor};

    let Ok(dfa) = DFA::builder()
        .configure(
            DFA::config()
                .match_kind(MatchKind::All)
                .starts_for_each_pattern(true)
                .unicode_word_boundary(true)
                .cache_capacity(LAZY_DFA_CACHE_BYTES),
        )
        .build_many(patterns)
    else {
        return vec![Rivals::default(); patterns.len()];
    };
    let mut cache = dfa.create_cache();
    // Whether pattern `q` can match, anchored, at a place that begins with `lit`.
    let mut may_match = |q: PatternID, lit: &[u8]| -> bool {
        for behind in [
            None,
            Some(b'a'),
            Some(b' '),
            Some(b'\n'),
            Some(b'\r'),
            Some(0xEA),
        ] {
            let config = start::Config::new()
                .anchored(Anchored::Pattern(q))
                .look_behind(behind);
            let Ok(mut sid) = dfa.start_state(&mut cache, &config) else {
                return true;
            };
            let mut died = false;
            for &b in lit {
                if sid.is_quit() || sid.is_match() {
                    return true;
                }
                sid = match dfa.next_state(&mut cache, sid, b) {
                    Ok(next) => next,
                    Err(_) => return true,
                };
                if sid.is_dead() {
                    died = true;
                    break;
                }
            }
            // Alive after `lit` (or a match delayed to the next byte): it may match.
            if !died {
                return true;
            }
        }
        false
    };
    let mut out = Vec::with_capacity(patterns.len());
    for (i, p) in patterns.iter().enumerate() {
        let lits = regex_syntax::parse(p)
            .ok()
            .map(|hir| Extractor::new().kind(ExtractKind::Prefix).extract(&hir));
        let lits = match lits.as_ref().and_then(|seq| seq.literals()) {
            Some(l) if l.len() <= RIVALS_MAX_LITERALS => l,
            _ => {
                out.push(Rivals::default());
                continue;
            }
        };
        let mut by_len: BTreeMap<usize, Vec<LiteralRivals>> = BTreeMap::new();
        for lit in lits.iter().map(|l| l.as_bytes()).filter(|l| !l.is_empty()) {
            let mut found = Vec::new();
            for q in (0..patterns.len()).filter(|&q| q != i) {
                let Ok(q) = PatternID::new(q) else { continue };
                if may_match(q, lit) {
                    found.push(q);
                    if found.len() > RIVALS_MAX {
                        break;
                    }
                }
            }
            if found.len() <= RIVALS_MAX {
                by_len
                    .entry(lit.len())
                    .or_default()
                    .push((lit.to_vec(), found));
            }
        }
        let by_len = by_len
            .into_iter()
            .map(|(len, mut lits)| {
                lits.sort_unstable();
                let words = if len <= 8 {
                    lits.iter().map(|(l, _)| be_word(l)).collect()
                } else {
                    Vec::new()
                };
                LenGroup { len, words, lits }
            })
            .collect();
        out.push(Rivals { by_len });
    }
    out
}

/// The span of the value group in the match `start..end` of the pattern `alone` (found by
/// the scan; the same leftmost-first match, so the search is bounded by it). Its captures are
/// allocated per call: value-group matches are rare.
fn value_span(alone: &meta::Regex, text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let mut caps = alone.create_captures();
    let input = Input::new(text).range(start..end).anchored(Anchored::Yes);
    alone.search_captures(&input, &mut caps);
    caps.get_group_by_name(VALUE_GROUP)
        .map(|s| (s.start, s.end))
        .filter(|(s, e)| s < e)
}

/// Whether the match `start..end` is one part of a longer run of digit groups joined by `-` or
/// `.` (`196-9026-5940` in `196-9026-5940-74`, `010-1234-5678` in `3.010-1234-5678`): a phone
/// number is never a piece of a longer dashed or dotted number (serials, ids, versions).
fn joined_to_digits(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    let joins = |sep: Option<&u8>, digit: Option<&u8>| {
        matches!(sep, Some(b'-' | b'.')) && digit.is_some_and(u8::is_ascii_digit)
    };
    (b[end - 1].is_ascii_digit() && joins(b.get(end), b.get(end + 1)))
        || (b[start].is_ascii_digit() && start >= 2 && joins(b.get(start - 1), b.get(start - 2)))
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A finding starting (ending) with an ASCII letter or digit must not continue a word.
fn at_boundaries(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    let head_ok = !b[start].is_ascii_alphanumeric() || start == 0 || !is_word(b[start - 1]);
    let tail_ok = !b[end - 1].is_ascii_alphanumeric() || end == b.len() || !is_word(b[end]);
    head_ok && tail_ok
}

/// Whether one of the context `words` occurs within [`CONTEXT_CHARS`] chars before `start`,
/// ignoring ASCII case (Hangul has none; other scripts match exactly). Allocates nothing; one
/// pass over the window for all words (comparing word by word was a tenth of the detector's
/// time on URL-rich text).
fn has_context(text: &str, start: usize, words: &AhoCorasick) -> bool {
    let from = text[..start]
        .char_indices()
        .rev()
        .take(CONTEXT_CHARS)
        .last()
        .map_or(start, |(i, _)| i);
    words.is_match(&text.as_bytes()[from..start])
        || column_header(text, start).is_some_and(|h| words.is_match(h))
}

/// When `at` lies in a cell of a pipe table (a run of lines starting with `|`, as in Markdown),
/// the header cell of its column: the same cell of the run's first line. `None` elsewhere, on
/// the header line itself, when the header has fewer cells, and when the header is more than
/// [`TABLE_SCAN_BYTES`] above (each match walks up to it: the bound keeps huge tables linear).
fn column_header(text: &str, at: usize) -> Option<&str> {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let is_row = |line: &str| line.trim_start().starts_with('|');
    if !is_row(&text[line_start..]) || line_start == 0 {
        return None;
    }
    // Cells before `at`: the `|`s between the line start and `at`, the first one opening the
    // row.
    let column = text[line_start..at].matches('|').count();
    let mut header_start = line_start;
    for line in text[..line_start - 1].rsplit('\n') {
        if !is_row(line) {
            break;
        }
        header_start -= line.len() + 1;
        if line_start - header_start > TABLE_SCAN_BYTES {
            return None;
        }
    }
    if header_start == line_start {
        return None;
    }
    let header = text[header_start..].lines().next()?;
    header.split('|').nth(column)
}

/// The automaton that finds `words` (none empty) ignoring ASCII case; `None` for no words.
fn context_matcher(words: &[String]) -> Option<AhoCorasick> {
    if words.is_empty() {
        return None;
    }
    // Cannot fail for a few short words (only size limits, far away, make it fail); a rule
    // whose words did not compile would just get no context boost.
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(words)
        .ok()
}

/// Returns a `'static` copy of `s`, shared by every detector built in this process, so that
/// findings borrow their detector name and subtype instead of allocating them. Grows only
/// with distinct names (reloading the same packs adds nothing).
fn intern(s: &str) -> &'static str {
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

/// Removes one `«`/`»` pair and returns the text and the byte span between the markers; the
/// whole text when there are no markers; `None` when the markers are unbalanced.
fn strip_markers(example: &str) -> Option<(String, (usize, usize))> {
    let opens = example.matches('«').count();
    let closes = example.matches('»').count();
    match (opens, closes) {
        (0, 0) => Some((example.to_owned(), (0, example.len()))),
        (1, 1) => {
            let a = example.find('«')?;
            let b = example.find('»')?;
            if b < a {
                return None;
            }
            let inner = &example[a + '«'.len_utf8()..b];
            let text = format!(
                "{}{}{}",
                &example[..a],
                inner,
                &example[b + '»'.len_utf8()..]
            );
            Some((text, (a, a + inner.len())))
        }
        _ => None,
    }
}

/// Parses one pack into compiled rules and their patterns (checked one by one).
fn parse_pack(file: &str, text: &str) -> Result<Vec<Rule>, RuleError> {
    let parse_err = |message: String| RuleError::Parse {
        file: file.to_owned(),
        message,
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| parse_err(e.to_string()))?;
    let mut out = Vec::new();
    for (key, value) in table {
        if key != "rule" {
            return Err(parse_err(format!(
                "unknown top-level key `{key}` (expected only [[rule]] tables)"
            )));
        }
        let toml::Value::Array(items) = value else {
            return Err(parse_err(
                "`rule` must be an array of tables ([[rule]])".into(),
            ));
        };
        for (i, item) in items.into_iter().enumerate() {
            let name = item
                .get("id")
                .and_then(|v| v.as_str())
                .map_or_else(|| format!("#{i}"), str::to_owned);
            let def: RuleDef = item
                .try_into()
                .map_err(|e: toml::de::Error| RuleError::Schema {
                    file: file.to_owned(),
                    rule: name.clone(),
                    message: e.message().to_owned(),
                })?;
            out.push(compile_rule(file, def)?);
        }
    }
    Ok(out)
}

fn compile_rule(file: &str, def: RuleDef) -> Result<Rule, RuleError> {
    let invalid = |problem: String| RuleError::Invalid {
        file: file.to_owned(),
        rule: def.id.clone(),
        problem,
    };
    if def.id.is_empty() || !def.id.bytes().all(|b| is_word(b) || b == b'-' || b == b'.') {
        return Err(invalid(
            "id must be non-empty ASCII letters, digits, `_`, `-` or `.`".into(),
        ));
    }
    if def.patterns.is_empty() {
        return Err(invalid("has no patterns".into()));
    }
    for (name, s) in [
        ("score", Some(def.score)),
        ("invalid_score", def.invalid_score),
        ("context_boost", def.context_boost),
    ] {
        if let Some(s) = s {
            if !(0.0..=1.0).contains(&s) {
                return Err(invalid(format!("{name} must be within 0..=1")));
            }
        }
    }
    if def.invalid_score.is_some() && def.validator.is_none() {
        return Err(invalid("invalid_score needs a validator".into()));
    }
    let label = def
        .label
        .parse::<Label>()
        .map_err(|source| RuleError::UnknownLabel {
            file: file.to_owned(),
            rule: def.id.clone(),
            source,
        })?;
    let validator = match &def.validator {
        None => None,
        Some(v) => Some(
            v.parse::<Validator>()
                .map_err(|source| RuleError::UnknownValidator {
                    file: file.to_owned(),
                    rule: def.id.clone(),
                    source,
                })?,
        ),
    };
    for (index, p) in def.patterns.iter().enumerate() {
        let hir = regex_automata::util::syntax::parse(p).map_err(|e| RuleError::BadRegex {
            file: file.to_owned(),
            rule: def.id.clone(),
            index,
            message: e.to_string(),
        })?;
        let props = hir.properties();
        if props.look_set().contains_word_unicode() {
            return Err(RuleError::UnicodeWordBoundary {
                file: file.to_owned(),
                rule: def.id.clone(),
                index,
            });
        }
        if props.minimum_len() == Some(0) {
            return Err(RuleError::EmptyMatch {
                file: file.to_owned(),
                rule: def.id.clone(),
                index,
            });
        }
    }
    let context: Vec<String> = def
        .context
        .values()
        .flatten()
        .filter(|w| !w.is_empty())
        .cloned()
        .collect();
    let context = context_matcher(&context);
    if def.context_required && context.is_none() {
        return Err(invalid("context_required needs context words".into()));
    }
    let rule = Rule {
        subtype: def.subtype.as_deref().map(intern),
        detector: intern(&format!("regex:{}", def.id)),
        detector_unverified: intern(&format!("regex:{}:checksum_failed", def.id)),
        id: def.id,
        file: file.to_owned(),
        label,
        validator,
        score: def.score,
        invalid_score: def.invalid_score,
        context,
        context_boost: def.context_boost.unwrap_or(DEFAULT_CONTEXT_BOOST),
        context_required: def.context_required,
        examples: def.examples,
        patterns: def.patterns,
    };
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> &'static RegexDetector {
        static D: std::sync::OnceLock<RegexDetector> = std::sync::OnceLock::new();
        D.get_or_init(RegexDetector::builtin)
    }

    fn scan(d: &RegexDetector, text: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        d.detect(text, &mut out).unwrap();
        out
    }

    /// (label, rule id, matched text) of each finding.
    fn found<'t>(d: &RegexDetector, text: &'t str) -> Vec<(Label, String, &'t str)> {
        scan(d, text)
            .into_iter()
            .map(|f| (f.label, f.detector.to_string(), &text[f.start..f.end]))
            .collect()
    }

    #[test]
    fn builtin_examples_all_hold() {
        let d = builtin();
        assert!(d.rules().len() >= 20, "{} rules", d.rules().len());
        let failures = d.check_examples();
        assert!(
            failures.is_empty(),
            "{} example failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn every_required_kind_has_a_rule() {
        let d = builtin();
        for (label, subtype) in [
            (Label::Email, None),
            (Label::Phone, None),
            (Label::CreditCard, None),
            (Label::NationalId, Some("KR_RRN")),
            (Label::NationalId, Some("US_SSN")),
            (Label::BusinessId, Some("KR_BRN")),
            (Label::IpAddress, Some("IPV4")),
            (Label::IpAddress, Some("IPV6")),
            (Label::Iban, None),
            (Label::Secret, Some("JWT")),
            (Label::Secret, Some("PRIVATE_KEY")),
        ] {
            assert!(
                d.rules()
                    .iter()
                    .any(|r| r.label() == label && (subtype.is_none() || r.subtype() == subtype)),
                "no rule for {label} {subtype:?}"
            );
        }
    }

    #[test]
    fn mixed_sentence_spans() {
        let text = "I'm Kim, kim.minsu@example.com, card 4111 1111 1111 1111, 주민번호 900101-1234568, call 010-2345-6789";
        let got = scan(builtin(), text);
        let span = |needle: &str| {
            let s = text.find(needle).unwrap();
            (s, s + needle.len())
        };
        let want = [
            (Label::Email, span("kim.minsu@example.com"), "regex:email"),
            (
                Label::CreditCard,
                span("4111 1111 1111 1111"),
                "regex:credit_card",
            ),
            (Label::NationalId, span("900101-1234568"), "regex:kr_rrn"),
            (Label::Phone, span("010-2345-6789"), "regex:kr_mobile"),
        ];
        assert_eq!(
            got.iter()
                .map(|f| (f.label, (f.start, f.end), f.detector.as_ref()))
                .collect::<Vec<_>>(),
            want
        );
        // Byte offsets: the RRN comes after Hangul, so byte and char offsets differ.
        assert_eq!(got[2].start, 71);
        assert_eq!(got[2].subtype.as_deref(), Some("KR_RRN"));
        // 주민번호 is context: 0.95 + 0.1, capped.
        assert_eq!(got[2].score, 1.0);
        // "card" is context for the card too; the email has none ("Kim," is no context word).
        assert_eq!(got[1].score, 1.0);
        assert_eq!(got[0].score, 0.95);
    }

    #[test]
    fn context_raises_score_only_when_near() {
        let d = builtin();
        let near = scan(d, "주민번호는 900101-1234568");
        assert_eq!(near[0].score, 1.0);
        let none = scan(d, "번호 없음: 900101-1234568");
        assert_eq!(none[0].score, 0.95);
        let far = format!("주민번호{} 900101-1234568", " 가".repeat(30));
        assert_eq!(scan(d, &far)[0].score, 0.95, "context beyond 40 chars");
        // Checksum fails: kept at invalid_score (+ context).
        let weak = scan(d, "ID 900101-1234567");
        assert_eq!(weak.len(), 1);
        assert_eq!(weak[0].score, 0.5);
        assert_eq!(scan(d, "RRN 900101-1234567")[0].score, 0.6);
        // Context words match ignoring ASCII case, anywhere in the window.
        let card = |t: &str| scan(d, t)[0].score;
        let plain = card("x 4111 1111 1111 1111");
        assert!(plain < 1.0, "{plain}");
        assert_eq!(
            card("CARD 4111 1111 1111 1111"),
            card("card 4111 1111 1111 1111")
        );
        assert!(card("my Card: 4111 1111 1111 1111") > plain);
        assert_eq!(
            card("Discard 4111 1111 1111 1111"),
            card("discard 4111 1111 1111 1111")
        );
    }

    #[test]
    fn column_header_of_pipe_table_cells() {
        let t = "Orders:\n| name | 사업자번호 | note |\n|---|---|---|\n| A | 123 | x |\n| B | 456 |\nafter 789";
        let at = |s: &str| t.find(s).unwrap();
        assert_eq!(column_header(t, at("123")), Some(" 사업자번호 "));
        assert_eq!(column_header(t, at("456")), Some(" 사업자번호 "));
        assert_eq!(column_header(t, at("x |")), Some(" note "));
        assert_eq!(column_header(t, at("B |")), Some(" name "));
        // Not in a table, or on the header line itself.
        assert_eq!(column_header(t, at("789")), None);
        assert_eq!(column_header(t, at("Orders")), None);
        assert_eq!(column_header(t, at("name")), None);
        // A table at the very start of the text.
        let t = "| id | brn |\n| 1 | 2 |";
        assert_eq!(column_header(t, t.rfind('2').unwrap()), Some(" brn "));
        // A header further up than the bound is not looked for.
        let rows = "| 1 | 2 |\n".repeat(TABLE_SCAN_BYTES / 10 + 1);
        let t = format!("| id | brn |\n{rows}| 1 | 3 |");
        assert_eq!(column_header(&t, t.rfind('3').unwrap()), None);
    }

    #[test]
    fn hangul_next_to_digits_is_a_boundary() {
        let d = builtin();
        let got = found(d, "번호900101-1234568이고 폰01023456789로");
        assert_eq!(
            got,
            vec![
                (
                    Label::NationalId,
                    "regex:kr_rrn".to_owned(),
                    "900101-1234568"
                ),
                (Label::Phone, "regex:kr_mobile".to_owned(), "01023456789"),
            ]
        );
        // ASCII letters or digits around a number are not boundaries.
        assert!(scan(d, "ID900101-1234568").is_empty());
        assert!(scan(d, "x010-2345-6789").is_empty());
        assert!(scan(d, "4111111111111111a").is_empty());
    }

    #[test]
    fn overlapping_rules_pick_the_right_one() {
        let d = builtin();
        // 13 digits without hyphen: an RRN (valid checksum) and a Visa-shaped number are both
        // candidates; the RRN must win. 4509151100027 is a Luhn-valid 13-digit Visa AND a
        // date-valid RRN (1945-09-15, sex digit 1) whose checksum also holds.
        let both = "4509151100027";
        assert!(matches!(
            Validator::CreditCard.check(both),
            Outcome::Valid(_)
        ));
        assert!(matches!(Validator::KrRrn.check(both), Outcome::Valid(_)));
        assert_eq!(
            found(d, both),
            vec![(Label::NationalId, "regex:kr_rrn".to_owned(), both)]
        );
        // Where the RRN checksum fails, the Luhn-valid card wins over the 0.5 RRN, even with
        // RRN context nearby (choice is by score before context).
        let card = "4509151100332";
        assert!(matches!(
            Validator::CreditCard.check(card),
            Outcome::Valid(_)
        ));
        assert!(matches!(
            Validator::KrRrn.check(card),
            Outcome::ChecksumFailed(_)
        ));
        assert_eq!(found(d, card)[0].1, "regex:credit_card");
        assert_eq!(
            found(d, &format!("주민번호 {card}"))[0].1,
            "regex:credit_card"
        );
        // ... and an RRN with an invalid checksum and no card shape stays an RRN.
        assert_eq!(
            found(d, "9001011234567")[0].1,
            "regex:kr_rrn:checksum_failed"
        );
        // +82 numbers fit both the Korean and the E.164 rule: Korean wins (higher score).
        assert_eq!(
            found(d, "+82 10-2345-6789"),
            vec![(
                Label::Phone,
                "regex:kr_phone_intl".to_owned(),
                "+82 10-2345-6789"
            )]
        );
        // sk-ant-... fits the OpenAI shape too.
        let key = "sk-ant-api03-EXAMPLEPtYgjmUhBel31iEl2hpChYgCfrL1sp";
        assert_eq!(found(d, key)[0].1, "regex:anthropic_api_key");
        // ... even where context words of the OpenAI rule are near.
        assert_eq!(
            found(d, &format!("openai api_key token {key}"))[0].1,
            "regex:anthropic_api_key"
        );
        // A full PEM block beats its unterminated-prefix rule.
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----";
        assert_eq!(found(d, pem)[0].2, pem);
        // SSN (3-2-4) and BRN (3-2-5) shapes do not steal each other.
        assert_eq!(found(d, "123-45-6789")[0].1, "regex:us_ssn");
        assert_eq!(found(d, "123-45-67891")[0].1, "regex:kr_brn");
    }

    #[test]
    fn value_groups_report_the_value_and_do_not_hide_other_rules() {
        let d = builtin();
        // Only the value is the finding; the keyword is context.
        let text = "DB password=hunter2! and PW: kim2024!!";
        assert_eq!(
            found(d, text).iter().map(|g| g.2).collect::<Vec<_>>(),
            vec!["hunter2!", "kim2024!!"]
        );
        // A JWT after `Bearer` is rejected by the bearer rule and found by the JWT rule.
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        assert_eq!(
            found(d, &format!("Authorization: Bearer {jwt}")),
            vec![(Label::Secret, "regex:jwt".to_owned(), jwt)]
        );
        // An OpenAI key after `api_key=` keeps its own subtype.
        let key = "sk-EXAMPLEe1f8rESQedUStPKR0CsTy4Qwb8DwkNhFdnXsiV";
        assert_eq!(
            found(d, &format!("api_key={key}"))[0].1,
            "regex:openai_api_key"
        );
        // A resident number after 생년월일 is not cut into a date of birth.
        assert_eq!(
            found(d, "생년월일 900101-1234568"),
            vec![(
                Label::NationalId,
                "regex:kr_rrn".to_owned(),
                "900101-1234568"
            )]
        );
        // A keyword-anchored match that fails validation resumes right after its start.
        assert_eq!(
            found(d, "password: String, email kim@example.com")
                .iter()
                .map(|g| g.2)
                .collect::<Vec<_>>(),
            vec!["kim@example.com"]
        );
    }

    #[test]
    fn korean_numbers_split_by_kind() {
        let d = builtin();
        let sub = |t: &str| {
            scan(d, t)
                .first()
                .and_then(|f| f.subtype.as_deref().map(str::to_owned))
        };
        assert_eq!(sub("900101-1234568").as_deref(), Some("KR_RRN"));
        assert_eq!(sub("771231-5123452").as_deref(), Some("KR_FRN"));
        assert_eq!(sub("130111-0006246").as_deref(), Some("KR_CRN"));
        // Resident-number shaped and CRN-valid: a resident number unless the keyword says
        // otherwise.
        assert_eq!(sub("110111-1234569").as_deref(), Some("KR_RRN"));
        assert_eq!(
            sub("법인등록번호 110111-1234569").as_deref(),
            Some("KR_CRN")
        );
        // Bank accounts and passports need their context words to pass the 0.5 threshold.
        let weak = scan(d, "110-123-456789");
        assert!(weak[0].score < 0.5, "{}", weak[0].score);
        let strong = scan(d, "신한은행 110-123-456789");
        assert!(strong[0].score >= 0.85, "{}", strong[0].score);
        assert_eq!(strong[0].label, Label::BankAccount);
        assert!(scan(d, "M12345678")[0].score < 0.5);
        assert!(scan(d, "여권번호 M12345678")[0].score >= 0.85);
    }

    #[test]
    fn new_rules_stay_quiet_on_ordinary_text() {
        let d = builtin();
        let text = "\
fn connect(password: &str, api_key: String) -> Result<(), Error> { let pw = get_password(); \
let password = self.password.clone(); println!(\"password: {}\", pw); }
서울 구로구 구로 3동 화재 현장, 대구 달성군 보궐선거로 15대 국회, 서울 서초구 내곡동 52사단 훈련장. \
비밀번호를 잊으셨나요? 계좌 개설은 2024년 3월부터, 여권 사진 규격은 35x45mm입니다. \
Bearer tokens are described in RFC 6750; born in 1990; passport photo 123456789.";
        let got: Vec<_> = scan(d, text)
            .into_iter()
            .filter(|f| f.score >= 0.5)
            .map(|f| (f.detector, &text[f.start..f.end]))
            .collect();
        assert!(got.is_empty(), "false positives: {got:?}");
    }

    #[test]
    fn rejected_candidates_do_not_hide_later_ones() {
        let d = builtin();
        let text = "time 12:30:45, version 1.2.3.4.5, then 010-2345-6789 and 2001:db8::1";
        let got = found(d, text);
        assert_eq!(
            got.iter().map(|g| g.2).collect::<Vec<_>>(),
            vec!["010-2345-6789", "2001:db8::1"]
        );
    }

    #[test]
    fn no_false_positives_in_ordinary_text() {
        let d = builtin();
        let paragraph = "\
2024년 3월 15일 오후 2:30에 회의가 있었습니다. 참석자는 12명이었고, 예산은 1,250,000원(부가세 10% 포함)으로 \
확정되었습니다. 다음 회의는 2024-04-01 09:00:00 KST, 회의실 3-201호입니다. 버전 v1.2.3.4 배포 후 \
v2.0.1 핫픽스가 필요하며, 빌드 번호는 20240315.1, 커밋은 a1b2c3d입니다. 환율은 1,342.50원/달러, \
주문번호 2024031512345, 우편번호 06236, 면적 84.97㎡, 좌표 37.5665, 126.9780. \
The meeting on March 15, 2024 at 14:30:00 covered Q1 revenue of $1,299.99 per seat (up 3.5%), \
release 2.4.1 and build 10.0.19045, ISO 8601 timestamps like 2024-03-15T14:30:00Z, ratio 16:9, \
score 3:2, scripture John 3:16, chapter 1.2.3, room 401-B, SKU 12-345-678, order #A1234567, \
the years 1990-2024, a range of 100-200 units, pi 3.14159265358979, and std::vector<int> in C++. \
Contact us via the website; call center hours 9-18. The sk-learn library, xoxo hugs, eyJ.";
        let got = found(d, paragraph);
        assert!(got.is_empty(), "false positives: {got:?}");
    }

    #[test]
    fn four_part_versions_are_reported_as_ipv4() {
        // Documented decision: a bare dotted quad is indistinguishable from an address and is
        // masked (failing towards privacy); a `v` prefix or three parts is not an address.
        let d = builtin();
        assert_eq!(
            found(d, "version 1.2.3.4"),
            vec![(Label::IpAddress, "regex:ipv4".to_owned(), "1.2.3.4")]
        );
        assert!(scan(d, "version v1.2.3.4 and 1.2.3").is_empty());
    }

    #[test]
    fn priority_is_validated_only_when_the_validator_passed() {
        let d = builtin();
        let one = |text: &str| {
            let fs = scan(d, text);
            assert_eq!(fs.len(), 1, "{text}");
            fs.into_iter().next().unwrap()
        };
        let rrn = one("주민번호 900101-1234568");
        assert_eq!(rrn.detector, "regex:kr_rrn");
        assert_eq!(d.priority(&rrn), Priority::Validated);
        // Wrong check digit (issued since 2020): reported with invalid_score, not validated.
        let rrn_new = one("주민번호 900101-1234567");
        assert_eq!(rrn_new.label, Label::NationalId);
        assert!(
            rrn_new.detector.ends_with(":checksum_failed"),
            "{}",
            rrn_new.detector
        );
        assert_eq!(d.priority(&rrn_new), Priority::Pattern);
        let card = one("card 4111 1111 1111 1111");
        assert_eq!(d.priority(&card), Priority::Validated);
        // No validator: the shape alone.
        let key = one("AKIAIOSFODNN7EXAMPLE");
        assert_eq!(key.detector, "regex:aws_access_key_id");
        assert_eq!(d.priority(&key), Priority::Pattern);
        let mail = one("kim@example.com");
        assert_eq!(d.priority(&mail), Priority::Pattern);
    }

    #[test]
    fn findings_carry_rule_details() {
        let d = builtin();
        assert_eq!(d.name(), "regex");
        let f = &scan(d, "사업자 정보: 220-81-62782")[0];
        assert_eq!(f.label, Label::BusinessId);
        assert_eq!(f.subtype.as_deref(), Some("KR_BRN"));
        assert_eq!(f.detector, "regex:kr_brn");
        // Names are interned: findings do not allocate them.
        assert!(matches!(f.detector, Cow::Borrowed(_)));
        assert!(matches!(f.subtype, Some(Cow::Borrowed(_))));
        assert!(std::ptr::eq(intern("regex:kr_brn"), intern("regex:kr_brn")));
        assert!((f.score - 0.95).abs() < 1e-6, "{}", f.score);
        let e = &scan(d, "a@b.example")[0];
        assert_eq!(e.subtype, None);
    }

    #[test]
    fn offsets_are_char_boundaries_sorted_and_disjoint() {
        let d = builtin();
        let text =
            "가010-2345-6789나 kim@example.com다 4111111111111111 라 \u{1F600}+82 10 2345 6789";
        let got = scan(d, text);
        assert_eq!(got.len(), 4);
        for w in got.windows(2) {
            assert!(w[0].end <= w[1].start);
        }
        for f in &got {
            assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
        }
        assert!(scan(d, "").is_empty());
    }

    /// Asserts that wherever a pattern matches in `text` and [`Rivals::at`] names its
    /// rivals there, the probe finds no pattern besides it and them: at every start of
    /// `text`, not only the scan's.
    fn assert_rivals_hold(d: &RegexDetector, text: &str) {
        let mut set = PatternSet::new(d.pattern_rule.len());
        for at in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
            set.clear();
            let input = Input::new(text).range(at..).anchored(Anchored::Yes);
            d.probe.which_overlapping_matches(&input, &mut set);
            for p in set.iter() {
                if let Some(rivals) = d.rivals[p.as_usize()].at(&text.as_bytes()[at..]) {
                    let missed: Vec<&str> = set
                        .iter()
                        .filter(|q| *q != p && !rivals.contains(q))
                        .map(|q| d.rules[d.pattern_rule[q.as_usize()]].id.as_str())
                        .collect();
                    assert!(
                        missed.is_empty(),
                        "pattern {p:?} at {at}: missed {missed:?}"
                    );
                }
            }
        }
    }

    fn pattern_of(d: &RegexDetector, rule: &str) -> usize {
        let r = d.rules.iter().position(|r| r.id == rule).unwrap();
        d.pattern_rule.iter().position(|&x| x == r).unwrap()
    }

    #[test]
    fn rivals_are_never_missed_on_examples_and_corpora() {
        let d = builtin();
        let known = d.rivals.iter().filter(|r| !r.by_len.is_empty()).count();
        assert!(known >= 5, "only {known} patterns can skip the probe");
        // `http://` begins nothing else; `https://` a Slack webhook too, `www.` an e-mail
        // address.
        let url = &d.rivals[pattern_of(d, "url")];
        for head in ["http://", "HTTPS://", "hTtP://"] {
            assert_eq!(
                url.at(format!("{head}x.kr").as_bytes()),
                Some(&[][..]),
                "{head}"
            );
        }
        // Pattern ids follow the rules' patterns in order.
        let slack = d
            .rules
            .iter()
            .flat_map(|r| r.patterns.iter().map(move |p| (r.id.as_str(), p)))
            .position(|(id, p)| id == "slack_token" && p.contains("hooks"));
        let slack = PatternID::must(slack.unwrap());
        assert_eq!(url.at(b"https://x.kr"), Some(&[slack][..]));
        let email = PatternID::must(pattern_of(d, "email"));
        assert_eq!(url.at(b"www.example.com"), Some(&[email][..]));
        let mut texts: Vec<String> = vec![
            "http://user:pw@host.example.com/x https://a@b.co www.kim@example.com".into(),
            "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX".into(),
            "postgres://app:S3cret@db:5432/x and jdbc:mysql://u:p@h/db".into(),
            "Bearer abcdefghijklmnopqrstuvwxyz012345 sk-ant-api03-abcdefghijklmnop".into(),
        ];
        for r in &d.rules {
            for ex in r.examples.matches.iter().chain(&r.examples.no_match) {
                texts.push(strip_markers(ex).map_or_else(|| ex.clone(), |(t, _)| t));
            }
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/corpus");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let body = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            texts.extend(body.lines().map(str::to_owned));
        }
        for t in &texts {
            assert_rivals_hold(d, t);
        }
    }

    /// The rule examples and the lines of the corpus.
    fn examples_and_corpus(d: &RegexDetector) -> Vec<String> {
        let mut texts = Vec::new();
        for r in &d.rules {
            for ex in r.examples.matches.iter().chain(&r.examples.no_match) {
                texts.push(strip_markers(ex).map_or_else(|| ex.clone(), |(t, _)| t));
            }
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/corpus");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let body = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            texts.extend(body.lines().map(str::to_owned));
            // Whole files too: long texts with many matches, split far from any line.
            texts.push(body);
        }
        texts
    }

    /// `d`'s split scan against its meta regex at every char boundary of `text`; the number
    /// of places the split scan answered (it may send a place to the meta regex).
    fn assert_split_scan_holds(d: &RegexDetector, text: &str) -> usize {
        let split = d
            .split
            .as_ref()
            .expect("the built-in patterns build lazy DFAs");
        let mut answered = 0;
        let places: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        // A fresh session per place, one session for all places in order (each search takes
        // up the second stream's work where the one before left it), and one session for the
        // places the scan loop visits (after each match: its end, or its start + 1).
        let mut walk = split.session(text);
        for &at in &places {
            let want = d.scan.search(&Input::new(text).range(at..));
            if let Ok(got) = split.session(text).find(at) {
                answered += 1;
                assert_eq!(got, want, "split scan vs meta regex from {at} in {text:?}");
            }
            if let Ok(got) = walk.find(at) {
                assert_eq!(
                    got, want,
                    "resumed split scan vs meta regex from {at} in {text:?}"
                );
            }
        }
        for step in [false, true] {
            let mut scan = split.session(text);
            let mut at = 0;
            while at <= text.len() {
                let want = d.scan.search(&Input::new(text).range(at..));
                if let Ok(got) = scan.find(at) {
                    assert_eq!(
                        got, want,
                        "split scan loop vs meta regex from {at} in {text:?}"
                    );
                }
                let Some(m) = want else { break };
                at = if step {
                    m.start() + 1
                } else {
                    m.end().max(m.start() + 1)
                };
                while at < text.len() && !text.is_char_boundary(at) {
                    at += 1;
                }
            }
        }
        answered
    }

    #[test]
    fn split_scan_finds_what_the_meta_regex_finds() {
        let d = builtin();
        let (mut places, mut answered) = (0, 0);
        for t in examples_and_corpus(d) {
            places += t.char_indices().count() + 1;
            answered += assert_split_scan_holds(d, &t);
        }
        // The fallback is for cache clears and engines giving up: never here.
        assert_eq!(
            answered, places,
            "the split scan sent places to the meta regex"
        );
        assert!(places > 10_000, "only {places} places searched");
    }

    #[test]
    fn rivals_are_read_off_the_other_patterns() {
        let d = |pats: &[&str]| {
            let rules: String = pats
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    format!(
                        "[[rule]]\nid = \"r{i}\"\nlabel = \"SECRET\"\nscore = 0.9\npatterns = [\'\'\'{p}\'\'\']\nexamples = {{ match = [] }}\n"
                    )
                })
                .collect();
            RegexDetector::from_sources(&[("t.toml", rules)]).unwrap()
        };
        let none: Option<&[PatternID]> = Some(&[]);
        let one = Some(&[PatternID::must(1)][..]);
        // `a[a-z]+` matches `ab` at the start of every `ab<digit>`.
        assert_eq!(d(&["ab[0-9]+", "a[a-z]+"]).rivals[0].at(b"ab1"), one);
        assert_eq!(d(&["ab[0-9]+", "x[a-z]+"]).rivals[0].at(b"ab1"), none);
        // Per literal: `x[a-z]+` is a rival of `(ab|xy)[0-9]` only where it begins with `x`.
        let two = d(&["(?:ab|xy)[0-9]", "x[a-z]+"]);
        assert_eq!(two.rivals[0].at(b"ab1"), none);
        assert_eq!(two.rivals[0].at(b"xy1"), one);
        // No finite prefix set: unknown, the probe runs.
        assert_eq!(d(&["[a-z]+@x", "ab"]).rivals[0].at(b"ab@x"), None);
        // A look-behind assertion in the other pattern is tried with every byte before.
        assert_eq!(d(&["ab[0-9]", "(?m:^)ab"]).rivals[0].at(b"ab1"), one);
        // More than RIVALS_MAX rivals: unknown.
        assert_eq!(
            d(&["ab1", "a", "ab", "a[a-z]", "[a-z]b"]).rivals[0].at(b"ab1"),
            None
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn skipping_the_probe_changes_no_finding(
                text in "(http://|www\\.|https://|[0-9a-zA-Z가-힣 .:/@+()_=-]){0,40}"
            ) {
                let d = builtin();
                let mut careful = RegexDetector::builtin();
                careful.rivals = vec![Rivals::default(); careful.rivals.len()];
                prop_assert_eq!(scan(d, &text), scan(&careful, &text));
            }

            #[test]
            fn split_scan_matches_the_meta_regex(
                text in "(http://|www\\.|010-|[0-9a-fA-F가-힣 .:/@+()_=-]|password|sk-|AKIA|주민번호){0,60}"
            ) {
                assert_split_scan_holds(builtin(), &text);
            }

            #[test]
            fn any_text_gives_well_formed_findings(
                text in "[0-9a-zA-Z가-힣 .:@+()_-]{0,80}"
            ) {
                let got = scan(builtin(), &text);
                let mut last = 0;
                for f in &got {
                    prop_assert!(f.start >= last && f.start < f.end && f.end <= text.len());
                    prop_assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
                    prop_assert!((0.0..=1.0).contains(&f.score));
                    last = f.end;
                }
            }
        }
    }

    const GOOD: &str = r#"
[[rule]]
id = "ticket"
label = "CUSTOM"
patterns = ['(?-u:\b)TCK-[0-9]{6}(?-u:\b)']
score = 0.7
examples = { match = ["TCK-123456"], no_match = ["TCK-12345"] }
"#;

    fn err(toml: &str) -> RuleError {
        RegexDetector::from_sources(&[("user.toml", toml)]).unwrap_err()
    }

    fn rule_with(line: &str) -> String {
        format!(
            "[[rule]]\nid = \"r1\"\nlabel = \"CUSTOM\"\npatterns = ['x[0-9]']\nscore = 0.5\n{line}\n"
        )
    }

    #[test]
    fn user_pack_loads_and_works() {
        let d = RegexDetector::from_sources(&[("user.toml", GOOD)]).unwrap();
        assert!(d.check_examples().is_empty());
        assert_eq!(
            found(&d, "see TCK-004211."),
            vec![(Label::Custom, "regex:ticket".to_owned(), "TCK-004211")]
        );
        // A pack with no rules is fine and finds nothing.
        let empty = RegexDetector::from_sources(&[("empty.toml", "")]).unwrap();
        assert!(scan(&empty, "kim@example.com").is_empty());
    }

    #[test]
    fn from_files_reads_paths_and_adds_builtin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tickets.toml");
        std::fs::write(&path, GOOD).unwrap();
        let d = RegexDetector::from_files(&[&path], true).unwrap();
        let got = found(&d, "TCK-123456 kim@example.com");
        assert_eq!(got.len(), 2);
        assert_eq!(d.rules().last().unwrap().file(), path.display().to_string());
        let only = RegexDetector::from_files(&[&path], false).unwrap();
        assert_eq!(only.rules().len(), 1);
        let missing = RegexDetector::from_files(&[dir.path().join("nope.toml")], false);
        let e = missing.unwrap_err();
        assert!(matches!(e, RuleError::Io { .. }), "{e}");
        assert!(e.to_string().contains("nope.toml"));
    }

    #[test]
    fn bad_rule_files_name_file_rule_and_problem() {
        type IsKind = fn(&RuleError) -> bool;
        let cases: Vec<(String, IsKind, &str)> = vec![
            (
                "[[rule]\n".into(),
                |e| matches!(e, RuleError::Parse { .. }),
                "user.toml",
            ),
            (
                "title = \"x\"\n".into(),
                |e| matches!(e, RuleError::Parse { .. }),
                "unknown top-level key `title`",
            ),
            (
                rule_with("colour = \"red\""),
                |e| matches!(e, RuleError::Schema { .. }),
                "rule `r1` in `user.toml`: unknown field `colour`",
            ),
            (
                "[[rule]]\nid = \"r1\"\nlabel = \"CUSTOM\"\nscore = 0.5\n".into(),
                |e| matches!(e, RuleError::Schema { .. }),
                "missing field `patterns`",
            ),
            (
                rule_with("examples = { match = [], maybe = [] }"),
                |e| matches!(e, RuleError::Schema { .. }),
                "unknown field `maybe`",
            ),
            (
                rule_with("").replace("CUSTOM", "NAME"),
                |e| matches!(e, RuleError::UnknownLabel { .. }),
                "rule `r1` in `user.toml`: unknown label `NAME`",
            ),
            (
                rule_with("").replace("x[0-9]", "x[0-9"),
                |e| matches!(e, RuleError::BadRegex { index: 0, .. }),
                "pattern #0 is not a valid regex",
            ),
            (
                rule_with("").replace("x[0-9]", r"\bx[0-9]\b"),
                |e| matches!(e, RuleError::UnicodeWordBoundary { .. }),
                "Unicode word boundary",
            ),
            (
                rule_with("").replace("x[0-9]", "[0-9]*"),
                |e| matches!(e, RuleError::EmptyMatch { .. }),
                "can match the empty string",
            ),
            (
                rule_with("validator = \"crc32\""),
                |e| matches!(e, RuleError::UnknownValidator { .. }),
                "rule `r1` in `user.toml`: unknown validator `crc32`",
            ),
            (
                format!("{}{}", rule_with(""), rule_with("")),
                |e| matches!(e, RuleError::DuplicateId { .. }),
                "rule `r1` in `user.toml`: duplicate id",
            ),
            (
                rule_with("").replace("0.5", "1.5"),
                |e| matches!(e, RuleError::Invalid { .. }),
                "score must be within 0..=1",
            ),
            (
                rule_with("").replace("['x[0-9]']", "[]"),
                |e| matches!(e, RuleError::Invalid { .. }),
                "has no patterns",
            ),
            (
                rule_with("invalid_score = 0.2"),
                |e| matches!(e, RuleError::Invalid { .. }),
                "invalid_score needs a validator",
            ),
            (
                rule_with("context_required = true"),
                |e| matches!(e, RuleError::Invalid { .. }),
                "context_required needs context words",
            ),
        ];
        for (toml, is_kind, needle) in cases {
            let e = err(&toml);
            assert!(is_kind(&e), "wrong kind {e:?} for {toml}");
            let msg = e.to_string();
            assert!(msg.contains(needle), "`{msg}` lacks `{needle}`");
            assert!(msg.contains("user.toml"), "`{msg}` lacks the file");
            assert_eq!(e.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(e.fault(), "internal");
        }
        // A duplicate across packs names the first file too (builtin ids are reserved).
        let dup = RegexDetector::from_sources(&[
            BUILTIN_PACKS[0],
            ("user.toml", &rule_with("").replace("r1", "email")),
        ])
        .unwrap_err();
        assert!(dup.to_string().contains("builtin:global.toml"), "{dup}");
    }

    #[test]
    fn failing_examples_are_reported() {
        let pack = r#"
[[rule]]
id = "ticket"
label = "CUSTOM"
patterns = ['(?-u:\b)TCK-[0-9]{6}(?-u:\b)']
score = 0.7
examples = { match = ["TCK-12345", "see «TCK-123456» «x»"], no_match = ["TCK-123456"] }
"#;
        let d = RegexDetector::from_sources(&[("user.toml", pack)]).unwrap();
        let failures = d.check_examples();
        assert_eq!(failures.len(), 3, "{failures:#?}");
        assert!(failures[0].contains("match example #0"));
        assert!(failures[1].contains("«...»"));
        assert!(failures[2].contains("no_match example #0"));
        // Messages name spans, never the example text.
        assert!(failures.iter().all(|f| !f.contains("TCK-1")));
    }

    #[test]
    fn marker_stripping() {
        assert_eq!(strip_markers("ab"), Some(("ab".into(), (0, 2))));
        assert_eq!(strip_markers("가«12»나"), Some(("가12나".into(), (3, 5))));
        assert_eq!(strip_markers("«a"), None);
        assert_eq!(strip_markers("»a«"), None);
    }
}
