//! Restore: putting the original values back into what the LLM API answers.
//!
//! The request went upstream with every finding replaced by a placeholder `[LABEL_N]`
//! (see [`crate::mask::placeholder`]); the answer quotes those placeholders, and the client must
//! see the real values again. Given the conversation's [`Mapping`] this module rewrites:
//!
//! * plain text: [`restore_str`] (one string) and [`StreamText`] (a string that arrives in
//!   pieces, e.g. the `content` deltas of one streamed choice) in [`text`];
//! * whole JSON bodies: [`restore_json_body`] in [`json`] (every string value; tool-call
//!   `arguments` and `partial_json` are JSON source, so values are escaped into them);
//! * SSE streams: [`SseRestorer`] in [`sse`], with the per-API knowledge of which fields are
//!   deltas in [`formats`] (OpenAI Chat Completions, OpenAI Responses, Anthropic Messages,
//!   Gemini).
//!
//! Placeholders are recognised only through [`crate::mask::placeholder::parse_at`], which is
//! tolerant of what models do to them (`[Email 1]`, `[CREDIT-CARD-2]`). A well-formed placeholder
//! that the mapping does not know (the conversation expired, or the model invented one) is left
//! as is and counted in [`RestoreStats::unresolved`]; a wrong value is never put in.
//!
//! Streaming holds back only a suffix that may still become a placeholder (at most
//! [`crate::mask::MAX_PLACEHOLDER_LEN`] bytes per delta stream): text without `[` goes out at
//! once, so time to first token does not change.
//!
//! Limits: a placeholder the model splits with markup (`[EMAIL_**1**]`) or escapes in JSON
//! source (`[EMAIL\u005f1]`) is not recognised. Errors never contain any response text.

pub mod formats;
pub mod json;
pub mod sse;
#[cfg(test)]
mod sse_tests;
pub mod text;

pub use formats::StreamFormat;
pub use json::restore_json_body;
pub use sse::{SseRestorer, DEFAULT_MAX_EVENT_BYTES};
pub use text::{restore_str, Escape, StreamText};

#[cfg(doc)]
use crate::mask::Mapping;

/// What a restore did: for metrics and the audit record (counts only, never values).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreStats {
    /// Placeholders replaced by their value.
    pub restored: u64,
    /// Well-formed placeholders the mapping does not know, left in the text as they are.
    pub unresolved: u64,
}

impl std::ops::AddAssign for RestoreStats {
    fn add_assign(&mut self, o: Self) {
        self.restored += o.restored;
        self.unresolved += o.unresolved;
    }
}

/// Why a response could not be restored. Messages never hold response text.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The upstream sent an SSE line or event larger than the bound the restorer keeps in
    /// memory (a misbehaving or hostile upstream).
    #[error("upstream SSE event exceeds {limit} bytes")]
    EventTooLarge { limit: usize },
    /// The restored JSON could not be written back (should not happen for parsed JSON).
    #[error("could not serialize the restored JSON")]
    Serialize,
}

impl RestoreError {
    /// HTTP status to answer with, when the response has not started yet.
    pub fn status(&self) -> http::StatusCode {
        match self {
            RestoreError::EventTooLarge { .. } => http::StatusCode::BAD_GATEWAY,
            RestoreError::Serialize => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Who is at fault: `"client"`, `"upstream"` or `"internal"`.
    pub fn fault(&self) -> &'static str {
        match self {
            RestoreError::EventTooLarge { .. } => "upstream",
            RestoreError::Serialize => "internal",
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use crate::detect::Label;
    use crate::mask::{Mapping, Placeholder};

    pub fn ph(label: Label, n: u32) -> Placeholder {
        Placeholder { label, n }
    }

    /// A mapping whose values are hard for JSON and SSE: quotes, backslashes, newlines,
    /// a `data:`-looking line, Korean, a value that itself looks like a placeholder.
    pub fn mapping() -> Mapping {
        let mut m = Mapping::default();
        m.insert(ph(Label::Email, 1), "kim.minsu@example.co.kr");
        m.insert(ph(Label::Person, 1), "김민수");
        m.insert(ph(Label::Phone, 1), "010-1234-5678");
        m.insert(ph(Label::Secret, 1), "p\"a\\ss\nw\tord\r\ndata: x\u{1}");
        m.insert(ph(Label::Location, 2), "서울 \"강남\" [EMAIL_1]");
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_know_status_and_fault() {
        let e = RestoreError::EventTooLarge { limit: 10 };
        assert_eq!(e.status(), http::StatusCode::BAD_GATEWAY);
        assert_eq!(e.fault(), "upstream");
        assert_eq!(e.to_string(), "upstream SSE event exceeds 10 bytes");
        let e = RestoreError::Serialize;
        assert_eq!(e.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.fault(), "internal");
    }

    #[test]
    fn stats_add() {
        let mut a = RestoreStats {
            restored: 1,
            unresolved: 2,
        };
        a += RestoreStats {
            restored: 3,
            unresolved: 4,
        };
        assert_eq!(
            a,
            RestoreStats {
                restored: 4,
                unresolved: 6
            }
        );
    }
}
