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
pub mod regex;
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
}

/// Runs a set of detectors and merges what they find.
#[derive(Clone)]
pub struct Engine {
    detectors: Vec<Arc<dyn Detector>>,
    /// Minimum score per label; findings below it are dropped. Missing labels use `default_threshold`.
    thresholds: Vec<(Label, f32)>,
    default_threshold: f32,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field(
                "detectors",
                &self.detectors.iter().map(|d| d.name()).collect::<Vec<_>>(),
            )
            .field("thresholds", &self.thresholds)
            .finish()
    }
}

impl Engine {
    pub fn new(detectors: Vec<Arc<dyn Detector>>) -> Self {
        Engine {
            detectors,
            thresholds: Vec::new(),
            default_threshold: 0.0,
        }
    }

    pub fn with_thresholds(mut self, default: f32, per_label: Vec<(Label, f32)>) -> Self {
        self.default_threshold = default;
        self.thresholds = per_label;
        self
    }

    pub fn detector_names(&self) -> Vec<String> {
        self.detectors.iter().map(|d| d.name().to_owned()).collect()
    }

    fn threshold(&self, label: Label) -> f32 {
        self.thresholds
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, t)| *t)
            .unwrap_or(self.default_threshold)
    }

    /// All findings in `text`, sorted by start, non-overlapping, above their label's threshold.
    pub fn detect(&self, text: &str) -> Result<Vec<Finding>, DetectError> {
        let mut all = Vec::new();
        for d in &self.detectors {
            d.detect(text, &mut all)?;
        }
        all.retain(|f| f.score >= self.threshold(f.label) && !f.is_empty());
        Ok(merge(all))
    }
}

/// Resolves overlapping findings deterministically: higher score wins, then the longer span,
/// then the earlier start, then the label order. The result is sorted by start and has no
/// overlaps.
pub fn merge(mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| b.len().cmp(&a.len()))
            .then_with(|| a.start.cmp(&b.start))
            .then_with(|| a.label.cmp(&b.label))
            .then_with(|| a.detector.cmp(&b.detector))
    });
    let mut kept: Vec<Finding> = Vec::with_capacity(findings.len());
    for f in findings {
        if kept.iter().all(|k| f.end <= k.start || f.start >= k.end) {
            kept.push(f);
        }
    }
    kept.sort_by_key(|f| f.start);
    kept
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
pub fn build_engine(
    settings: &crate::config::DetectSettings,
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
    if let Some(a) = allow {
        detectors = vec![Arc::new(dictionary::AllowFilter::new(
            detectors,
            Arc::new(a),
        ))];
    }
    Ok(Engine::new(detectors).with_thresholds(settings.min_score, settings.thresholds.clone()))
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
}
