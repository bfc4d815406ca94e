//! Normalisation before detection, with a map back to the original byte offsets.
//!
//! People (and copy-paste) write the same value in many ways: `０１０-１２３４-５６７８` in
//! full-width digits, `010\u{200b}1234\u{200b}5678` with zero-width spaces that hide it from a
//! pattern, `a＠b.com`, a phone number with en dashes or non-breaking spaces, a name typed as
//! decomposed (conjoining) jamo. Detectors run on a *normalised view* of the text where these
//! variants are folded to the plain form the rules expect, and [`NormText`] maps each finding
//! back to the original bytes, so masking replaces exactly what the user wrote.
//!
//! What is folded (and nothing else):
//!
//! | original                                                       | becomes          |
//! |----------------------------------------------------------------|------------------|
//! | full-width ASCII U+FF01..=U+FF5E (`０`, `Ａ`, `＠`, `．`, `－`)   | the ASCII char   |
//! | U+3000 ideographic space, U+00A0, U+2000..=U+200A, U+202F, U+205F | `' '`          |
//! | dashes U+2010..=U+2015, U+2212 minus, U+FE58, U+FE63, U+30FC `ー` | `'-'`          |
//! | full stops U+3002 `。`, U+FF61 `｡`, U+2024 `․`                   | `'.'`            |
//! | U+FE6B small commercial at `﹫`                                 | `'@'`            |
//! | zero-width and format: U+200B..=U+200F, U+202A..=U+202E, U+2060..=U+2064, U+2066..=U+2069, U+FEFF, U+00AD soft hyphen, U+180E | removed |
//! | conjoining jamo L+V(+T) (U+1100.., U+1161.., U+11A8..), and a precomposed LV syllable + T | the precomposed syllable (NFC) |
//!
//! Hangul *compatibility* jamo (U+3131..=U+318E, `ㄱ`, `ㅋㅋ`) are left as they are: they are
//! standalone letters (chat abbreviations, initials), and composing them would be a guess
//! that could merge two words into a fake name. Conjoining jamo that do not form a syllable
//! (a lone L, V or T) are also left unchanged.
//!
//! Offsets: a finding `[s, e)` on the normalised text maps to `[start of the original char
//! behind the char at s, end of the original char behind the char ending at e)`. Removed
//! characters *inside* the span are therefore covered (masking removes them with the value);
//! removed characters at its edges are not. Both ends are always original char boundaries,
//! and the map is monotonic.
//!
//! Cost: [`normalize`] first looks for a byte that can start a foldable character (`0xC2`,
//! `0xE1`, `0xE2`, `0xE3`, `0xEF`; never a UTF-8 continuation byte), all five in one SIMD pass
//! (16 bytes at a time), and checks the char there precisely. Text with nothing to fold (all ASCII, ordinary Korean) returns
//! `None` after that one scan and detectors run on the original text, with no copy and no map.
//!
//! Limits: no full Unicode NFC/NFKC (no tables in the crate): only the folds above. Folds
//! are 1 char -> at most 1 char, so no finding can start or end inside a fold's output.

use std::borrow::Cow;

/// A normalised copy of a text and the edits that map it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormText {
    text: String,
    /// One entry per changed stretch, in text order: output bytes `norm` came from original
    /// bytes `orig`. A removal has an empty `norm` range. Outside edits, bytes are copied.
    edits: Vec<Edit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Edit {
    norm_start: usize,
    norm_end: usize,
    orig_start: usize,
    orig_end: usize,
}

/// What one place of the original text turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Change {
    /// Original bytes replaced, `start..end`. `start` may lie before the candidate (a
    /// precomposed LV syllable that takes a following T jamo).
    start: usize,
    end: usize,
    /// The replacement; `None` removes.
    with: Option<char>,
}

const S_BASE: u32 = 0xAC00;
const L_BASE: u32 = 0x1100;
const V_BASE: u32 = 0x1161;
const T_BASE: u32 = 0x11A7;
const L_COUNT: u32 = 19;
const V_COUNT: u32 = 21;
const T_COUNT: u32 = 28;
const S_COUNT: u32 = L_COUNT * V_COUNT * T_COUNT;

fn is_l(c: char) -> bool {
    (L_BASE..L_BASE + L_COUNT).contains(&(c as u32))
}
fn is_v(c: char) -> bool {
    (V_BASE..V_BASE + V_COUNT).contains(&(c as u32))
}
fn is_t(c: char) -> bool {
    (T_BASE + 1..T_BASE + T_COUNT).contains(&(c as u32))
}
fn is_lv(c: char) -> bool {
    let s = c as u32;
    (S_BASE..S_BASE + S_COUNT).contains(&s) && (s - S_BASE) % T_COUNT == 0
}

/// The single-char folds: `Some(None)` removes, `Some(Some(c))` replaces, `None` keeps.
fn fold(c: char) -> Option<Option<char>> {
    let u = c as u32;
    Some(match u {
        0xFF01..=0xFF5E => Some(char::from((u - 0xFEE0) as u8)),
        0x3000 | 0x00A0 | 0x2000..=0x200A | 0x202F | 0x205F => Some(' '),
        0x2010..=0x2015 | 0x2212 | 0xFE58 | 0xFE63 | 0x30FC => Some('-'),
        0x3002 | 0xFF61 | 0x2024 => Some('.'),
        0xFE6B => Some('@'),
        0x200B..=0x200F
        | 0x202A..=0x202E
        | 0x2060..=0x2064
        | 0x2066..=0x2069
        | 0xFEFF
        | 0x00AD
        | 0x180E => None,
        _ => return None,
    })
}

/// The change that starts at the char at byte `i` of `text`, if any.
fn change_at(text: &str, i: usize) -> Option<Change> {
    let mut it = text[i..].chars();
    let c = it.next()?;
    let end = i + c.len_utf8();
    if let Some(with) = fold(c) {
        return Some(Change {
            start: i,
            end,
            with,
        });
    }
    if is_l(c) {
        let v = it.next().filter(|&v| is_v(v))?;
        let mut s = S_BASE + ((c as u32 - L_BASE) * V_COUNT + (v as u32 - V_BASE)) * T_COUNT;
        let mut end = end + v.len_utf8();
        if let Some(t) = it.next().filter(|&t| is_t(t)) {
            s += t as u32 - T_BASE;
            end += t.len_utf8();
        }
        return Some(Change {
            start: i,
            end,
            with: char::from_u32(s),
        });
    }
    if is_t(c) {
        let prev = text[..i].chars().next_back().filter(|&p| is_lv(p))?;
        return Some(Change {
            start: i - prev.len_utf8(),
            end,
            with: char::from_u32(prev as u32 + (c as u32 - T_BASE)),
        });
    }
    None
}

/// Whether `b` can begin a char that [`change_at`] may change: the lead bytes of U+0080..=U+00BF
/// (`0xC2`), U+1000..=U+3FFF (`0xE1`..=`0xE3`) and U+F000..=U+FFFF (`0xEF`). Never a UTF-8
/// continuation byte, so a hit is a char boundary.
fn is_lead(b: u8) -> bool {
    b == 0xC2 || b.wrapping_sub(0xE1) <= 2 || b == 0xEF
}

/// The first byte at or after `from` that [`is_lead`], 16 bytes at a time: one pass over the
/// text for all five lead bytes (two `memchr` passes and an `is_ascii` pass before).
fn next_lead(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    #[cfg(target_arch = "x86_64")]
    while i + 16 <= bytes.len() {
        // SAFETY: SSE2 is part of x86_64; the load reads `bytes[i..i + 16]`, in bounds.
        let mask = unsafe { lead_mask16(bytes.as_ptr().add(i)) };
        if mask != 0 {
            return Some(i + mask.trailing_zeros() as usize);
        }
        i += 16;
    }
    // The tail of fewer than 16 bytes: the last 16 bytes of the text, the places before `i`
    // shifted out (most texts are short lines; a byte loop here was ~1/7 of this search's
    // instructions on the bench text).
    #[cfg(target_arch = "x86_64")]
    if bytes.len() >= 16 && i < bytes.len() {
        let last = bytes.len() - 16;
        // SAFETY: SSE2 is part of x86_64; the load reads `bytes[last..last + 16]`, in bounds.
        let mask = unsafe { lead_mask16(bytes.as_ptr().add(last)) } >> (i - last);
        return (mask != 0).then(|| i + mask.trailing_zeros() as usize);
    }
    bytes[i.min(bytes.len())..]
        .iter()
        .position(|&b| is_lead(b))
        .map(|k| i + k)
}

/// Bit `k` set iff [`is_lead`]`(p[k])`, for the 16 bytes at `p`.
///
/// # Safety
/// `p..p + 16` must be readable.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn lead_mask16(p: *const u8) -> u32 {
    use std::arch::x86_64::*;
    // SAFETY: the caller's contract; SSE2 is always there on x86_64.
    unsafe {
        let v = _mm_loadu_si128(p.cast());
        let c2 = _mm_cmpeq_epi8(v, _mm_set1_epi8(0xC2u8 as i8));
        let ef = _mm_cmpeq_epi8(v, _mm_set1_epi8(0xEFu8 as i8));
        // E1..=E3: v - E1 (wrapping) is at most 2, unsigned.
        let t = _mm_sub_epi8(v, _mm_set1_epi8(0xE1u8 as i8));
        let e = _mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8(2)), t);
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(c2, ef), e)) as u32
    }
}

/// The next change at or after byte `from` (a char boundary), skipping lead bytes whose char
/// changes nothing.
fn next_change(text: &str, from: usize) -> Option<Change> {
    let bytes = text.as_bytes();
    let mut pos = from;
    loop {
        let hit = next_lead(bytes, pos)?;
        if let Some(c) = change_at(text, hit) {
            return Some(c);
        }
        pos = hit + 1;
    }
}

/// Whether [`normalize`] would change `text`.
pub fn needs_normalization(text: &str) -> bool {
    next_change(text, 0).is_some()
}

/// The normalised view of `text`, or `None` when it has nothing to fold (the fast path:
/// detect on `text` itself).
pub fn normalize(text: &str) -> Option<NormText> {
    let first = next_change(text, 0)?;
    let mut out = String::with_capacity(text.len());
    let mut edits = Vec::new();
    let mut copied = 0;
    let mut change = Some(first);
    while let Some(ch) = change {
        if ch.start < copied {
            // A T jamo taking the precomposed syllable before it: that syllable was copied
            // verbatim (a change that made it would have taken the T as well).
            let back = copied - ch.start;
            out.truncate(out.len() - back);
        } else {
            out.push_str(&text[copied..ch.start]);
        }
        let norm_start = out.len();
        if let Some(c) = ch.with {
            out.push(c);
        }
        edits.push(Edit {
            norm_start,
            norm_end: out.len(),
            orig_start: ch.start,
            orig_end: ch.end,
        });
        copied = ch.end;
        change = next_change(text, copied);
    }
    out.push_str(&text[copied..]);
    Some(NormText { text: out, edits })
}

/// A dictionary term or pattern literal folded the same way as scanned text, so that terms
/// written with full-width letters or odd spaces still match.
pub fn normalize_term(term: &str) -> Cow<'_, str> {
    match normalize(term) {
        Some(n) => Cow::Owned(n.text),
        None => Cow::Borrowed(term),
    }
}

impl NormText {
    /// The normalised text, on which detectors run.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The original offset where the char starting at normalised byte `p` starts
    /// (`p == len` maps to the original end of the text's last char).
    pub fn map_start(&self, p: usize) -> usize {
        // Between the last edit ending at or before p and p, bytes are copied: the offset
        // moves with them. (Removals at p come before the char; an edit producing the char
        // at p starts right where that copy ends.)
        let j = self.edits.partition_point(|e| e.norm_end <= p);
        match j.checked_sub(1).map(|k| self.edits[k]) {
            Some(e) => p - e.norm_end + e.orig_end,
            None => p,
        }
    }

    /// The original offset where the char ending at normalised byte `p` ends (`p == 0` maps
    /// to the original start of the text's first char).
    pub fn map_end(&self, p: usize) -> usize {
        // Edits are sorted by norm_end; the one producing the char ending at p is the first
        // non-empty edit with norm_end == p (removals at p come after that char).
        let i = self.edits.partition_point(|e| e.norm_end < p);
        if let Some(e) = self.edits.get(i) {
            if e.norm_end == p && e.norm_start < p {
                return e.orig_end;
            }
        }
        match i.checked_sub(1).map(|k| self.edits[k]) {
            Some(e) => p - e.norm_end + e.orig_end,
            None => p,
        }
    }

    /// Maps a non-empty normalised span to the original span it came from.
    pub fn to_original(&self, start: usize, end: usize) -> (usize, usize) {
        if start >= end {
            let s = self.map_start(start);
            return (s, s);
        }
        (self.map_start(start), self.map_end(end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn norm(s: &str) -> String {
        normalize_term(s).into_owned()
    }

    #[test]
    fn folds_the_listed_characters() {
        assert_eq!(norm("０１０-１２３４-５６７８"), "010-1234-5678");
        assert_eq!(norm("010\u{200b}1234\u{200b}5678"), "01012345678");
        assert_eq!(norm("ｋｉｍ＠ｅｘａｍｐｌｅ．ｃｏｍ"), "kim@example.com");
        assert_eq!(norm("010\u{2013}1234\u{2212}5678"), "010-1234-5678");
        assert_eq!(norm("010\u{00a0}1234\u{3000}5678"), "010 1234 5678");
        assert_eq!(
            norm("a\u{feff}b\u{00ad}c\u{202e}d\u{2066}e\u{2060}f"),
            "abcdef"
        );
        assert_eq!(norm("example。com"), "example.com");
        assert_eq!(norm("a﹫b"), "a@b");
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        for s in [
            "",
            "plain ascii",
            "홍길동 고객님, 주문하신 상품이 발송되었습니다.",
            "“quoted” … ‘single’ · ㅋㅋㅋ ㄱㄴ 「括弧」 ・ €",
            "\u{1100} lone L, lone V \u{1161}, lone T \u{11a8}",
        ] {
            assert!(normalize(s).is_none(), "{s:?}");
            assert!(!needs_normalization(s));
        }
    }

    #[test]
    fn composes_conjoining_jamo() {
        // 홍 = ᄒ ᅩ ᆼ, 길 = ᄀ ᅵ ᆯ, 동 = ᄃ ᅩ ᆼ
        let decomposed =
            "\u{1112}\u{1169}\u{11bc}\u{1100}\u{1175}\u{11af}\u{1103}\u{1169}\u{11bc}님";
        assert_eq!(norm(decomposed), "홍길동님");
        // LV syllable + T jamo, and L + V without T.
        assert_eq!(norm("호\u{11bc}"), "홍");
        assert_eq!(norm("\u{1100}\u{1161}"), "가");
        let n = normalize(decomposed).unwrap();
        // 길 (normalised bytes 3..6) came from original bytes 9..18.
        assert_eq!(n.to_original(3, 6), (9, 18));
        let n = normalize("x호\u{11bc}y").unwrap();
        assert_eq!(n.as_str(), "x홍y");
        assert_eq!(n.to_original(1, 4), (1, 7));
        assert_eq!(n.to_original(4, 5), (7, 8));
    }

    #[test]
    fn spans_cover_inner_removed_chars_but_not_edge_ones() {
        let t = "\u{200b}010\u{200b}1234\u{200b}5678\u{200b}!";
        let n = normalize(t).unwrap();
        assert_eq!(n.as_str(), "01012345678!");
        let (s, e) = n.to_original(0, 11);
        assert_eq!(&t[s..e], "010\u{200b}1234\u{200b}5678");
        let (s, e) = n.to_original(11, 12);
        assert_eq!(&t[s..e], "!");
        let t = "Ａ１\u{200b}Ｂ";
        let n = normalize(t).unwrap();
        assert_eq!(n.as_str(), "A1B");
        assert_eq!(n.to_original(0, 1), (0, 3));
        assert_eq!(n.to_original(1, 2), (3, 6));
        assert_eq!(n.to_original(2, 3), (9, 12));
        assert_eq!(n.to_original(0, 3), (0, 12));
    }

    /// Characters that exercise every fold, plus ordinary ones.
    fn interesting() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "a", "1", "-", " ", "@", ".", "가", "호", "한글", "é", "“", "ㅋ", "０", "Ａ", "＠",
            "．", "\u{3000}", "\u{200b}", "\u{200d}", "\u{feff}", "\u{00ad}", "\u{202e}",
            "\u{2066}", "\u{2013}", "\u{2212}", "\u{00a0}", "。", "ー", "\u{1100}", "\u{1161}",
            "\u{11a8}", "\u{1112}", "\u{1169}", "\u{11bc}", "😀", "\u{fe6b}",
        ]);
        prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
    }

    fn check_map(t: &str) {
        let Some(n) = normalize(t) else {
            assert!(!needs_normalization(t));
            return;
        };
        let nt = n.as_str();
        let bounds: Vec<usize> = nt
            .char_indices()
            .map(|(i, _)| i)
            .chain([nt.len()])
            .collect();
        let mut last_start = 0;
        let mut last_end = 0;
        for w in bounds.windows(2) {
            let (s, e) = n.to_original(w[0], w[1]);
            assert!(
                t.is_char_boundary(s) && t.is_char_boundary(e),
                "{t:?} {w:?}"
            );
            assert!(s < e && e <= t.len(), "{t:?} {w:?} -> {s}..{e}");
            assert!(s >= last_start && s >= last_end, "not monotonic: {t:?}");
            assert!(e > last_end);
            // The original chars behind one normalised char normalise to exactly that char.
            assert_eq!(norm(&t[s..e]), &nt[w[0]..w[1]], "{t:?} {w:?}");
            last_start = s;
            last_end = e;
        }
        // Any span maps to a span whose normalisation is the span (removals at the edges
        // excluded, inside included).
        for (a, &s) in bounds.iter().enumerate() {
            for &e in &bounds[a + 1..] {
                let (os, oe) = n.to_original(s, e);
                assert_eq!(norm(&t[os..oe]), &nt[s..e]);
            }
        }
    }

    proptest! {
        #[test]
        fn map_is_monotonic_on_boundaries_and_faithful(t in interesting()) {
            check_map(&t);
        }

        #[test]
        fn arbitrary_strings(t in any::<String>()) {
            check_map(&t);
        }

        /// The 16-byte search finds what a byte-by-byte one does, from every place, across
        /// chunk edges and in the scalar tail.
        #[test]
        fn next_lead_is_the_first_lead_byte(
            bytes in prop::collection::vec(
                prop_oneof![Just(0xC2u8), Just(0xE1), Just(0xE2), Just(0xE3), Just(0xEF),
                    Just(0xE0), Just(0xE4), Just(0xC3), Just(0xEE), Just(0xF0), any::<u8>()],
                0..80,
            ),
            sparse in 0usize..4,
        ) {
            // Mostly ASCII with a few candidates, as in text, or dense.
            let bytes: Vec<u8> = bytes
                .iter()
                .enumerate()
                .map(|(i, &b)| if sparse > 0 && i % (sparse * 7) != 0 { b'a' } else { b })
                .collect();
            for from in 0..=bytes.len() {
                let want = bytes[from..].iter().position(|&b| is_lead(b)).map(|k| from + k);
                prop_assert_eq!(next_lead(&bytes, from), want);
            }
        }
    }

    #[test]
    fn is_lead_is_the_five_lead_bytes() {
        let leads: Vec<u8> = (0..=255u8).filter(|&b| is_lead(b)).collect();
        assert_eq!(leads, [0xC2, 0xE1, 0xE2, 0xE3, 0xEF]);
    }
}
