//! The placeholder format, and a tolerant parser for what models write back.
//!
//! A finding is replaced by `[LABEL_N]`, e.g. `[EMAIL_1]`, `[CREDIT_CARD_2]`, where `LABEL` is
//! the contract label and `N` counts distinct values of that label within a conversation,
//! starting at 1.
//!
//! Why this shape:
//! * LLMs copy short bracketed upper-case tokens verbatim; the label tells the model what
//!   the value was ("write to [EMAIL_1]") so answers stay useful.
//! * Only ASCII letters, digits, `_` and brackets: nothing that JSON, SSE or Markdown escape,
//!   so a placeholder looks the same in the raw bytes of a request or response.
//! * Ordinary text rarely contains an upper-case contract label with an index in brackets.
//!   Limit: if a user literally types `[EMAIL_1]`, a response containing it is restored to
//!   the conversation's first e-mail.
//!
//! What models do to placeholders, and the parser accepts ([`parse_at`]): other cases
//! (`[Email_1]`), spaces or hyphens for the underscores (`[EMAIL 1]`, `[CREDIT-CARD-1]`),
//! underscores dropped (`[CREDITCARD1]`), spaces inside the brackets (`[ EMAIL_1 ]`).
//! A Korean particle right after the bracket (`[PERSON_1]님`) needs nothing special: the
//! placeholder ends at `]`.

use crate::detect::Label;
use std::fmt;

/// The longest text, in bytes, that [`parse_at`] can accept as one placeholder. A streaming
/// restorer never needs to hold back more than this.
pub const MAX_PLACEHOLDER_LEN: usize = 48;

/// Placeholder for the `n`-th distinct value of `label` in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Placeholder {
    pub label: Label,
    pub n: u32,
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}_{}]", self.label.as_str(), self.n)
    }
}

/// Outcome of trying to read a placeholder at the start of some text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// A placeholder spanning the first `len` bytes.
    Match {
        placeholder: Placeholder,
        len: usize,
    },
    /// The text is a proper prefix of something that may still become a placeholder
    /// (only when the text ends before the closing bracket).
    Incomplete,
    /// Not a placeholder.
    No,
}

fn is_sep(b: u8) -> bool {
    b == b'_' || b == b' ' || b == b'-'
}

/// Reads a placeholder at the start of `s` (which should start with `[`).
pub fn parse_at(s: &[u8]) -> Parse {
    if s.first() != Some(&b'[') {
        return Parse::No;
    }
    // Collect the letters of the label (separators dropped, upper-cased), then digits.
    let mut letters = [0u8; MAX_PLACEHOLDER_LEN];
    let mut nl = 0usize;
    let mut digits: u64 = 0;
    let mut nd = 0usize;
    let mut i = 1;
    // leading spaces
    while i < s.len() && s[i] == b' ' && i < 3 {
        i += 1;
    }
    while i < s.len() {
        if i >= MAX_PLACEHOLDER_LEN {
            return Parse::No;
        }
        let b = s[i];
        if nd == 0 && b.is_ascii_alphabetic() {
            letters[nl] = b.to_ascii_uppercase();
            nl += 1;
            if !label_prefix_ok(&letters[..nl]) {
                return Parse::No;
            }
        } else if is_sep(b) {
            if nl == 0 {
                return Parse::No;
            }
            if nd > 0 {
                // only trailing spaces may follow the number
                if b != b' ' {
                    return Parse::No;
                }
                let mut j = i;
                while j < s.len() && s[j] == b' ' && j - i < 2 {
                    j += 1;
                }
                if j == s.len() {
                    return Parse::Incomplete;
                }
                if s[j] != b']' {
                    return Parse::No;
                }
                return finish(&letters[..nl], digits, j + 1);
            }
        } else if b.is_ascii_digit() {
            if nl == 0 || nd >= 6 {
                return Parse::No;
            }
            digits = digits * 10 + u64::from(b - b'0');
            nd += 1;
        } else if b == b']' {
            if nd == 0 {
                return Parse::No;
            }
            return finish(&letters[..nl], digits, i + 1);
        } else {
            return Parse::No;
        }
        // separators: at most two in a row
        if is_sep(b) && i >= 2 && is_sep(s[i - 1]) && is_sep(s[i - 2]) {
            return Parse::No;
        }
        i += 1;
    }
    if i >= MAX_PLACEHOLDER_LEN {
        Parse::No
    } else {
        Parse::Incomplete
    }
}

fn finish(letters: &[u8], n: u64, len: usize) -> Parse {
    match label_from_letters(letters) {
        Some(label) if n > 0 && n <= u64::from(u32::MAX) => Parse::Match {
            placeholder: Placeholder { label, n: n as u32 },
            len,
        },
        _ => Parse::No,
    }
}

fn squashed(label: Label) -> impl Iterator<Item = u8> {
    label.as_str().bytes().filter(|&b| b != b'_')
}

fn label_prefix_ok(letters: &[u8]) -> bool {
    Label::ALL.iter().any(|&l| {
        let mut it = squashed(l);
        letters.iter().all(|&b| it.next() == Some(b))
    })
}

fn label_from_letters(letters: &[u8]) -> Option<Label> {
    Label::ALL
        .iter()
        .copied()
        .find(|&l| squashed(l).eq(letters.iter().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(label: Label, n: u32) -> Placeholder {
        Placeholder { label, n }
    }

    #[test]
    fn formats() {
        assert_eq!(p(Label::Email, 1).to_string(), "[EMAIL_1]");
        assert_eq!(p(Label::CreditCard, 12).to_string(), "[CREDIT_CARD_12]");
    }

    #[test]
    fn parses_own_output_for_every_label() {
        for l in Label::ALL {
            let s = p(l, 7).to_string();
            assert_eq!(
                parse_at(s.as_bytes()),
                Parse::Match {
                    placeholder: p(l, 7),
                    len: s.len()
                }
            );
        }
    }

    #[test]
    fn tolerates_what_models_do() {
        for s in [
            "[email_1]",
            "[Email_1]",
            "[EMAIL 1]",
            "[ EMAIL_1 ]",
            "[EMAIL-1]",
            "[EMAIL1]",
        ] {
            match parse_at(s.as_bytes()) {
                Parse::Match { placeholder, len } => {
                    assert_eq!(placeholder, p(Label::Email, 1), "{s}");
                    assert_eq!(len, s.len(), "{s}");
                }
                other => panic!("{s}: {other:?}"),
            }
        }
        assert!(matches!(
            parse_at(b"[credit card 3]"),
            Parse::Match {
                placeholder: Placeholder {
                    label: Label::CreditCard,
                    n: 3
                },
                ..
            }
        ));
        assert!(matches!(
            parse_at("[PERSON_1]님".as_bytes()),
            Parse::Match { len: 10, .. }
        ));
    }

    #[test]
    fn incomplete_and_rejected() {
        for s in [
            "[",
            "[E",
            "[EMAIL",
            "[EMAIL_",
            "[EMAIL_1",
            "[ ",
            "[CREDIT_CA",
            "[EMAIL_1 ",
        ] {
            assert_eq!(parse_at(s.as_bytes()), Parse::Incomplete, "{s}");
        }
        for s in [
            "[]",
            "[X",
            "[EMAIL]",
            "[EMAIL_0]",
            "[EMAILS_1]",
            "[1]",
            "[EMAIL_1a]",
            "(EMAIL_1)",
            "[EMAIL___1]",
            "[EMAIL_1234567]",
        ] {
            assert_eq!(parse_at(s.as_bytes()), Parse::No, "{s}");
        }
    }
}
