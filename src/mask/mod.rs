//! Masking: replacing findings with placeholders, and remembering what they stood for.
//!
//! * [`placeholder`]: the `[LABEL_N]` format and the tolerant parser restore uses.
//! * [`vault`]: the per-conversation mapping placeholder <-> value, behind the [`Vault`] trait
//!   (in memory with TTL and a memory bound; a shared store can implement the same trait).
//! * [`apply`]: splices placeholders into a text given its merged findings.
//!
//! The same value gets the same placeholder everywhere in a conversation (across fields,
//! messages and turns), because the vault numbers values per conversation and label.

pub mod placeholder;
pub mod vault;

pub use placeholder::{Placeholder, MAX_PLACEHOLDER_LEN};
pub use vault::{Assigned, ConversationId, Mapping, MemoryVault, Vault, VaultError};

use crate::detect::Finding;

/// Returns `text` with each finding replaced by its placeholder.
///
/// `findings` must be sorted and non-overlapping (as [`crate::detect::Engine::detect`]
/// returns them) and `placeholders[i]` belongs to `findings[i]`.
pub fn apply(text: &str, findings: &[Finding], placeholders: &[Placeholder]) -> String {
    debug_assert_eq!(findings.len(), placeholders.len());
    let mut out = String::with_capacity(text.len() + findings.len() * 8);
    let mut at = 0;
    for (f, p) in findings.iter().zip(placeholders) {
        debug_assert!(f.start >= at, "findings overlap or are unsorted");
        out.push_str(&text[at..f.start]);
        use std::fmt::Write;
        let _ = write!(out, "{p}");
        at = f.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Label;
    use std::borrow::Cow;

    #[test]
    fn apply_replaces_in_order() {
        let text = "mail a@b.co or call 010-2345-6789.";
        let fs = vec![
            Finding {
                start: 5,
                end: 11,
                label: Label::Email,
                subtype: None,
                detector: Cow::Borrowed("t"),
                score: 1.0,
            },
            Finding {
                start: 20,
                end: 33,
                label: Label::Phone,
                subtype: None,
                detector: Cow::Borrowed("t"),
                score: 1.0,
            },
        ];
        let ps = [
            Placeholder {
                label: Label::Email,
                n: 1,
            },
            Placeholder {
                label: Label::Phone,
                n: 2,
            },
        ];
        assert_eq!(apply(text, &fs, &ps), "mail [EMAIL_1] or call [PHONE_2].");
    }
}
