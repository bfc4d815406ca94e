//! The NER language router: one [`Detector`] in front of the per-language NER pools.
//!
//! What: [`NerRouter`] cuts a text into segments ([`segments`]: at newlines and at sentence
//! ends, i.e. `.`, `!`, `?` (and their full-width forms, `。`) followed by white space or the
//! end), gives each segment a language by its letters ([`classify`]: Hangul syllables and
//! jamo against Latin letters, the majority wins, a tie goes to Korean; a segment with
//! neither is skipped), joins neighbouring segments of one language into runs ([`runs`]:
//! skipped segments between two segments of a language do not break their run, so a model
//! sees context), sends each run to the pool serving that language and re-bases the
//! findings' offsets onto the whole text. Words of the other script inside a segment
//! ([`islands`]: Korean values under English JSON keys, a Hangul name in an English
//! sentence) go to their own language's pool as well. Runs in a language no model serves
//! are skipped.
//! [`load`] builds the pools from the configuration, once, at start.
//!
//! Time: a call waits for the NER pools until a deadline: the one set for the thread by
//! [`with_deadline`] (the pipeline sets one per request, so all its fields share one budget),
//! else `budget` from now. Past it, [`DetectError::Timeout`]; a full queue is
//! [`DetectError::Unavailable`].
//!
//! Why: Korean and English models are separate; a mixed text must reach both, each part the
//! right one, with enough context around it.
//!
//! All the runs of a call (one text, or all the texts of a request through
//! [`Detector::detect_many`]) are queued before their answers are awaited, so the pools batch
//! them together and the two languages' pools work at once.
//!
//! Limits: languages other than Korean and English are not routed. An island is read
//! without the segment's other words around it, and words glued to the other script
//! (`Google맵`; particles and titles after a Latin word excepted) stay with the segment's
//! model.
//! Model changes need a restart: the rule hot reload keeps the pools loaded at start.

use std::cell::Cell;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::model::{ModelError, TokenClassifier};
use super::pool::{NerPool, Pending, PoolConfig};
use crate::config::{NerLanguage, NerSettings};
use crate::detect::korean_name::{is_suffix_chain, is_syllable};
use crate::detect::{DetectError, Detector, Finding, Priority};

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` with `deadline` as the NER deadline of this thread: every [`NerRouter`] call made
/// by `f` on this thread waits for its models at most until then. The previous deadline is
/// restored afterwards (also if `f` panics).
pub fn with_deadline<R>(deadline: Instant, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEADLINE.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(DEADLINE.with(|d| d.replace(Some(deadline))));
    f()
}

fn current_deadline() -> Option<Instant> {
    DEADLINE.with(Cell::get)
}

/// Which script a character counts for.
fn script(c: char) -> Option<NerLanguage> {
    match c as u32 {
        0xAC00..=0xD7A3 // Hangul syllables
        | 0x1100..=0x11FF // jamo
        | 0x3130..=0x318F // compatibility jamo
        | 0xA960..=0xA97F // jamo extended A
        | 0xD7B0..=0xD7FF // jamo extended B
        | 0xFFA0..=0xFFDC => Some(NerLanguage::Ko), // half-width jamo
        _ if c.is_ascii_alphabetic() => Some(NerLanguage::En),
        // Latin-1 supplement and Latin extended letters (é, ß, ł, ...).
        0x00C0..=0x024F if c.is_alphabetic() => Some(NerLanguage::En),
        _ => None,
    }
}

/// The language of `segment` by its letters; `None` when it has no Hangul or Latin letter.
pub fn classify(segment: &str) -> Option<NerLanguage> {
    let (mut ko, mut en) = (0usize, 0usize);
    for c in segment.chars() {
        match script(c) {
            Some(NerLanguage::Ko) => ko += 1,
            Some(NerLanguage::En) => en += 1,
            None => {}
        }
    }
    match (ko, en) {
        (0, 0) => None,
        (k, e) if k >= e => Some(NerLanguage::Ko),
        _ => Some(NerLanguage::En),
    }
}

fn ends_sentence(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '．')
}

/// The segments of `text` as byte ranges that cover it, in order, with no gaps: a segment
/// ends after a newline, or after a run of sentence-end marks followed by white space (the
/// white space up to the next non-space character stays in the segment), or at the end.
pub fn segments(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = text.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let mut cut = None;
        if c == '\n' {
            cut = Some(i + 1);
        } else if ends_sentence(c) {
            // Take further marks ("?!", "...").
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = it.peek() {
                if ends_sentence(d) {
                    end = j + d.len_utf8();
                    it.next();
                } else {
                    break;
                }
            }
            match it.peek() {
                None => cut = Some(end),
                Some(&(_, d)) if d.is_whitespace() => {
                    // Keep the spaces (and a newline) with this sentence.
                    while let Some(&(j, d)) = it.peek() {
                        if d.is_whitespace() {
                            end = j + d.len_utf8();
                            it.next();
                            if d == '\n' {
                                break;
                            }
                        } else {
                            break;
                        }
                    }
                    cut = Some(end);
                }
                Some(_) => {} // "3.14", "example.com": not a sentence end
            }
        }
        if let Some(end) = cut {
            if end > start {
                out.push(start..end);
            }
            start = end;
        }
    }
    if start < text.len() {
        out.push(start..text.len());
    }
    out
}

/// The runs of `text`: maximal stretches of segments of one language (segments without
/// letters in between do not break a run), as byte ranges with their language, in order.
/// A run starts at its first classified segment and ends with its last; segments without
/// letters before the first or after the last classified segment belong to no run.
pub fn runs(text: &str) -> Vec<(Range<usize>, NerLanguage)> {
    runs_of(&classified(text))
}

/// The segments of `text` that have a language, with it ([`segments`], [`classify`]).
fn classified(text: &str) -> Vec<(Range<usize>, NerLanguage)> {
    segments(text)
        .into_iter()
        .filter_map(|seg| classify(&text[seg.clone()]).map(|lang| (seg, lang)))
        .collect()
}

/// [`runs`] from the classified segments.
fn runs_of(classified: &[(Range<usize>, NerLanguage)]) -> Vec<(Range<usize>, NerLanguage)> {
    let mut out: Vec<(Range<usize>, NerLanguage)> = Vec::new();
    for (seg, lang) in classified {
        match out.last_mut() {
            Some((r, l)) if l == lang => r.end = seg.end,
            _ => out.push((seg.clone(), *lang)),
        }
    }
    out
}

/// The other language's islands in `text`'s segments: in a segment of one language, each
/// maximal stretch from a letter of the other script to the last such letter before the
/// next letter of the segment's own script (`김민준` and `영업팀` in
/// `{"name": "김민준", "dept": "영업팀"}`; `김민준, 이서연` in `{"to": "김민준, 이서연",
/// "note": "weekly report"}`; `김민준` in `Please send it to 김민준 by Friday`).
/// An island needs two letters or more and must not be glued to a letter of the segment's
/// script on either side (`AC` of `AC밀란이었다` is not one: the Korean model reads that word
/// whole), except Korean particles and titles right after a Latin island (`Sarah Connor님이`,
/// `Acme의`); a Latin island also needs a lower-case letter (on the Korean held-out sentences
/// the English model, given `SNS`, `RO` or `COI` alone, called them people; the Korean model
/// reads such acronyms in context). As byte ranges with the island's language, in order.
/// A segment with more than [`MAX_ISLANDS`] islands gives one range instead, from its first
/// island to its last.
///
/// Why: a segment goes to the model of its majority script, which cannot read the other
/// script: Korean values under English JSON keys, a Hangul name in an English sentence or an
/// English name in Korean chat were seen only by the wrong model. The island goes to its own
/// language's model as well (the majority model still sees the whole segment); overlapping
/// findings are merged by the engine.
pub fn islands(text: &str) -> Vec<(Range<usize>, NerLanguage)> {
    islands_of(text, &classified(text))
}

/// [`islands`] from the classified segments of `text`.
fn islands_of(
    text: &str,
    classified: &[(Range<usize>, NerLanguage)],
) -> Vec<(Range<usize>, NerLanguage)> {
    let mut all = Vec::new();
    for (seg, lang) in classified {
        let (seg, lang) = (seg.clone(), *lang);
        let mut out = Vec::new();
        let other = match lang {
            NerLanguage::Ko => NerLanguage::En,
            NerLanguage::En => NerLanguage::Ko,
        };
        // (start, end of its last letter, letters, glued before)
        let mut open: Option<(usize, usize, usize, bool)> = None;
        let mut prev: Option<NerLanguage> = None;
        let mut close = |island: (usize, usize, usize, bool), glued_after: bool| {
            let (start, end, letters, glued_before) = island;
            let cased =
                other == NerLanguage::Ko || text[start..end].chars().any(char::is_lowercase);
            // Korean particles and titles may follow a Latin name directly: `Sarah
            // Connor님이`, `Acme의`.
            let glued_after = glued_after
                && !(other == NerLanguage::En && is_suffix_chain(syllables_at(text, end)));
            if letters >= 2 && cased && !glued_before && !glued_after {
                out.push((start..end, other));
            }
        };
        for (i, c) in text[seg.clone()].char_indices() {
            let at = seg.start + i;
            let sc = script(c);
            match sc {
                Some(l) if l == other => {
                    let o = open.get_or_insert((at, at, 0, prev == Some(lang)));
                    o.1 = at + c.len_utf8();
                    o.2 += 1;
                }
                Some(_) => {
                    if let Some(o) = open.take() {
                        close(o, at == o.1);
                    }
                }
                None => {}
            }
            prev = sc;
        }
        if let Some(o) = open.take() {
            close(o, false);
        }
        // Many islands in one segment (a minified JSON document with Korean values): the
        // whole segment goes to the other model once instead, so the number of runs stays
        // bounded by the number of segments.
        if out.len() > MAX_ISLANDS {
            let first = out.first().map_or(seg.start, |(r, _)| r.start);
            let last = out.last().map_or(seg.end, |(r, _)| r.end);
            out = vec![(first..last, other)];
        }
        all.extend(out);
    }
    all
}

/// Most islands sent one by one per segment; see [`islands`].
pub const MAX_ISLANDS: usize = 8;

/// The run of Hangul syllables at the start of `text[at..]`.
fn syllables_at(text: &str, at: usize) -> &str {
    let rest = &text[at..];
    &rest[..rest.len() - rest.trim_start_matches(is_syllable).len()]
}

/// A [`Detector`] sending each language run of a text to that language's NER pool.
pub struct NerRouter {
    /// Pools and the languages each serves (each language at most once).
    pools: Vec<(Vec<NerLanguage>, Arc<NerPool>)>,
    budget: Duration,
}

impl std::fmt::Debug for NerRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NerRouter")
            .field("pools", &self.pools)
            .field("budget", &self.budget)
            .finish()
    }
}

impl NerRouter {
    /// A router over `pools`; `budget` is the wait per call when the thread has no deadline
    /// ([`with_deadline`]). A language listed for several pools goes to the first.
    pub fn new(pools: Vec<(Vec<NerLanguage>, Arc<NerPool>)>, budget: Duration) -> NerRouter {
        NerRouter { pools, budget }
    }

    /// The pool serving `lang`, if any.
    pub fn pool_for(&self, lang: NerLanguage) -> Option<&Arc<NerPool>> {
        self.pools
            .iter()
            .find(|(ls, _)| ls.contains(&lang))
            .map(|(_, p)| p)
    }

    /// The pools and their languages.
    pub fn pools(&self) -> &[(Vec<NerLanguage>, Arc<NerPool>)] {
        &self.pools
    }

    /// The findings of the NER models in each of `texts` (appended to the `out` of the same
    /// index), waiting for them until `deadline`. The runs of all the texts are queued before
    /// any answer is awaited (at most [`IN_FLIGHT`] at a time), so a pool can batch the runs
    /// of one request and the Korean and English pools work at the same time.
    pub fn detect_many_until(
        &self,
        texts: &[&str],
        deadline: Instant,
        out: &mut [Vec<Finding>],
    ) -> Result<(), DetectError> {
        // (text index, offset of the run in its text, the queued run)
        let mut queued: VecDeque<(usize, usize, Pending)> = VecDeque::new();
        let collect = |(i, base, pending): (usize, usize, Pending), out: &mut [Vec<Finding>]| {
            for mut f in pending.wait()? {
                f.start += base;
                f.end += base;
                out[i].push(f);
            }
            Ok::<_, DetectError>(())
        };
        for (i, text) in texts.iter().enumerate() {
            // Segments are cut and classified once, for the runs and the islands.
            let segs = classified(text);
            for (range, lang) in runs_of(&segs).into_iter().chain(islands_of(text, &segs)) {
                let Some(pool) = self.pool_for(lang) else {
                    continue;
                };
                if Instant::now() >= deadline {
                    return Err(DetectError::Timeout {
                        detector: pool.name().to_owned(),
                    });
                }
                if queued.len() == IN_FLIGHT {
                    if let Some(q) = queued.pop_front() {
                        collect(q, out)?;
                    }
                }
                let base = range.start;
                queued.push_back((i, base, pool.submit(&text[range], deadline)?));
            }
        }
        while let Some(q) = queued.pop_front() {
            collect(q, out)?;
        }
        Ok(())
    }
}

/// Most runs one [`NerRouter`] call has queued at once: enough for full batches on both
/// pools, few enough that one request with hundreds of messages cannot fill a queue that
/// concurrent requests share.
pub const IN_FLIGHT: usize = 16;

impl Detector for NerRouter {
    fn name(&self) -> &str {
        "ner"
    }

    fn detect(&self, text: &str, out: &mut Vec<Finding>) -> Result<(), DetectError> {
        self.detect_many(&[text], std::slice::from_mut(out))
    }

    fn detect_many(&self, texts: &[&str], out: &mut [Vec<Finding>]) -> Result<(), DetectError> {
        let deadline = current_deadline().unwrap_or_else(|| Instant::now() + self.budget);
        self.detect_many_until(texts, deadline, out)
    }

    fn priority(&self, _: &Finding) -> Priority {
        Priority::Ner
    }
}

/// Why the NER models could not be loaded. Every variant is a startup failure.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "NER model `{dir}`: {source} (or set detect.ner.ort_dylib / GARIM_ORT_DYLIB to \
         libonnxruntime.so.{version})",
        version = super::runtime::ORT_VERSION
    )]
    Runtime {
        dir: std::path::PathBuf,
        source: ModelError,
    },
    #[error("NER model `{dir}`: {source}")]
    Model {
        dir: std::path::PathBuf,
        source: ModelError,
    },
}

impl LoadError {
    /// Loading happens at start, before any request: the service cannot run.
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::SERVICE_UNAVAILABLE
    }

    pub fn fault(&self) -> &'static str {
        "internal"
    }
}

/// Loads every configured model and starts its pool; `None` when NER is off. Call once at
/// start: the router is shared (Arc) by every engine built afterwards, reloads included.
pub fn load(settings: &NerSettings) -> Result<Option<Arc<NerRouter>>, LoadError> {
    if !settings.enabled {
        return Ok(None);
    }
    let cfg = PoolConfig {
        workers: settings.workers,
        intra_threads: settings.intra_threads,
        max_batch: settings.max_batch,
        queue: settings.queue,
        budget: settings.budget,
    };
    let mut pools = Vec::with_capacity(settings.models.len());
    for m in &settings.models {
        let wrap = |source: ModelError| match source {
            ModelError::Runtime(_) => LoadError::Runtime {
                dir: m.dir.clone(),
                source,
            },
            _ => LoadError::Model {
                dir: m.dir.clone(),
                source,
            },
        };
        let model = TokenClassifier::load(&m.dir, settings.ort_dylib.as_deref()).map_err(wrap)?;
        let pool = NerPool::new(Arc::new(model), &cfg).map_err(wrap)?;
        pools.push((m.languages.clone(), Arc::new(pool)));
    }
    Ok(Some(Arc::new(NerRouter::new(pools, settings.budget))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use NerLanguage::{En, Ko};

    fn seg_texts(t: &str) -> Vec<&str> {
        segments(t).into_iter().map(|r| &t[r]).collect()
    }

    fn run_texts(t: &str) -> Vec<(&str, NerLanguage)> {
        runs(t).into_iter().map(|(r, l)| (&t[r], l)).collect()
    }

    #[test]
    fn segments_cover_the_text_without_gaps() {
        for t in [
            "",
            "one",
            "a. b",
            "김민준 씨는 서울에 산다. John lives in Boston!\n\n  Next?! yes...",
            "ends with newline\n",
            "3.14 and example.com are not ends. 끝。다음",
        ] {
            let segs = segments(t);
            let mut at = 0;
            for r in &segs {
                assert_eq!(r.start, at, "{t:?}: {segs:?}");
                assert!(r.end > r.start, "{t:?}: {segs:?}");
                at = r.end;
            }
            assert_eq!(at, t.len(), "{t:?}: {segs:?}");
        }
    }

    #[test]
    fn segments_split_at_newlines_and_sentence_ends() {
        assert_eq!(
            seg_texts("Hello there. How are you?! Fine\nnext line"),
            vec!["Hello there. ", "How are you?! ", "Fine\n", "next line"]
        );
        // No split inside numbers, domains or before a non-space.
        assert_eq!(
            seg_texts("Pi is 3.14 at example.com. Done"),
            vec!["Pi is 3.14 at example.com. ", "Done"]
        );
        // Full-width / CJK marks.
        assert_eq!(
            seg_texts("안녕하세요。 반갑습니다"),
            vec!["안녕하세요。 ", "반갑습니다"]
        );
        // A sentence end followed by a newline keeps the newline, then splits.
        assert_eq!(seg_texts("One.\nTwo."), vec!["One.\n", "Two."]);
    }

    #[test]
    fn classify_by_majority_of_letters() {
        assert_eq!(classify("김민준 씨는 서울에 산다."), Some(Ko));
        assert_eq!(classify("John lives in Boston."), Some(En));
        // Mixed: the majority wins.
        assert_eq!(classify("Samsung 본사는 수원에 있다"), Some(Ko));
        assert_eq!(classify("Meet 민준 at the Gangnam office"), Some(En));
        // Jamo count as Hangul; accented Latin letters as Latin.
        assert_eq!(classify("ㅋㅋㅋ ok"), Some(Ko));
        assert_eq!(classify("Café Zoë"), Some(En));
        // No letters of either script.
        assert_eq!(classify("010-1234-5678, 42 !"), None);
        assert_eq!(classify("東京 Москва"), None);
        assert_eq!(classify(""), None);
        // A tie goes to Korean.
        assert_eq!(classify("ab 가나"), Some(Ko));
    }

    #[test]
    fn runs_join_same_language_and_skip_letterless_segments() {
        let t = "김민준 씨는 서울에 산다. 그는 의사다.\nJohn lives in Boston. 12345.\nHe is a doctor. 끝.";
        assert_eq!(
            run_texts(t),
            vec![
                ("김민준 씨는 서울에 산다. 그는 의사다.\n", Ko),
                ("John lives in Boston. 12345.\nHe is a doctor. ", En),
                ("끝.", Ko),
            ]
        );
        // Leading and trailing letterless segments belong to no run.
        assert_eq!(run_texts("123.\nHello.\n456"), vec![("Hello.\n", En)]);
        assert!(runs("010-1234-5678\n!!!").is_empty());
    }

    fn island_texts(t: &str) -> Vec<(&str, NerLanguage)> {
        islands(t).into_iter().map(|(r, l)| (&t[r], l)).collect()
    }

    #[test]
    fn islands_of_the_other_script() {
        // Korean values under English keys.
        assert_eq!(
            island_texts(r#"{"name": "김민준", "dept": "영업팀", "city": "Seoul"}"#),
            vec![("김민준", Ko), ("영업팀", Ko)]
        );
        // Values next to each other with no Latin letter between them form one island.
        assert_eq!(
            island_texts(r#"{"customers": "김민준, 이서연", "team": "sales"}"#),
            vec![("김민준, 이서연", Ko)]
        );
        // A Korean-majority segment: its English keys are the islands.
        assert_eq!(
            island_texts(r#"{"name": "김민준", "부서": "영업팀", "id": 7}"#),
            vec![("name", En), ("id", En)]
        );
        assert_eq!(
            island_texts("Please send it to 김민준 by Friday."),
            vec![("김민준", Ko)]
        );
        assert_eq!(
            island_texts("Sarah Connor 님께 보고서를 전달해 주세요"),
            vec![("Sarah Connor", En)]
        );
        // Glued to the segment's own script, or a single letter: no island.
        assert!(island_texts("상대는 AC밀란이었다").is_empty());
        // Particles and titles may follow a Latin island; other syllables may not.
        assert_eq!(
            island_texts("Sarah Connor님이 어제 회의에 참석했습니다"),
            vec![("Sarah Connor", En)]
        );
        assert_eq!(
            island_texts("Acme Corporation의 계약서를 내일 오전까지 검토해 주시기 바랍니다"),
            vec![("Acme Corporation", En)]
        );
        assert!(island_texts("Google맵으로 찾아보세요").is_empty());
        assert!(island_texts("A 씨가 왔다").is_empty());
        // Latin islands need a lower-case letter: acronyms stay with the Korean model.
        assert!(island_texts("SNS에 올린 글. KBS 뉴스 보도").is_empty());
        assert!(island_texts("plain English only").is_empty());
        // Past MAX_ISLANDS in a segment, one run from the first island to the last.
        let many: String = (0..12)
            .map(|i| format!(r#""customer{i}": "김민준{i}", "#))
            .collect();
        let got = island_texts(&many);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].0.starts_with("김민준0") && got[0].0.ends_with(r#""customer11": "김민준"#),
            "{got:?}"
        );
        // Per segment: each line has its own majority.
        assert_eq!(
            island_texts(
                "김민준 과장님께 전달.
Send it to 이서연 today"
            ),
            vec![("이서연", Ko)]
        );
    }

    #[test]
    fn deadline_is_scoped_and_restored() {
        assert_eq!(current_deadline(), None);
        let d = Instant::now() + Duration::from_secs(5);
        let inner = with_deadline(d, || {
            let e = Instant::now() + Duration::from_secs(1);
            let nested = with_deadline(e, current_deadline);
            assert_eq!(nested, Some(e));
            current_deadline()
        });
        assert_eq!(inner, Some(d));
        assert_eq!(current_deadline(), None);
    }
}
