//! Audit records: one JSON line per request, for compliance, never holding a raw value.
//!
//! An [`AuditEvent`] says who called which route and model, what was found (label counts),
//! which placeholders were used, and for each replaced value only a keyed hash
//! ([`ValueHasher`]): the same value gives the same hash under the same key, so compliance can
//! correlate occurrences across requests without ever seeing the value. Events go to an
//! [`AuditSink`]: [`FileSink`] appends JSON lines from a background thread, [`MemorySink`]
//! keeps them for tests.
//!
//! Why: the gateway exists to keep values from leaving; its own log must not become the leak.
//! Nothing in this module takes detected text except [`ValueHasher::hash`], which returns only
//! the truncated MAC.
//!
//! Limits: the file sink's queue is bounded (`[audit] queue_capacity`): when the disk stalls
//! that long, new events are dropped and counted rather than block requests; there is no
//! rotation (use logrotate with copytruncate, or a new path on restart). Hashes of low-entropy values (a 4-digit PIN) can be brute-forced by whoever holds
//! the key: keep the key away from the log.

mod hash;
mod sink;

pub use hash::ValueHasher;
pub use sink::{AuditSink, FileSink, Lost, MemorySink, DEFAULT_QUEUE_CAPACITY};

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One request, as the audit log records it. Every field is either metadata chosen by the
/// gateway (route, api, codes, counts, timings), an opaque id, or a keyed hash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When the request arrived: RFC 3339, UTC, milliseconds (see [`timestamp_now`]).
    pub time: String,
    pub request_id: String,
    /// The caller's identity if known: a keyed hash of its API key, or its mTLS subject;
    /// never a key.
    pub client: Option<String>,
    /// The route prefix the request matched (from the config).
    pub route: String,
    /// The upstream host only (no path or query: Gemini puts keys in the query).
    pub upstream: String,
    /// The API format name (e.g. `openai.chat`).
    pub api: String,
    pub model: Option<String>,
    /// An opaque conversation id (already hashed or random).
    pub conversation: Option<String>,
    /// Label -> number of findings masked in this request.
    pub findings: BTreeMap<String, u64>,
    /// One entry per distinct value replaced: its placeholder and keyed hash.
    pub values: Vec<AuditValue>,
    /// `masked`, `forwarded` (nothing found), `blocked` or `passthrough` (not inspected).
    pub action: String,
    /// The HTTP status returned to the client.
    pub status: u16,
    /// An error code such as `upstream_timeout`; never a message with values in it.
    pub error: Option<String>,
    /// Total time in the gateway, upstream included.
    pub latency_ms: f64,
    /// Time waiting for the upstream, when it was called.
    pub upstream_ms: Option<f64>,
    /// Placeholders in the answer that the vault could not resolve.
    pub unresolved: u64,
    /// Whether the answer was streamed (SSE).
    pub streamed: bool,
    /// Set when the request was forwarded with less screening than configured, e.g.
    /// `ner_timeout_rules_only` (the NER models ran out of time and `on_timeout = "rules_only"`
    /// forwarded it masked by the rules alone). Absent from the JSON line when not degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
}

/// A replaced value as the audit log shows it: label, placeholder and keyed hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditValue {
    pub label: String,
    pub placeholder: String,
    /// From [`ValueHasher::hash`]: `hmac-sha256:` and 32 hex digits.
    pub hash: String,
}

/// Errors setting up an audit sink.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The audit file could not be opened or created.
    #[error("cannot open audit log {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start audit writer thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl AuditError {
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::INTERNAL_SERVER_ERROR
    }

    pub fn fault(&self) -> &'static str {
        "internal"
    }
}

/// Formats a time as RFC 3339 in UTC with milliseconds, e.g. `2026-01-31T09:15:02.123Z`.
pub fn timestamp(t: std::time::SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000Z"))
}

/// [`timestamp`] of now.
pub fn timestamp_now() -> String {
    timestamp(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps_are_rfc3339_utc_millis() {
        let t = UNIX_EPOCH + Duration::from_millis(1_769_850_902_123);
        assert_eq!(timestamp(t), "2026-01-31T09:15:02.123Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let now = timestamp_now();
        assert_eq!(now.len(), 24, "{now}");
        assert!(now.ends_with('Z'));
    }

    #[test]
    fn serialised_event_holds_no_raw_values() {
        let hasher = ValueHasher::from_key(Secret::new(b"audit-test-key".to_vec()));
        let planted = [
            ("EMAIL", "[EMAIL_1]", "kim.minsu@example.com"),
            ("PHONE", "[PHONE_1]", "010-9876-5432"),
            ("NATIONAL_ID", "[NATIONAL_ID_1]", "900101-1234567"),
            ("PERSON", "[PERSON_1]", "김민수"),
            ("SECRET", "[SECRET_1]", "sk-proj-AbCdEf0123456789"),
        ];
        let mut findings = BTreeMap::new();
        let values: Vec<AuditValue> = planted
            .iter()
            .map(|(label, placeholder, raw)| {
                *findings.entry(label.to_string()).or_insert(0) += 1;
                AuditValue {
                    label: label.to_string(),
                    placeholder: placeholder.to_string(),
                    hash: hasher.hash(label, raw),
                }
            })
            .collect();
        let event = AuditEvent {
            time: timestamp_now(),
            request_id: "req-1".into(),
            client: Some(hasher.hash("CLIENT", "sk-client-key-999")),
            route: "/openai".into(),
            upstream: "api.openai.com".into(),
            api: "openai.chat".into(),
            model: Some("gpt-4o-mini".into()),
            conversation: Some("conv-7f3a".into()),
            findings,
            values,
            action: "masked".into(),
            status: 200,
            error: None,
            latency_ms: 12.5,
            upstream_ms: Some(10.25),
            unresolved: 0,
            streamed: true,
            degraded: None,
        };
        let json = serde_json::to_string(&event).unwrap();
        let debug = format!("{event:?}");
        for (_, _, raw) in planted.iter().chain([&("", "", "sk-client-key-999")]) {
            assert!(!json.contains(raw), "raw value in JSON: {json}");
            assert!(!debug.contains(raw), "raw value in Debug");
        }
        // Digits of the values must not appear either, e.g. with separators stripped.
        assert!(!json.contains("9876"));
        assert!(!json.contains("1234567"));
        assert!(!json.contains("minsu"));
        assert!(!json.contains('\n'), "one event must be one line");
        // What it does hold: placeholders and hashes.
        assert!(json.contains("\"[EMAIL_1]\""));
        assert!(json.contains(&hasher.hash("EMAIL", "kim.minsu@example.com")));
        assert!(json.contains("\"findings\":{\"EMAIL\":1,\"NATIONAL_ID\":1"));
        let back: AuditEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn audit_error_is_internal() {
        let e = AuditError::Open {
            path: "/nonexistent/audit.jsonl".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(e.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.fault(), "internal");
        assert!(e.to_string().contains("/nonexistent/audit.jsonl"));
    }
}
