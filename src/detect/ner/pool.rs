//! A bounded pool of worker threads that own the ONNX sessions of one NER model.
//!
//! What: `workers` std threads (default 1), each with its own [`Session`]; a bounded queue of
//! requests; a worker takes up to `max_batch` queued texts at once and runs them through the
//! model in one batched pass (micro-batching across concurrent requests). Every request has a
//! time budget: the caller waits at most that long and then gets [`DetectError::Timeout`]
//! (fail closed); a worker skips requests whose deadline has already passed.
//!
//! Why: ONNX inference takes milliseconds of CPU; it must never run on the async runtime's
//! threads, and a slow model must not hold a request forever.
//!
//! Limits: [`Detector::detect`] blocks the calling thread until the answer or the deadline:
//! the pipeline must call it from `spawn_blocking` (always, whatever the body size). A request
//! whose inference has started runs to completion even after its caller has given up. A full
//! queue is refused at once ([`DetectError::Unavailable`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ort::session::Session;

use super::model::{ModelError, TokenClassifier};
use crate::detect::{DetectError, Detector, Finding, Priority};

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Worker threads, each with its own session. Default 1.
    pub workers: usize,
    /// ONNX Runtime intra-op threads per session. Default 1.
    pub intra_threads: usize,
    /// Most texts a worker runs in one pass. Default 8.
    pub max_batch: usize,
    /// Most requests waiting; more are refused. Default 256.
    pub queue: usize,
    /// Time budget of [`Detector::detect`] calls. Default 2 s.
    pub budget: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            workers: 1,
            intra_threads: 1,
            max_batch: 8,
            queue: 256,
            budget: Duration::from_secs(2),
        }
    }
}

type Reply = Result<Vec<Finding>, DetectError>;

struct Job {
    text: String,
    deadline: Instant,
    reply: SyncSender<Reply>,
}

/// A NER detector backed by a worker pool. Dropping it stops the workers (after the jobs
/// already queued).
pub struct NerPool {
    model: Arc<TokenClassifier>,
    tx: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    budget: Duration,
    stats: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    texts: AtomicU64,
    batches: AtomicU64,
    expired: AtomicU64,
}

/// What the workers have done since the pool started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Texts run through the model.
    pub texts: u64,
    /// Model passes (each over up to `max_batch` texts).
    pub batches: u64,
    /// Requests dropped unrun because their deadline had passed.
    pub expired: u64,
}

impl std::fmt::Debug for NerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NerPool")
            .field("model", &self.model.name())
            .field("workers", &self.workers.len())
            .field("budget", &self.budget)
            .finish()
    }
}

impl NerPool {
    /// Starts the workers; their sessions are created here, so a model that cannot load
    /// fails now, not at the first request.
    pub fn new(model: Arc<TokenClassifier>, cfg: &PoolConfig) -> Result<Self, ModelError> {
        let workers = cfg.workers.max(1);
        let mut sessions = Vec::with_capacity(workers);
        for _ in 0..workers {
            sessions.push(model.new_session(cfg.intra_threads)?);
        }
        let (tx, rx) = mpsc::sync_channel::<Job>(cfg.queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let max_batch = cfg.max_batch.max(1);
        let stats = Arc::new(Counters::default());
        let handles = sessions
            .into_iter()
            .enumerate()
            .map(|(i, session)| {
                let (model, rx, stats) = (model.clone(), rx.clone(), stats.clone());
                std::thread::Builder::new()
                    .name(format!("ner-{}-{i}", model.name()))
                    .spawn(move || worker(model, session, rx, max_batch, stats))
                    .expect("spawning an NER worker thread")
            })
            .collect();
        Ok(NerPool {
            model,
            tx: Some(tx),
            workers: handles,
            budget: cfg.budget,
            stats,
        })
    }

    /// Counters of the work done so far.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            texts: self.stats.texts.load(Ordering::Relaxed),
            batches: self.stats.batches.load(Ordering::Relaxed),
            expired: self.stats.expired.load(Ordering::Relaxed),
        }
    }

    pub fn model(&self) -> &Arc<TokenClassifier> {
        &self.model
    }

    /// The findings in `text`, waiting at most `budget`.
    pub fn detect_within(&self, text: &str, budget: Duration) -> Result<Vec<Finding>, DetectError> {
        self.submit(text, Instant::now() + budget)?.wait()
    }

    /// Queues `text` for the workers without waiting; [`Pending::wait`] collects the answer.
    /// Several texts submitted before waiting can share one model pass. A full queue is
    /// refused at once.
    pub fn submit(&self, text: &str, deadline: Instant) -> Result<Pending, DetectError> {
        let name = || self.model.detector_name().to_owned();
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Job {
            text: text.to_owned(),
            deadline,
            reply,
        };
        let tx = self.tx.as_ref().ok_or_else(|| DetectError::Unavailable {
            detector: name(),
            reason: "the worker pool is shut down".into(),
        })?;
        match tx.try_send(job) {
            Ok(()) => Ok(Pending {
                answer,
                deadline,
                model: self.model.clone(),
            }),
            Err(TrySendError::Full(_)) => Err(DetectError::Unavailable {
                detector: name(),
                reason: "the NER queue is full".into(),
            }),
            Err(TrySendError::Disconnected(_)) => Err(DetectError::Unavailable {
                detector: name(),
                reason: "the NER workers have stopped".into(),
            }),
        }
    }
}

/// A text queued by [`NerPool::submit`].
#[must_use = "a submitted text's findings are only read by `wait`"]
pub struct Pending {
    answer: Receiver<Reply>,
    deadline: Instant,
    model: Arc<TokenClassifier>,
}

impl Pending {
    /// Waits for the findings until the deadline given to [`NerPool::submit`].
    pub fn wait(self) -> Result<Vec<Finding>, DetectError> {
        let detector = || self.model.detector_name().to_owned();
        match self
            .answer
            .recv_timeout(self.deadline.saturating_duration_since(Instant::now()))
        {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => Err(DetectError::Timeout {
                detector: detector(),
            }),
            Err(RecvTimeoutError::Disconnected) => Err(DetectError::Internal {
                detector: detector(),
                reason: "the NER worker dropped the request".into(),
            }),
        }
    }
}

impl Drop for NerPool {
    fn drop(&mut self) {
        self.tx = None;
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

fn worker(
    model: Arc<TokenClassifier>,
    mut session: Session,
    rx: Arc<Mutex<Receiver<Job>>>,
    max_batch: usize,
    stats: Arc<Counters>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    loop {
        {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            match rx.recv() {
                Ok(j) => batch.push(j),
                Err(_) => return, // pool dropped
            }
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
        }
        let now = Instant::now();
        batch.retain(|j| {
            let live = j.deadline > now;
            if !live {
                stats.expired.fetch_add(1, Ordering::Relaxed);
                let _ = j.reply.try_send(Err(DetectError::Timeout {
                    detector: model.detector_name().to_owned(),
                }));
            }
            live
        });
        if batch.is_empty() {
            continue;
        }
        let texts: Vec<&str> = batch.iter().map(|j| j.text.as_str()).collect();
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.texts.fetch_add(texts.len() as u64, Ordering::Relaxed);
        match model.predict(&mut session, &texts) {
            Ok(results) => {
                for (j, r) in batch.drain(..).zip(results) {
                    let _ = j.reply.try_send(Ok(r));
                }
            }
            Err(e) => {
                // One text's failure fails the batch; answer each with the same error kind.
                let reason = match e {
                    DetectError::Internal { reason, .. }
                    | DetectError::Unavailable { reason, .. } => reason,
                    DetectError::Timeout { .. } => "timed out".to_owned(),
                };
                for j in batch.drain(..) {
                    let _ = j.reply.try_send(Err(DetectError::Internal {
                        detector: model.detector_name().to_owned(),
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }
}

impl Detector for NerPool {
    fn name(&self) -> &str {
        self.model.detector_name()
    }

    fn detect(&self, text: &str, out: &mut Vec<Finding>) -> Result<(), DetectError> {
        out.extend(self.detect_within(text, self.budget)?);
        Ok(())
    }

    fn priority(&self, _: &Finding) -> Priority {
        Priority::Ner
    }
}
