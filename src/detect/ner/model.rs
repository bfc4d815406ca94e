//! A generic token-classification NER model on ONNX Runtime.
//!
//! What: any HF-style token classifier (BERT, DistilBERT, ELECTRA, DeBERTa, ...) exported to
//! ONNX, with its `tokenizer.json` and a manifest `models/NAME/model.toml`:
//!
//! ```toml
//! name = "ko-ner"                      # detector name becomes "ner:ko-ner" (default: dir name)
//! onnx = "model.onnx"                  # default
//! tokenizer = "tokenizer.json"         # default
//! labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]  # model output order
//! languages = ["ko"]
//! max_len = 256                        # tokens per window, special tokens included
//! stride = 64                          # overlap between windows, in tokens
//! batch_size = 8                       # windows per ONNX run
//! default_threshold = 0.5              # min span score for labels not in [thresholds]
//! hangul_word_start = false            # Korean: spans start at the start of a Hangul word
//! [label_map]                          # model entity type -> SPEC label; unmapped types are O
//! PER = "PERSON"
//! [thresholds]                         # per SPEC label
//! PERSON = 0.6
//! ```
//!
//! How: the text is tokenised without special tokens or truncation (code-point offsets,
//! converted to byte offsets); the tokens are cut into windows of `max_len - 2` tokens that
//! overlap by `stride`, each wrapped in the CLS/SEP tokens; windows from one or many texts are
//! run in batches (`input_ids`, `attention_mask`, and `token_type_ids` when the graph has that
//! input); each token takes its softmax from the window where it sits farthest from an edge.
//! BIO decoding works on words (continuation pieces extend their word and take its tag): the
//! words' tags are the most probable *valid* sequence (Viterbi over each word's first-piece
//! probabilities, `I-X` allowed only after `B-X` or `I-X`), not each word's argmax. Argmax
//! alone leaves stray `I-` tags and type flips inside a name (`B-PER I-LOC`) that have to be
//! patched after the fact; on the dev splits the constrained sequence had about the same true
//! positives and 10-15 % fewer false positives (models/README.md). A model with `I-X` but no
//! `B-X` tags (IO tagging) may start a span with `I-X`; `I-X` right after a span of X
//! continues it. A span's score is the mean, over its tokens, of the probability mass on its
//! type (`p(B-X) + p(I-X)`). Spans shaped like code are trimmed or dropped
//! ([`super::shape`]): the models were trained on prose and prompts carry code.
//!
//! Limits: a token's prediction depends on its window's context; a window boundary can still
//! split an entity's context. The session is passed in by the caller ([`super::pool`] owns the
//! sessions); [`NerModel`] is a simple single-session detector guarded by a mutex.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ndarray::Array2;
use ort::session::Session;
use ort::value::Tensor;
use serde::Deserialize;
use tokenizers::Tokenizer;

use super::runtime::{self, RuntimeError};
use super::shape;
use crate::detect::{DetectError, Detector, Finding, Label, Priority};

/// The manifest, `models/NAME/model.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_onnx")]
    pub onnx: String,
    #[serde(default = "default_tokenizer")]
    pub tokenizer: String,
    /// The model's output labels, in logit order, BIO style (`O`, `B-PER`, `I-PER`, ...).
    pub labels: Vec<String>,
    /// Model entity type (`PER`) -> SPEC label (`PERSON`). Types not listed are ignored.
    #[serde(default)]
    pub label_map: BTreeMap<String, String>,
    /// Minimum span score per SPEC label.
    #[serde(default)]
    pub thresholds: BTreeMap<String, f32>,
    #[serde(default = "default_threshold")]
    pub default_threshold: f32,
    /// Languages the model is for (`en`, `ko`): used for routing.
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default = "default_max_len")]
    pub max_len: usize,
    #[serde(default = "default_stride")]
    pub stride: usize,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_cls")]
    pub cls_token: String,
    #[serde(default = "default_sep")]
    pub sep_token: String,
    #[serde(default = "default_pad")]
    pub pad_token: String,
    /// Name of the logits output; default: the graph's first output.
    #[serde(default)]
    pub output: Option<String>,
    /// Korean models: a span that starts inside a run of Hangul syllables starts at the run's
    /// start instead. A Korean name, place or organisation begins a word (particles and
    /// titles follow it, nothing precedes it), and a character model sometimes misses a
    /// word's first syllables (`사이몬` found as `몬`). Chosen on ko-ner's dev split, where it
    /// raised each label's strict F1 by 0.02-0.03.
    #[serde(default)]
    pub hangul_word_start: bool,
}

fn default_onnx() -> String {
    "model.onnx".into()
}
fn default_tokenizer() -> String {
    "tokenizer.json".into()
}
fn default_threshold() -> f32 {
    0.5
}
fn default_max_len() -> usize {
    256
}
fn default_stride() -> usize {
    64
}
fn default_batch() -> usize {
    8
}
fn default_cls() -> String {
    "[CLS]".into()
}
fn default_sep() -> String {
    "[SEP]".into()
}
fn default_pad() -> String {
    "[PAD]".into()
}

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("NER model manifest `{path}`: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("NER tokenizer `{path}`: {reason}")]
    Tokenizer { path: PathBuf, reason: String },
    #[error("NER model `{path}`: {reason}")]
    Onnx { path: PathBuf, reason: String },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl ModelError {
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::SERVICE_UNAVAILABLE
    }

    pub fn fault(&self) -> &'static str {
        "internal"
    }
}

/// One output label, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// Outside, or an entity type with no SPEC label.
    O,
    /// Begin of an entity of this label.
    B(Label),
    /// Inside an entity of this label.
    I(Label),
}

/// Resolves BIO label strings through the manifest's mapping. `X` without a prefix is `I-X`
/// (IO tagging); prefixes `S-`/`U-` count as `B-`, `E-`/`L-` as `I-`.
pub fn resolve_tags(labels: &[String], map: &BTreeMap<String, String>) -> Result<Vec<Tag>, String> {
    let mut out = Vec::with_capacity(labels.len());
    for l in labels {
        if l == "O" {
            out.push(Tag::O);
            continue;
        }
        let (begin, ty) = match l.split_once('-') {
            Some(("B" | "S" | "U", t)) => (true, t),
            Some(("I" | "E" | "L", t)) => (false, t),
            _ => (false, l.as_str()),
        };
        match map.get(ty) {
            None => out.push(Tag::O),
            Some(spec) => {
                let label: Label = spec.parse().map_err(|e| format!("label_map.{ty}: {e}"))?;
                out.push(if begin { Tag::B(label) } else { Tag::I(label) });
            }
        }
    }
    Ok(out)
}

/// A span found by BIO decoding, in token indices (`end` exclusive), with its score.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSpan {
    pub start: usize,
    pub end: usize,
    pub label: Label,
    pub score: f32,
}

/// BIO decoding over per-token probabilities `probs[token][label]`.
///
/// `continuation[i]` is true when token `i` continues the word of token `i - 1` (a sub-word
/// piece): it takes the word's decision and extends whatever span the word is in.
pub fn decode_bio(probs: &[Vec<f32>], continuation: &[bool], tags: &[Tag]) -> Vec<TokenSpan> {
    let mut spans = Vec::new();
    let mut cur: Option<(usize, Label)> = None;
    let close = |cur: &mut Option<(usize, Label)>, end: usize, spans: &mut Vec<TokenSpan>| {
        if let Some((start, label)) = cur.take() {
            let mass: f32 = (start..end)
                .map(|t| type_mass(&probs[t], tags, label))
                .sum();
            spans.push(TokenSpan {
                start,
                end,
                label,
                score: mass / (end - start) as f32,
            });
        }
    };
    let words: Vec<usize> = (0..probs.len())
        .filter(|&i| i == 0 || !continuation.get(i).copied().unwrap_or(false))
        .collect();
    for (&i, &tag) in words.iter().zip(&viterbi(probs, &words, tags)) {
        match tag {
            Tag::O => close(&mut cur, i, &mut spans),
            Tag::B(l) => {
                close(&mut cur, i, &mut spans);
                cur = Some((i, l));
            }
            Tag::I(l) => match cur {
                Some((_, c)) if c == l => {}
                _ => {
                    close(&mut cur, i, &mut spans);
                    cur = Some((i, l));
                }
            },
        }
    }
    close(&mut cur, probs.len(), &mut spans);
    spans
}

/// The most probable tag sequence over `words` (token indices, each word's first piece) that
/// is valid BIO: `I-X` only after `B-X` or `I-X`, unless the model has no `B-X` at all (IO
/// tagging). The score of a sequence is the sum of its tags' log probabilities.
fn viterbi(probs: &[Vec<f32>], words: &[usize], tags: &[Tag]) -> Vec<Tag> {
    let k = tags.len();
    if k == 0 || words.is_empty() {
        return vec![Tag::O; words.len()];
    }
    let has_begin = |l: Label| tags.contains(&Tag::B(l));
    let allowed = |prev: Option<Tag>, cur: Tag| match cur {
        Tag::I(l) => !has_begin(l) || matches!(prev, Some(Tag::B(p) | Tag::I(p)) if p == l),
        _ => true,
    };
    let emit = |w: usize, j: usize| probs[w].get(j).copied().unwrap_or(0.0).max(1e-12).ln();
    let mut score: Vec<f32> = (0..k)
        .map(|j| {
            if allowed(None, tags[j]) {
                emit(words[0], j)
            } else {
                f32::NEG_INFINITY
            }
        })
        .collect();
    let mut back: Vec<Vec<usize>> = Vec::with_capacity(words.len());
    for &w in &words[1..] {
        let mut next = vec![f32::NEG_INFINITY; k];
        let mut from = vec![0usize; k];
        for j in 0..k {
            for (i, &s) in score.iter().enumerate() {
                if s > next[j] && allowed(Some(tags[i]), tags[j]) {
                    next[j] = s;
                    from[j] = i;
                }
            }
            next[j] += emit(w, j);
        }
        back.push(from);
        score = next;
    }
    let mut j = (0..k)
        .max_by(|&a, &b| score[a].total_cmp(&score[b]).then(b.cmp(&a)))
        .unwrap_or(0);
    let mut path = vec![tags[j]; words.len()];
    for (t, from) in back.iter().enumerate().rev() {
        j = from[j];
        path[t] = tags[j];
    }
    path
}

fn type_mass(p: &[f32], tags: &[Tag], label: Label) -> f32 {
    p.iter()
        .zip(tags)
        .filter(|(_, t)| matches!(t, Tag::B(l) | Tag::I(l) if *l == label))
        .map(|(v, _)| *v)
        .sum()
}

/// Softmax of one row of logits, in place.
pub fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    if sum > 0.0 {
        for v in row.iter_mut() {
            *v /= sum;
        }
    }
}

/// Indices of `windows` (text, token start, token end) in groups of at most `batch` to run
/// together: longest first, and a window joins a group only while it is at least
/// [`GROUP_MIN_FILL`] of the group's longest, since every row of a run is padded to that
/// length. Texts batched from different requests (a 20-character chat line next to a 2 KB
/// prompt) would otherwise spend most of the run on padding; the findings are the same
/// either way (a text's output does not depend on its batch).
fn length_groups(windows: &[(usize, usize, usize)], batch: usize) -> Vec<Vec<usize>> {
    let len = |w: usize| windows[w].2 - windows[w].1;
    let mut order: Vec<usize> = (0..windows.len()).collect();
    order.sort_by_key(|&w| std::cmp::Reverse(len(w)));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for w in order {
        match groups.last_mut() {
            Some(g)
                if g.len() < batch
                    && (len(w) + 2) as f32 >= GROUP_MIN_FILL * (len(g[0]) + 2) as f32 =>
            {
                g.push(w)
            }
            _ => groups.push(vec![w]),
        }
    }
    groups
}

/// See [`length_groups`]: the shortest window of a group, as a share of its longest (both
/// with their two special tokens).
const GROUP_MIN_FILL: f32 = 0.6;

/// Start indices of windows of `width` tokens over `n` tokens overlapping by `overlap`; the
/// last window ends at `n`. At least one window (possibly shorter than `width`).
pub fn window_starts(n: usize, width: usize, overlap: usize) -> Vec<usize> {
    let width = width.max(1);
    if n <= width {
        return vec![0];
    }
    let step = width.saturating_sub(overlap).max(1);
    let mut starts = Vec::new();
    let mut s = 0;
    while s + width < n {
        starts.push(s);
        s += step;
    }
    starts.push(n - width);
    starts
}

/// For each of `n` tokens, the index of the window (from [`window_starts`]) where it sits
/// farthest from an edge (ties: the earlier window).
pub fn window_owner(n: usize, width: usize, starts: &[usize]) -> Vec<usize> {
    let mut owner = vec![0; n];
    for (i, o) in owner.iter_mut().enumerate() {
        let mut best: Option<(usize, usize)> = None;
        for (w, &s) in starts.iter().enumerate() {
            let e = (s + width).min(n);
            if i < s || i >= e {
                continue;
            }
            let margin = (i - s).min(e - 1 - i);
            if best.is_none_or(|(_, m)| margin > m) {
                best = Some((w, margin));
            }
        }
        *o = best.map_or(0, |(w, _)| w);
    }
    owner
}

/// A text, tokenised.
struct Encoded {
    ids: Vec<i64>,
    /// Byte offsets into the text.
    offsets: Vec<(usize, usize)>,
    continuation: Vec<bool>,
}

/// A loaded token-classification model (tokenizer, labels, settings). Holds no session:
/// sessions come from [`TokenClassifier::new_session`] and are passed to
/// [`TokenClassifier::predict`].
pub struct TokenClassifier {
    name: String,
    detector_name: String,
    dir: PathBuf,
    manifest: Manifest,
    tokenizer: Tokenizer,
    tags: Vec<Tag>,
    thresholds: Vec<(Label, f32)>,
    cls: i64,
    sep: i64,
    pad: i64,
    env: ort::environment::Environment,
}

impl std::fmt::Debug for TokenClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenClassifier")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .field("labels", &self.manifest.labels)
            .finish()
    }
}

impl TokenClassifier {
    /// Loads `dir/model.toml` and the tokenizer, and initialises the runtime (library from
    /// `ort_dylib`, else the environment / default path: see [`runtime::locate`]).
    pub fn load(dir: &Path, ort_dylib: Option<&Path>) -> Result<Self, ModelError> {
        let mpath = dir.join("model.toml");
        let merr = |reason: String| ModelError::Manifest {
            path: mpath.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&mpath).map_err(|e| merr(e.to_string()))?;
        let manifest: Manifest = toml::from_str(&text).map_err(|e| merr(e.to_string()))?;
        if manifest.labels.is_empty() {
            return Err(merr("`labels` is empty".into()));
        }
        if manifest.max_len < 3 || manifest.stride + 2 >= manifest.max_len {
            return Err(merr(format!(
                "need max_len >= 3 and stride < max_len - 2 (max_len {}, stride {})",
                manifest.max_len, manifest.stride
            )));
        }
        let tags = resolve_tags(&manifest.labels, &manifest.label_map).map_err(merr)?;
        let mut thresholds = Vec::new();
        for (k, v) in &manifest.thresholds {
            let l: Label = k
                .parse()
                .map_err(|e| merr(format!("thresholds.{k}: {e}")))?;
            thresholds.push((l, *v));
        }
        let tpath = dir.join(&manifest.tokenizer);
        let mut tokenizer = Tokenizer::from_file(&tpath).map_err(|e| ModelError::Tokenizer {
            path: tpath.clone(),
            reason: e.to_string(),
        })?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| ModelError::Tokenizer {
                path: tpath.clone(),
                reason: e.to_string(),
            })?;
        let id = |t: &str| -> Result<i64, ModelError> {
            tokenizer
                .token_to_id(t)
                .map(i64::from)
                .ok_or_else(|| ModelError::Tokenizer {
                    path: tpath.clone(),
                    reason: format!("special token `{t}` is not in the vocabulary"),
                })
        };
        let (cls, sep) = (id(&manifest.cls_token)?, id(&manifest.sep_token)?);
        let pad = id(&manifest.pad_token).unwrap_or(0);
        let name = manifest.name.clone().unwrap_or_else(|| {
            dir.file_name()
                .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned())
        });
        let env = runtime::environment(ort_dylib)?;
        Ok(TokenClassifier {
            detector_name: format!("ner:{name}"),
            name,
            dir: dir.to_path_buf(),
            manifest,
            tokenizer,
            tags,
            thresholds,
            cls,
            sep,
            pad,
            env,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ner:<name>`.
    pub fn detector_name(&self) -> &str {
        &self.detector_name
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn languages(&self) -> &[String] {
        &self.manifest.languages
    }

    /// Overrides the window size and overlap (tokens, special tokens included in `max_len`).
    pub fn set_window(&mut self, max_len: usize, stride: usize) {
        self.manifest.max_len = max_len.max(3);
        self.manifest.stride = stride.min(self.manifest.max_len - 3);
    }

    /// The minimum score of spans of `label`.
    pub fn threshold(&self, label: Label) -> f32 {
        self.thresholds
            .iter()
            .find(|(l, _)| *l == label)
            .map_or(self.manifest.default_threshold, |(_, t)| *t)
    }

    /// A new ONNX Runtime session on this model's graph, using `intra_threads` threads.
    pub fn new_session(&self, intra_threads: usize) -> Result<Session, ModelError> {
        let path = self.dir.join(&self.manifest.onnx);
        let err = |reason: String| ModelError::Onnx {
            path: path.clone(),
            reason,
        };
        let session = Session::builder(&self.env)
            .map_err(|e| err(e.to_string()))?
            .with_intra_threads(intra_threads.max(1))
            .map_err(|e| err(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| err(e.to_string()))?
            .commit_from_file(&path)
            .map_err(|e| err(e.to_string()))?;
        for need in ["input_ids", "attention_mask"] {
            if !session.inputs().iter().any(|i| i.name() == need) {
                return Err(err(format!("the graph has no `{need}` input")));
            }
        }
        Ok(session)
    }

    fn internal(&self, reason: impl Into<String>) -> DetectError {
        DetectError::Internal {
            detector: self.detector_name.clone(),
            reason: reason.into(),
        }
    }

    fn encode(&self, text: &str) -> Result<Encoded, DetectError> {
        let enc = self
            .tokenizer
            .encode_char_offsets(text, false)
            .map_err(|_| self.internal("tokenisation failed"))?;
        // Code point -> byte offset table (one entry past the end).
        let mut byte_at: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
        byte_at.push(text.len());
        let last = byte_at.len() - 1;
        let offsets = enc
            .get_offsets()
            .iter()
            .map(|&(s, e)| (byte_at[s.min(last)], byte_at[e.min(last)]))
            .collect();
        let words = enc.get_word_ids();
        let continuation = (0..enc.len())
            .map(|i| i > 0 && words[i].is_some() && words[i] == words[i - 1])
            .collect();
        Ok(Encoded {
            ids: enc.get_ids().iter().map(|&i| i64::from(i)).collect(),
            offsets,
            continuation,
        })
    }

    /// The byte span of each token of `text` (no special tokens), as the model sees them.
    pub fn token_spans(&self, text: &str) -> Result<Vec<(usize, usize)>, DetectError> {
        Ok(self.encode(text)?.offsets)
    }

    /// Findings for each of `texts`, in order, running the windows of all texts in batches.
    pub fn predict(
        &self,
        session: &mut Session,
        texts: &[&str],
    ) -> Result<Vec<Vec<Finding>>, DetectError> {
        let width = self.manifest.max_len - 2;
        let mut encoded = Vec::with_capacity(texts.len());
        // (text index, token start, token end) of every window.
        let mut windows: Vec<(usize, usize, usize)> = Vec::new();
        let mut starts_of = Vec::with_capacity(texts.len());
        for (t, text) in texts.iter().enumerate() {
            let e = self.encode(text)?;
            let n = e.ids.len();
            let starts = if n == 0 {
                Vec::new()
            } else {
                window_starts(n, width, self.manifest.stride)
            };
            for &s in &starts {
                windows.push((t, s, (s + width).min(n)));
            }
            starts_of.push(starts);
            encoded.push(e);
        }
        // Softmaxed rows per window, in window order. Windows run in groups of similar length
        // (`length_groups`): a run costs its longest window times its size.
        let mut window_probs: Vec<Vec<Vec<f32>>> = vec![Vec::new(); windows.len()];
        for group in length_groups(&windows, self.manifest.batch_size.max(1)) {
            let chunk: Vec<_> = group.iter().map(|&w| windows[w]).collect();
            for (w, probs) in group.into_iter().zip(self.run(session, &encoded, &chunk)?) {
                window_probs[w] = probs;
            }
        }
        let mut out = Vec::with_capacity(texts.len());
        let mut first_window = 0;
        for (t, e) in encoded.iter().enumerate() {
            let starts = &starts_of[t];
            let n = e.ids.len();
            let owner = window_owner(n, width, starts);
            let probs: Vec<Vec<f32>> = (0..n)
                .map(|i| {
                    let w = owner[i];
                    window_probs[first_window + w][i - starts[w]].clone()
                })
                .collect();
            first_window += starts.len();
            let mut found = Vec::new();
            for s in decode_bio(&probs, &e.continuation, &self.tags) {
                if s.score < self.threshold(s.label) {
                    continue;
                }
                let (mut start, end) = (e.offsets[s.start].0, e.offsets[s.end - 1].1);
                if self.manifest.hangul_word_start {
                    start = hangul_run_start(texts[t], start);
                }
                if start >= end {
                    continue;
                }
                // Spans shaped like code (part of an identifier, `x` of `x.method`) are not
                // names: the models were trained on prose.
                let Some((start, end)) = shape::trim_or_drop(texts[t], start, end) else {
                    continue;
                };
                found.push(Finding {
                    start,
                    end,
                    label: s.label,
                    subtype: None,
                    detector: Cow::Owned(self.detector_name.clone()),
                    score: s.score,
                });
            }
            out.push(found);
        }
        Ok(out)
    }

    /// One ONNX run over `windows`; returns the per-token probabilities of each window's
    /// content tokens (CLS/SEP removed).
    fn run(
        &self,
        session: &mut Session,
        encoded: &[Encoded],
        windows: &[(usize, usize, usize)],
    ) -> Result<Vec<Vec<Vec<f32>>>, DetectError> {
        let b = windows.len();
        let len = windows.iter().map(|(_, s, e)| e - s).max().unwrap_or(0) + 2;
        let mut ids = Array2::<i64>::from_elem((b, len), self.pad);
        let mut mask = Array2::<i64>::zeros((b, len));
        for (r, &(t, s, e)) in windows.iter().enumerate() {
            ids[[r, 0]] = self.cls;
            for (c, &id) in encoded[t].ids[s..e].iter().enumerate() {
                ids[[r, c + 1]] = id;
            }
            ids[[r, e - s + 1]] = self.sep;
            for c in 0..e - s + 2 {
                mask[[r, c]] = 1;
            }
        }
        let has_types = session
            .inputs()
            .iter()
            .any(|i| i.name() == "token_type_ids");
        let tensor = |a: Array2<i64>| {
            Tensor::from_array(a).map_err(|e| self.internal(format!("input tensor: {e}")))
        };
        let mut inputs: Vec<(Cow<'static, str>, ort::session::SessionInputValue<'_>)> = vec![
            ("input_ids".into(), tensor(ids)?.into()),
            ("attention_mask".into(), tensor(mask)?.into()),
        ];
        if has_types {
            inputs.push((
                "token_type_ids".into(),
                tensor(Array2::<i64>::zeros((b, len)))?.into(),
            ));
        }
        let output_name = match &self.manifest.output {
            Some(o) => o.clone(),
            None => session
                .outputs()
                .first()
                .map(|o| o.name().to_owned())
                .ok_or_else(|| self.internal("the graph has no output"))?,
        };
        let outputs = session
            .run(inputs)
            .map_err(|e| self.internal(format!("inference failed: {e}")))?;
        let logits = outputs
            .get(&output_name)
            .ok_or_else(|| self.internal(format!("no output `{output_name}`")))?
            .try_extract_array::<f32>()
            .map_err(|e| self.internal(format!("logits: {e}")))?;
        let k = self.tags.len();
        if logits.ndim() != 3 || logits.shape() != [b, len, k] {
            return Err(self.internal(format!(
                "logits have shape {:?}, expected [{b}, {len}, {k}]",
                logits.shape()
            )));
        }
        let mut out = Vec::with_capacity(b);
        for (r, &(_, s, e)) in windows.iter().enumerate() {
            let mut rows = Vec::with_capacity(e - s);
            for c in 1..=e - s {
                let mut row: Vec<f32> = (0..k).map(|j| logits[[r, c, j]]).collect();
                softmax(&mut row);
                rows.push(row);
            }
            out.push(rows);
        }
        Ok(out)
    }
}

/// The start of the run of Hangul syllables that holds the syllable at byte `at` of `text`
/// (`at` itself when the char there, or the one before it, is not a syllable).
fn hangul_run_start(text: &str, at: usize) -> usize {
    let is_syllable = crate::detect::korean_name::is_syllable;
    if !text[at..].chars().next().is_some_and(is_syllable) {
        return at;
    }
    let mut start = at;
    for (i, c) in text[..at].char_indices().rev() {
        if !is_syllable(c) {
            break;
        }
        start = i;
    }
    start
}

/// A [`TokenClassifier`] with one session behind a mutex: the simplest [`Detector`]. Calls
/// from many threads are serialised; use [`super::pool::NerPool`] for batching and budgets.
pub struct NerModel {
    model: Arc<TokenClassifier>,
    session: Mutex<Session>,
}

impl NerModel {
    pub fn new(model: Arc<TokenClassifier>, intra_threads: usize) -> Result<Self, ModelError> {
        let session = Mutex::new(model.new_session(intra_threads)?);
        Ok(NerModel { model, session })
    }

    pub fn model(&self) -> &Arc<TokenClassifier> {
        &self.model
    }

    /// Findings of many texts in one batched pass.
    pub fn detect_many(&self, texts: &[&str]) -> Result<Vec<Vec<Finding>>, DetectError> {
        let mut s = self.session.lock().unwrap_or_else(|p| p.into_inner());
        self.model.predict(&mut s, texts)
    }
}

impl Detector for NerModel {
    fn name(&self) -> &str {
        self.model.detector_name()
    }

    fn detect(&self, text: &str, out: &mut Vec<Finding>) -> Result<(), DetectError> {
        let mut found = self.detect_many(&[text])?;
        out.append(&mut found[0]);
        Ok(())
    }

    fn priority(&self, _: &Finding) -> Priority {
        Priority::Ner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags() -> Vec<Tag> {
        let labels: Vec<String> = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let map = [("PER", "PERSON"), ("LOC", "LOCATION")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        resolve_tags(&labels, &map).unwrap()
    }

    #[test]
    fn length_groups_keep_similar_lengths_together() {
        // (text, start, end): lengths 1000, 20, 900, 30, 500, 25, 950.
        let windows: Vec<(usize, usize, usize)> = [1000, 20, 900, 30, 500, 25, 950]
            .iter()
            .enumerate()
            .map(|(t, &n)| (t, 0, n))
            .collect();
        let groups = length_groups(&windows, 8);
        assert_eq!(groups, vec![vec![0, 6, 2], vec![4], vec![3, 5, 1]]);
        // At most `batch` per group, every window exactly once.
        let groups = length_groups(&windows, 2);
        assert!(groups.iter().all(|g| g.len() <= 2));
        let mut all: Vec<usize> = groups.concat();
        all.sort_unstable();
        assert_eq!(all, (0..windows.len()).collect::<Vec<_>>());
        assert!(length_groups(&[], 8).is_empty());
    }

    #[test]
    fn hangul_run_start_moves_back_to_the_word_start() {
        let t = "배우 사이몬 페그는 A몬 (몬";
        let at = |s: &str| t.find(s).unwrap();
        assert_eq!(hangul_run_start(t, at("몬 페")), at("사이몬"));
        assert_eq!(hangul_run_start(t, at("사이몬")), at("사이몬"));
        assert_eq!(hangul_run_start(t, at("페그")), at("페그"));
        // A non-syllable before the span: unchanged.
        assert_eq!(hangul_run_start(t, at("몬 (")), at("몬 ("));
        assert_eq!(
            hangul_run_start(t, t.rfind('몬').unwrap()),
            t.rfind('몬').unwrap()
        );
        // A span starting on a non-syllable is left alone.
        assert_eq!(hangul_run_start(t, at("A몬")), at("A몬"));
        assert_eq!(hangul_run_start(t, 0), 0);
    }

    /// A probability row putting `p` on label index `k` and the rest evenly elsewhere.
    fn row(k: usize, p: f32) -> Vec<f32> {
        let mut r = vec![(1.0 - p) / 6.0; 7];
        r[k] = p;
        r
    }

    fn spans(rows: &[(usize, f32)], cont: &[bool]) -> Vec<(usize, usize, Label)> {
        let probs: Vec<Vec<f32>> = rows.iter().map(|&(k, p)| row(k, p)).collect();
        decode_bio(&probs, cont, &tags())
            .into_iter()
            .map(|s| (s.start, s.end, s.label))
            .collect()
    }

    #[test]
    fn resolves_labels_through_the_map() {
        let t = tags();
        assert_eq!(t[0], Tag::O);
        assert_eq!(t[1], Tag::B(Label::Person));
        assert_eq!(t[4], Tag::I(Label::Location));
        assert_eq!(t[5], Tag::O, "unmapped MISC is outside");
        let bad: BTreeMap<String, String> = [("PER".to_string(), "NAME".to_string())].into();
        assert!(resolve_tags(&["B-PER".to_string()], &bad).is_err());
    }

    #[test]
    fn bio_basic_and_adjacent_entities() {
        // B-PER I-PER O B-LOC B-LOC I-LOC
        let s = spans(
            &[(1, 0.9), (2, 0.8), (0, 0.9), (3, 0.9), (3, 0.7), (4, 0.6)],
            &[false; 6],
        );
        assert_eq!(
            s,
            vec![
                (0, 2, Label::Person),
                (3, 4, Label::Location),
                (4, 6, Label::Location)
            ]
        );
    }

    /// Rows with the given probabilities; the rest of each row's mass is spread evenly.
    fn rows(spec: &[&[(usize, f32)]], width: usize) -> Vec<Vec<f32>> {
        spec.iter()
            .map(|cells| {
                let rest: f32 = 1.0 - cells.iter().map(|c| c.1).sum::<f32>();
                let mut r = vec![rest / (width - cells.len()) as f32; width];
                for &(k, p) in *cells {
                    r[k] = p;
                }
                r
            })
            .collect()
    }

    fn decoded(probs: &[Vec<f32>], tags: &[Tag]) -> Vec<(usize, usize, Label)> {
        decode_bio(probs, &vec![false; probs.len()], tags)
            .into_iter()
            .map(|s| (s.start, s.end, s.label))
            .collect()
    }

    #[test]
    fn stray_i_tags_take_the_best_valid_sequence() {
        // O, then I-PER (0.6) over B-PER (0.3), then I-PER: the name starts at token 1.
        let p = rows(&[&[(0, 0.9)], &[(2, 0.6), (1, 0.3)], &[(2, 0.9)]], 7);
        assert_eq!(decoded(&p, &tags()), vec![(1, 3, Label::Person)]);
        // A type flip inside a name: B-PER, then I-LOC (0.5) over I-PER (0.4): one person,
        // where each token's argmax gave a person and a location.
        let p = rows(&[&[(1, 0.9)], &[(4, 0.5), (2, 0.4)]], 7);
        assert_eq!(decoded(&p, &tags()), vec![(0, 2, Label::Person)]);
        // A lone I-PER (0.5) whose B-PER is unlikely, against O (0.45): outside.
        let p = rows(&[&[(0, 0.9)], &[(2, 0.5), (0, 0.45)], &[(0, 0.9)]], 7);
        assert!(decoded(&p, &tags()).is_empty());
        // Two adjacent names stay two (B-PER I-PER B-PER).
        let p = rows(&[&[(1, 0.9)], &[(2, 0.9)], &[(1, 0.9)]], 7);
        assert_eq!(
            decoded(&p, &tags()),
            vec![(0, 2, Label::Person), (2, 3, Label::Person)]
        );
    }

    #[test]
    fn io_tagged_models_start_spans_with_i() {
        // Labels without a prefix are I- tags; with no B- tag a span may start with I-.
        let labels: Vec<String> = ["O", "PER", "LOC"].iter().map(|s| s.to_string()).collect();
        let map = [("PER", "PERSON"), ("LOC", "LOCATION")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let tags = resolve_tags(&labels, &map).unwrap();
        let p = rows(&[&[(1, 0.9)], &[(1, 0.9)], &[(0, 0.9)], &[(2, 0.9)]], 3);
        assert_eq!(
            decoded(&p, &tags),
            vec![(0, 2, Label::Person), (3, 4, Label::Location)]
        );
    }

    #[test]
    fn subwords_follow_their_first_piece() {
        // "Sar ##ah Con ##nor lives": pieces 1 and 3 say O / B-LOC but continue their word.
        let s = spans(
            &[(1, 0.9), (0, 0.9), (2, 0.9), (3, 0.9), (0, 0.9)],
            &[false, true, false, true, false],
        );
        assert_eq!(s, vec![(0, 4, Label::Person)]);
        // A word starting O whose piece says B-PER stays outside.
        let s = spans(&[(0, 0.9), (1, 0.9)], &[false, true]);
        assert!(s.is_empty());
        // Unmapped types break spans like O (B-PER, I-MISC, B-PER: two names).
        let s = spans(&[(1, 0.9), (6, 0.9), (1, 0.9)], &[false; 3]);
        assert_eq!(s, vec![(0, 1, Label::Person), (2, 3, Label::Person)]);
    }

    #[test]
    fn score_is_mean_type_mass() {
        let probs = vec![row(1, 0.9), row(2, 0.5)];
        let s = decode_bio(&probs, &[false, false], &tags());
        // Token 0: 0.9 + 0.1/6 (I-PER); token 1: 0.5 + 0.5/6 (B-PER).
        let want = ((0.9 + 0.1 / 6.0) + (0.5 + 0.5 / 6.0)) / 2.0;
        assert!((s[0].score - want).abs() < 1e-6, "{}", s[0].score);
    }

    #[test]
    fn softmax_normalises() {
        let mut r = vec![1.0, 2.0, 3.0, 1000.0];
        softmax(&mut r);
        assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(r[3] > 0.99 && r.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn windows_cover_every_token_with_overlap() {
        assert_eq!(window_starts(5, 10, 3), vec![0]);
        assert_eq!(window_starts(10, 10, 3), vec![0]);
        let s = window_starts(25, 10, 3);
        assert_eq!(s, vec![0, 7, 14, 15]);
        let owner = window_owner(25, 10, &s);
        for (i, &w) in owner.iter().enumerate() {
            assert!(s[w] <= i && i < s[w] + 10);
        }
        // Token 8: margin 1 in window 0 (0..10) and 1 in window 1 (7..17): tie -> earlier.
        // Token 9: margin 0 in window 0, 2 in window 1.
        assert_eq!(owner[8], 0);
        assert_eq!(owner[9], 1);
        assert_eq!(owner[0], 0);
        assert_eq!(owner[24], 3);
    }
}
