//! Restoring placeholders in text: one whole string ([`restore_str`]) or a string that arrives
//! in pieces ([`StreamText`]).
//!
//! Both scan for `[` with `memchr` and ask [`parse_at`] at each one, so text without `[` costs
//! one vectorised scan and no allocation. [`Escape::Json`] is for text that is itself JSON
//! source (tool-call `arguments`, Anthropic `partial_json`): the value is written as JSON
//! string content there. Placeholders contain nothing JSON escapes, so they are found the same
//! in JSON source as in plain text.
//!
//! [`StreamText`] holds back only a suffix for which [`parse_at`] says
//! [`Parse::Incomplete`]: it starts at a `[` and is shorter than [`MAX_PLACEHOLDER_LEN`]
//! (the parser rejects anything longer). Restoring a text in any number of pieces gives exactly
//! what [`restore_str`] gives for the whole (tested with proptest), because [`parse_at`]
//! decides `Match`/`No` from the bytes up to the closing bracket only.
//!
//! Limit: [`Escape::Json`] assumes the placeholder stands inside a JSON string of that source
//! (where models put it); one outside a string yields invalid JSON, as the placeholder did.

use crate::mask::placeholder::{parse_at, Parse};
use crate::mask::{Mapping, MAX_PLACEHOLDER_LEN};
use crate::restore::RestoreStats;
use memchr::memchr;
use std::borrow::Cow;

/// How a restored value is written into the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// The text is plain text (already decoded from JSON): the value goes in as is.
    None,
    /// The text is JSON source: the value is escaped as the content of a JSON string.
    Json,
}

/// Appends `v` to `out`, escaped per `escape`.
pub(crate) fn push_value(out: &mut String, v: &str, escape: Escape) {
    match escape {
        Escape::None => out.push_str(v),
        Escape::Json => push_json_escaped(out, v),
    }
}

fn push_json_escaped(out: &mut String, v: &str) {
    let needs = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
    if !v.bytes().any(needs) {
        out.push_str(v);
        return;
    }
    let mut start = 0;
    for (i, b) in v.bytes().enumerate() {
        if !needs(b) {
            continue;
        }
        out.push_str(&v[start..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        start = i + 1;
    }
    out.push_str(&v[start..]);
}

/// Core scan. Restores `src`; with `hold`, stops at a `[` that may still become a placeholder.
/// Returns the rewritten text (`None`: `src[..end]` is unchanged) and `end`, where the
/// held-back suffix starts (`src.len()` when nothing is held).
fn scan(
    src: &str,
    mapping: &Mapping,
    escape: Escape,
    stats: &mut RestoreStats,
    hold: bool,
) -> (Option<String>, usize) {
    let b = src.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut pos = 0;
    let mut end = b.len();
    while let Some(off) = memchr(b'[', &b[pos..]) {
        let i = pos + off;
        match parse_at(&b[i..]) {
            Parse::Match { placeholder, len } => {
                match mapping.get(placeholder) {
                    Some(v) => {
                        let o =
                            out.get_or_insert_with(|| String::with_capacity(src.len() + v.len()));
                        o.push_str(&src[copied..i]);
                        push_value(o, v, escape);
                        copied = i + len;
                        stats.restored += 1;
                    }
                    None => stats.unresolved += 1,
                }
                pos = i + len;
            }
            Parse::Incomplete if hold => {
                end = i;
                break;
            }
            Parse::Incomplete | Parse::No => pos = i + 1,
        }
    }
    if let Some(o) = out.as_mut() {
        o.push_str(&src[copied..end]);
    }
    (out, end)
}

/// Returns `text` with every placeholder the mapping knows replaced by its value.
///
/// Borrows `text` when nothing was replaced (always when it holds no `[`).
pub fn restore_str<'a>(
    text: &'a str,
    mapping: &Mapping,
    escape: Escape,
    stats: &mut RestoreStats,
) -> Cow<'a, str> {
    if memchr(b'[', text.as_bytes()).is_none() {
        return Cow::Borrowed(text);
    }
    match scan(text, mapping, escape, stats, false) {
        (Some(s), _) => Cow::Owned(s),
        (None, _) => Cow::Borrowed(text),
    }
}

/// Incremental restorer for one text that arrives in pieces (one delta stream).
///
/// [`push`](Self::push) returns what can be sent now; it holds back only a suffix that may
/// still become a placeholder (fewer than [`MAX_PLACEHOLDER_LEN`] bytes, starting at `[`).
/// [`finish`](Self::finish) returns the held-back text (restored if complete, else as is).
/// Use the same `escape` for every call on one stream.
#[derive(Debug, Default, Clone)]
pub struct StreamText {
    pending: String,
}

impl StreamText {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether some text is held back.
    pub fn is_holding(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Bytes held back (always `< MAX_PLACEHOLDER_LEN`).
    pub fn held(&self) -> usize {
        self.pending.len()
    }

    /// Takes the next piece; returns the restored text that can be emitted now.
    pub fn push(
        &mut self,
        chunk: &str,
        mapping: &Mapping,
        escape: Escape,
        stats: &mut RestoreStats,
    ) -> String {
        if self.pending.is_empty() && memchr(b'[', chunk.as_bytes()).is_none() {
            return chunk.to_owned();
        }
        let joined: Cow<'_, str> = if self.pending.is_empty() {
            Cow::Borrowed(chunk)
        } else {
            let mut s = std::mem::take(&mut self.pending);
            s.push_str(chunk);
            Cow::Owned(s)
        };
        let (out, end) = scan(&joined, mapping, escape, stats, true);
        debug_assert!(joined.len() - end < MAX_PLACEHOLDER_LEN);
        self.pending = joined[end..].to_owned();
        out.unwrap_or_else(|| joined[..end].to_owned())
    }

    /// The stream ended: returns what was held back, restored where it is complete.
    pub fn finish(
        &mut self,
        mapping: &Mapping,
        escape: Escape,
        stats: &mut RestoreStats,
    ) -> String {
        let p = std::mem::take(&mut self.pending);
        match restore_str(&p, mapping, escape, stats) {
            Cow::Borrowed(_) => p,
            Cow::Owned(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Finding, Label};
    use crate::restore::testutil::{mapping, ph};
    use proptest::prelude::*;

    fn r(s: &str, e: Escape) -> (String, RestoreStats) {
        let mut st = RestoreStats::default();
        let out = restore_str(s, &mapping(), e, &mut st).into_owned();
        (out, st)
    }

    #[test]
    fn restores_known_and_counts_unknown() {
        let (out, st) = r(
            "메일 [EMAIL_1]로 [PERSON_1]님께, [PHONE_9] 말고 [email 1].",
            Escape::None,
        );
        assert_eq!(
            out,
            "메일 kim.minsu@example.co.kr로 김민수님께, [PHONE_9] 말고 kim.minsu@example.co.kr."
        );
        assert_eq!(
            st,
            RestoreStats {
                restored: 3,
                unresolved: 1
            }
        );
    }

    #[test]
    fn borrows_when_nothing_to_do() {
        let mut st = RestoreStats::default();
        let m = mapping();
        assert!(matches!(
            restore_str("no brackets 한글", &m, Escape::None, &mut st),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            restore_str("[x] [EMAIL_7] [", &m, Escape::None, &mut st),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            st,
            RestoreStats {
                restored: 0,
                unresolved: 1
            }
        );
    }

    #[test]
    fn value_is_not_rescanned() {
        // LOCATION_2's value contains "[EMAIL_1]": it must come out literally, not restored again.
        let (out, st) = r("[LOCATION_2]", Escape::None);
        assert_eq!(out, "서울 \"강남\" [EMAIL_1]");
        assert_eq!(st.restored, 1);
    }

    #[test]
    fn json_escape_keeps_json_valid() {
        let src = r#"{"pw":"[SECRET_1]","loc":"[LOCATION_2]","n":1}"#;
        let (out, st) = r(src, Escape::Json);
        assert_eq!(st.restored, 2);
        let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(v["pw"], "p\"a\\ss\nw\tord\r\ndata: x\u{1}");
        assert_eq!(v["loc"], "서울 \"강남\" [EMAIL_1]");
        let mut s = String::new();
        push_json_escaped(&mut s, "\u{8}\u{c}\u{1f}é");
        assert_eq!(s, "\\b\\f\\u001fé");
    }

    #[test]
    fn stream_holds_only_possible_placeholders() {
        let m = mapping();
        let mut st = RestoreStats::default();
        let mut t = StreamText::new();
        assert_eq!(t.push("Hello [", &m, Escape::None, &mut st), "Hello ");
        assert!(t.is_holding());
        assert_eq!(t.push("EMA", &m, Escape::None, &mut st), "");
        assert_eq!(
            t.push("IL_1] and [x", &m, Escape::None, &mut st),
            "kim.minsu@example.co.kr and [x"
        );
        assert!(!t.is_holding());
        assert_eq!(t.push("[PERSON_", &m, Escape::None, &mut st), "");
        assert_eq!(t.held(), 8);
        // an incomplete placeholder at the end comes out as it was
        assert_eq!(t.finish(&m, Escape::None, &mut st), "[PERSON_");
        assert_eq!(t.finish(&m, Escape::None, &mut st), "");
        assert_eq!(
            st,
            RestoreStats {
                restored: 1,
                unresolved: 0
            }
        );
    }

    #[test]
    fn stream_no_bracket_is_immediate() {
        let m = mapping();
        let mut st = RestoreStats::default();
        let mut t = StreamText::new();
        for chunk in ["안녕하세요", " world", "", "a]b", "\"quoted\\\""] {
            assert_eq!(t.push(chunk, &m, Escape::Json, &mut st), chunk);
            assert!(!t.is_holding());
        }
    }

    #[test]
    fn stream_gives_up_after_max_len() {
        let m = mapping();
        let mut st = RestoreStats::default();
        let mut t = StreamText::new();
        let mut out = t.push("[PERSON", &m, Escape::None, &mut st);
        for _ in 0..100 {
            out += &t.push(" ", &m, Escape::None, &mut st);
            assert!(t.held() < MAX_PLACEHOLDER_LEN);
        }
        out += &t.finish(&m, Escape::None, &mut st);
        assert_eq!(out, format!("[PERSON{}", " ".repeat(100)));
    }

    /// Snaps arbitrary cut points to char boundaries of `s`.
    fn pieces<'a>(s: &'a str, cuts: &[usize]) -> Vec<&'a str> {
        let mut pts: Vec<usize> = cuts
            .iter()
            .map(|&c| {
                let mut c = c % (s.len() + 1);
                while !s.is_char_boundary(c) {
                    c -= 1;
                }
                c
            })
            .collect();
        pts.push(0);
        pts.push(s.len());
        pts.sort_unstable();
        pts.windows(2).map(|w| &s[w[0]..w[1]]).collect()
    }

    /// A text segment: brackets, placeholder fragments, Korean, JSON-ish characters.
    fn segment() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("["),
                Just("]"),
                Just("[EMAIL"),
                Just("[PERSON_"),
                Just("_1]"),
                Just("1"),
                Just(" "),
                Just("-"),
                Just("[ "),
                Just("님"),
                Just("안녕하세요"),
                Just("abc"),
                Just("\""),
                Just("\\"),
                Just("\n"),
                Just("[CREDIT"),
                Just("[email 2"),
            ],
            0..12,
        )
        .prop_map(|v| v.concat())
    }

    /// True when `s` contains no complete placeholder by itself.
    fn has_no_placeholder(s: &str) -> bool {
        let b = s.as_bytes();
        (0..b.len()).all(|i| b[i] != b'[' || !matches!(parse_at(&b[i..]), Parse::Match { .. }))
    }

    const PLACEHOLDERS: [(&str, &str); 6] = [
        ("[EMAIL_1]", "kim.minsu@example.co.kr"),
        ("[PERSON_1]", "김민수"),
        ("[person 1]", "김민수"),
        ("[PHONE_1]", "010-1234-5678"),
        ("[SECRET_1]", "p\"a\\ss\nw\tord\r\ndata: x\u{1}"),
        ("[LOCATION_2]", "서울 \"강남\" [EMAIL_1]"),
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn stream_equals_whole_equals_original(
            parts in proptest::collection::vec((segment(), proptest::option::of(0usize..PLACEHOLDERS.len())), 0..8),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            let m = mapping();
            let mut masked = String::new();
            let mut expected = String::new();
            let mut n = 0u64;
            for (seg, p) in &parts {
                prop_assume!(has_no_placeholder(seg));
                masked.push_str(seg);
                expected.push_str(seg);
                if let Some(k) = p {
                    masked.push_str(PLACEHOLDERS[*k].0);
                    expected.push_str(PLACEHOLDERS[*k].1);
                    n += 1;
                }
            }
            // The segments only touch each other through a placeholder (which starts with '[');
            // make sure adjacent segments without one did not form a placeholder either.
            let mut whole = String::new();
            for (seg, p) in &parts {
                whole.push_str(seg);
                if p.is_some() {
                    prop_assume!(has_no_placeholder(&whole));
                    whole.clear();
                }
            }
            prop_assume!(has_no_placeholder(&whole));

            let mut st_whole = RestoreStats::default();
            let whole_out = restore_str(&masked, &m, Escape::None, &mut st_whole).into_owned();
            prop_assert_eq!(&whole_out, &expected);
            prop_assert_eq!(st_whole, RestoreStats { restored: n, unresolved: 0 });

            let mut st = RestoreStats::default();
            let mut t = StreamText::new();
            let mut out = String::new();
            for piece in pieces(&masked, &cuts) {
                out += &t.push(piece, &m, Escape::None, &mut st);
                prop_assert!(t.held() < MAX_PLACEHOLDER_LEN);
            }
            out += &t.finish(&m, Escape::None, &mut st);
            prop_assert_eq!(&out, &expected);
            prop_assert_eq!(st, st_whole);

            // JSON source: escaped the same way piecewise as whole.
            let mut st1 = RestoreStats::default();
            let whole_json = restore_str(&masked, &m, Escape::Json, &mut st1).into_owned();
            let mut t = StreamText::new();
            let mut out = String::new();
            for piece in pieces(&masked, &cuts) {
                out += &t.push(piece, &m, Escape::Json, &mut st1);
            }
            out += &t.finish(&m, Escape::Json, &mut st1);
            prop_assert_eq!(out, whole_json);
        }

        #[test]
        fn stream_matches_whole_on_any_text(
            s in "[\\[\\] _a-zA-Z0-9가-힣-]{0,80}",
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            let m = mapping();
            let mut st1 = RestoreStats::default();
            let whole = restore_str(&s, &m, Escape::None, &mut st1).into_owned();
            let mut st2 = RestoreStats::default();
            let mut t = StreamText::new();
            let mut out = String::new();
            for piece in pieces(&s, &cuts) {
                out += &t.push(piece, &m, Escape::None, &mut st2);
            }
            out += &t.finish(&m, Escape::None, &mut st2);
            prop_assert_eq!(out, whole);
            prop_assert_eq!(st1, st2);
        }

        #[test]
        fn no_bracket_chunk_is_emitted_at_once(s in "[^\\[]{0,60}") {
            let m = mapping();
            let mut st = RestoreStats::default();
            let mut t = StreamText::new();
            prop_assert_eq!(t.push(&s, &m, Escape::None, &mut st), s.clone());
            prop_assert!(!t.is_holding());
            prop_assert_eq!(t.push(&s, &m, Escape::Json, &mut st), s);
        }

        #[test]
        fn restore_inverts_mask(
            text in "[a-z가-힣@. \\[\\]_0-9]{1,60}",
            raw in proptest::collection::vec((any::<usize>(), 1usize..12, 0usize..4), 0..6),
        ) {
            // precondition: the text does not already contain a placeholder
            prop_assume!(has_no_placeholder(&text));
            let labels = [Label::Email, Label::Person, Label::Phone, Label::Secret];
            // arbitrary non-overlapping findings on char boundaries
            let mut findings: Vec<Finding> = Vec::new();
            let mut spans: Vec<(usize, usize, Label)> = raw
                .iter()
                .map(|&(s, l, k)| {
                    let mut start = s % text.len();
                    while !text.is_char_boundary(start) { start -= 1; }
                    let mut end = (start + l).min(text.len());
                    while !text.is_char_boundary(end) { end += 1; }
                    (start, end, labels[k])
                })
                .filter(|&(s, e, _)| e > s)
                .collect();
            spans.sort();
            let mut at = 0;
            for (s, e, label) in spans {
                if s < at { continue; }
                findings.push(Finding { start: s, end: e, label, subtype: None, detector: "t".into(), score: 1.0 });
                at = e;
            }
            // number values per label like the vault does
            let mut mapping = Mapping::default();
            let mut seen: Vec<(Label, String, u32)> = Vec::new();
            let mut placeholders = Vec::new();
            for f in &findings {
                let v = &text[f.start..f.end];
                let n = match seen.iter().find(|(l, s, _)| *l == f.label && s == v) {
                    Some(&(_, _, n)) => n,
                    None => {
                        let n = seen.iter().filter(|(l, _, _)| *l == f.label).count() as u32 + 1;
                        seen.push((f.label, v.to_owned(), n));
                        mapping.insert(ph(f.label, n), v);
                        n
                    }
                };
                placeholders.push(ph(f.label, n));
            }
            let masked = crate::mask::apply(&text, &findings, &placeholders);
            let mut st = RestoreStats::default();
            let back = restore_str(&masked, &mapping, Escape::None, &mut st);
            prop_assert_eq!(back.as_ref(), text.as_str());
            prop_assert_eq!(st.restored, findings.len() as u64);
            prop_assert_eq!(st.unresolved, 0);
        }
    }
}
