//! Raw configuration: exactly what the TOML file says, nothing checked beyond types.
//!
//! Every struct denies unknown fields, so a typo (`listne = ...`) is an error naming the
//! field instead of a silently ignored setting. Every field has a default, so an empty file
//! (or none) is the embedded default. [`super::Config::from_raw`] validates these.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub server: RawServer,
    pub upstream: RawUpstream,
    #[serde(rename = "route")]
    pub routes: Option<Vec<RawRoute>>,
    pub detect: RawDetect,
    pub vault: RawVault,
    pub conversation: RawConversation,
    pub audit: RawAudit,
    pub log: RawLog,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: String,
    pub max_body_bytes: u64,
    pub header_read_timeout_ms: u64,
    pub body_read_timeout_ms: u64,
    pub shutdown_grace_ms: u64,
    pub tls: Option<RawTls>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 10 * 1024 * 1024,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            shutdown_grace_ms: 30_000,
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert_file: String,
    pub key_file: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawUpstream {
    pub connect_timeout_ms: u64,
    pub response_timeout_ms: u64,
    pub pool_idle_timeout_ms: u64,
    pub pool_max_idle_per_host: usize,
    pub extra_ca_file: Option<String>,
    pub max_response_bytes: u64,
}

impl Default for RawUpstream {
    fn default() -> Self {
        RawUpstream {
            connect_timeout_ms: 5_000,
            response_timeout_ms: 300_000,
            pool_idle_timeout_ms: 90_000,
            pool_max_idle_per_host: 64,
            extra_ca_file: None,
            max_response_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub prefix: String,
    pub upstream: String,
    #[serde(default)]
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDetect {
    /// Rule pack files to load in addition to (or, with `builtin_rules = false`, instead of)
    /// the built-in packs.
    pub rule_files: Vec<String>,
    pub builtin_rules: bool,
    /// Findings scoring below this are dropped, unless `thresholds` says otherwise per label.
    /// NER findings are held to their model's manifest thresholds instead (and to
    /// `thresholds` when their label is there).
    pub min_score: f32,
    pub thresholds: BTreeMap<String, f32>,
    /// `[detect.korean_names]`: the Korean name detector (no model).
    pub korean_names: RawKoreanNames,
    /// `[[detect.dictionary]]`: deny and allow term lists.
    pub dictionary: Vec<RawDictionary>,
    /// `[detect.ner]`: NER models on ONNX Runtime (off by default).
    pub ner: RawNer,
    /// Most requests scanned at once; more are refused with 503 (load shedding).
    pub max_in_flight: usize,
}

impl Default for RawDetect {
    fn default() -> Self {
        RawDetect {
            rule_files: Vec::new(),
            builtin_rules: true,
            min_score: 0.5,
            thresholds: BTreeMap::new(),
            korean_names: RawKoreanNames::default(),
            dictionary: Vec::new(),
            ner: RawNer::default(),
            max_in_flight: 64,
        }
    }
}

/// `[detect.ner]`: the NER models and their worker pools.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawNer {
    pub enabled: bool,
    /// Path of `libonnxruntime.so.1.31.1`; else `GARIM_ORT_DYLIB`, `ORT_DYLIB_PATH`, `.ort/lib`.
    pub ort_dylib: Option<String>,
    /// Time budget of NER for one request, in milliseconds.
    pub budget_ms: u64,
    /// "reject" (503, nothing forwarded) or "rules_only" (forward masked by the rules).
    pub on_timeout: String,
    pub workers: usize,
    pub intra_threads: usize,
    pub max_batch: usize,
    pub queue: usize,
    /// `[[detect.ner.model]]`.
    pub model: Vec<RawNerModel>,
}

impl Default for RawNer {
    fn default() -> Self {
        RawNer {
            enabled: true,
            ort_dylib: None,
            budget_ms: 2000,
            on_timeout: "reject".into(),
            workers: 2,
            intra_threads: 1,
            max_batch: 8,
            queue: 256,
            model: Vec::new(),
        }
    }
}

/// One `[[detect.ner.model]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNerModel {
    /// The model directory (with `model.toml`); relative to the config file's directory.
    pub dir: String,
    /// Overrides the manifest's `languages` ("ko", "en").
    #[serde(default)]
    pub languages: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawKoreanNames {
    pub enabled: bool,
    /// Candidates scoring below this are not reported at all (the label thresholds apply
    /// after it).
    pub min_score: f32,
}

impl Default for RawKoreanNames {
    fn default() -> Self {
        RawKoreanNames {
            enabled: true,
            min_score: 0.0,
        }
    }
}

/// One `[[detect.dictionary]]` table. Debug shows how many inline terms there are, not them.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDictionary {
    pub name: String,
    /// Required for deny lists; on allow lists it limits suppression to that label.
    #[serde(default)]
    pub label: Option<String>,
    /// "deny" (default) or "allow".
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub terms: Option<Vec<String>>,
    #[serde(default)]
    pub case_insensitive: bool,
    /// Deny lists only; default 0.9.
    #[serde(default)]
    pub score: Option<f32>,
}

impl std::fmt::Debug for RawDictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawDictionary")
            .field("name", &self.name)
            .field("label", &self.label)
            .field("kind", &self.kind)
            .field("file", &self.file)
            .field(
                "terms",
                &format_args!("<{} terms>", self.terms.as_ref().map_or(0, Vec::len)),
            )
            .field("case_insensitive", &self.case_insensitive)
            .field("score", &self.score)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawVault {
    pub ttl_secs: u64,
    pub max_bytes: u64,
    pub max_values_per_conversation: usize,
}

impl Default for RawVault {
    fn default() -> Self {
        RawVault {
            ttl_secs: 3600,
            max_bytes: 64 * 1024 * 1024,
            max_values_per_conversation: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConversation {
    pub header: String,
}

impl Default for RawConversation {
    fn default() -> Self {
        RawConversation {
            header: "x-garim-conversation".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAudit {
    pub file: String,
    /// Name of the environment variable holding the key for the audit's value hashes (hex or
    /// any string of ≥ 16 bytes). Unset: a random key per process.
    pub hash_key_env: String,
    /// Events queued for the writer thread; when the disk falls this far behind, new events
    /// are dropped and counted (`garim_audit_events_lost_total`) instead of blocking requests.
    pub queue_capacity: usize,
}

impl Default for RawAudit {
    fn default() -> Self {
        RawAudit {
            file: "./garim-audit.jsonl".into(),
            hash_key_env: "GARIM_AUDIT_KEY".into(),
            // The audit sink's own default (`audit::DEFAULT_QUEUE_CAPACITY`, a test checks):
            // config comes first in the data flow and imports no later stage.
            queue_capacity: 65_536,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            level: "info".into(),
        }
    }
}
