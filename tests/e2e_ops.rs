//! End to end, operations: health and readiness, Prometheus metrics, the audit file (one line
//! per request, no raw value), logs without raw values, the stdout readiness line, graceful
//! SIGTERM, config errors (exit 2 naming the field), config routes and passthrough mode.

mod common;

use common::gateway::{Gateway, GatewayBuilder};
use common::upstream::{Behavior, Upstream};
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Sum of all samples of a metric (any labels) in Prometheus text, None when absent.
fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        let value = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if let Some(v) = value {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

#[test]
fn metric_sum_parses_prometheus_text() {
    let t = "# TYPE garim_findings_total counter\ngarim_findings_total{label=\"EMAIL\"} 2\ngarim_findings_total{label=\"PHONE\"} 3\ngarim_findings_totalx 9\ngarim_requests_total 4\n";
    assert_eq!(metric_sum(t, "garim_findings_total"), Some(5.0));
    assert_eq!(metric_sum(t, "garim_requests_total"), Some(4.0));
    assert_eq!(metric_sum(t, "garim_other"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics() {
    let up = Upstream::start().await;
    let gw = gateway_for(&up, "");
    assert_eq!(gw.get("/healthz").await.status, 200);
    assert_eq!(gw.get("/readyz").await.status, 200);
    let m = gw.get("/metrics").await;
    assert_eq!(m.status, 200);
    let ct = m.header("content-type").unwrap_or_default();
    assert!(
        ct.starts_with("text/plain") || ct.starts_with("application/openmetrics-text"),
        "{ct}"
    );
    let before = metric_sum(&m.text(), "garim_requests_total").unwrap_or(0.0);

    let r = gw.post_json(CHAT, &chat_request(false)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ok = eventually(Duration::from_secs(5), async || {
        let t = gw.get("/metrics").await.text();
        metric_sum(&t, "garim_requests_total").unwrap_or(0.0) >= before + 1.0
            && metric_sum(&t, "garim_findings_total").unwrap_or(0.0) >= 4.0
    })
    .await;
    let text = gw.get("/metrics").await.text();
    assert!(ok, "counters did not move:\n{text}");
    assert!(text.contains("garim_requests_total"), "{text}");
    assert!(text.contains("garim_findings_total"), "{text}");
    assert_no_leak("/metrics", text.as_bytes());
    assert_eq!(
        up.count(),
        1,
        "health/metrics requests reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_has_one_clean_line_per_request_and_logs_hold_no_values() {
    let up = Upstream::start().await;
    up.set(Behavior {
        delta_chars: 3,
        ..Default::default()
    });
    let mut gw = gateway_for(&up, "");
    let audit_path = gw.audit_path.clone();
    assert_eq!(gw.post_json(CHAT, &chat_request(false)).await.status, 200);
    assert_eq!(
        gw.post_json(MESSAGES, &anthropic_request(true))
            .await
            .status,
        200
    );
    let bad = gw
        .post_raw(
            GEMINI,
            &[("content-type", "application/json")],
            format!("{{\"contents\": \"{PROMPT}").into_bytes(),
        )
        .await;
    assert_eq!(bad.status, 400);
    let fin = gw.shutdown(Duration::from_secs(20)).await;
    assert_eq!(
        fin.status.and_then(|s| s.code()),
        Some(0),
        "exit after SIGTERM; stderr:\n{}",
        fin.stderr
    );

    // stdout is exactly the readiness line
    let lines: Vec<&str> = fin.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout must be one line: {:?}", fin.stdout);
    assert!(
        lines[0].starts_with("listening on 127.0.0.1:"),
        "{}",
        lines[0]
    );
    // logs (RUST_LOG=debug) never hold a planted value
    assert_no_leak("gateway logs (stderr)", fin.stderr.as_bytes());

    let audit = std::fs::read(&audit_path).expect("audit file written");
    assert_no_leak("audit file", &audit);
    let records: Vec<Value> = String::from_utf8(audit)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line not JSON ({e}): {l}"))
        })
        .collect();
    assert_eq!(records.len(), 3, "one audit line per request: {records:#?}");
    for r in &records {
        for k in [
            "time",
            "request_id",
            "route",
            "api",
            "model",
            "findings",
            "values",
            "action",
            "status",
            "latency_ms",
        ] {
            assert!(r.get(k).is_some(), "audit record lacks `{k}`: {r}");
        }
        assert!(r["latency_ms"].is_number(), "{r}");
    }
    let ids: std::collections::BTreeSet<String> = records
        .iter()
        .map(|r| r["request_id"].to_string())
        .collect();
    assert_eq!(ids.len(), 3, "request ids repeat");
    let mut statuses: Vec<i64> = records
        .iter()
        .map(|r| r["status"].as_i64().unwrap_or(-1))
        .collect();
    statuses.sort();
    assert_eq!(statuses, vec![200, 200, 400]);
    let chat = records
        .iter()
        .find(|r| r["model"] == json!("gpt-4o-mini"))
        .expect("an audit record for the chat request, with its model");
    for (_, label) in PLANTED {
        let n = chat["findings"][label].as_u64().unwrap_or(0);
        assert!(n >= 1, "audit findings lack {label}: {}", chat["findings"]);
    }
    let values = chat["values"].as_array().expect("values array");
    for (_, label) in PLANTED {
        let v = values
            .iter()
            .find(|v| v["label"] == json!(label))
            .unwrap_or_else(|| panic!("no audit value for {label}: {values:?}"));
        let ph = v["placeholder"].as_str().unwrap_or("");
        assert!(ph.starts_with(&format!("[{label}_")), "placeholder {ph}");
        let hash = v["hash"].as_str().unwrap_or("");
        assert!(hash.len() >= 16, "hash too short or missing: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests() {
    let up = Upstream::start().await;
    up.set(Behavior {
        delay_headers: Some(Duration::from_millis(1500)),
        ..Default::default()
    });
    let mut gw = gateway_for(&up, "");
    let url = gw.url(CHAT);
    let sent = chat_request(false);
    let in_flight = tokio::spawn(async move { common::gateway::post_json(&url, &sent).await });
    assert!(
        up.wait_for_requests(1, Duration::from_secs(10)).await,
        "request never reached upstream"
    );
    gw.sigterm();
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200, "in-flight request not drained: {}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"].as_str(),
        Some(expected_echo(&chat_request(false)).as_str())
    );
    let fin = gw.shutdown(Duration::from_secs(20)).await;
    assert_eq!(
        fin.status.and_then(|s| s.code()),
        Some(0),
        "stderr:\n{}",
        fin.stderr
    );
}

#[test]
fn unknown_config_field_exits_2_naming_it() {
    for (toml, field) in [
        (
            "[server]\nlisten_adress = \"127.0.0.1:0\"\n",
            "listen_adress",
        ),
        ("[bogus_section]\nx = 1\n", "bogus_section"),
        (
            "[[route]]\nprefix = \"/x\"\nupstream = \"http://127.0.0.1:9\"\nmood = \"mask\"\n",
            "mood",
        ),
    ] {
        let fin = GatewayBuilder::new()
            .config(toml)
            .run_to_exit(Duration::from_secs(20));
        assert_eq!(
            fin.status.and_then(|s| s.code()),
            Some(2),
            "config {toml:?}: expected exit 2; stderr:\n{}",
            fin.stderr
        );
        assert!(
            fin.stderr.contains(field),
            "message does not name `{field}`:\n{}",
            fin.stderr
        );
    }
}

#[test]
fn invalid_config_value_exits_2() {
    let fin = GatewayBuilder::new()
        .config("[[route]]\nprefix = \"/x\"\nupstream = \"http://127.0.0.1:9\"\nmode = \"shred\"\n")
        .run_to_exit(Duration::from_secs(20));
    assert_eq!(
        fin.status.and_then(|s| s.code()),
        Some(2),
        "stderr:\n{}",
        fin.stderr
    );
    assert!(fin.stderr.contains("mode"), "{}", fin.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_config_file_routes_and_passthrough() {
    let up = Upstream::start().await;
    let audit = "cfg-audit.jsonl";
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
max_body_bytes = 1048576
header_read_timeout_ms = 10000
shutdown_grace_ms = 5000

[upstream]
connect_timeout_ms = 2000
response_timeout_ms = 30000

[[route]]
prefix = "/cfg"
upstream = "{u}"
mode = "mask"

[[route]]
prefix = "/raw"
upstream = "{u}"
mode = "passthrough"

[vault]
ttl_secs = 600

[audit]
file = "{audit}"
"#,
        u = up.url()
    );
    let gw: Gateway = GatewayBuilder::new().config(&toml).no_listen_flag().start();
    // a config route in mask mode masks
    let sent = chat_request(false);
    let r = gw.post_json("/cfg/v1/chat/completions", &sent).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_masked(&sent, &up.last());
    // passthrough forwards an unknown path, body untouched
    let body = json!({"anything": "goes", "n": 1});
    let r = gw.post_json("/raw/v1/files?purpose=x", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rec = up.last();
    assert_eq!(rec.uri, "/v1/files?purpose=x");
    assert_eq!(rec.json(), body);
    assert_eq!(r.json()["fixture"], json!("unknown-path"));
    // a path under no route prefix is not forwarded
    let n = up.count();
    let r = gw.post_json("/nowhere/v1/chat/completions", &sent).await;
    assert!(
        r.status.is_client_error(),
        "unrouted path gave {}",
        r.status
    );
    assert_no_leak("unrouted response", &r.body);
    assert_eq!(up.count(), n);
}
