//! Hot reload of the detection engine: new rule packs (and dictionaries) without a restart.
//!
//! [`EngineHandle`] holds the engine in force as an `Arc<Engine>` behind a lock that is held
//! only to clone or swap that `Arc`. A request calls [`EngineHandle::current`] once and keeps
//! the `Arc` it got until it is done, so a swap never changes the rules under a request in
//! flight, and no request waits for or fails because of a reload.
//!
//! [`spawn`] starts the reloader task. It rebuilds the engine when
//! * any watched file (`detect.rule_files`, see [`watched_paths`]) changes: modification time,
//!   size or existence, polled every [`POLL_INTERVAL`] (no file-watch dependency), or
//! * the process gets `SIGHUP` (always rebuilds, changed or not).
//!
//! The new engine is built by [`crate::detect::build_engine`] on a blocking thread (compiling
//! the regexes takes tens of milliseconds, dictionaries more) and swapped in atomically. A
//! build that fails (a bad rule file, a missing file) is logged at `error` with the
//! loader's message, which names the file, the rule and the problem, and the engine in force
//! stays. Every attempt counts in `garim_rule_reloads_total{result="ok"|"error"}`.
//!
//! Limits: NER models are loaded once at start and are not reloaded: a rebuilt engine
//! shares the NER pools of the engine in force; changing a model needs a restart. The
//! built-in packs are embedded in the binary, so a reload re-reads them as they
//! were built; changing them needs a new binary. Only the files listed in the configuration
//! at start are watched: changing `detect` settings in the config file itself needs a
//! restart. A file written in place may be read half-written; the build then fails, and the
//! next poll (the write changed the time stamp again) or a `SIGHUP` retries: write rule files
//! to a temporary name and rename them into place to avoid the error line.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::Engine;
use crate::config::DetectSettings;
use crate::telemetry::Metrics;

/// How often the watched files' time stamps are checked.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What a watched file looked like: `None` when it could not be read (missing).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

/// The stamps of a list of files, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamps(Vec<(PathBuf, Option<Stamp>)>);

impl Stamps {
    /// Reads the stamps of `paths` now (a `stat` each).
    pub fn take(paths: &[PathBuf]) -> Stamps {
        Stamps(
            paths
                .iter()
                .map(|p| {
                    let st = std::fs::metadata(p).ok().map(|m| Stamp {
                        modified: m.modified().ok(),
                        len: m.len(),
                    });
                    (p.clone(), st)
                })
                .collect(),
        )
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.0.iter().map(|(p, _)| p.clone()).collect()
    }
}

/// The files whose changes trigger a reload: every file the engine is built from.
/// (File-backed detector settings added to [`DetectSettings`] belong here too.)
pub fn watched_paths(settings: &DetectSettings) -> Vec<PathBuf> {
    let mut paths = settings.rule_files.clone();
    paths.extend(settings.dictionaries.iter().filter_map(|d| d.file.clone()));
    paths
}

/// The engine in force, swappable while requests use it.
#[derive(Debug)]
pub struct EngineHandle {
    current: RwLock<Arc<Engine>>,
    generation: AtomicU64,
    /// The watched files as they were at the last build attempt, successful or not.
    seen: Mutex<Stamps>,
}

impl EngineHandle {
    /// A handle holding `engine` (generation 0), with no files watched.
    pub fn new(engine: Engine) -> EngineHandle {
        EngineHandle {
            current: RwLock::new(Arc::new(engine)),
            generation: AtomicU64::new(0),
            seen: Mutex::new(Stamps::default()),
        }
    }

    /// Builds the engine `settings` ask for and remembers the watched files' stamps (taken
    /// before reading them, so a change during the build is seen by the next poll).
    pub fn build(settings: &DetectSettings) -> Result<EngineHandle, String> {
        EngineHandle::build_with(settings, None)
    }

    /// [`EngineHandle::build`] with the NER router loaded at start; every reload reuses it.
    pub fn build_with(
        settings: &DetectSettings,
        ner: Option<Arc<super::ner::NerRouter>>,
    ) -> Result<EngineHandle, String> {
        let stamps = Stamps::take(&watched_paths(settings));
        let engine = super::build_engine_with(settings, ner).map_err(|e| e.to_string())?;
        let h = EngineHandle::new(engine);
        *h.seen.lock().unwrap_or_else(|e| e.into_inner()) = stamps;
        Ok(h)
    }

    /// The engine in force. Keep the `Arc` for the whole request.
    pub fn current(&self) -> Arc<Engine> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts `engine` in force; returns the new generation. Holders of the old `Arc` keep it.
    pub fn replace(&self, engine: Engine) -> u64 {
        let new = Arc::new(engine);
        let old = {
            let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *cur, new)
        };
        // The old engine is freed here (or by the last request holding it), outside the lock.
        drop(old);
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// How many times the engine was replaced.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn seen(&self) -> Stamps {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_seen(&self, s: Stamps) {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }
}

/// Why a reload did not happen. The message is the loader's: file, rule, problem.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Build(String),
    #[error("the reload task failed: {0}")]
    Task(String),
}

impl ReloadError {
    /// Reloads concern operator files, never a client.
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::INTERNAL_SERVER_ERROR
    }

    pub fn fault(&self) -> &'static str {
        "internal"
    }
}

/// Rebuilds the engine from `settings` on a blocking thread and swaps it in. On failure the
/// engine in force stays. Logs and counts the outcome either way; returns the new
/// generation and how long the build took.
pub async fn reload(
    handle: &Arc<EngineHandle>,
    settings: &DetectSettings,
    metrics: &Metrics,
    why: &'static str,
) -> Result<(u64, Duration), ReloadError> {
    let settings = settings.clone();
    // The NER models are not reloaded: the new engine shares the pools of the one in force.
    let ner = handle.current().ner().cloned();
    let started = Instant::now();
    let built = tokio::task::spawn_blocking(move || {
        let stamps = Stamps::take(&watched_paths(&settings));
        let engine = super::build_engine_with(&settings, ner).map_err(|e| e.to_string());
        (stamps, engine)
    })
    .await;
    let took = started.elapsed();
    let result = match built {
        Ok((stamps, Ok(engine))) => {
            handle.set_seen(stamps);
            let gen = handle.replace(engine);
            Ok((gen, took))
        }
        Ok((stamps, Err(msg))) => {
            handle.set_seen(stamps);
            Err(ReloadError::Build(msg))
        }
        Err(e) => Err(ReloadError::Task(e.to_string())),
    };
    match &result {
        Ok((gen, took)) => {
            metrics.rule_reload(true);
            tracing::info!(
                trigger = why,
                generation = gen,
                took_ms = took.as_secs_f64() * 1e3,
                "detection rules reloaded"
            );
        }
        Err(e) => {
            metrics.rule_reload(false);
            tracing::error!(
                trigger = why,
                took_ms = took.as_secs_f64() * 1e3,
                "rule reload rejected, the rules in force stay: {e}"
            );
        }
    }
    result
}

/// Whether any watched file changed since the last build attempt (stats on a blocking
/// thread).
async fn changed(handle: &EngineHandle) -> bool {
    let seen = handle.seen();
    let paths = seen.paths();
    if paths.is_empty() {
        return false;
    }
    match tokio::task::spawn_blocking(move || Stamps::take(&paths)).await {
        Ok(now) => now != seen,
        Err(_) => false,
    }
}

/// Starts the reloader: polls the watched files every `interval` and listens for `SIGHUP`
/// (Unix). The signal handler is installed before this returns, so a `SIGHUP` sent after
/// it no longer terminates the process. Must be called inside a Tokio runtime; the task
/// runs until the runtime stops.
pub fn spawn(
    handle: Arc<EngineHandle>,
    settings: DetectSettings,
    metrics: Metrics,
    interval: Duration,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate
        loop {
            #[cfg(unix)]
            let why = tokio::select! {
                _ = tick.tick() => "file_change",
                s = hup.recv() => match s {
                    Some(()) => "sighup",
                    None => return,
                },
            };
            #[cfg(not(unix))]
            let why = {
                tick.tick().await;
                "file_change"
            };
            if why == "file_change" && !changed(&handle).await {
                continue;
            }
            // Outcome already logged and counted.
            let _ = reload(&handle, &settings, &metrics, why).await;
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Label;

    fn settings(files: Vec<PathBuf>) -> DetectSettings {
        DetectSettings {
            builtin_rules: false,
            rule_files: files,
            min_score: 0.0,
            thresholds: Vec::new(),
            korean_names: crate::config::KoreanNameSettings {
                enabled: false,
                min_score: 0.0,
            },
            dictionaries: Vec::new(),
            ner: crate::config::NerSettings::default(),
            max_in_flight: 1,
        }
    }

    fn rule(id: &str, pattern: &str) -> String {
        format!(
            "[[rule]]\nid = \"{id}\"\nlabel = \"CUSTOM\"\npatterns = ['{pattern}']\nscore = 0.9\n"
        )
    }

    fn labels(h: &EngineHandle, text: &str) -> Vec<(String, Label)> {
        h.current()
            .detect(text)
            .unwrap()
            .into_iter()
            .map(|f| (text[f.start..f.end].to_string(), f.label))
            .collect()
    }

    #[tokio::test]
    async fn reload_swaps_good_rules_and_keeps_old_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("custom.toml");
        std::fs::write(&file, rule("proj", "PROJECT-[0-9]{4}")).unwrap();
        let s = settings(vec![file.clone()]);
        let h = Arc::new(EngineHandle::build(&s).unwrap());
        let m = Metrics::new();
        assert_eq!(
            labels(&h, "see PROJECT-1234 and TICKET-99"),
            vec![("PROJECT-1234".to_string(), Label::Custom)]
        );
        let before = h.current();

        std::fs::write(
            &file,
            rule("proj", "PROJECT-[0-9]{4}") + &rule("ticket", "TICKET-[0-9]{2}"),
        )
        .unwrap();
        assert!(changed(&h).await);
        let (gen, _) = reload(&h, &s, &m, "test").await.unwrap();
        assert_eq!(gen, 1);
        assert!(!changed(&h).await);
        assert_eq!(labels(&h, "see PROJECT-1234 and TICKET-99").len(), 2);
        // A holder of the old engine still has the old rules.
        assert_eq!(before.detect("TICKET-99").unwrap().len(), 0);

        std::fs::write(&file, rule("broken", "PROJECT-[0-9")).unwrap();
        let err = reload(&h, &s, &m, "test").await.unwrap_err().to_string();
        assert!(
            err.contains("custom.toml") && err.contains("broken"),
            "{err}"
        );
        assert_eq!(h.generation(), 1);
        assert_eq!(labels(&h, "see PROJECT-1234 and TICKET-99").len(), 2);
        // The failed attempt is remembered: no retry until the file changes again.
        assert!(!changed(&h).await);

        std::fs::remove_file(&file).unwrap();
        assert!(changed(&h).await);
        assert!(reload(&h, &s, &m, "test").await.is_err());
        assert_eq!(labels(&h, "TICKET-99").len(), 1);

        let t = m.encode();
        assert!(
            t.contains("garim_rule_reloads_total{result=\"ok\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("garim_rule_reloads_total{result=\"error\"} 2"),
            "{t}"
        );
    }

    #[tokio::test]
    async fn poller_picks_up_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("custom.toml");
        std::fs::write(&file, rule("proj", "PROJECT-[0-9]{4}")).unwrap();
        let s = settings(vec![file.clone()]);
        let h = Arc::new(EngineHandle::build(&s).unwrap());
        let task = spawn(h.clone(), s, Metrics::new(), Duration::from_millis(50)).unwrap();
        std::fs::write(&file, rule("ticket", "TICKET-[0-9]{2}")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while h.generation() == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(h.generation(), 1);
        assert_eq!(labels(&h, "TICKET-99 PROJECT-1234").len(), 1);
        task.abort();
    }

    #[test]
    fn build_error_names_file_and_rule() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, rule("oops", "(")).unwrap();
        let err = EngineHandle::build(&settings(vec![file])).unwrap_err();
        assert!(err.contains("bad.toml") && err.contains("oops"), "{err}");
    }
}
