//! End to end, hot reload of the rule packs: the real binary starts with a rule file that
//! defines a custom rule; the file is rewritten with a second rule and `SIGHUP` makes it
//! apply; a broken file is rejected (stderr names the file and the rule) and the rules in
//! force stay; a change without a signal is picked up by the file poll. All the while, a
//! loop of chat requests and `/readyz` probes runs, and none of them may fail.
//! Also: full-width and zero-width phone numbers are masked through the whole gateway.

mod common;

use common::gateway::Gateway;
use common::upstream::Upstream;
use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn sighup(gw: &Gateway) {
    let st = std::process::Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -HUP failed");
}

fn rule(id: &str, pattern: &str) -> String {
    format!("[[rule]]\nid = \"{id}\"\nlabel = \"CUSTOM\"\nsubtype = \"TEST\"\npatterns = ['{pattern}']\nscore = 0.9\n\n")
}

/// Writes `text` to a temporary name and renames it over `path` (the documented way).
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn chat(text: &str) -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]})
}

/// Sends `text` (with a unique marker) and returns what the upstream received for it, after
/// checking that the client got the text back restored.
async fn probe(gw: &Gateway, up: &Upstream, n: usize, text: &str) -> String {
    let marker = format!("probe{n}x");
    let full = format!("{marker} {text}");
    let r = gw.post_json(CHAT, &chat(&full)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        content.contains(&full),
        "the answer was not restored: {content}"
    );
    let sent = up
        .requests()
        .into_iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .find(|b| b.contains(&marker))
        .expect("the probe reached the upstream");
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rules_reload_on_sighup_and_file_change_without_dropping_requests() {
    let up = Upstream::start().await;
    let rules_dir = tempfile::tempdir().unwrap();
    let file = rules_dir.path().join("custom.toml");
    replace_file(&file, &rule("custom_project", "PROJECT-[0-9]{4}"));
    let config = format!(
        "[detect]\nrule_files = [{}]\n",
        toml_string(&file.display().to_string())
    );
    let gw = Arc::new(gateway_for(&up, &config));

    // The background load: chat requests with a planted e-mail, and readiness probes.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..3 {
        let (gw, stop, done, failures) = (gw.clone(), stop.clone(), done.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let text = format!("load {w}-{i}: mail kim.minsu@example.com PROJECT-4321");
                let url = gw.url(CHAT);
                let body = serde_json::to_vec(&chat(&text)).unwrap();
                match common::gateway::try_request(
                    "POST",
                    &url,
                    &[("content-type", "application/json")],
                    body,
                )
                .await
                {
                    Ok(r) if r.status == 200 && r.body_error.is_none() => {
                        let ok = r.json()["choices"][0]["message"]["content"]
                            .as_str()
                            .is_some_and(|c| c.contains(&text));
                        if !ok {
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("not restored: {}", r.text()));
                        }
                    }
                    Ok(r) => {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("status {}: {}", r.status, r.text()))
                    }
                    Err(e) => failures.lock().unwrap().push(e),
                }
                match common::gateway::try_request("GET", &gw.url("/readyz"), &[], Vec::new()).await
                {
                    Ok(r) if r.status == 200 => {}
                    Ok(r) => failures
                        .lock()
                        .unwrap()
                        .push(format!("/readyz {}", r.status)),
                    Err(e) => failures.lock().unwrap().push(format!("/readyz: {e}")),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // 1. The custom rule from the start.
    let sent = probe(&gw, &up, 1, "codes PROJECT-1234 and TICKET-5678").await;
    assert!(!sent.contains("PROJECT-1234"), "{sent}");
    assert!(sent.contains("[CUSTOM_"), "{sent}");
    assert!(sent.contains("TICKET-5678"), "{sent}");

    // 2. A second rule, applied on SIGHUP.
    replace_file(
        &file,
        &(rule("custom_project", "PROJECT-[0-9]{4}") + &rule("custom_ticket", "TICKET-[0-9]{4}")),
    );
    let t0 = Instant::now();
    sighup(&gw);
    let mut n = 100;
    let applied = loop {
        n += 1;
        let sent = probe(&gw, &up, n, "codes PROJECT-1234 and TICKET-5678").await;
        if !sent.contains("TICKET-5678") {
            assert!(!sent.contains("PROJECT-1234"), "{sent}");
            break Some(t0.elapsed());
        }
        if t0.elapsed() > Duration::from_secs(10) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let latency = applied.unwrap_or_else(|| {
        panic!(
            "the new rule did not apply within 10 s; stderr:\n{}",
            gw.stderr()
        )
    });
    eprintln!("reload latency (SIGHUP to the first request masked by the new rule): {latency:?}");

    // 3. A broken file: rejected, named in the log with its rule, the rules in force stay.
    replace_file(
        &file,
        &(rule("custom_project", "PROJECT-[0-9]{4}") + &rule("broken_rule", "TICKET-[0-9")),
    );
    sighup(&gw);
    let file_name = file.display().to_string();
    let logged = eventually(Duration::from_secs(10), async || {
        let e = gw.stderr();
        e.lines().any(|l| {
            l.contains("rule reload rejected")
                && l.contains(&file_name)
                && l.contains("broken_rule")
        })
    })
    .await;
    assert!(
        logged,
        "no error line naming the file and rule; stderr:\n{}",
        gw.stderr()
    );
    if let Some(l) = gw
        .stderr()
        .lines()
        .find(|l| l.contains("rule reload rejected"))
    {
        eprintln!("log: {l}");
    }
    let sent = probe(&gw, &up, 200, "codes PROJECT-1234 and TICKET-5678").await;
    assert!(
        !sent.contains("TICKET-5678") && !sent.contains("PROJECT-1234"),
        "the rules in force were not kept: {sent}"
    );

    // 4. No signal: the file poll picks up a fixed file with a third rule.
    replace_file(
        &file,
        &(rule("custom_project", "PROJECT-[0-9]{4}")
            + &rule("custom_ticket", "TICKET-[0-9]{4}")
            + &rule("custom_order", "ORDER-[0-9]{6}")),
    );
    let t1 = Instant::now();
    let mut n = 300;
    let polled = loop {
        n += 1;
        let sent = probe(&gw, &up, n, "order ORDER-123456").await;
        if !sent.contains("ORDER-123456") {
            break true;
        }
        if t1.elapsed() > Duration::from_secs(15) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        polled,
        "the file change was not picked up; stderr:\n{}",
        gw.stderr()
    );
    eprintln!("reload by file poll applied after {:?}", t1.elapsed());

    // Metrics count the attempts.
    let m = gw.get("/metrics").await.text();
    let ok = metric(&m, "garim_rule_reloads_total{result=\"ok\"}");
    let err = metric(&m, "garim_rule_reloads_total{result=\"error\"}");
    assert!(ok >= 2.0 && err >= 1.0, "{m}");

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} requests failed during reloads, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    let done = done.load(Ordering::Relaxed);
    assert!(done >= 10, "the load loop made only {done} rounds");
    eprintln!("{done} load rounds, no failure");
    assert_no_leak("the log", gw.stderr().as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_width_and_zero_width_phones_are_masked_end_to_end() {
    let up = Upstream::start().await;
    let gw = gateway_for(&up, "");
    for (n, value) in [
        (1, "０１０-２３４５-６７８９"),
        (2, "010\u{200b}2345\u{200b}6789"),
    ] {
        let sent = probe(&gw, &up, n, &format!("전화 {value} 로 주세요")).await;
        assert!(!sent.contains(value), "{sent}");
        assert!(sent.contains("전화 [PHONE_1] 로 주세요"), "{sent}");
    }
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
