//! Code-shaped model spans: which spans a NER model reports are parts of program text, not
//! names, and are dropped before they become findings.
//!
//! Why: prompts sent to LLM APIs are full of code, logs and config, and the models were
//! trained on prose. On Rust source (`scripts/fp_rate.sh`) they tagged identifiers as people
//! and organisations, and often only part of one: `adler32_` in `adler32_slice(...)`,
//! `adler` in `adler.write_slice(...)`, `Vec<String>`. Masking such a span turns
//! `adler32_slice` into `<ORGANIZATION_1>slice`: the model upstream sees broken code, and
//! nothing private was protected. A name in running text has none of these shapes.
//!
//! What [`trim_or_drop`] does with a span `start..end` of the text the model saw:
//! 1. trims ASCII punctuation that a name does not begin or end with from both ends
//!    (`Adler-` from `Adler-32`: the model tagged the hyphen too); `.`, `&`, `'`, `(`, `)`,
//!    `!`, `@` and `_` stay (`U.S.`, `AT&T`, `(주)`, `Yahoo!`, `@carolinaxo___`); Korean
//!    particles and titles glued to a Latin name are trimmed too (`Acme Corp의`);
//! 2. drops the span when what is left
//!    - cuts an ASCII identifier: it starts right after, or ends right before, an ASCII
//!      letter, digit or `_` while its own first (last) char is one too (`adler32_slice`,
//!      `MAX_RETRIES`);
//!    - holds a char no name holds: `< > = { } [ ] | \ $` or a backtick (`_` does: social
//!      handles such as `@Jessica_Chobot` are people, and the English training sets label
//!      them so; `;` does in HTML-escaped text, `AT&amp;T`);
//!    - is reached by member access or a path: right after `ident.` (not a title: `Dr.Kim`)
//!      or `::`, or right before `.ident` or `::` (`self.adler`, `adler.write`,
//!      `Adler32::new`, `std::ops`);
//!    - starts with, or follows, a keyword of a programming language that is not an English
//!      word (`fn`, `mut`, `impl`, `struct`, `dyn`, `def`, `var`, ...), is bound by `let`
//!      (`let hasher_a =`), or is one lower-case word glued to `(` (`aesdec(...)`).
//!
//! Limits: a type or variable standing alone (`for Adler32 {`, `Vec<_>`, an argument) keeps
//! its span: telling it from a name needs more of the line than the span's neighbours.
//! Only ASCII code punctuation is looked at; Hangul names followed by particles are never
//! affected (Hangul is not an identifier char here).

/// The span to report for a model span `start..end` (byte offsets on char boundaries of
/// `text`), or `None` when it is code-shaped (see the module docs).
pub fn trim_or_drop(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let trim = |c: char| trimmable(c) || c.is_whitespace();
    let span = &text[start..end];
    let lead = span.len() - span.trim_start_matches(trim).len();
    let trimmed = span[lead..].trim_end_matches(trim);
    if trimmed.is_empty() {
        return None;
    }
    let trimmed = without_particles(trimmed);
    let start = start + lead;
    let end = start + trimmed.len();
    let (before, after) = (&text[..start], &text[end..]);
    let first = trimmed.chars().next()?;
    let last = trimmed.chars().next_back()?;
    let cuts =
        |inside: char, outside: Option<char>| is_ident(inside) && outside.is_some_and(is_ident);
    if cuts(first, before.chars().next_back()) || cuts(last, after.chars().next()) {
        return None;
    }
    if trimmed.chars().any(never_in_name) {
        return None;
    }
    if before.ends_with("::") || after.starts_with("::") {
        return None;
    }
    // `ident.` right before, `.ident` right after: member access (a title before the dot,
    // `Dr.Kim`, is not one).
    if let Some(rest) = before.strip_suffix('.') {
        let word = &rest[rest.trim_end_matches(is_ident).len()..];
        if !word.is_empty() && !TITLES.contains(&word) {
            return None;
        }
    }
    if let Some(rest) = after.strip_prefix('.') {
        if rest
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        {
            return None;
        }
    }
    // Code keywords: the span starts with one (`fn start_state`, `mut adler`, `dyn Fn`), or
    // one comes right before it (`struct State`, `impl Default`), or it is bound by `let`
    // (`let hasher_a = ...`, not `let Sarah know`).
    let first_word = trimmed
        .split(|c: char| !is_ident(c))
        .next()
        .unwrap_or_default();
    if KEYWORDS.contains(&first_word) {
        return None;
    }
    let prev_word = before
        .strip_suffix(' ')
        .map(|b| &b[b.trim_end_matches(is_ident).len()..]);
    if prev_word.is_some_and(|w| KEYWORDS.contains(&w)) {
        return None;
    }
    if prev_word == Some("let") && after.trim_start_matches(' ').starts_with(['=', ':']) {
        return None;
    }
    // A lower-case word glued to `(` is a function being called or defined (`aesdec(...)`).
    if after.starts_with('(')
        && trimmed
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    Some((start, end))
}

/// Keywords of common programming languages that are not English words, so a span that is,
/// starts with or follows one is code (`let`, `for`, `in`, `if`, `use` are English too).
const KEYWORDS: &[&str] = &[
    "fn",
    "mut",
    "impl",
    "struct",
    "enum",
    "pub",
    "const",
    "static",
    "trait",
    "mod",
    "dyn",
    "def",
    "elif",
    "var",
    "val",
    "func",
    "typedef",
    "namespace",
    "nullptr",
];

/// `span` without the Korean particles and titles glued to a Latin name at its end
/// (`Acme Corp의`, `John Smith와`: the English model reads such a word whole).
fn without_particles(span: &str) -> &str {
    let run = span.len()
        - span
            .trim_end_matches(crate::detect::korean_name::is_syllable)
            .len();
    let (name, rest) = span.split_at(span.len() - run);
    if run > 0
        && name.ends_with(|c: char| c.is_ascii_alphabetic())
        && crate::detect::korean_name::is_suffix_chain(rest)
    {
        name
    } else {
        span
    }
}

/// Abbreviated titles written right before a name without a space (`Dr.Kim`, `Mr.Smith`).
const TITLES: &[&str] = &[
    "Mr", "Mrs", "Ms", "Dr", "Prof", "Sr", "Jr", "St", "Rev", "Gen", "Col", "Capt", "Lt", "Sgt",
    "Hon", "Mx",
];

/// ASCII letters, digits and `_`: the chars of an identifier in most languages.
fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// ASCII punctuation trimmed from a span's ends.
fn trimmable(c: char) -> bool {
    c.is_ascii_punctuation() && !matches!(c, '.' | '&' | '\'' | '(' | ')' | '!' | '@' | '_')
}

fn never_in_name(c: char) -> bool {
    matches!(
        c,
        '<' | '>' | '=' | '{' | '}' | '[' | ']' | '|' | '\\' | '$' | '`'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of the span kept for the `«...»` part of `marked`, or `None`.
    fn kept(marked: &str) -> Option<String> {
        let start = marked.find('«').expect("a «");
        let text = marked.replace(['«', '»'], "");
        let end = marked.find('»').expect("a »") - '«'.len_utf8();
        trim_or_drop(&text, start, end).map(|(s, e)| text[s..e].to_owned())
    }

    #[test]
    fn names_in_prose_are_kept() {
        for (marked, want) in [
            (
                "Please forward this to «Sarah Connor» at Acme.",
                "Sarah Connor",
            ),
            ("«U.S.» officials said", "U.S."),
            ("stock of «AT&T» fell", "AT&T"),
            ("«O'Brien»'s desk", "O'Brien"),
            ("«김민준» 과장님께", "김민준"),
            ("«김민준»과장님께", "김민준"),
            ("«(주)가림»에 문의", "(주)가림"),
            ("«Yahoo!» Japan", "Yahoo!"),
            ("Ask «Mr. Smith».", "Mr. Smith"),
            ("met «Kim» (sales)", "Kim"),
            ("«Adler-»32 checksum", "Adler"),
            ("\"«Leeds»\" office", "Leeds"),
            ("visit «Seoul», then", "Seoul"),
            ("Dr.«Kim» will call", "Kim"),
            (
                "고객 김민준님이 «Acme Corp의» John Smith와 미팅",
                "Acme Corp",
            ),
            ("meeting with «John Smith와» tomorrow", "John Smith"),
            ("«Google맵»으로", "Google맵"),
            ("«서해5도» 주민", "서해5도"),
            ("cc Mr.«Smith».", "Smith"),
            ("please let «Sarah» know", "Sarah"),
            ("«Fn Inc.» shares", "Fn Inc."),
            ("call «John»(sales) today", "John"),
            ("«Defne Yilmaz» joined", "Defne Yilmaz"),
            ("@«Jessica_Chobot» did you see", "Jessica_Chobot"),
            ("Well done @ «carolinaxo___» Follow me", "carolinaxo___"),
            ("«AT&amp;T» Retail", "AT&amp;T"),
        ] {
            assert_eq!(kept(marked).as_deref(), Some(want), "{marked}");
        }
    }

    #[test]
    fn code_shaped_spans_are_dropped() {
        for marked in [
            "assert_eq!(«adler32_»slice(&[0]), 1);",
            "assert_eq!(«adler32»_slice(&[0]), 1);",
            "let n = «MAX»_RETRIES;",
            "«adler».write_slice(&[0, 1, 2]);",
            "self.«adler» = 1;",
            "let a = «Adler32»::new();",
            "use std::«Channel»;",
            "if let Some(x) = «version_check»::Channel::read()",
            "«-»",
            "«Vec<String>»",
            "«a = b»",
            "«fn start_state»(&self)",
            "let «mut adler» = Adler32::new();",
            "hash_builder: &«dyn Fn»() -> T",
            "«fn»",
            "struct «State» {",
            "impl «Default» for Adler32 {",
            "let «hasher_a» = AHasher::default();",
            "let «words»: Vec<_> = Vec::new();",
            "let combined = «aesdec»(self.sum, self.enc);",
        ] {
            assert_eq!(kept(marked), None, "{marked}");
        }
    }
}
