//! Detection: finding personal and confidential data in text.
//!
//! Every detector implements [`Detector`] and reports [`Finding`]s: a byte range of the text,
//! a [`Label`] from the interface contract (SPEC.md), an optional more specific subtype
//! (`KR_RRN` under `NATIONAL_ID`), the detector's name and a score in `0.0..=1.0`.
//! [`Engine`] runs every configured detector over a text and merges their findings into a
//! sorted list with no overlaps, so masking can replace them left to right.
//!
//! Offsets are **byte** offsets into the UTF-8 text, always on char boundaries. Interfaces that
//! speak code points (the CLI's `scan --json`, corpora) convert at the edge with
//! [`byte_to_char_offsets`].
//!
//! Limits: detectors here are synchronous and CPU-bound. Regex rules take microseconds per
//! kilobyte and run inline; model-based detectors (NER) must run on their own worker pool,
//! never on the async runtime's threads.

pub mod dictionary;
pub mod eval;
pub mod korean_name;
pub mod ner;
pub mod normalize;
pub mod regex;
pub mod reload;
mod split_scan;
pub mod validate;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The entity labels of the interface contract. Nothing else is ever reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    Person,
    Location,
    Organization,
    Date,
    Age,
    Email,
    Phone,
    Url,
    IpAddress,
    CreditCard,
    Iban,
    BankAccount,
    NationalId,
    BusinessId,
    Passport,
    DriverLicense,
    ZipCode,
    Secret,
    Custom,
}

impl Label {
    pub const ALL: [Label; 19] = [
        Label::Person,
        Label::Location,
        Label::Organization,
        Label::Date,
        Label::Age,
        Label::Email,
        Label::Phone,
        Label::Url,
        Label::IpAddress,
        Label::CreditCard,
        Label::Iban,
        Label::BankAccount,
        Label::NationalId,
        Label::BusinessId,
        Label::Passport,
        Label::DriverLicense,
        Label::ZipCode,
        Label::Secret,
        Label::Custom,
    ];

    /// The contract's spelling: `PERSON`, `CREDIT_CARD`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Person => "PERSON",
            Label::Location => "LOCATION",
            Label::Organization => "ORGANIZATION",
            Label::Date => "DATE",
            Label::Age => "AGE",
            Label::Email => "EMAIL",
            Label::Phone => "PHONE",
            Label::Url => "URL",
            Label::IpAddress => "IP_ADDRESS",
            Label::CreditCard => "CREDIT_CARD",
            Label::Iban => "IBAN",
            Label::BankAccount => "BANK_ACCOUNT",
            Label::NationalId => "NATIONAL_ID",
            Label::BusinessId => "BUSINESS_ID",
            Label::Passport => "PASSPORT",
            Label::DriverLicense => "DRIVER_LICENSE",
            Label::ZipCode => "ZIP_CODE",
            Label::Secret => "SECRET",
            Label::Custom => "CUSTOM",
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Label {
    type Err = UnknownLabel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Label::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| UnknownLabel(s.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown label `{0}` (expected one of the labels in SPEC.md, e.g. PERSON, EMAIL)")]
pub struct UnknownLabel(pub String);

/// One piece of sensitive data found in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Byte offset of the first byte (on a char boundary).
    pub start: usize,
    /// Byte offset one past the last byte (on a char boundary).
    pub end: usize,
    pub label: Label,
    /// A more specific kind, e.g. `KR_RRN`; `None` when the label says it all.
    pub subtype: Option<Cow<'static, str>>,
    /// Name of the detector (and rule) that reported it, e.g. `regex:kr_rrn`.
    pub detector: Cow<'static, str>,
    /// Confidence in `0.0..=1.0`.
    pub score: f32,
}

impl Finding {
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Why detection failed. Any error means the request is not forwarded (fail closed).
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The detector could not run (model not loaded, worker pool gone, ...).
    #[error("detector `{detector}` is unavailable: {reason}")]
    Unavailable { detector: String, reason: String },
    /// The detector did not finish within its time budget.
    #[error("detector `{detector}` exceeded its time budget")]
    Timeout { detector: String },
    /// Any other internal failure. The message must never contain text being scanned.
    #[error("detector `{detector}` failed: {reason}")]
    Internal { detector: String, reason: String },
}

/// A source of findings. Implementations must be cheap to call concurrently from many threads.
pub trait Detector: Send + Sync {
    /// A short stable name, used in findings, metrics and errors.
    fn name(&self) -> &str;

    /// Appends the findings in `text` to `out`. Findings may overlap; [`Engine`] merges them.
    /// Errors must not contain any part of `text`.
    fn detect(&self, text: &str, out: &mut Vec<Finding>) -> Result<(), DetectError>;

    /// Appends the findings in each of `texts` to the `out` of the same index (`out` has one
    /// `Vec` per text). The default runs [`Detector::detect`] on each in turn; a detector
    /// that does better with all the texts at once (the NER pools: one model pass over
    /// several texts) overrides it.
    fn detect_many(&self, texts: &[&str], out: &mut [Vec<Finding>]) -> Result<(), DetectError> {
        for (text, out) in texts.iter().zip(out.iter_mut()) {
            self.detect(text, out)?;
        }
        Ok(())
    }

    /// How much to trust `finding` (one of this detector's) when it overlaps another with
    /// the same score: see [`Priority`]. The default derives it from the finding's detector
    /// name ([`Priority::from_detector_name`]); detectors that know better (a regex rule
    /// whose checksum passed) override it. A wrapper of several detectors
    /// ([`dictionary::AllowFilter`]) asks each of them and takes the highest answer, so for a
    /// finding of another detector an override must answer no higher than the name says.
    fn priority(&self, finding: &Finding) -> Priority {
        Priority::from_detector_name(&finding.detector)
    }
}

/// The tie-breaker between overlapping findings of equal score, from least to most trusted:
///
/// 1. [`Priority::Ner`]: a statistical model's guess.
/// 2. [`Priority::NameHeuristic`]: rule-based name detection (surname + given-name shape +
///    context cue); plausible, often wrong.
/// 3. [`Priority::Pattern`]: a regex rule without a validator: the shape fits.
/// 4. [`Priority::Dictionary`]: an operator's deny list: someone listed this exact value.
/// 5. [`Priority::Validated`]: a regex rule whose checksum/structure validator passed (Luhn,
///    mod-97, resident-number checksum): the strongest evidence a rule can have.
///
/// [`merge`] puts model findings ([`Priority::Ner`]) after all others, then compares score,
/// then this, then length, then start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Ner,
    NameHeuristic,
    Pattern,
    Dictionary,
    Validated,
}

impl Priority {
    /// The default priority for a detector name, by its prefix: `ner` -> `Ner`,
    /// `ko_name`/`name` -> `NameHeuristic`, `dict`/`dictionary` -> `Dictionary`,
    /// `validated:` -> `Validated`, anything else (`regex:...`) -> `Pattern`.
    pub fn from_detector_name(name: &str) -> Priority {
        // Called for every finding: a byte search, not a `split` iterator.
        let bytes = name.as_bytes();
        let head = bytes
            .iter()
            .position(|b| matches!(b, b':' | b'/' | b'.'))
            .map_or(bytes, |i| &bytes[..i]);
        match head {
            b"ner" | b"model" => Priority::Ner,
            b"ko_name" | b"name" | b"korean_name" => Priority::NameHeuristic,
            b"dict" | b"dictionary" | b"deny" => Priority::Dictionary,
            b"validated" => Priority::Validated,
            _ => Priority::Pattern,
        }
    }
}

/// Runs a set of detectors and merges what they find.
///
/// [`Engine::detect`] works in four steps:
/// 1. **normalise** (unless turned off): [`normalize::normalize`] folds full-width forms,
///    odd spaces and dashes, zero-width/bidi characters and decomposed Hangul; text with
///    nothing to fold (the normal case) is scanned as is, with no copy;
/// 2. **detect**: every detector runs over that text;
/// 3. **threshold**: findings under their label's minimum score are dropped *before*
///    merging, so a low-score finding can never shadow a better one it overlaps. A label
///    without a threshold of its own takes the default (`detect.min_score`), except in NER
///    findings: a model's span scores are on the model's own scale and its manifest already
///    held them to its thresholds;
/// 4. **merge** ([`merge_ranked`]), then map the survivors back to the original text's byte
///    offsets (spans cover the original characters, zero-width ones inside included).
#[derive(Clone)]
pub struct Engine {
    detectors: Vec<Arc<dyn Detector>>,
    /// Minimum score per label; findings below it are dropped. Missing labels use `default_threshold`.
    thresholds: Vec<(Label, f32)>,
    default_threshold: f32,
    normalize: bool,
    /// The NER router among `detectors`, when NER is on (shared with reloaded engines).
    ner: Option<Arc<ner::NerRouter>>,
    /// The same engine without NER: the `rules_only` fallback. `Some` iff `ner` is.
    rules_only: Option<Arc<Engine>>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field(
                "detectors",
                &self.detectors.iter().map(|d| d.name()).collect::<Vec<_>>(),
            )
            .field("thresholds", &self.thresholds)
            .field("normalize", &self.normalize)
            .field("ner", &self.ner.is_some())
            .finish()
    }
}

impl Engine {
    /// An engine over `detectors`, normalising, with no thresholds.
    pub fn new(detectors: Vec<Arc<dyn Detector>>) -> Self {
        Engine {
            detectors,
            thresholds: Vec::new(),
            default_threshold: 0.0,
            normalize: true,
            ner: None,
            rules_only: None,
        }
    }

    /// Whether this engine runs NER models. Such an engine blocks on the NER pools: call
    /// [`Engine::detect`] from a blocking thread, never on the async runtime.
    pub fn has_ner(&self) -> bool {
        self.ner.is_some()
    }

    /// The NER router, when NER is on.
    pub fn ner(&self) -> Option<&Arc<ner::NerRouter>> {
        self.ner.as_ref()
    }

    /// This engine without its NER detector (itself when it has none): what
    /// `on_timeout = "rules_only"` falls back to.
    pub fn rules_only(&self) -> &Engine {
        self.rules_only.as_deref().unwrap_or(self)
    }

    pub fn with_thresholds(mut self, default: f32, per_label: Vec<(Label, f32)>) -> Self {
        self.default_threshold = default;
        self.thresholds = per_label.clone();
        if let Some(r) = &mut self.rules_only {
            *r = Arc::new((**r).clone().with_thresholds(default, per_label));
        }
        self
    }

    /// Turns normalisation on (the default) or off (detectors see the raw text).
    pub fn with_normalization(mut self, on: bool) -> Self {
        self.normalize = on;
        if let Some(r) = &mut self.rules_only {
            *r = Arc::new((**r).clone().with_normalization(on));
        }
        self
    }

    pub fn detector_names(&self) -> Vec<String> {
        self.detectors.iter().map(|d| d.name().to_owned()).collect()
    }

    /// The minimum score findings of `label` need.
    pub fn threshold(&self, label: Label) -> f32 {
        self.explicit_threshold(label)
            .unwrap_or(self.default_threshold)
    }

    fn explicit_threshold(&self, label: Label) -> Option<f32> {
        self.thresholds
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, t)| *t)
    }

    /// The findings of each of `texts`, exactly as [`Engine::detect`] gives them, but each
    /// detector sees all the texts at once ([`Detector::detect_many`]), so the NER pools run
    /// the texts of a request in shared batches instead of one after another. The first error
    /// stops it.
    pub fn detect_all(&self, texts: &[String]) -> Result<Vec<Vec<Finding>>, DetectError> {
        let norms: Vec<Option<normalize::NormText>> =
            texts.iter().map(|t| self.normalized(t)).collect();
        let scanned: Vec<&str> = texts
            .iter()
            .zip(&norms)
            .map(|(t, n)| n.as_ref().map_or(t.as_str(), normalize::NormText::as_str))
            .collect();
        let mut found: Vec<Vec<Finding>> = vec![Vec::new(); texts.len()];
        let mut owners: Vec<Vec<u32>> = vec![Vec::new(); texts.len()];
        let mut from = vec![0; texts.len()];
        for (di, d) in self.detectors.iter().enumerate() {
            for (f, found) in from.iter_mut().zip(&found) {
                *f = found.len();
            }
            d.detect_many(&scanned, &mut found)?;
            for (((found, owners), text), &from) in
                found.iter_mut().zip(&mut owners).zip(&scanned).zip(&from)
            {
                self.rank_tail(di, text, found, from, owners)?;
            }
        }
        Ok(found
            .into_iter()
            .zip(owners)
            .zip(&norms)
            .map(|((f, o), n)| finish(f, |fs| self.priorities(fs, &o), n.as_ref()))
            .collect())
    }

    /// All findings in `text`, sorted by start, non-overlapping, above their label's
    /// threshold, with byte offsets into `text` on char boundaries.
    pub fn detect(&self, text: &str) -> Result<Vec<Finding>, DetectError> {
        let norm = self.normalized(text);
        let scanned = norm.as_ref().map_or(text, normalize::NormText::as_str);
        // Every detector appends to `found`; `owners` holds the index of the detector of
        // each finding kept. Most texts have no findings: then nothing is allocated.
        // `owners` is this thread's buffer, taken and put back (a nested call gets a new one).
        let mut found: Vec<Finding> = Vec::new();
        let mut owners: Vec<u32> = OWNERS.take();
        owners.clear();
        let ranked = self.detectors.iter().enumerate().try_for_each(|(di, d)| {
            let from = found.len();
            d.detect(scanned, &mut found)?;
            self.rank_tail(di, scanned, &mut found, from, &mut owners)
        });
        let out = ranked.map(|()| finish(found, |fs| self.priorities(fs, &owners), norm.as_ref()));
        if owners.capacity() <= KEEP_OWNERS {
            OWNERS.set(owners);
        }
        out
    }

    /// Step 1: the normalised copy of `text`, when normalising is on and `text` needs it.
    fn normalized(&self, text: &str) -> Option<normalize::NormText> {
        if self.normalize {
            normalize::normalize(text)
        } else {
            None
        }
    }

    /// Step 3: of the findings `found[from..]` (over `scanned`) of detector `di`, keeps in
    /// place those that reach their label's threshold and pushes `di` to `owners` (one per
    /// kept finding of `found`). A span that is not one of `scanned` fails the text.
    ///
    /// A finding's [`Priority`] is asked of its detector only where it decides something:
    /// here when the score is below the default threshold (NER findings need none), and in
    /// [`finish`] when findings overlap. Most findings never need it.
    fn rank_tail(
        &self,
        di: usize,
        scanned: &str,
        found: &mut Vec<Finding>,
        from: usize,
        owners: &mut Vec<u32>,
    ) -> Result<(), DetectError> {
        debug_assert_eq!(owners.len(), from);
        let d = self.detectors[di].as_ref();
        let mut kept = from;
        for i in from..found.len() {
            let f = &found[i];
            if f.start > f.end
                || f.end > scanned.len()
                || !scanned.is_char_boundary(f.start)
                || !scanned.is_char_boundary(f.end)
            {
                // Fail closed: a span we cannot mask must not let the text through.
                return Err(DetectError::Internal {
                    detector: d.name().to_owned(),
                    reason: format!(
                        "finding {}..{} is not a span of the {}-byte text",
                        f.start,
                        f.end,
                        scanned.len()
                    ),
                });
            }
            // The minimum score is the label's own threshold when one is set; else NER
            // findings need nothing more (each model already held its spans to its
            // manifest's thresholds, calibrated for that model) and all others the default
            // threshold. The priority is asked only when the score is below the default.
            let below = match self.explicit_threshold(f.label) {
                Some(t) => f.score < t,
                None => {
                    f.score < self.default_threshold
                        && (f.score < 0.0 || d.priority(f) != Priority::Ner)
                }
            };
            if f.is_empty() || below {
                continue;
            }
            if kept != i {
                found.swap(kept, i);
            }
            owners.push(di as u32);
            kept += 1;
        }
        found.truncate(kept);
        Ok(())
    }

    /// The priority of each of `found`, asked of its detector (`owners`, one per finding).
    fn priorities(&self, found: &[Finding], owners: &[u32]) -> Vec<Priority> {
        debug_assert_eq!(found.len(), owners.len());
        found
            .iter()
            .zip(owners)
            .map(|(f, &di)| self.detectors[di as usize].priority(f))
            .collect()
    }
}

thread_local! {
    /// [`Engine::detect`]'s owners buffer, reused across texts (one allocation less per
    /// text with findings).
    static OWNERS: std::cell::Cell<Vec<u32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// An owners buffer that grew past this many entries is freed, not kept.
const KEEP_OWNERS: usize = 4096;

/// Step 4: merges `found` (non-empty findings; `prios` gives their priorities, in their
/// order, and is called only when some overlap), then maps the survivors back onto the
/// original text when it was normalised.
fn finish(
    mut found: Vec<Finding>,
    prios: impl FnOnce(&[Finding]) -> Vec<Priority>,
    norm: Option<&normalize::NormText>,
) -> Vec<Finding> {
    let mut out = if disjoint(&mut found) {
        // Nothing overlaps (the usual case): the merge would keep every finding.
        found
    } else {
        let p = prios(&found);
        merge_ranked(found.into_iter().zip(p).collect())
    };
    if let Some(n) = norm {
        for f in &mut out {
            (f.start, f.end) = n.to_original(f.start, f.end);
        }
    }
    out
}

/// Up to this many findings, [`disjoint`] compares them pairwise (no allocation).
const DISJOINT_PAIRWISE: usize = 16;

/// Whether no two of `found` (non-empty spans) overlap; when so, `found` is left sorted by
/// start (as [`merge_ranked`] would return it), else in its original order.
fn disjoint(found: &mut [Finding]) -> bool {
    let sorted_disjoint = |f: &[Finding]| f.windows(2).all(|w| w[0].end <= w[1].start);
    if sorted_disjoint(found) {
        return true;
    }
    // The order must stay for the merge when they overlap: a few findings (most texts) are
    // compared pairwise, more through a sorted copy of the spans.
    let overlap = if found.len() <= DISJOINT_PAIRWISE {
        found.iter().enumerate().any(|(i, a)| {
            found[i + 1..]
                .iter()
                .any(|b| a.start < b.end && b.start < a.end)
        })
    } else {
        let mut spans: Vec<(usize, usize)> = found.iter().map(|f| (f.start, f.end)).collect();
        spans.sort_unstable();
        spans.windows(2).any(|w| w[0].1 > w[1].0)
    };
    if overlap {
        return false;
    }
    // Disjoint non-empty spans have distinct starts: the order is total.
    found.sort_unstable_by_key(|f| f.start);
    true
}

/// [`merge_ranked`] with each finding's priority taken from its detector name
/// ([`Priority::from_detector_name`]).
pub fn merge(findings: Vec<Finding>) -> Vec<Finding> {
    merge_ranked(
        findings
            .into_iter()
            .map(|f| {
                let p = Priority::from_detector_name(&f.detector);
                (f, p)
            })
            .collect(),
    )
}

/// Resolves overlapping findings deterministically. Candidates are ranked by higher score,
/// then higher [`Priority`], then longer span, then earlier start (then label, detector and
/// subtype, so equal inputs in any order give the same output); each is kept unless it is
/// empty or overlaps one ranked before it. The result is sorted by start and has no overlaps; every
/// finding keeps its detector and score. O(n log n).
pub fn merge_ranked(mut findings: Vec<(Finding, Priority)>) -> Vec<Finding> {
    if findings.len() <= 1 {
        return findings
            .into_iter()
            .filter_map(|(f, _)| (!f.is_empty()).then_some(f))
            .collect();
    }
    findings.sort_by(|(a, pa), (b, pb)| {
        // A model finding never wins over a finding of any other detector it overlaps,
        // whatever the scores: a model's confident "kim" must not cut an e-mail address in two
        // (masking "kim" and leaving ".minsu@example.com" in clear).
        (*pa == Priority::Ner)
            .cmp(&(*pb == Priority::Ner))
            .then_with(|| b.score.total_cmp(&a.score))
            .then_with(|| pb.cmp(pa))
            .then_with(|| b.len().cmp(&a.len()))
            .then_with(|| a.start.cmp(&b.start))
            .then_with(|| a.label.cmp(&b.label))
            .then_with(|| a.detector.cmp(&b.detector))
            .then_with(|| a.subtype.cmp(&b.subtype))
    });
    // Kept spans by start; they never overlap, so only the one with the greatest start
    // before a candidate's end can overlap it. A sorted Vec for the usual handful (no
    // allocation per node), a BTreeMap when there are many (insertion stays O(log n)).
    if findings.len() <= 64 {
        let mut kept: Vec<Finding> = Vec::with_capacity(findings.len());
        for (f, _) in findings {
            if f.is_empty() {
                continue;
            }
            let i = kept.partition_point(|k| k.start < f.end);
            if i == 0 || kept[i - 1].end <= f.start {
                kept.insert(i, f);
            }
        }
        return kept;
    }
    let mut kept: std::collections::BTreeMap<usize, Finding> = std::collections::BTreeMap::new();
    for (f, _) in findings {
        if f.is_empty() {
            continue;
        }
        let clash = kept
            .range(..f.end)
            .next_back()
            .is_some_and(|(_, k)| k.end > f.start);
        if !clash {
            kept.insert(f.start, f);
        }
    }
    kept.into_values().collect()
}

/// Converts byte offsets of `text` to code-point offsets (the contract's unit), in place order.
pub fn byte_to_char_offsets(text: &str, byte_offsets: &[usize]) -> Vec<usize> {
    byte_offsets
        .iter()
        .map(|&b| text[..b.min(text.len())].chars().count())
        .collect()
}

/// Builds the detection engine the configuration asks for: the regex rule packs (built-in
/// and/or files), the deny dictionaries, the Korean name detector, with the configured score
/// thresholds. When allow lists are configured, every detector runs inside a
/// [`dictionary::AllowFilter`], so allow-listed spans are exempt whatever found them.
///
/// This engine has no NER: use [`build_engine_with`] and the router [`ner::route::load`]
/// made at start.
pub fn build_engine(
    settings: &crate::config::DetectSettings,
) -> Result<Engine, dictionary::BuildError> {
    build_engine_with(settings, None)
}

/// [`build_engine`] plus, when `ner` is given, the NER router (already loaded: models are
/// loaded once, at start; a reload passes the same `Arc`). The allow lists apply to NER
/// findings too. The engine keeps a rules-only twin ([`Engine::rules_only`]).
pub fn build_engine_with(
    settings: &crate::config::DetectSettings,
    ner: Option<Arc<ner::NerRouter>>,
) -> Result<Engine, dictionary::BuildError> {
    use crate::config::DictionaryKind;
    let rules = regex::RegexDetector::from_files(&settings.rule_files, settings.builtin_rules)?;
    let mut detectors: Vec<Arc<dyn Detector>> = vec![Arc::new(rules)];
    let mut lists = Vec::with_capacity(settings.dictionaries.len());
    for d in &settings.dictionaries {
        let mut terms = d.terms.clone();
        if let Some(f) = &d.file {
            terms.extend(dictionary::load_terms(&d.name, f)?);
        }
        lists.push(dictionary::TermList {
            name: d.name.clone(),
            label: d.label,
            kind: match d.kind {
                DictionaryKind::Deny => dictionary::ListKind::Deny,
                DictionaryKind::Allow => dictionary::ListKind::Allow,
            },
            case_insensitive: d.case_insensitive,
            score: d.score,
            terms,
        });
    }
    let (deny, allow) = dictionary::build(&lists)?;
    drop(lists);
    if let Some(d) = deny {
        detectors.push(Arc::new(d));
    }
    if settings.korean_names.enabled {
        detectors.push(Arc::new(korean_name::KoreanNameDetector::new(
            settings.korean_names.min_score,
        )));
    }
    let allow = allow.map(Arc::new);
    let wrap = |detectors: Vec<Arc<dyn Detector>>| -> Vec<Arc<dyn Detector>> {
        match &allow {
            Some(a) => vec![Arc::new(dictionary::AllowFilter::new(detectors, a.clone()))],
            None => detectors,
        }
    };
    let thresholds = |e: Engine| e.with_thresholds(settings.min_score, settings.thresholds.clone());
    let rules = thresholds(Engine::new(wrap(detectors.clone())));
    let Some(router) = ner else {
        return Ok(rules);
    };
    detectors.push(router.clone());
    let mut engine = thresholds(Engine::new(wrap(detectors)));
    engine.ner = Some(router);
    engine.rules_only = Some(Arc::new(rules));
    Ok(engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(start: usize, end: usize, label: Label, score: f32) -> Finding {
        Finding {
            start,
            end,
            label,
            subtype: None,
            detector: Cow::Borrowed("t"),
            score,
        }
    }

    #[test]
    fn labels_round_trip() {
        for l in Label::ALL {
            assert_eq!(l.as_str().parse::<Label>().unwrap(), l);
        }
        assert!("NAME".parse::<Label>().is_err());
    }

    #[test]
    fn merge_prefers_score_then_length() {
        let out = merge(vec![
            f(0, 10, Label::Phone, 0.5),
            f(2, 8, Label::CreditCard, 0.9),
            f(12, 20, Label::Email, 0.9),
            f(12, 18, Label::Url, 0.9),
        ]);
        assert_eq!(
            out.iter().map(|f| (f.start, f.label)).collect::<Vec<_>>(),
            vec![(2, Label::CreditCard), (12, Label::Email)]
        );
    }

    #[test]
    fn model_findings_never_beat_overlapping_rule_findings() {
        let mut ner = f(0, 3, Label::Person, 0.99);
        ner.detector = Cow::Borrowed("ner:en-ner");
        let email = f(0, 21, Label::Email, 0.6);
        let out = merge(vec![ner.clone(), email]);
        assert_eq!(
            out.iter()
                .map(|f| (f.start, f.end, f.label))
                .collect::<Vec<_>>(),
            vec![(0, 21, Label::Email)]
        );
        // Without an overlapping rule finding the model's finding stands.
        let out = merge(vec![ner, f(30, 40, Label::Email, 0.6)]);
        assert_eq!(out.len(), 2);
    }

    /// The builtin regex engine, as `garim serve` builds it with default settings.
    fn builtin() -> Engine {
        Engine::new(vec![Arc::new(regex::RegexDetector::builtin())])
    }

    /// `text` masked by `engine` with placeholders numbered in order.
    fn masked(engine: &Engine, text: &str) -> (String, Vec<Finding>) {
        let fs = engine.detect(text).unwrap();
        let ps: Vec<crate::mask::Placeholder> = fs
            .iter()
            .enumerate()
            .map(|(i, f)| crate::mask::Placeholder {
                label: f.label,
                n: i as u32 + 1,
            })
            .collect();
        (crate::mask::apply(text, &fs, &ps), fs)
    }

    #[test]
    fn full_width_and_zero_width_phones_are_masked_in_the_original() {
        let e = builtin();
        for (text, expect) in [
            (
                "전화 ０１０-１２３４-５６７８ 로 주세요",
                "전화 [PHONE_1] 로 주세요",
            ),
            ("call 010\u{200b}1234\u{200b}5678 now", "call [PHONE_1] now"),
            ("번호:０１０－１２３４－５６７８.", "번호:[PHONE_1]."),
            ("tel 010\u{2013}2345\u{2013}6789", "tel [PHONE_1]"),
            ("\u{200b}01023456789\u{200b}", "\u{200b}[PHONE_1]\u{200b}"),
        ] {
            let (m, fs) = masked(&e, text);
            assert_eq!(m, expect, "{text:?}");
            assert_eq!(fs[0].label, Label::Phone);
            assert!(fs[0].detector.starts_with("regex:"));
        }
        // Without normalisation the same texts are not found: the test is not vacuous.
        let raw = builtin().with_normalization(false);
        assert!(raw.detect("０１０-１２３４-５６７８").unwrap().is_empty());
        assert!(raw
            .detect("010\u{200b}1234\u{200b}5678")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn full_width_emails_and_cards_are_masked_in_the_original() {
        let e = builtin();
        let (m, fs) = masked(&e, "메일: kim.minsu＠example．com 입니다");
        assert_eq!(m, "메일: [EMAIL_1] 입니다");
        assert_eq!(fs[0].label, Label::Email);
        let (m, _) = masked(&e, "ｈｏｎｇ＠ｅｘａｍｐｌｅ．ｃｏ．ｋｒ");
        assert_eq!(m, "[EMAIL_1]");
        let (m, fs) = masked(&e, "card ４１１１ １１１１ １１１１ １１１１ ok");
        assert_eq!(m, "card [CREDIT_CARD_1] ok");
        assert_eq!(fs[0].label, Label::CreditCard);
    }

    #[test]
    fn normalised_findings_are_on_original_char_boundaries() {
        let e = builtin();
        let text = "ａ\u{200b}ｂ ０１０\u{00ad}２３４５\u{00ad}６７８９ 홍\u{200b}길동 x@y.kr";
        for f in e.detect(text).unwrap() {
            assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
            assert!(f.start < f.end && f.end <= text.len());
        }
    }

    /// A detector returning fixed findings.
    struct Fixed(&'static str, Vec<Finding>);
    impl Detector for Fixed {
        fn name(&self) -> &str {
            self.0
        }
        fn detect(&self, _: &str, out: &mut Vec<Finding>) -> Result<(), DetectError> {
            out.extend(self.1.iter().cloned());
            Ok(())
        }
    }

    fn by(detector: &'static str, start: usize, end: usize, label: Label, score: f32) -> Finding {
        Finding {
            detector: Cow::Borrowed(detector),
            ..f(start, end, label, score)
        }
    }

    #[test]
    fn equal_scores_resolve_by_priority_then_length_then_start() {
        // Same span and score: validated > dictionary > pattern > name heuristic > NER.
        let all = [
            ("ner:klue", Label::Person),
            ("ko_name", Label::Person),
            ("regex:x", Label::Custom),
            ("dict:customers", Label::Person),
            ("validated:kr_rrn", Label::NationalId),
        ];
        for k in 0..all.len() {
            // Present the candidates in a rotated order: the result must not depend on it.
            let fs: Vec<Finding> = (0..all.len())
                .map(|i| {
                    let (d, l) = all[(i + k) % all.len()];
                    by(d, 0, 10, l, 0.8)
                })
                .collect();
            let out = merge(fs);
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].detector, "validated:kr_rrn");
        }
        let out = merge(vec![
            by("ko_name", 0, 10, Label::Person, 0.8),
            by("dict:customers", 2, 6, Label::Person, 0.8),
        ]);
        assert_eq!(out[0].detector, "dict:customers", "priority before length");
        let out = merge(vec![
            by("regex:a", 0, 6, Label::Custom, 0.8),
            by("regex:b", 2, 10, Label::Custom, 0.8),
        ]);
        assert_eq!((out[0].start, out[0].end), (2, 10), "length before start");
        let out = merge(vec![
            by("regex:a", 4, 8, Label::Custom, 0.8),
            by("regex:b", 2, 6, Label::Custom, 0.8),
        ]);
        assert_eq!(out[0].start, 2, "then the earlier start");
        // Score first of all, among rule findings...
        let out = merge(vec![
            by("validated:x", 0, 10, Label::NationalId, 0.7),
            by("regex:y", 0, 10, Label::Phone, 0.71),
        ]);
        assert_eq!(out[0].detector, "regex:y");
        // ...but a model finding comes after every other finding, whatever its score.
        let out = merge(vec![
            by("validated:x", 0, 10, Label::NationalId, 0.7),
            by("ner:x", 0, 10, Label::Person, 0.99),
        ]);
        assert_eq!(out[0].detector, "validated:x");
    }

    #[test]
    fn detector_priority_override_is_used_by_the_engine() {
        struct Checked;
        impl Detector for Checked {
            fn name(&self) -> &str {
                "regex:checked"
            }
            fn detect(&self, _: &str, out: &mut Vec<Finding>) -> Result<(), DetectError> {
                out.push(by("regex:checked", 0, 6, Label::BusinessId, 0.8));
                Ok(())
            }
            fn priority(&self, _: &Finding) -> Priority {
                Priority::Validated
            }
        }
        let dict = Fixed("dict:x", vec![by("dict:x", 0, 8, Label::Organization, 0.8)]);
        let e = Engine::new(vec![Arc::new(dict), Arc::new(Checked)]);
        let out = e.detect("0123456789").unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].detector, "regex:checked");
        assert_eq!(out[0].score, 0.8);
    }

    /// An engine over one detector reporting `found`, with these thresholds.
    fn thresholded(found: Vec<Finding>, default: f32, per_label: Vec<(Label, f32)>) -> Engine {
        Engine::new(vec![Arc::new(Fixed("t", found))]).with_thresholds(default, per_label)
    }

    #[test]
    fn ner_findings_keep_their_model_thresholds() {
        // A model span at 0.3 (its manifest let it through) and a rule finding at 0.3, under a
        // default threshold of 0.5: the model's span stays, the rule's goes.
        let found = vec![
            by("ner:en-ner", 0, 5, Label::Person, 0.3),
            by("regex:weak", 10, 15, Label::Phone, 0.3),
        ];
        let e = thresholded(found, 0.5, Vec::new());
        let out = e.detect("x".repeat(20).as_str()).unwrap();
        assert_eq!(
            out.iter().map(|f| f.detector.as_ref()).collect::<Vec<_>>(),
            ["ner:en-ner"]
        );
        // A threshold set for the label applies to model findings too.
        let e = e.with_thresholds(0.5, vec![(Label::Person, 0.4)]);
        assert!(e.detect("x".repeat(20).as_str()).unwrap().is_empty());
    }

    #[test]
    fn thresholds_apply_before_merging() {
        // A long PERSON guess above the default threshold but below PERSON's own one overlaps
        // a weaker EMAIL that passes: the EMAIL must survive (no shadowing by a dropped one).
        let found = vec![
            by("ko_name", 0, 20, Label::Person, 0.6),
            by("regex:email", 5, 15, Label::Email, 0.5),
        ];
        let e = thresholded(found, 0.3, vec![(Label::Person, 0.7)]);
        let out = e.detect("x".repeat(20).as_str()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].label, out[0].start, out[0].end),
            (Label::Email, 5, 15)
        );
        assert_eq!(e.threshold(Label::Email), 0.3);
        // With PERSON's threshold lowered it wins on score.
        let e = e.with_thresholds(0.3, vec![(Label::Person, 0.55)]);
        assert_eq!(e.detect(&"x".repeat(20)).unwrap()[0].label, Label::Person);
    }

    #[test]
    fn out_of_bounds_findings_fail_closed() {
        let d = Fixed("bad", vec![by("bad", 0, 99, Label::Email, 0.9)]);
        let e = Engine::new(vec![Arc::new(d)]);
        let err = e.detect("short").unwrap_err().to_string();
        assert!(err.contains("bad") && !err.contains("short"), "{err}");
        let d = Fixed("mid", vec![by("mid", 1, 3, Label::Email, 0.9)]);
        assert!(Engine::new(vec![Arc::new(d)]).detect("가나").is_err());
    }

    #[test]
    fn merge_is_order_independent_and_non_overlapping() {
        use proptest::prelude::*;
        let mut runner = proptest::test_runner::TestRunner::default();
        let one = (0usize..40, 1usize..12, 0usize..4, 0u8..4, 0usize..3).prop_map(
            |(s, len, l, sc, d)| {
                let labels = [Label::Email, Label::Phone, Label::Person, Label::Custom];
                let dets = ["regex:a", "dict:b", "ner:c"];
                by(dets[d], s, s + len, labels[l], 0.25 * sc as f32)
            },
        );
        runner
            .run(&prop::collection::vec(one, 0..30), |fs| {
                let a = merge(fs.clone());
                let mut rev = fs.clone();
                rev.reverse();
                prop_assert_eq!(&a, &merge(rev));
                for w in a.windows(2) {
                    prop_assert!(w[0].end <= w[1].start);
                }
                // Every dropped finding overlaps a kept one at least as highly ranked: a
                // non-model finding, or one with at least its score.
                let is_ner = |f: &Finding| f.detector.starts_with("ner:");
                for f in &fs {
                    if !a.contains(f) {
                        prop_assert!(a.iter().any(|k| k.start < f.end
                            && f.start < k.end
                            && ((!is_ner(k) && is_ner(f))
                                || (is_ner(k) == is_ner(f) && k.score >= f.score))));
                    }
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn finish_equals_the_full_merge() {
        // `finish` skips the ranking sort when no two findings overlap: it must return what
        // `merge_ranked` returns, for sparse (mostly disjoint) and dense sets.
        use proptest::prelude::*;
        // Up to 40 findings: `disjoint` compares up to DISJOINT_PAIRWISE pairwise, more
        // through sorted spans; over 20,000 bytes most sets of either size are disjoint.
        for width in [200usize, 20_000] {
            let mut runner = proptest::test_runner::TestRunner::default();
            let one = (0usize..width, 1usize..12, 0u8..4, 0usize..3).prop_map(|(s, len, sc, d)| {
                let dets = ["regex:a", "dict:b", "ner:c"];
                by(dets[d], s, s + len, Label::Email, 0.25 * sc as f32)
            });
            runner
                .run(&prop::collection::vec(one, 0..40), |fs| {
                    let prios: Vec<Priority> = fs
                        .iter()
                        .map(|f| Priority::from_detector_name(&f.detector))
                        .collect();
                    let want = merge_ranked(fs.iter().cloned().zip(prios.clone()).collect());
                    prop_assert_eq!(finish(fs, |_| prios, None), want);
                    Ok(())
                })
                .unwrap();
        }
    }
}
