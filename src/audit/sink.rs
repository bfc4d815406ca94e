//! Where audit events go: a JSON-lines file written off the request path, or memory.
//!
//! [`FileSink`] hands each event to a dedicated writer thread over a bounded queue, so
//! recording never waits for the disk. The thread writes whatever has queued up as one batch
//! (one `write` call in append mode), so lines from one process never interleave.
//!
//! When the disk stalls and the queue is full, [`AuditSink::record`] does not wait: the
//! event is dropped and the call says so ([`Lost::QueueFull`]), the gateway counts it in
//! `garim_audit_events_lost_total{reason}`, and one error line marks the start of each
//! overflow streak. Why drop rather than block: events are recorded when a request is
//! finished, so blocking would hold the answer (or the runtime's worker thread) hostage to
//! the disk without protecting anything; an unbounded queue (the first version) trades a slow
//! disk for an out-of-memory kill, which loses every queued event at once. Size the queue with
//! `[audit] queue_capacity`.
//!
//! Limits: events still queued when the process is killed (not shut down) are lost. A failed
//! write is logged with the path and the error only, and the lost events are counted in
//! [`FileSink::failures`]; the write is not retried.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::{AuditError, AuditEvent};

/// Largest number of events written in one batch.
const MAX_BATCH: usize = 1024;

/// Events a [`FileSink`] queues by default before it drops new ones (about 30 MB of
/// typical events: minutes of a stalled disk at a few hundred requests per second).
pub const DEFAULT_QUEUE_CAPACITY: usize = 65_536;

/// Why an event was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// The writer is behind by the whole queue (a stalled or slow disk).
    QueueFull,
    /// The writer thread is gone (it panicked, or the sink is shutting down).
    WriterGone,
}

impl Lost {
    /// The metric label: `queue_full` or `writer_gone`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lost::QueueFull => "queue_full",
            Lost::WriterGone => "writer_gone",
        }
    }
}

/// Receives one event per request. Must not block the caller for long.
pub trait AuditSink: Send + Sync {
    /// Stores `event`, or says at once why it will not be stored.
    fn record(&self, event: AuditEvent) -> Result<(), Lost>;
    /// Waits until every event recorded so far is stored. A no-op by default.
    fn flush(&self) {}
}

impl<T: AuditSink + ?Sized> AuditSink for Arc<T> {
    fn record(&self, event: AuditEvent) -> Result<(), Lost> {
        (**self).record(event)
    }

    fn flush(&self) {
        (**self).flush()
    }
}

impl<T: AuditSink + ?Sized> AuditSink for Box<T> {
    fn record(&self, event: AuditEvent) -> Result<(), Lost> {
        (**self).record(event)
    }

    fn flush(&self) {
        (**self).flush()
    }
}

enum Msg {
    Event(Box<AuditEvent>),
    /// Write everything queued before this, sync the file, then answer.
    Flush(SyncSender<()>),
}

/// Appends events as JSON lines to a file, from a background thread.
pub struct FileSink {
    path: PathBuf,
    tx: Option<SyncSender<Msg>>,
    failures: Arc<AtomicU64>,
    /// Whether the last event found the queue full (to log an overflow streak once).
    overflowing: AtomicBool,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink")
            .field("path", &self.path)
            .field("failures", &self.failures())
            .finish_non_exhaustive()
    }
}

impl FileSink {
    /// Opens (creating if needed, mode 0600 on Unix) `path` for appending and starts the
    /// writer thread, with a queue of [`DEFAULT_QUEUE_CAPACITY`] events.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        FileSink::open_with_capacity(path, DEFAULT_QUEUE_CAPACITY)
    }

    /// [`FileSink::open`] with a queue of `capacity` events (at least one).
    pub fn open_with_capacity(path: impl AsRef<Path>, capacity: usize) -> Result<Self, AuditError> {
        let path = path.as_ref().to_path_buf();
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(&path).map_err(|source| AuditError::Open {
            path: path.clone(),
            source,
        })?;
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let failures = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            file,
            path: path.clone(),
            failures: failures.clone(),
            failing: false,
        };
        let thread = std::thread::Builder::new()
            .name("garim-audit".into())
            .spawn(move || writer.run(rx))
            .map_err(AuditError::Thread)?;
        Ok(FileSink {
            path,
            tx: Some(tx),
            failures,
            overflowing: AtomicBool::new(false),
            thread: Some(thread),
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counts and logs a lost event (an overflow streak once, not every event).
    fn lose(&self, lost: Lost) -> Lost {
        let total = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        match lost {
            Lost::QueueFull => {
                if !self.overflowing.swap(true, Ordering::Relaxed) {
                    tracing::error!(path = %self.path.display(), failures = total, "audit queue full (the disk is not keeping up): dropping events until it drains");
                }
            }
            Lost::WriterGone => {
                tracing::error!(path = %self.path.display(), failures = total, "audit writer is gone; event lost")
            }
        }
        lost
    }

    /// Number of events that could not be written (dropped on a full queue included).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

impl AuditSink for FileSink {
    fn record(&self, event: AuditEvent) -> Result<(), Lost> {
        let Some(tx) = self.tx.as_ref() else {
            return Err(self.lose(Lost::WriterGone));
        };
        match tx.try_send(Msg::Event(Box::new(event))) {
            Ok(()) => {
                if self.overflowing.swap(false, Ordering::Relaxed) {
                    tracing::warn!(path = %self.path.display(), "audit queue accepting events again");
                }
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(self.lose(Lost::QueueFull)),
            Err(TrySendError::Disconnected(_)) => Err(self.lose(Lost::WriterGone)),
        }
    }

    /// Waits for room in the queue if need be (flushing is allowed to wait).
    fn flush(&self) {
        let Some(tx) = self.tx.as_ref() else { return };
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        if tx.send(Msg::Flush(ack_tx)).is_ok() {
            // An error here means the writer thread ended: nothing more to wait for.
            let _ = ack_rx.recv();
        }
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // Closing the channel lets the writer drain what is queued and stop.
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer thread's state.
struct Writer {
    file: File,
    path: PathBuf,
    failures: Arc<AtomicU64>,
    /// Whether the last write failed (to log a failure streak once, and its end).
    failing: bool,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        let mut batch: Vec<u8> = Vec::with_capacity(64 * 1024);
        while let Ok(first) = rx.recv() {
            let mut acks = Vec::new();
            let mut events = 0u64;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Event(event) => match serde_json::to_writer(&mut batch, &*event) {
                        Ok(()) => {
                            batch.push(b'\n');
                            events += 1;
                        }
                        Err(_) => {
                            self.failures.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(path = %self.path.display(), "audit event failed to serialise");
                        }
                    },
                    Msg::Flush(ack) => acks.push(ack),
                }
                if events < MAX_BATCH as u64 {
                    next = rx.try_recv().ok();
                }
            }
            self.write(&batch, events);
            batch.clear();
            if batch.capacity() > 1 << 20 {
                batch.shrink_to(64 * 1024);
            }
            if !acks.is_empty() {
                if let Err(e) = self.file.sync_data() {
                    tracing::error!(path = %self.path.display(), error = %e, "audit log sync failed");
                }
                for ack in acks {
                    let _ = ack.send(());
                }
            }
        }
    }

    fn write(&mut self, batch: &[u8], events: u64) {
        if batch.is_empty() {
            return;
        }
        match self.file.write_all(batch) {
            Ok(()) => {
                if self.failing {
                    self.failing = false;
                    tracing::warn!(path = %self.path.display(), "audit log writable again");
                }
            }
            Err(e) => {
                let total = self.failures.fetch_add(events, Ordering::Relaxed) + events;
                // Log the start of a failure streak once, not every batch (disk full would
                // flood the log). The io error names the cause, never the content.
                if !self.failing {
                    self.failing = true;
                    tracing::error!(path = %self.path.display(), error = %e, lost = events, failures = total, "audit log write failed");
                }
            }
        }
    }
}

/// Keeps events in memory, for tests.
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every event recorded so far, in order.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl AuditSink for MemorySink {
    fn record(&self, event: AuditEvent) -> Result<(), Lost> {
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(event);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn event(i: u64) -> AuditEvent {
        AuditEvent {
            time: super::super::timestamp_now(),
            request_id: format!("req-{i}"),
            route: "/openai".into(),
            upstream: "api.openai.com".into(),
            api: "openai.chat".into(),
            findings: BTreeMap::from([("EMAIL".to_string(), i)]),
            action: "masked".into(),
            status: 200,
            latency_ms: i as f64 / 4.0,
            ..Default::default()
        }
    }

    fn read_events(path: &Path) -> Vec<AuditEvent> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON event"))
            .collect()
    }

    #[test]
    fn writes_parseable_lines_and_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let sink = FileSink::open(&path).unwrap();
        for i in 0..5 {
            sink.record(event(i)).unwrap();
        }
        sink.flush();
        let got = read_events(&path);
        assert_eq!(got.len(), 5);
        assert_eq!(got[3], event(3).clone_with_time(&got[3].time));
        assert_eq!(sink.failures(), 0);
        // Reopening appends rather than truncates.
        drop(sink);
        let sink = FileSink::open(&path).unwrap();
        sink.record(event(99)).unwrap();
        drop(sink); // drop drains the queue
        let got = read_events(&path);
        assert_eq!(got.len(), 6);
        assert_eq!(got[5].request_id, "req-99");
    }

    #[test]
    fn flush_across_threads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let sink = Arc::new(FileSink::open(&path).unwrap());
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..250 {
                        sink.record(event(t * 1000 + i)).unwrap();
                    }
                    // Each thread's flush covers at least its own events.
                    sink.flush();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let got = read_events(&path);
        assert_eq!(got.len(), 1000);
        let mut ids: Vec<String> = got.into_iter().map(|e| e.request_id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 1000);
        assert_eq!(sink.failures(), 0);
    }

    #[test]
    fn flush_waits_for_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let sink = FileSink::open(&path).unwrap();
        for round in 1..=20u64 {
            sink.record(event(round)).unwrap();
            sink.flush();
            // Right after flush returns, the line is in the file.
            assert_eq!(read_events(&path).len() as u64, round);
        }
    }

    #[test]
    fn open_failure_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("audit.jsonl");
        let err = FileSink::open(&path).unwrap_err();
        assert!(matches!(err, AuditError::Open { .. }));
        assert!(err.to_string().contains("missing-dir"), "{err}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn write_failures_are_counted() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let sink = FileSink::open("/dev/full").unwrap();
        // Queued fine; the writes fail later, in the writer thread.
        sink.record(event(1)).unwrap();
        sink.record(event(2)).unwrap();
        sink.flush();
        assert_eq!(sink.failures(), 2);
    }

    /// A writer stuck on a full pipe (a stalled disk): the bounded queue fills, further
    /// events are refused at once with `QueueFull` (recording never blocks), and once the
    /// reader drains the pipe, events are accepted again; every event is either in the file
    /// or counted as lost.
    #[cfg(target_os = "linux")]
    #[test]
    fn full_queue_drops_and_counts_without_blocking() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("audit.fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo failed");
        // Opening a FIFO for writing waits for a reader: open the reader first, in a thread.
        let reader_path = fifo.clone();
        let reader = std::thread::spawn(move || std::fs::File::open(reader_path).unwrap());
        let sink = FileSink::open_with_capacity(&fifo, 4).unwrap();
        let mut reader = reader.join().unwrap();
        // Nobody reads: the pipe buffer (64 KiB) fills, the writer blocks, the queue fills.
        // Until fifty events in a row, a millisecond apart, were refused: the writer is stuck.
        let (mut sent, mut lost, mut streak) = (0u64, 0u64, 0);
        let t0 = std::time::Instant::now();
        while streak < 50 {
            assert!(t0.elapsed().as_secs() < 30, "the queue never filled");
            match sink.record(event(sent + lost)) {
                Ok(()) => {
                    sent += 1;
                    streak = 0;
                }
                Err(l) => {
                    assert_eq!(l, Lost::QueueFull);
                    assert_eq!(l.as_str(), "queue_full");
                    lost += 1;
                    streak += 1;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        }
        assert_eq!(sink.failures(), lost);
        // Drain the pipe in the background; the queue empties and accepts again.
        let drain = std::thread::spawn(move || {
            let mut all = String::new();
            reader.read_to_string(&mut all).unwrap();
            all
        });
        let t0 = std::time::Instant::now();
        loop {
            assert!(t0.elapsed().as_secs() < 30, "the queue never drained");
            if sink.record(event(7)).is_ok() {
                sent += 1;
                break;
            }
            lost += 1;
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(sink.failures(), lost);
        drop(sink); // drains and closes the pipe: the reader sees EOF
        let written = drain.join().unwrap().lines().count() as u64;
        assert_eq!(written, sent, "every accepted event is written");
    }

    #[test]
    fn memory_sink_keeps_order() {
        let sink = Arc::new(MemorySink::new());
        let shared: Arc<dyn AuditSink> = sink.clone();
        shared.record(event(1)).unwrap();
        shared.record(event(2)).unwrap();
        shared.flush();
        let got = sink.events();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].request_id, "req-1");
        assert_eq!(got[1].request_id, "req-2");
    }

    impl AuditEvent {
        fn clone_with_time(&self, time: &str) -> AuditEvent {
            AuditEvent {
                time: time.to_string(),
                ..self.clone()
            }
        }
    }
}
