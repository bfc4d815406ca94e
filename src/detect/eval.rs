//! Evaluation: precision, recall and F1 of the configured detectors on span corpora.
//!
//! Corpora are JSON Lines in the contract's format (`{"id","text","spans":[{start,end,label}]}`,
//! code-point offsets, end exclusive). Gold spans whose label is not a contract label are
//! ignored. Matching is one-to-one:
//! * `strict`: a prediction is a true positive only for the same start, end and label;
//! * `overlap`: for any overlap with a not yet matched gold span of the same label (gold spans
//!   are tried in order of start).
//!
//! Unmatched predictions are false positives, unmatched gold spans false negatives. Per label
//! and micro-averaged; a ratio with a zero denominator is reported as 0.

use super::{byte_to_char_offsets, DetectError, Engine, Label};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMode {
    Strict,
    Overlap,
}

#[derive(Debug, Deserialize)]
struct Doc {
    text: String,
    #[serde(default)]
    spans: Vec<GoldSpan>,
}

#[derive(Debug, Deserialize)]
struct GoldSpan {
    start: usize,
    end: usize,
    label: String,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Scores {
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Scores {
    fn finish(&mut self) {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        self.precision = ratio(self.tp, self.tp + self.fp);
        self.recall = ratio(self.tp, self.tp + self.fn_);
        self.f1 = if self.precision + self.recall == 0.0 {
            0.0
        } else {
            2.0 * self.precision * self.recall / (self.precision + self.recall)
        };
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub docs: u64,
    pub chars: u64,
    pub seconds: f64,
    pub labels: BTreeMap<String, Scores>,
    pub micro: Scores,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message}")]
    Corpus {
        path: String,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Detect(#[from] DetectError),
}

/// Counts one document's predictions against its gold spans (code-point offsets).
pub fn score_doc(
    gold: &[(usize, usize, Label)],
    pred: &[(usize, usize, Label)],
    mode: MatchMode,
    labels: &mut BTreeMap<String, Scores>,
) {
    let mut used = vec![false; gold.len()];
    for &(ps, pe, pl) in pred {
        let hit = gold.iter().enumerate().position(|(i, &(gs, ge, gl))| {
            !used[i]
                && gl == pl
                && match mode {
                    MatchMode::Strict => gs == ps && ge == pe,
                    MatchMode::Overlap => gs < pe && ps < ge,
                }
        });
        let s = labels.entry(pl.as_str().to_owned()).or_default();
        match hit {
            Some(i) => {
                used[i] = true;
                s.tp += 1;
            }
            None => s.fp += 1,
        }
    }
    for (i, &(_, _, gl)) in gold.iter().enumerate() {
        if !used[i] {
            labels.entry(gl.as_str().to_owned()).or_default().fn_ += 1;
        }
    }
}

/// Documents detected in one [`Engine::detect_all`] call: the NER pools batch them.
const DOC_CHUNK: usize = 64;

/// Runs `engine` over every document of `corpora` and scores it.
pub fn evaluate(engine: &Engine, corpora: &[&Path], mode: MatchMode) -> Result<Report, EvalError> {
    let mut report = Report::default();
    let mut detect_time = std::time::Duration::ZERO;
    // Read documents with their gold spans, detected and scored DOC_CHUNK at a time.
    let mut texts: Vec<String> = Vec::with_capacity(DOC_CHUNK);
    let mut golds: Vec<Vec<(usize, usize, Label)>> = Vec::with_capacity(DOC_CHUNK);
    let mut flush = |texts: &mut Vec<String>,
                     golds: &mut Vec<Vec<(usize, usize, Label)>>,
                     report: &mut Report|
     -> Result<(), EvalError> {
        let t = std::time::Instant::now();
        let all = engine.detect_all(texts)?;
        detect_time += t.elapsed();
        for ((text, gold), findings) in texts.iter().zip(golds.iter()).zip(all) {
            let offsets: Vec<usize> = findings.iter().flat_map(|f| [f.start, f.end]).collect();
            let chars = byte_to_char_offsets(text, &offsets);
            let pred: Vec<_> = findings
                .iter()
                .zip(chars.chunks(2))
                .map(|(f, c)| (c[0], c[1], f.label))
                .collect();
            score_doc(gold, &pred, mode, &mut report.labels);
        }
        texts.clear();
        golds.clear();
        Ok(())
    };
    for path in corpora {
        let shown = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| EvalError::Io {
            path: shown.clone(),
            source,
        })?;
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|source| EvalError::Io {
                path: shown.clone(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let doc: Doc = serde_json::from_str(&line).map_err(|e| EvalError::Corpus {
                path: shown.clone(),
                line: i + 1,
                message: e.to_string(),
            })?;
            let nchars = doc.text.chars().count();
            let mut gold = Vec::new();
            for s in &doc.spans {
                if s.start >= s.end || s.end > nchars {
                    return Err(EvalError::Corpus {
                        path: shown.clone(),
                        line: i + 1,
                        message: format!(
                            "span {}..{} is outside the text ({nchars} code points)",
                            s.start, s.end
                        ),
                    });
                }
                if let Ok(label) = s.label.parse::<Label>() {
                    gold.push((s.start, s.end, label));
                }
            }
            report.docs += 1;
            report.chars += nchars as u64;
            texts.push(doc.text);
            golds.push(gold);
            if texts.len() == DOC_CHUNK {
                flush(&mut texts, &mut golds, &mut report)?;
            }
        }
    }
    flush(&mut texts, &mut golds, &mut report)?;
    let mut micro = Scores::default();
    for s in report.labels.values_mut() {
        s.finish();
        micro.tp += s.tp;
        micro.fp += s.fp;
        micro.fn_ += s.fn_;
    }
    micro.finish();
    report.micro = micro;
    // Detection time only: corpus parsing and scoring are not what is being measured.
    report.seconds = detect_time.as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        gold: &[(usize, usize, Label)],
        pred: &[(usize, usize, Label)],
        mode: MatchMode,
    ) -> BTreeMap<String, Scores> {
        let mut m = BTreeMap::new();
        score_doc(gold, pred, mode, &mut m);
        for s in m.values_mut() {
            s.finish();
        }
        m
    }

    #[test]
    fn strict_counts_exact_matches_only() {
        use Label::*;
        let gold = [(0, 5, Person), (10, 20, Email), (30, 35, Phone)];
        let pred = [
            (0, 5, Person),
            (10, 19, Email),
            (30, 35, Email),
            (40, 45, Phone),
        ];
        let m = run(&gold, &pred, MatchMode::Strict);
        assert_eq!((m["PERSON"].tp, m["PERSON"].fp, m["PERSON"].fn_), (1, 0, 0));
        assert_eq!((m["EMAIL"].tp, m["EMAIL"].fp, m["EMAIL"].fn_), (0, 2, 1));
        assert_eq!((m["PHONE"].tp, m["PHONE"].fp, m["PHONE"].fn_), (0, 1, 1));
        assert_eq!(m["EMAIL"].precision, 0.0);
        assert_eq!(m["PERSON"].f1, 1.0);
    }

    #[test]
    fn overlap_is_one_to_one() {
        use Label::*;
        let gold = [(10, 20, Email)];
        let pred = [(9, 15, Email), (15, 21, Email)];
        let m = run(&gold, &pred, MatchMode::Overlap);
        assert_eq!((m["EMAIL"].tp, m["EMAIL"].fp, m["EMAIL"].fn_), (1, 1, 0));
        assert!((m["EMAIL"].precision - 0.5).abs() < 1e-9);
        assert!((m["EMAIL"].f1 - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn evaluates_a_hand_made_corpus() {
        use crate::detect::{Detector, Finding};
        use std::borrow::Cow;
        // A detector that finds the literal "kim@x.io" as EMAIL: known answers.
        struct Lit;
        impl Detector for Lit {
            fn name(&self) -> &str {
                "lit"
            }
            fn detect(&self, text: &str, out: &mut Vec<Finding>) -> Result<(), DetectError> {
                for (i, _) in text.match_indices("kim@x.io") {
                    out.push(Finding {
                        start: i,
                        end: i + 8,
                        label: Label::Email,
                        subtype: None,
                        detector: Cow::Borrowed("lit"),
                        score: 1.0,
                    });
                }
                Ok(())
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.jsonl");
        std::fs::write(
            &p,
            concat!(
                "{\"text\": \"메일 kim@x.io 로\", \"spans\": [{\"start\": 3, \"end\": 11, \"label\": \"EMAIL\"}]}\n",
                "{\"text\": \"kim@x.io and lee@y.io\", \"spans\": [{\"start\": 13, \"end\": 21, \"label\": \"EMAIL\"}, {\"start\": 0, \"end\": 3, \"label\": \"MISC\"}]}\n",
                "\n",
                "{\"text\": \"nothing\"}\n",
            ),
        )
        .unwrap();
        let engine = Engine::new(vec![std::sync::Arc::new(Lit)]);
        let r = evaluate(&engine, &[p.as_path()], MatchMode::Strict).unwrap();
        assert_eq!(r.docs, 3);
        assert_eq!(r.chars, 13 + 21 + 7);
        let e = r.labels["EMAIL"];
        assert_eq!((e.tp, e.fp, e.fn_), (1, 1, 1));
        assert_eq!(r.micro.tp, 1);
        assert!(!r.labels.contains_key("MISC"));
        let bad = dir.path().join("bad.jsonl");
        std::fs::write(
            &bad,
            "{\"text\": \"ab\", \"spans\": [{\"start\": 0, \"end\": 9, \"label\": \"EMAIL\"}]}\n",
        )
        .unwrap();
        let err = evaluate(&engine, &[bad.as_path()], MatchMode::Strict)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
