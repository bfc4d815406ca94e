//! Tracing set-up and Prometheus metrics.
//!
//! * [`init_tracing`]: human-readable logs to stderr (stdout stays free for CLI output),
//!   filtered by an `EnvFilter` string such as `info` or `garim=debug,hyper=warn`.
//! * [`Metrics`]: the gateway's counters and histograms, encoded by [`Metrics::encode`] in the
//!   OpenMetrics text format for `GET /metrics` (serve it with [`METRICS_CONTENT_TYPE`]).
//!
//! Label values never carry user text: callers pass route prefixes from the config, API names,
//! entity labels, block reasons and status codes. As a second line of defence every label
//! value is cut to 64 characters of `[A-Za-z0-9_./:-]` (anything else becomes `_`), so even a
//! mistaken caller cannot put arbitrary text (or a value with spaces or `@`) into a series.
//!
//! Limits: series are never removed; the number of series grows with the number of distinct
//! label values, which the callers keep bounded (routes, APIs and labels are finite).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` for [`Metrics::encode`]'s output.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Longest label value kept.
const MAX_LABEL_LEN: usize = 64;

/// Buckets for the gateway's own overhead: fine-grained from 50µs to 1s.
const OVERHEAD_BUCKETS: [f64; 20] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01,
    0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0,
];

/// Buckets for upstream latency: 10ms to 5 minutes (LLM answers are slow).
/// Seconds of detection with NER models: milliseconds to a few seconds (budgets).
const NER_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0,
];

const UPSTREAM_BUCKETS: [f64; 16] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0,
];

/// Installs the global tracing subscriber: formatted lines to stderr, filtered by `filter`
/// (`EnvFilter` syntax). An invalid filter falls back to `info` with a warning. Calling it
/// again (tests, embedding) is harmless: the first subscriber stays.
pub fn init_tracing(filter: &str) {
    let (env_filter, bad) = match tracing_subscriber::EnvFilter::try_new(filter) {
        Ok(f) => (f, false),
        Err(_) => (tracing_subscriber::EnvFilter::new("info"), true),
    };
    let installed = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .try_init()
        .is_ok();
    if installed && bad {
        tracing::warn!("invalid log filter; using \"info\"");
    }
}

/// A label value reduced to a safe, bounded form (see the module docs).
fn clean(value: &str) -> String {
    value
        .chars()
        .take(MAX_LABEL_LEN)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | ':' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    api: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LabelLabels {
    label: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BlockedLabels {
    route: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    findings: Family<LabelLabels, Counter>,
    upstream_latency: HistogramFamily,
    overhead: HistogramFamily,
    unresolved: Family<RouteLabels, Counter>,
    restored: Family<RouteLabels, Counter>,
    blocked: Family<BlockedLabels, Counter>,
    in_flight: Gauge,
    rule_reloads: Family<ResultLabels, Counter>,
    ner_timeouts: Family<ActionLabels, Counter>,
    ner_seconds: Histogram,
    audit_lost: Family<ReasonLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

/// The gateway's metrics. Cheap to clone: clones share the same series.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Decrements `garim_in_flight_requests` when dropped.
#[must_use = "the request counts as in flight only while the guard lives"]
#[derive(Debug)]
pub struct InFlightGuard {
    gauge: Gauge,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "garim_requests",
            "Requests handled, by route prefix, API and HTTP status",
            requests.clone(),
        );
        let findings = Family::<LabelLabels, Counter>::default();
        registry.register(
            "garim_findings",
            "Detected and masked values, by entity label",
            findings.clone(),
        );
        let upstream_latency: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(UPSTREAM_BUCKETS));
        registry.register(
            "garim_upstream_latency_seconds",
            "Time from sending to the upstream until its answer is complete",
            upstream_latency.clone(),
        );
        let overhead: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(OVERHEAD_BUCKETS));
        registry.register(
            "garim_gateway_overhead_seconds",
            "Time spent in the gateway itself, upstream time excluded",
            overhead.clone(),
        );
        let unresolved = Family::<RouteLabels, Counter>::default();
        registry.register(
            "garim_unresolved_placeholders",
            "Placeholders in answers that the vault could not resolve",
            unresolved.clone(),
        );
        let restored = Family::<RouteLabels, Counter>::default();
        registry.register(
            "garim_restored_placeholders",
            "Placeholders in answers replaced by their original values",
            restored.clone(),
        );
        let blocked = Family::<BlockedLabels, Counter>::default();
        registry.register(
            "garim_blocked_requests",
            "Requests refused by policy, by route prefix and reason",
            blocked.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "garim_in_flight_requests",
            "Requests being handled now",
            in_flight.clone(),
        );
        let rule_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "garim_rule_reloads",
            "Attempts to reload the detection rules, by result (ok or error)",
            rule_reloads.clone(),
        );
        let ner_timeouts = Family::<ActionLabels, Counter>::default();
        registry.register(
            "garim_ner_timeouts",
            "Requests whose NER detection timed out or found its queue full, by action taken \
             (reject or rules_only)",
            ner_timeouts.clone(),
        );
        let ner_seconds = Histogram::new(NER_BUCKETS);
        registry.register(
            "garim_ner_detection_seconds",
            "Time to detect one request's texts with NER on (rules and all models together)",
            ner_seconds.clone(),
        );
        let audit_lost = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "garim_audit_events_lost",
            "Audit events not stored, by reason (queue_full: the disk is not keeping up; \
             writer_gone)",
            audit_lost.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                audit_lost,
                ner_timeouts,
                ner_seconds,
                registry,
                requests,
                findings,
                upstream_latency,
                overhead,
                unresolved,
                restored,
                blocked,
                in_flight,
                rule_reloads,
            }),
        }
    }

    /// Counts a finished request: `garim_requests_total{route,api,status}`.
    pub fn request(&self, route: &str, api: &str, status: u16) {
        self.inner
            .requests
            .get_or_create(&RequestLabels {
                route: clean(route),
                api: clean(api),
                status,
            })
            .inc();
    }

    /// Adds `n` findings of an entity label: `garim_findings_total{label}`.
    pub fn findings(&self, label: &str, n: u64) {
        self.inner
            .findings
            .get_or_create(&LabelLabels {
                label: clean(label),
            })
            .inc_by(n);
    }

    /// Observes upstream time in seconds: `garim_upstream_latency_seconds{route}`.
    pub fn upstream_latency(&self, route: &str, secs: f64) {
        self.inner
            .upstream_latency
            .get_or_create(&RouteLabels {
                route: clean(route),
            })
            .observe(secs);
    }

    /// Observes the gateway's own time in seconds (total minus upstream):
    /// `garim_gateway_overhead_seconds{route}`.
    pub fn overhead(&self, route: &str, secs: f64) {
        self.inner
            .overhead
            .get_or_create(&RouteLabels {
                route: clean(route),
            })
            .observe(secs);
    }

    /// Adds placeholders the vault could not resolve: `garim_unresolved_placeholders_total`.
    pub fn unresolved(&self, route: &str, n: u64) {
        self.inner
            .unresolved
            .get_or_create(&RouteLabels {
                route: clean(route),
            })
            .inc_by(n);
    }

    /// Adds placeholders restored in answers: `garim_restored_placeholders_total{route}`.
    pub fn restored(&self, route: &str, n: u64) {
        self.inner
            .restored
            .get_or_create(&RouteLabels {
                route: clean(route),
            })
            .inc_by(n);
    }

    /// Counts a blocked request: `garim_blocked_requests_total{route,reason}`; `reason` is a
    /// fixed code such as `policy` or `too_large`.
    pub fn blocked(&self, route: &str, reason: &str) {
        self.inner
            .blocked
            .get_or_create(&BlockedLabels {
                route: clean(route),
                reason: clean(reason),
            })
            .inc();
    }

    /// Counts a rule reload attempt: `garim_rule_reloads_total{result="ok"|"error"}`.
    pub fn rule_reload(&self, ok: bool) {
        self.inner
            .rule_reloads
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    /// Counts a request whose NER did not answer in time: `garim_ner_timeouts_total{action}`,
    /// `action` being `reject` or `rules_only`.
    pub fn ner_timeout(&self, action: &'static str) {
        self.inner
            .ner_timeouts
            .get_or_create(&ActionLabels { action })
            .inc();
    }

    /// Counts an audit event that was not stored: `garim_audit_events_lost_total{reason}`.
    pub fn audit_lost(&self, reason: &'static str) {
        self.inner
            .audit_lost
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Observes one request's detection time with NER: `garim_ner_detection_seconds`.
    pub fn ner_seconds(&self, secs: f64) {
        self.inner.ner_seconds.observe(secs);
    }

    /// Marks a request in flight until the returned guard is dropped.
    pub fn in_flight(&self) -> InFlightGuard {
        let gauge = self.inner.in_flight.clone();
        gauge.inc();
        InFlightGuard { gauge }
    }

    /// All metrics in the OpenMetrics text format (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an encoding error would be a library bug.
        if prometheus_client::encoding::text::encode(&mut out, &self.inner.registry).is_err() {
            tracing::error!("metrics encoding failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the one sample line that starts with `series` followed by a space.
    fn sample(text: &str, series: &str) -> f64 {
        let found: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix(series))
            .filter_map(|rest| rest.strip_prefix(' '))
            .collect();
        assert_eq!(found.len(), 1, "series {series} in:\n{text}");
        found[0].trim().parse().unwrap()
    }

    #[test]
    fn encodes_expected_series_and_values() {
        let m = Metrics::new();
        m.request("/openai", "openai.chat", 200);
        m.request("/openai", "openai.chat", 200);
        m.request("/anthropic", "anthropic.messages", 502);
        m.findings("EMAIL", 3);
        m.findings("EMAIL", 2);
        m.audit_lost("queue_full");
        m.audit_lost("queue_full");
        m.findings("PHONE", 1);
        m.upstream_latency("/openai", 0.3);
        m.upstream_latency("/openai", 1.7);
        m.overhead("/openai", 0.00007);
        m.overhead("/openai", 0.0012);
        m.unresolved("/openai", 2);
        m.restored("/openai", 5);
        m.restored("/openai", 1);
        m.blocked("/openai", "policy");
        let clone = m.clone();
        clone.request("/openai", "openai.chat", 200);

        let t = m.encode();
        assert_eq!(
            sample(
                &t,
                "garim_requests_total{route=\"/openai\",api=\"openai.chat\",status=\"200\"}"
            ),
            3.0
        );
        assert_eq!(
            sample(
                &t,
                "garim_requests_total{route=\"/anthropic\",api=\"anthropic.messages\",status=\"502\"}"
            ),
            1.0
        );
        assert_eq!(sample(&t, "garim_findings_total{label=\"EMAIL\"}"), 5.0);
        assert_eq!(
            sample(&t, "garim_audit_events_lost_total{reason=\"queue_full\"}"),
            2.0
        );
        assert_eq!(sample(&t, "garim_findings_total{label=\"PHONE\"}"), 1.0);
        assert_eq!(
            sample(
                &t,
                "garim_upstream_latency_seconds_count{route=\"/openai\"}"
            ),
            2.0
        );
        assert!(
            (sample(&t, "garim_upstream_latency_seconds_sum{route=\"/openai\"}") - 2.0).abs()
                < 1e-9
        );
        assert_eq!(
            sample(
                &t,
                "garim_upstream_latency_seconds_bucket{le=\"0.5\",route=\"/openai\"}"
            ),
            1.0
        );
        // Overhead buckets resolve tens of microseconds.
        assert_eq!(
            sample(
                &t,
                "garim_gateway_overhead_seconds_bucket{le=\"0.00005\",route=\"/openai\"}"
            ),
            0.0
        );
        assert_eq!(
            sample(
                &t,
                "garim_gateway_overhead_seconds_bucket{le=\"0.0001\",route=\"/openai\"}"
            ),
            1.0
        );
        assert_eq!(
            sample(
                &t,
                "garim_gateway_overhead_seconds_bucket{le=\"0.0015\",route=\"/openai\"}"
            ),
            2.0
        );
        assert_eq!(
            sample(&t, "garim_unresolved_placeholders_total{route=\"/openai\"}"),
            2.0
        );
        assert_eq!(
            sample(&t, "garim_restored_placeholders_total{route=\"/openai\"}"),
            6.0
        );
        assert_eq!(
            sample(
                &t,
                "garim_blocked_requests_total{route=\"/openai\",reason=\"policy\"}"
            ),
            1.0
        );
        assert_eq!(sample(&t, "garim_in_flight_requests"), 0.0);
        assert!(t.contains("# TYPE garim_requests counter"));
        assert!(t.contains("# TYPE garim_gateway_overhead_seconds histogram"));
        assert!(t.trim_end().ends_with("# EOF"));
    }

    #[test]
    fn in_flight_guard_counts_while_alive() {
        let m = Metrics::new();
        let a = m.in_flight();
        let b = m.in_flight();
        assert_eq!(sample(&m.encode(), "garim_in_flight_requests"), 2.0);
        drop(a);
        assert_eq!(sample(&m.encode(), "garim_in_flight_requests"), 1.0);
        let moved = std::thread::spawn(move || drop(b));
        moved.join().unwrap();
        assert_eq!(sample(&m.encode(), "garim_in_flight_requests"), 0.0);
    }

    #[test]
    fn label_values_cannot_carry_free_text() {
        let m = Metrics::new();
        m.findings("kim minsu@example.com \"x\"\n", 1);
        m.request(&"/r".repeat(100), "api", 200);
        let t = m.encode();
        assert!(!t.contains('@'));
        assert!(!t.contains("minsu@"));
        assert!(
            t.contains("garim_findings_total{label=\"kim_minsu_example.com__x__\"} 1"),
            "{t}"
        );
        let long = format!("route=\"{}\"", "/r".repeat(32));
        assert!(t.contains(&long), "{t}");
        assert!(!t.contains(&format!("route=\"{}", "/r".repeat(33))));
        assert_eq!(clean("/v1-ok_1.2:3"), "/v1-ok_1.2:3");
        assert_eq!(clean("한글"), "__");
    }

    #[test]
    fn init_tracing_twice_is_harmless() {
        init_tracing("not a [valid filter");
        init_tracing("info");
        tracing::info!("still logging");
    }
}
