//! Configuration: TOML in, validated settings out.
//!
//! [`raw`] holds serde structs that mirror the file (`deny_unknown_fields`, defaults for
//! everything). [`Config::from_raw`] checks them and produces the typed settings the stages
//! read: parsed socket addresses, URIs, durations, labels. Every error names the field
//! (`route[1].upstream`, `detect.thresholds.PHONE`) so a user can find it, and the CLI exits
//! with status 2 on any of them (SPEC.md).
//!
//! The embedded default (no file) listens on 127.0.0.1:8080 and routes `/openai`, `/v1`,
//! `/anthropic` and `/gemini` to the public APIs. `deploy/garim.example.toml` spells out every
//! field with its default; a test keeps the two in step.
//!
//! This module imports no later stage: stages build their runtime objects from these settings.

pub mod raw;

use crate::detect::Label;
use http::header::HeaderName;
use http::Uri;
use raw::RawConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("config field `{field}`: {problem}")]
    Invalid { field: String, problem: String },
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// What garim does with requests under a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMode {
    /// Recognised APIs are masked and restored; anything else is refused (403).
    Mask,
    /// Everything is forwarded untouched (no detection). Opt-in per route.
    Passthrough,
}

/// An upstream base URL, split for request building.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// Path prefix without trailing slash ("" or "/v1").
    pub base_path: String,
}

impl UpstreamUrl {
    pub fn parse(s: &str) -> Result<Self, String> {
        let uri: Uri = s.parse().map_err(|e| format!("not a URL: {e}"))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or("needs a scheme (http:// or https://)")?;
        if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
            return Err(format!("scheme must be http or https, not {scheme}"));
        }
        let authority = uri.authority().cloned().ok_or("needs a host")?;
        if uri.query().is_some() {
            return Err("must not have a query string".into());
        }
        let base_path = uri.path().trim_end_matches('/').to_owned();
        Ok(UpstreamUrl {
            scheme,
            authority,
            base_path,
        })
    }

    /// The upstream URI for `rest` (the request path after the route prefix, with query).
    pub fn join(&self, rest_path_and_query: &str) -> Result<Uri, http::Error> {
        let pq = format!("{}{}", self.base_path, rest_path_and_query);
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(if pq.is_empty() { "/".to_owned() } else { pq })
            .build()
    }

    pub fn host(&self) -> &str {
        self.authority.host()
    }
}

impl std::fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.base_path)
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    /// Normalised: starts with '/', no trailing '/'.
    pub prefix: String,
    pub upstream: UpstreamUrl,
    pub mode: RouteMode,
}

impl Route {
    /// The rest of `path` after this route's prefix, when the prefix matches on a segment
    /// boundary (`/openai` matches `/openai/v1/x` and `/openai`, not `/openaix`).
    pub fn strip<'a>(&self, path: &'a str) -> Option<&'a str> {
        let rest = path.strip_prefix(&self.prefix)?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }
}

#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub shutdown_grace: Duration,
    pub tls: Option<TlsSettings>,
}

#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub pool_idle_timeout: Duration,
    pub pool_max_idle_per_host: usize,
    pub extra_ca_file: Option<PathBuf>,
    pub max_response_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct DetectSettings {
    pub builtin_rules: bool,
    pub rule_files: Vec<PathBuf>,
    pub min_score: f32,
    pub thresholds: Vec<(Label, f32)>,
    pub korean_names: KoreanNameSettings,
    /// In configuration order (a term in several deny lists is reported for the first).
    pub dictionaries: Vec<DictionarySettings>,
    /// `[detect.ner]`. The models are loaded once at start (see `detect::ner::route::load`).
    pub ner: NerSettings,
    /// Most requests in detection at once; more get 503 at once. Load shedding: detection
    /// (NER above all) is what uses the CPU, and an overloaded gateway without a limit
    /// queues requests for seconds instead of refusing what it cannot serve. Requests
    /// waiting for the upstream are not counted (LLM answers take seconds).
    pub max_in_flight: usize,
}

/// A language the NER router knows how to recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NerLanguage {
    /// Korean: Hangul syllables and jamo.
    Ko,
    /// English (and other Latin-script text).
    En,
}

impl NerLanguage {
    pub fn as_str(self) -> &'static str {
        match self {
            NerLanguage::Ko => "ko",
            NerLanguage::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<NerLanguage> {
        match s {
            "ko" => Some(NerLanguage::Ko),
            "en" => Some(NerLanguage::En),
            _ => None,
        }
    }
}

/// What a request gets when NER does not answer within its budget (or its queue is full).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NerOnTimeout {
    /// Fail closed: 503 in the API's error shape, nothing forwarded.
    Reject,
    /// Forward masked by the rules only; counted and flagged in the audit event.
    RulesOnly,
}

impl NerOnTimeout {
    pub fn as_str(self) -> &'static str {
        match self {
            NerOnTimeout::Reject => "reject",
            NerOnTimeout::RulesOnly => "rules_only",
        }
    }
}

/// Validated `[detect.ner]`.
#[derive(Debug, Clone)]
pub struct NerSettings {
    pub enabled: bool,
    /// The ONNX Runtime library; `None`: environment variables, then `.ort/lib`.
    pub ort_dylib: Option<PathBuf>,
    /// The NER time budget of one request (all its fields together).
    pub budget: Duration,
    pub on_timeout: NerOnTimeout,
    pub workers: usize,
    pub intra_threads: usize,
    pub max_batch: usize,
    pub queue: usize,
    /// Checked only when `enabled`: at least one, each language served at most once.
    pub models: Vec<NerModelSettings>,
}

impl Default for NerSettings {
    /// NER off, with the default pool settings (for settings built in code; an empty
    /// `[detect.ner]` in a config turns the shipped models on).
    fn default() -> Self {
        let off = raw::RawNer {
            enabled: false,
            ..raw::RawNer::default()
        };
        parse_ner(&off, None).expect("the default NER settings are valid")
    }
}

/// One `[[detect.ner.model]]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NerModelSettings {
    /// The model directory, resolved against the config file's directory.
    pub dir: PathBuf,
    /// The languages it serves: the configured override, else the manifest's.
    pub languages: Vec<NerLanguage>,
}

fn count(field: &str, v: usize) -> Result<usize, ConfigError> {
    if v == 0 {
        return Err(invalid(field, "must be greater than 0"));
    }
    Ok(v)
}

/// The models the embedded default runs (directories under the shipped models directory).
pub const SHIPPED_MODELS: [&str; 2] = ["ko-ner", "en-ner"];

/// Names the directory holding the shipped models, overriding the search.
pub const MODELS_DIR_ENV: &str = "GARIM_MODELS_DIR";

/// Where the shipped models are: `$GARIM_MODELS_DIR`; else `models/` in the current
/// directory; else `models/` next to the binary or two levels up (a cargo `target/<profile>/`
/// build of this repository); else `models` (relative: the error then names it).
pub fn shipped_models_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(MODELS_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let has_models = |d: &Path| {
        SHIPPED_MODELS
            .iter()
            .all(|m| d.join(m).join("model.toml").is_file())
    };
    let cwd = PathBuf::from("models");
    if has_models(&cwd) {
        return cwd;
    }
    crate::detect::ner::runtime::beside_cargo_build(&cwd, has_models).unwrap_or(cwd)
}

fn parse_ner(r: &raw::RawNer, base: Option<&Path>) -> Result<NerSettings, ConfigError> {
    let resolve = |p: &str| -> PathBuf {
        let p = PathBuf::from(p);
        match base {
            Some(b) if p.is_relative() => b.join(p),
            _ => p,
        }
    };
    let on_timeout = match r.on_timeout.as_str() {
        "reject" => NerOnTimeout::Reject,
        "rules_only" => NerOnTimeout::RulesOnly,
        other => {
            return Err(invalid(
                "detect.ner.on_timeout",
                format!("unknown value `{other}` (expected \"reject\" or \"rules_only\")"),
            ))
        }
    };
    // No [[detect.ner.model]]: the models shipped in models/ (found by `shipped_models_dir`).
    let entries: Vec<(String, PathBuf, Option<&Vec<String>>)> = if r.model.is_empty() {
        if !r.enabled {
            Vec::new()
        } else {
            let root = shipped_models_dir();
            SHIPPED_MODELS
                .iter()
                .map(|m| ("detect.ner.model".to_owned(), root.join(m), None))
                .collect()
        }
    } else {
        r.model
            .iter()
            .enumerate()
            .map(|(i, m)| {
                (
                    format!("detect.ner.model[{i}]"),
                    resolve(&m.dir),
                    m.languages.as_ref(),
                )
            })
            .collect()
    };
    let mut models: Vec<NerModelSettings> = Vec::with_capacity(entries.len());
    for (field, dir, languages) in entries {
        let shipped = r.model.is_empty();
        let configured = match languages {
            Some(ls) => {
                let mut out = Vec::new();
                for (j, l) in ls.iter().enumerate() {
                    let lang = NerLanguage::parse(l).ok_or_else(|| {
                        invalid(
                            format!("{field}.languages[{j}]"),
                            format!("unknown language `{l}` (expected \"ko\" or \"en\")"),
                        )
                    })?;
                    if !out.contains(&lang) {
                        out.push(lang);
                    }
                }
                Some(out)
            }
            None => None,
        };
        if !r.enabled {
            // Not loaded: keep what was written, check nothing on disk.
            models.push(NerModelSettings {
                dir,
                languages: configured.unwrap_or_default(),
            });
            continue;
        }
        let manifest_path = dir.join("model.toml");
        if !manifest_path.is_file() && shipped {
            return Err(invalid(
                field,
                format!(
                    "the shipped NER model `{}` was not found (no model.toml in it): run garim \
                     from the repository root, set {MODELS_DIR_ENV} to the directory holding \
                     {}, list the models with [[detect.ner.model]], or set \
                     detect.ner.enabled = false",
                    dir.display(),
                    SHIPPED_MODELS.join(" and "),
                ),
            ));
        }
        if !manifest_path.is_file() {
            return Err(invalid(
                format!("{field}.dir"),
                format!(
                    "`{}` is not a model directory (no model.toml in it)",
                    dir.display()
                ),
            ));
        }
        let languages = match configured {
            Some(l) => l,
            None => {
                let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
                    invalid(
                        format!("{field}.dir"),
                        format!("cannot read model.toml: {e}"),
                    )
                })?;
                let manifest: crate::detect::ner::Manifest =
                    toml::from_str(&text).map_err(|e| {
                        invalid(
                            format!("{field}.dir"),
                            format!("`{}`: {e}", manifest_path.display()),
                        )
                    })?;
                let mut out = Vec::new();
                for l in &manifest.languages {
                    match NerLanguage::parse(l) {
                        Some(lang) if !out.contains(&lang) => out.push(lang),
                        Some(_) => {}
                        None => {
                            return Err(invalid(
                                format!("{field}.languages"),
                                format!(
                                    "the manifest names language `{l}`; garim routes only \
                                     \"ko\" and \"en\": set `languages` here"
                                ),
                            ))
                        }
                    }
                }
                out
            }
        };
        if languages.is_empty() {
            return Err(invalid(
                format!("{field}.languages"),
                "the model serves no language (set `languages`, e.g. [\"en\"])",
            ));
        }
        for lang in &languages {
            if let Some(k) = models.iter().position(|o| o.languages.contains(lang)) {
                return Err(invalid(
                    format!("{field}.languages"),
                    format!(
                        "language `{}` is already served by detect.ner.model[{k}]",
                        lang.as_str()
                    ),
                ));
            }
        }
        models.push(NerModelSettings { dir, languages });
    }
    if r.enabled && models.is_empty() {
        return Err(invalid(
            "detect.ner.model",
            "NER is enabled but no [[detect.ner.model]] is given",
        ));
    }
    Ok(NerSettings {
        enabled: r.enabled,
        ort_dylib: r.ort_dylib.as_deref().map(resolve),
        budget: ms("detect.ner.budget_ms", r.budget_ms)?,
        on_timeout,
        workers: count("detect.ner.workers", r.workers)?,
        intra_threads: count("detect.ner.intra_threads", r.intra_threads)?,
        max_batch: count("detect.ner.max_batch", r.max_batch)?,
        queue: count("detect.ner.queue", r.queue)?,
        models,
    })
}

#[derive(Debug, Clone)]
pub struct KoreanNameSettings {
    pub enabled: bool,
    /// Candidates below this are not reported (0.0: all; the label thresholds still apply).
    pub min_score: f32,
}

/// Whether a dictionary's matches are findings or exemptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DictionaryKind {
    Deny,
    Allow,
}

/// Default score of deny-list findings.
pub const DEFAULT_DICTIONARY_SCORE: f32 = 0.9;

/// One validated `[[detect.dictionary]]`. The file is read when the engine is built.
#[derive(Clone)]
pub struct DictionarySettings {
    /// Letters, digits, `_`, `-`, `.`; unique.
    pub name: String,
    /// Always set for deny lists; for allow lists, `None` means every label.
    pub label: Option<Label>,
    pub kind: DictionaryKind,
    pub file: Option<PathBuf>,
    pub terms: Vec<String>,
    pub case_insensitive: bool,
    pub score: f32,
}

impl std::fmt::Debug for DictionarySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DictionarySettings")
            .field("name", &self.name)
            .field("label", &self.label)
            .field("kind", &self.kind)
            .field("file", &self.file)
            .field("terms", &format_args!("<{} terms>", self.terms.len()))
            .field("case_insensitive", &self.case_insensitive)
            .field("score", &self.score)
            .finish()
    }
}

fn parse_dictionary(
    i: usize,
    r: &raw::RawDictionary,
    seen: &[DictionarySettings],
) -> Result<DictionarySettings, ConfigError> {
    let field = format!("detect.dictionary[{i}]");
    if r.name.is_empty()
        || !r
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(invalid(
            format!("{field}.name"),
            "must be non-empty letters, digits, '_', '-' or '.'",
        ));
    }
    if seen.iter().any(|d| d.name == r.name) {
        return Err(invalid(
            format!("{field}.name"),
            format!("`{}` is given twice", r.name),
        ));
    }
    let kind = match r.kind.as_deref().unwrap_or("deny") {
        "deny" => DictionaryKind::Deny,
        "allow" => DictionaryKind::Allow,
        other => {
            return Err(invalid(
                format!("{field}.kind"),
                format!("unknown kind `{other}` (expected \"deny\" or \"allow\")"),
            ))
        }
    };
    let label = match &r.label {
        Some(l) => Some(
            l.parse::<Label>()
                .map_err(|e| invalid(format!("{field}.label"), e.to_string()))?,
        ),
        None if kind == DictionaryKind::Deny => {
            return Err(invalid(
                format!("{field}.label"),
                "is required for deny lists (e.g. PERSON, ORGANIZATION, CUSTOM)",
            ))
        }
        None => None,
    };
    let score = match (kind, r.score) {
        (DictionaryKind::Allow, Some(_)) => {
            return Err(invalid(
                format!("{field}.score"),
                "has no meaning for allow lists",
            ))
        }
        (_, Some(s)) if !(0.0..=1.0).contains(&s) => {
            return Err(invalid(
                format!("{field}.score"),
                "must be between 0.0 and 1.0",
            ))
        }
        (_, s) => s.unwrap_or(DEFAULT_DICTIONARY_SCORE),
    };
    let file = match &r.file {
        Some(f) if !Path::new(f).is_file() => {
            return Err(invalid(
                format!("{field}.file"),
                format!("file `{f}` does not exist"),
            ))
        }
        other => other.as_ref().map(PathBuf::from),
    };
    let mut terms = Vec::new();
    for (j, t) in r.terms.iter().flatten().enumerate() {
        let t = t.trim();
        if t.is_empty() {
            return Err(invalid(format!("{field}.terms[{j}]"), "is empty"));
        }
        terms.push(t.to_owned());
    }
    if file.is_none() && r.terms.is_none() {
        return Err(invalid(field, "needs `file` or `terms`"));
    }
    Ok(DictionarySettings {
        name: r.name.clone(),
        label,
        kind,
        file,
        terms,
        case_insensitive: r.case_insensitive,
        score,
    })
}

#[derive(Debug, Clone)]
pub struct VaultSettings {
    pub ttl: Duration,
    pub max_bytes: usize,
    pub max_values_per_conversation: usize,
}

#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub file: PathBuf,
    pub hash_key_env: String,
    /// Events queued for the writer before new ones are dropped (and counted).
    pub queue_capacity: usize,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub upstream: UpstreamSettings,
    pub routes: Vec<Route>,
    pub detect: DetectSettings,
    pub vault: VaultSettings,
    pub conversation_header: HeaderName,
    pub audit: AuditSettings,
    pub log_level: String,
}

/// Routes of the embedded default (SPEC.md).
pub const DEFAULT_ROUTES: [(&str, &str); 4] = [
    ("/openai", "https://api.openai.com"),
    ("/v1", "https://api.openai.com/v1"),
    ("/anthropic", "https://api.anthropic.com"),
    ("/gemini", "https://generativelanguage.googleapis.com"),
];

fn ms(field: &str, v: u64) -> Result<Duration, ConfigError> {
    if v == 0 {
        return Err(invalid(field, "must be greater than 0"));
    }
    Ok(Duration::from_millis(v))
}

fn size(field: &str, v: u64) -> Result<usize, ConfigError> {
    if v == 0 {
        return Err(invalid(field, "must be greater than 0"));
    }
    usize::try_from(v).map_err(|_| invalid(field, "too large"))
}

fn parse_route(
    field: &str,
    prefix: &str,
    upstream: &str,
    mode: Option<&str>,
) -> Result<Route, ConfigError> {
    if !prefix.starts_with('/') {
        return Err(invalid(format!("{field}.prefix"), "must start with '/'"));
    }
    let norm = prefix.trim_end_matches('/');
    if norm.is_empty() {
        return Err(invalid(
            format!("{field}.prefix"),
            "must not be '/' alone (name a prefix such as /openai)",
        ));
    }
    if matches!(norm, "/healthz" | "/readyz" | "/metrics") {
        return Err(invalid(
            format!("{field}.prefix"),
            "is reserved for the gateway's own endpoints",
        ));
    }
    let upstream =
        UpstreamUrl::parse(upstream).map_err(|p| invalid(format!("{field}.upstream"), p))?;
    let mode = match mode.unwrap_or("mask") {
        "mask" => RouteMode::Mask,
        "passthrough" => RouteMode::Passthrough,
        other => {
            return Err(invalid(
                format!("{field}.mode"),
                format!("unknown mode `{other}` (expected \"mask\" or \"passthrough\")"),
            ))
        }
    };
    Ok(Route {
        prefix: norm.to_owned(),
        upstream,
        mode,
    })
}

impl Config {
    /// The embedded default: what `garim serve` runs with no `--config`.
    pub fn embedded_default() -> Config {
        Config::from_raw(RawConfig::default()).expect("the embedded default is valid")
    }

    /// Reads and validates `path`, or returns the embedded default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            None => Ok(Config::embedded_default()),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?;
                let base = p.parent().unwrap_or(Path::new(""));
                Config::from_toml_str_at(&text, &p.display().to_string(), Some(base))
            }
        }
    }

    /// Parses and validates `text`; relative model paths are left relative (to the current
    /// directory).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str_at(text, origin, None)
    }

    /// Like [`Config::from_toml_str`], resolving relative `detect.ner` paths against `base`
    /// (the config file's directory).
    pub fn from_toml_str_at(
        text: &str,
        origin: &str,
        base: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        Config::from_raw_at(raw, base)
    }

    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        Config::from_raw_at(raw, None)
    }

    /// Validates `raw`; relative `detect.ner` paths are resolved against `base` when given.
    pub fn from_raw_at(raw: RawConfig, base: Option<&Path>) -> Result<Config, ConfigError> {
        let s = &raw.server;
        let server = ServerSettings {
            listen: s.listen.parse().map_err(|e| {
                invalid(
                    "server.listen",
                    format!("`{}` is not ADDR:PORT: {e}", s.listen),
                )
            })?,
            max_body_bytes: size("server.max_body_bytes", s.max_body_bytes)?,
            header_read_timeout: ms("server.header_read_timeout_ms", s.header_read_timeout_ms)?,
            body_read_timeout: ms("server.body_read_timeout_ms", s.body_read_timeout_ms)?,
            shutdown_grace: ms("server.shutdown_grace_ms", s.shutdown_grace_ms)?,
            tls: match &s.tls {
                None => None,
                Some(t) => {
                    for (f, v) in [
                        ("server.tls.cert_file", &t.cert_file),
                        ("server.tls.key_file", &t.key_file),
                    ] {
                        if !Path::new(v).is_file() {
                            return Err(invalid(f, format!("file `{v}` does not exist")));
                        }
                    }
                    Some(TlsSettings {
                        cert_file: t.cert_file.clone().into(),
                        key_file: t.key_file.clone().into(),
                    })
                }
            },
        };
        let u = &raw.upstream;
        let upstream = UpstreamSettings {
            connect_timeout: ms("upstream.connect_timeout_ms", u.connect_timeout_ms)?,
            response_timeout: ms("upstream.response_timeout_ms", u.response_timeout_ms)?,
            pool_idle_timeout: ms("upstream.pool_idle_timeout_ms", u.pool_idle_timeout_ms)?,
            pool_max_idle_per_host: u.pool_max_idle_per_host,
            extra_ca_file: match &u.extra_ca_file {
                Some(f) if !Path::new(f).is_file() => {
                    return Err(invalid(
                        "upstream.extra_ca_file",
                        format!("file `{f}` does not exist"),
                    ))
                }
                other => other.as_ref().map(PathBuf::from),
            },
            max_response_bytes: size("upstream.max_response_bytes", u.max_response_bytes)?,
        };
        let mut routes = Vec::new();
        match &raw.routes {
            None => {
                for (p, u) in DEFAULT_ROUTES {
                    routes.push(parse_route("route", p, u, None)?);
                }
            }
            Some(rs) => {
                for (i, r) in rs.iter().enumerate() {
                    let route = parse_route(
                        &format!("route[{i}]"),
                        &r.prefix,
                        &r.upstream,
                        r.mode.as_deref(),
                    )?;
                    if routes.iter().any(|x: &Route| x.prefix == route.prefix) {
                        return Err(invalid(
                            format!("route[{i}].prefix"),
                            format!("`{}` is given twice", route.prefix),
                        ));
                    }
                    routes.push(route);
                }
            }
        }
        let d = &raw.detect;
        if !(0.0..=1.0).contains(&d.min_score) {
            return Err(invalid("detect.min_score", "must be between 0.0 and 1.0"));
        }
        let mut thresholds = Vec::new();
        for (k, v) in &d.thresholds {
            let field = format!("detect.thresholds.{k}");
            let label: Label = k
                .parse()
                .map_err(|e: crate::detect::UnknownLabel| invalid(&field, e.to_string()))?;
            if !(0.0..=1.0).contains(v) {
                return Err(invalid(field, "must be between 0.0 and 1.0"));
            }
            thresholds.push((label, *v));
        }
        let rule_files: Vec<PathBuf> = d.rule_files.iter().map(PathBuf::from).collect();
        for (i, f) in rule_files.iter().enumerate() {
            if !f.is_file() {
                return Err(invalid(
                    format!("detect.rule_files[{i}]"),
                    format!("file `{}` does not exist", f.display()),
                ));
            }
        }
        let k = &d.korean_names;
        if !(0.0..=1.0).contains(&k.min_score) {
            return Err(invalid(
                "detect.korean_names.min_score",
                "must be between 0.0 and 1.0",
            ));
        }
        let mut dictionaries = Vec::with_capacity(d.dictionary.len());
        for (i, r) in d.dictionary.iter().enumerate() {
            let parsed = parse_dictionary(i, r, &dictionaries)?;
            dictionaries.push(parsed);
        }
        let ner = parse_ner(&d.ner, base)?;
        if !d.builtin_rules
            && rule_files.is_empty()
            && dictionaries.is_empty()
            && !d.korean_names.enabled
            && !ner.enabled
        {
            return Err(invalid(
                "detect.builtin_rules",
                "is false and no rule_files, dictionaries, Korean name rules or NER models are \
                 configured: nothing would be detected",
            ));
        }
        let v = &raw.vault;
        let vault = VaultSettings {
            ttl: Duration::from_secs(v.ttl_secs.max(1)),
            max_bytes: size("vault.max_bytes", v.max_bytes)?,
            max_values_per_conversation: if v.max_values_per_conversation == 0 {
                return Err(invalid(
                    "vault.max_values_per_conversation",
                    "must be greater than 0",
                ));
            } else {
                v.max_values_per_conversation
            },
        };
        if v.ttl_secs == 0 {
            return Err(invalid("vault.ttl_secs", "must be greater than 0"));
        }
        let conversation_header =
            HeaderName::try_from(raw.conversation.header.to_ascii_lowercase())
                .map_err(|e| invalid("conversation.header", format!("not a header name: {e}")))?;
        if raw.audit.file.is_empty() {
            return Err(invalid("audit.file", "must not be empty"));
        }
        if !(1..=10_000_000).contains(&raw.audit.queue_capacity) {
            return Err(invalid(
                "audit.queue_capacity",
                "must be between 1 and 10000000 events",
            ));
        }
        Ok(Config {
            server,
            upstream,
            routes,
            detect: DetectSettings {
                builtin_rules: d.builtin_rules,
                rule_files,
                min_score: d.min_score,
                thresholds,
                korean_names: KoreanNameSettings {
                    enabled: k.enabled,
                    min_score: k.min_score,
                },
                dictionaries,
                ner,
                max_in_flight: count("detect.max_in_flight", d.max_in_flight)?,
            },
            vault,
            conversation_header,
            audit: AuditSettings {
                file: raw.audit.file.clone().into(),
                hash_key_env: raw.audit.hash_key_env.clone(),
                queue_capacity: raw.audit.queue_capacity,
            },
            log_level: raw.log.level.clone(),
        })
    }

    /// Applies the `serve` flags, which win over the file (SPEC.md).
    pub fn apply_overrides(
        &mut self,
        listen: Option<&str>,
        routes: &[String],
        audit: Option<&str>,
    ) -> Result<(), ConfigError> {
        if let Some(l) = listen {
            self.server.listen = l
                .parse()
                .map_err(|e| invalid("--listen", format!("`{l}` is not ADDR:PORT: {e}")))?;
        }
        for r in routes {
            let (prefix, url) = r
                .split_once('=')
                .ok_or_else(|| invalid("--route", format!("`{r}` is not PREFIX=URL")))?;
            let route = parse_route("--route", prefix, url, None)?;
            self.routes.retain(|x| x.prefix != route.prefix);
            self.routes.push(route);
        }
        if let Some(a) = audit {
            if a.is_empty() {
                return Err(invalid("--audit", "must not be empty"));
            }
            self.audit.file = a.into();
        }
        Ok(())
    }

    /// The route for `path`: the longest matching prefix.
    pub fn route_for<'c, 'p>(&'c self, path: &'p str) -> Option<(&'c Route, &'p str)> {
        self.routes
            .iter()
            .filter_map(|r| r.strip(path).map(|rest| (r, rest)))
            .max_by_key(|(r, _)| r.prefix.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_routes() {
        let c = Config::embedded_default();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        let (r, rest) = c.route_for("/openai/v1/chat/completions").unwrap();
        assert_eq!(r.prefix, "/openai");
        assert_eq!(rest, "/v1/chat/completions");
        assert_eq!(
            r.upstream.join(rest).unwrap().to_string(),
            "https://api.openai.com/v1/chat/completions"
        );
        let (r, rest) = c.route_for("/v1/chat/completions").unwrap();
        assert_eq!(
            r.upstream.join(rest).unwrap().to_string(),
            "https://api.openai.com/v1/chat/completions"
        );
        assert!(c.route_for("/openaix/v1").is_none());
        assert!(c.route_for("/").is_none());
        assert_eq!(c.audit.queue_capacity, crate::audit::DEFAULT_QUEUE_CAPACITY);
        assert_eq!(c.detect.max_in_flight, 64);
        let bad = Config::from_toml_str("[detect]\nmax_in_flight = 0\n", "t.toml").unwrap_err();
        assert!(bad.to_string().contains("detect.max_in_flight"), "{bad}");
        let bad = Config::from_toml_str("[audit]\nqueue_capacity = 0\n", "t.toml").unwrap_err();
        assert!(bad.to_string().contains("audit.queue_capacity"), "{bad}");
    }

    #[test]
    fn example_file_matches_default() {
        let text = include_str!("../../deploy/garim.example.toml");
        let c = Config::from_toml_str(text, "garim.example.toml").unwrap();
        let d = Config::embedded_default();
        assert_eq!(format!("{c:?}"), format!("{d:?}"));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("[server]\nlistne = \"x\"", "listne"),
            ("[server]\nlisten = \"nope\"", "server.listen"),
            (
                "[[route]]\nprefix = \"openai\"\nupstream = \"http://x\"",
                "route[0].prefix",
            ),
            (
                "[[route]]\nprefix = \"/a\"\nupstream = \"ftp://x\"",
                "route[0].upstream",
            ),
            (
                "[[route]]\nprefix = \"/a\"\nupstream = \"http://x\"\nmode = \"yolo\"",
                "route[0].mode",
            ),
            ("[detect.thresholds]\nNAME = 0.5", "detect.thresholds.NAME"),
            (
                "[detect]\nbuiltin_rules = false\n[detect.korean_names]\nenabled = false\n\
                 [detect.ner]\nenabled = false",
                "detect.builtin_rules",
            ),
            ("[detect]\nmin_score = 2.0", "detect.min_score"),
            (
                "[upstream]\nconnect_timeout_ms = 0",
                "upstream.connect_timeout_ms",
            ),
            ("[vault]\nttl_secs = 0", "vault.ttl_secs"),
            (
                "[detect.korean_names]\nmin_score = -1",
                "detect.korean_names.min_score",
            ),
            ("[detect.korean_names]\nenable = true", "enable"),
            (
                "[[detect.dictionary]]\nname = \"a\"\nlabel = \"NAME\"\nterms = [\"x\"]",
                "detect.dictionary[0].label",
            ),
            (
                "[[detect.dictionary]]\nname = \"a\"\nterms = [\"x\"]",
                "detect.dictionary[0].label",
            ),
            (
                "[[detect.dictionary]]\nname = \"a\"\nlabel = \"CUSTOM\"\nkind = \"block\"\nterms = [\"x\"]",
                "detect.dictionary[0].kind",
            ),
            (
                "[[detect.dictionary]]\nname = \"a\"\nlabel = \"CUSTOM\"\nfile = \"/nonexistent/garim-terms.txt\"",
                "detect.dictionary[0].file",
            ),
            (
                "[[detect.dictionary]]\nname = \"a\"\nlabel = \"CUSTOM\"",
                "detect.dictionary[0]",
            ),
            (
                "[[detect.dictionary]]\nname = \"a\"\nlabel = \"CUSTOM\"\nterms = [\"x\", \" \"]",
                "detect.dictionary[0].terms[1]",
            ),
            (
                "[[detect.dictionary]]\nname = \"a\"\nlabel = \"CUSTOM\"\nterms = [\"x\"]\nscore = 1.5",
                "detect.dictionary[0].score",
            ),
            (
                "[[detect.dictionary]]\nname = \"a\"\nkind = \"allow\"\nterms = [\"x\"]\nscore = 0.5",
                "detect.dictionary[0].score",
            ),
            (
                "[[detect.dictionary]]\nname = \"a b\"\nlabel = \"CUSTOM\"\nterms = [\"x\"]",
                "detect.dictionary[0].name",
            ),
            (
                "[[detect.dictionary]]\nname = \"a\"\nlabel = \"CUSTOM\"\nterms = [\"x\"]\n\
                 [[detect.dictionary]]\nname = \"a\"\nlabel = \"CUSTOM\"\nterms = [\"y\"]",
                "detect.dictionary[1].name",
            ),
            (
                "[[detect.dictionary]]\nname = \"a\"\nlabel = \"CUSTOM\"\nterms = [\"x\"]\ncase = true",
                "case",
            ),
        ];
        for (text, field) in cases {
            let e = Config::from_toml_str(text, "t.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "{text:?}: {e}");
        }
    }

    #[test]
    fn dictionaries_parse_and_hide_terms() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("employees.txt");
        std::fs::write(&file, "# staff\n김민준\nJane Roe\n").unwrap();
        let text = format!(
            "[detect.korean_names]\nenabled = false\n\
             [[detect.dictionary]]\nname = \"employees\"\nlabel = \"PERSON\"\nfile = {:?}\n\
             case_insensitive = true\n\
             [[detect.dictionary]]\nname = \"own\"\nkind = \"allow\"\n\
             terms = [\"support@acme.co.kr\"]\n",
            file.display().to_string()
        );
        let c = Config::from_toml_str(&text, "t.toml").unwrap();
        let d = &c.detect;
        assert!(!d.korean_names.enabled);
        assert_eq!(d.dictionaries.len(), 2);
        let e = &d.dictionaries[0];
        assert_eq!(
            (e.label, e.kind, e.case_insensitive, e.score),
            (
                Some(Label::Person),
                DictionaryKind::Deny,
                true,
                DEFAULT_DICTIONARY_SCORE
            )
        );
        assert_eq!(e.file.as_deref(), Some(file.as_path()));
        let a = &d.dictionaries[1];
        assert_eq!((a.label, a.kind), (None, DictionaryKind::Allow));
        assert_eq!(a.terms, vec!["support@acme.co.kr"]);
        // Debug shows counts, never terms.
        assert!(!format!("{c:?}").contains("support@acme"), "{c:?}");
        // The engine built from it finds the employee (file) and exempts the address.
        let engine = crate::detect::build_engine(d).unwrap();
        let t = "JANE ROE wrote from support@acme.co.kr to 김민준님.";
        let got: Vec<_> = engine
            .detect(t)
            .unwrap()
            .iter()
            .map(|f| (&t[f.start..f.end], f.label))
            .collect();
        assert_eq!(
            got,
            vec![("JANE ROE", Label::Person), ("김민준", Label::Person)]
        );
        // A file that disappears after validation is an error naming the list and file.
        std::fs::remove_file(&file).unwrap();
        let e = crate::detect::build_engine(d).unwrap_err().to_string();
        assert!(
            e.contains("employees") && e.contains("employees.txt"),
            "{e}"
        );
    }

    #[test]
    fn ner_defaults_and_models() {
        let d = Config::embedded_default().detect.ner;
        assert!(d.enabled);
        assert_eq!(d.budget, Duration::from_millis(2000));
        assert_eq!(d.on_timeout, NerOnTimeout::Reject);
        assert_eq!(
            (d.workers, d.intra_threads, d.max_batch, d.queue),
            (2, 1, 8, 256)
        );
        assert!(d.ort_dylib.is_none());
        // On by default, with the shipped models (tests run from the repository root).
        let shipped: Vec<_> = d
            .models
            .iter()
            .map(|m| {
                (
                    m.dir.file_name().unwrap().to_str().unwrap().to_owned(),
                    m.languages.clone(),
                )
            })
            .collect();
        assert_eq!(
            shipped,
            [
                ("ko-ner".to_owned(), vec![NerLanguage::Ko]),
                ("en-ner".to_owned(), vec![NerLanguage::En])
            ]
        );
        let off = Config::from_toml_str("[detect.ner]\nenabled = false\n", "t.toml").unwrap();
        assert!(!off.detect.ner.enabled && off.detect.ner.models.is_empty());

        // Languages come from the manifest unless overridden.
        let c = Config::from_toml_str(
            "[detect.ner]\nenabled = true\nbudget_ms = 50\non_timeout = \"rules_only\"\n\
             [[detect.ner.model]]\ndir = \"models/test-tiny\"\n",
            "t.toml",
        )
        .unwrap();
        let n = &c.detect.ner;
        assert_eq!(n.on_timeout, NerOnTimeout::RulesOnly);
        assert_eq!(n.budget, Duration::from_millis(50));
        assert_eq!(
            n.models,
            vec![NerModelSettings {
                dir: PathBuf::from("models/test-tiny"),
                languages: vec![NerLanguage::En],
            }]
        );
        let c = Config::from_toml_str(
            "[detect.ner]\nenabled = true\n\
             [[detect.ner.model]]\ndir = \"models/test-tiny\"\nlanguages = [\"ko\"]\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.detect.ner.models[0].languages, vec![NerLanguage::Ko]);

        // Relative paths resolve against the config file's directory.
        let tmp = tempfile::tempdir().unwrap();
        let mdir = tmp.path().join("m");
        std::fs::create_dir(&mdir).unwrap();
        std::fs::copy("models/test-tiny/model.toml", mdir.join("model.toml")).unwrap();
        let file = tmp.path().join("garim.toml");
        std::fs::write(
            &file,
            "[detect.ner]\nenabled = true\nort_dylib = \"lib/ort.so\"\n\
             [[detect.ner.model]]\ndir = \"m\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&file)).unwrap();
        assert_eq!(c.detect.ner.models[0].dir, mdir);
        assert_eq!(
            c.detect.ner.ort_dylib.as_deref(),
            Some(tmp.path().join("lib/ort.so").as_path())
        );

        // Disabled: models are not checked on disk (the lead can list them before they land).
        let c = Config::from_toml_str(
            "[detect.ner]\nenabled = false\n[[detect.ner.model]]\ndir = \"/nonexistent/m\"\n",
            "t.toml",
        )
        .unwrap();
        assert!(!c.detect.ner.enabled);
    }

    #[test]
    fn ner_errors_name_the_field() {
        let tiny = "[[detect.ner.model]]\ndir = \"models/test-tiny\"\n";
        let cases = [
            ("[detect.ner]\nenable = true".to_owned(), "enable"),
            ("[detect.ner]\nbudget_ms = 0".to_owned(), "detect.ner.budget_ms"),
            ("[detect.ner]\nworkers = 0".to_owned(), "detect.ner.workers"),
            ("[detect.ner]\nintra_threads = 0".to_owned(), "detect.ner.intra_threads"),
            ("[detect.ner]\nmax_batch = 0".to_owned(), "detect.ner.max_batch"),
            ("[detect.ner]\nqueue = 0".to_owned(), "detect.ner.queue"),
            (
                "[detect.ner]\non_timeout = \"ignore\"".to_owned(),
                "detect.ner.on_timeout",
            ),
            (
                "[detect.ner]\nenabled = true\n[[detect.ner.model]]\ndir = \"/nonexistent/garim-model\"".to_owned(),
                "detect.ner.model[0].dir",
            ),
            (
                "[detect.ner]\nenabled = true\n[[detect.ner.model]]\ndir = \"models\"".to_owned(),
                "detect.ner.model[0].dir",
            ),
            (
                format!("[detect.ner]\nenabled = true\n{tiny}languages = [\"ja\"]"),
                "detect.ner.model[0].languages[0]",
            ),
            (
                format!("[detect.ner]\nenabled = true\n{tiny}{tiny}"),
                "detect.ner.model[1].languages",
            ),
            (
                format!("[detect.ner]\nenabled = true\n{tiny}languages = []"),
                "detect.ner.model[0].languages",
            ),
            (
                "[[detect.ner.model]]\ndir = \"m\"\nlang = [\"en\"]".to_owned(),
                "lang",
            ),
        ];
        for (text, field) in cases {
            let e = Config::from_toml_str(&text, "t.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "{text:?}: {e}");
        }
        // Two models may split the languages between them.
        let ok = format!(
            "[detect.ner]\nenabled = true\n{tiny}languages = [\"en\"]\n{tiny}languages = [\"ko\"]"
        );
        assert_eq!(
            Config::from_toml_str(&ok, "t.toml")
                .unwrap()
                .detect
                .ner
                .models
                .len(),
            2
        );
    }

    #[test]
    fn overrides_replace_same_prefix() {
        let mut c = Config::embedded_default();
        c.apply_overrides(
            Some("127.0.0.1:0"),
            &["/openai=http://127.0.0.1:9000".into()],
            Some("a.jsonl"),
        )
        .unwrap();
        let (r, _) = c.route_for("/openai/v1/chat/completions").unwrap();
        assert_eq!(r.upstream.to_string(), "http://127.0.0.1:9000");
        assert_eq!(c.routes.iter().filter(|r| r.prefix == "/openai").count(), 1);
        assert!(c.apply_overrides(None, &["nope".into()], None).is_err());
    }
}
