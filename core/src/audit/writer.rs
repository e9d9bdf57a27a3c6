//! The writer: a bounded queue in front of a thread that appends records to
//! segment files.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ring::hmac;
use serde_json::{Map, Value};

use super::canonical;
use super::error::{LogError, LogErrorKind};
use super::key::{SigningKey, key_id};
use super::record::{Members, sha256_tag};
use super::redact::Redaction;
use super::{FORMAT_VERSION, GENESIS};
use crate::decision::Decision;
use crate::request::{Request, Timestamp};

/// When the writer hands written records to the operating system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// After every record: nothing waits in the process's buffer.
    EveryRecord,
    /// At most this long after a record was written (and when the buffer
    /// fills): fewer system calls, and up to this much of the log lost if
    /// the process (not only the machine) dies.
    Interval(Duration),
}

/// How a [`DecisionLog`] writes.
#[derive(Debug, Clone)]
pub struct DecisionLogConfig {
    dir: PathBuf,
    prefix: String,
    flush: FlushPolicy,
    sync: bool,
    queue_capacity: usize,
    checkpoint_every: u64,
    max_segment_bytes: u64,
    max_total_bytes: Option<u64>,
    mandatory: bool,
    key: Option<SigningKey>,
    salt: Option<Vec<u8>>,
}

impl DecisionLogConfig {
    /// A log in directory `dir` (created if absent) with the defaults:
    /// prefix `decisions`, flush every 10 ms, a queue of 4096 records, a
    /// checkpoint every 1000 records, segments of 64 MiB, no quota, not
    /// mandatory, no signing key (no checkpoints), unsalted hashes.
    pub fn new(dir: impl Into<PathBuf>) -> DecisionLogConfig {
        DecisionLogConfig {
            dir: dir.into(),
            prefix: "decisions".into(),
            flush: FlushPolicy::Interval(Duration::from_millis(10)),
            sync: false,
            queue_capacity: 4096,
            checkpoint_every: 1000,
            max_segment_bytes: 64 << 20,
            max_total_bytes: None,
            mandatory: false,
            key: None,
            salt: None,
        }
    }

    /// Segment files are named `<prefix>-000001.jsonl`, … (ASCII letters,
    /// digits, `-` and `_`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// When records are handed to the operating system.
    pub fn flush(mut self, policy: FlushPolicy) -> Self {
        self.flush = policy;
        self
    }

    /// Also `fsync` the segment at every flush (survives a machine crash,
    /// at the cost of a disk round trip per flush).
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// How many records may wait for the writer before `decide` waits.
    pub fn queue_capacity(mut self, records: usize) -> Self {
        self.queue_capacity = records;
        self
    }

    /// A signed checkpoint after every `records` records (also at rotation
    /// and on close). Needs a [`signing_key`](Self::signing_key).
    pub fn checkpoint_every(mut self, records: u64) -> Self {
        self.checkpoint_every = records;
        self
    }

    /// Start a new segment once the current one reaches this size.
    pub fn max_segment_bytes(mut self, bytes: u64) -> Self {
        self.max_segment_bytes = bytes;
        self
    }

    /// The most all segments together may hold; a record that would exceed
    /// it fails as a full disk would ([`LogErrorKind::Full`]).
    pub fn max_total_bytes(mut self, bytes: Option<u64>) -> Self {
        self.max_total_bytes = bytes;
        self
    }

    /// When mandatory, a decision that cannot be logged is not executed:
    /// `decide` waits until its record is written and turns the decision
    /// into a `reject` if it could not be. See `docs/audit.md`.
    pub fn mandatory(mut self, mandatory: bool) -> Self {
        self.mandatory = mandatory;
        self
    }

    /// The host's key that signs checkpoints.
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        self.key = Some(key);
        self
    }

    /// A secret that keys the hashes of redacted fields (HMAC-SHA256), so
    /// that they cannot be reversed by trying candidate values.
    pub fn salt(mut self, salt: impl Into<Vec<u8>>) -> Self {
        self.salt = Some(salt.into());
        self
    }

    fn check(&self) -> Result<(), LogError> {
        let bad = |m: String| Err(LogError::new(LogErrorKind::Config, None, m));
        if self.prefix.is_empty()
            || !self
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad(format!(
                "prefix `{}` must be ASCII letters, digits, `-` or `_`",
                self.prefix
            ));
        }
        if self.queue_capacity == 0 {
            return bad("queue capacity must be at least 1".into());
        }
        if self.checkpoint_every == 0 {
            return bad("checkpoints must come every 1 or more records".into());
        }
        if self.max_segment_bytes < 4096 {
            return bad(format!(
                "segments of {} bytes are too small; use at least 4096",
                self.max_segment_bytes
            ));
        }
        if let FlushPolicy::Interval(d) = self.flush
            && d.is_zero()
        {
            return bad("a flush interval must be longer than zero".into());
        }
        Ok(())
    }
}

/// Counters of a decision log, for metrics.
#[derive(Debug, Default)]
pub(crate) struct LogCounters {
    pub queue_depth: AtomicI64,
    pub waits: AtomicU64,
    pub written: AtomicU64,
    pub failures: AtomicU64,
    pub bytes: AtomicU64,
    pub checkpoints: AtomicU64,
}

/// A snapshot of a decision log's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LogStats {
    /// Records waiting in the queue.
    pub queue_depth: u64,
    /// Times `decide` found the queue full and waited.
    pub waits: u64,
    /// Decision records written.
    pub written: u64,
    /// Decision records that could not be written.
    pub failures: u64,
    /// Bytes written since the log was opened.
    pub bytes: u64,
    /// Checkpoints written since the log was opened.
    pub checkpoints: u64,
}

/// The writer's answer to one record, for mandatory logging.
#[derive(Default)]
struct Ack {
    done: Mutex<Option<Result<(), LogError>>>,
    ready: Condvar,
}

impl Ack {
    fn set(&self, result: Result<(), LogError>) {
        if let Ok(mut done) = self.done.lock() {
            *done = Some(result);
        }
        self.ready.notify_all();
    }

    fn wait(&self) -> Result<(), LogError> {
        let closed = || {
            Err(LogError::new(
                LogErrorKind::Closed,
                None,
                "the writer stopped before writing the record",
            ))
        };
        let Ok(mut done) = self.done.lock() else {
            return closed();
        };
        loop {
            if let Some(result) = done.take() {
                return result;
            }
            done = match self.ready.wait(done) {
                Ok(d) => d,
                Err(_) => return closed(),
            };
        }
    }
}

/// The writer's end of an [`Ack`]: answers it once; a record dropped
/// unanswered (its message discarded by a closing channel) answers
/// `Closed`, so that no waiter waits forever and none is told "written".
struct AckSender(Option<Arc<Ack>>);

impl AckSender {
    fn answer(mut self, result: Result<(), LogError>) {
        if let Some(ack) = self.0.take() {
            ack.set(result);
        }
    }
}

impl Drop for AckSender {
    fn drop(&mut self) {
        if let Some(ack) = self.0.take() {
            ack.set(Err(LogError::new(
                LogErrorKind::Closed,
                None,
                "the log closed before the record was written",
            )));
        }
    }
}

/// One decision to log.
pub(crate) struct Entry {
    pub decision: Decision,
    pub request: Request,
    pub redaction: Arc<Redaction>,
    pub time: Timestamp,
}

enum Message {
    Record(Box<Entry>, Option<AckSender>),
    Close,
}

struct Shared {
    tx: SyncSender<Message>,
    mandatory: bool,
    dir: PathBuf,
    prefix: String,
    /// The first write failure, set by the writer thread (or a waiter).
    failure: Arc<OnceLock<LogError>>,
    closed: AtomicBool,
    /// Held shared by `append` from its closed check until its record is
    /// queued, and exclusively by `close` to mark the log closed: every
    /// record is either queued before the writer's final drain or refused.
    gate: RwLock<()>,
    counters: Arc<LogCounters>,
    thread: Mutex<Option<JoinHandle<Result<(), LogError>>>>,
}

impl Shared {
    fn close(&self) -> Result<(), LogError> {
        let handle = match self.thread.lock() {
            Ok(mut t) => t.take(),
            Err(_) => None,
        };
        let Some(handle) = handle else {
            return Ok(());
        };
        {
            let _exclusive = self.gate.write();
            self.closed.store(true, Ordering::SeqCst);
        }
        let _ = self.tx.send(Message::Close);
        match handle.join() {
            Ok(result) => result,
            Err(_) => Err(LogError::new(
                LogErrorKind::Closed,
                Some(&self.dir),
                "the writer thread panicked",
            )),
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// A decision log: a handle on the writer thread. Clones share the writer;
/// the log closes (final checkpoint, flush) on [`close`](Self::close) or
/// when the last clone is dropped.
#[derive(Clone)]
pub struct DecisionLog {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DecisionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionLog")
            .field("dir", &self.shared.dir)
            .field("prefix", &self.shared.prefix)
            .field("mandatory", &self.shared.mandatory)
            .finish_non_exhaustive()
    }
}

impl DecisionLog {
    /// Opens (or resumes) the log in the configured directory and starts
    /// its writer thread.
    ///
    /// Resuming reads the last segment: a torn last line (a crash in the
    /// middle of a write) is cut off and noted in the `open` record that
    /// starts every session; the chain continues from the last whole
    /// record, whose hash must verify.
    pub fn open(config: DecisionLogConfig) -> Result<DecisionLog, LogError> {
        config.check()?;
        let counters = Arc::new(LogCounters::default());
        let mut segments = Segments::open(&config, Arc::clone(&counters))?;
        let (tx, rx) = mpsc::sync_channel(config.queue_capacity);
        let flush = config.flush;
        let mandatory = config.mandatory;
        let thread_counters = Arc::clone(&counters);
        let failure = Arc::new(OnceLock::new());
        let thread_failure = Arc::clone(&failure);
        let handle = std::thread::Builder::new()
            .name("agentriage-log".into())
            .spawn(move || {
                run(
                    &mut segments,
                    &rx,
                    flush,
                    mandatory,
                    &thread_counters,
                    &thread_failure,
                )
            })
            .map_err(|e| {
                LogError::new(
                    LogErrorKind::Io,
                    Some(&config.dir),
                    format!("cannot start the writer thread: {e}"),
                )
            })?;
        Ok(DecisionLog {
            shared: Arc::new(Shared {
                tx,
                mandatory: config.mandatory,
                dir: config.dir,
                prefix: config.prefix,
                failure,
                closed: AtomicBool::new(false),
                gate: RwLock::new(()),
                counters,
                thread: Mutex::new(Some(handle)),
            }),
        })
    }

    /// Whether a decision that cannot be logged is rejected.
    pub fn is_mandatory(&self) -> bool {
        self.shared.mandatory
    }

    /// Whether [`close`](Self::close) has been called (or begun).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// The segment files of this log, in order.
    pub fn segments(&self) -> Result<Vec<PathBuf>, LogError> {
        Ok(list_segments(&self.shared.dir, &self.shared.prefix)?
            .into_iter()
            .map(|(_, p)| p)
            .collect())
    }

    /// The counters of this log.
    pub fn stats(&self) -> LogStats {
        let c = &self.shared.counters;
        LogStats {
            queue_depth: u64::try_from(c.queue_depth.load(Ordering::Relaxed)).unwrap_or(0),
            waits: c.waits.load(Ordering::Relaxed),
            written: c.written.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            checkpoints: c.checkpoints.load(Ordering::Relaxed),
        }
    }

    /// The first write failure, if the writer has stopped because of one.
    pub fn failure(&self) -> Option<LogError> {
        self.shared.failure.get().cloned().or_else(|| {
            self.shared.closed.load(Ordering::SeqCst).then(|| {
                LogError::new(
                    LogErrorKind::Closed,
                    Some(&self.shared.dir),
                    "the log is closed",
                )
            })
        })
    }

    /// Writes the remaining records, a final signed checkpoint, flushes and
    /// stops the writer. Later decisions are not logged (and are rejected
    /// when the log is mandatory). Closing twice is harmless.
    pub fn close(&self) -> Result<(), LogError> {
        self.shared.close()
    }

    /// Queues one record. With a mandatory log, waits for it to be written.
    /// `Err` says why the record is not (or may not be) in the log.
    pub(crate) fn append(&self, entry: Entry) -> Result<(), LogError> {
        let shared = &*self.shared;
        let closed = || LogError::new(LogErrorKind::Closed, Some(&shared.dir), "the log is closed");
        // A poisoned gate (a thread panicked while closing) counts as closed.
        let gate = shared.gate.read().ok();
        if let Some(failure) = self.failure().or_else(|| gate.is_none().then(closed)) {
            shared.counters.failures.fetch_add(1, Ordering::Relaxed);
            return Err(failure);
        }
        let ack = shared.mandatory.then(|| Arc::new(Ack::default()));
        let message = Message::Record(
            Box::new(entry),
            ack.as_ref().map(|a| AckSender(Some(Arc::clone(a)))),
        );
        shared.counters.queue_depth.fetch_add(1, Ordering::Relaxed);
        let sent = match shared.tx.try_send(message) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(message)) => {
                // Nothing is dropped: the decision waits for room.
                shared.counters.waits.fetch_add(1, Ordering::Relaxed);
                shared.tx.send(message).map_err(|_| ())
            }
            Err(TrySendError::Disconnected(_)) => Err(()),
        };
        drop(gate);
        if sent.is_err() {
            shared.counters.queue_depth.fetch_sub(1, Ordering::Relaxed);
            shared.counters.failures.fetch_add(1, Ordering::Relaxed);
            return Err(self.failure().unwrap_or_else(|| {
                LogError::new(
                    LogErrorKind::Closed,
                    Some(&shared.dir),
                    "the writer has stopped",
                )
            }));
        }
        match ack {
            Some(ack) => ack.wait().inspect_err(|e| {
                let _ = shared.failure.set(e.clone());
            }),
            None => Ok(()),
        }
    }
}

/// The writer thread's loop.
///
/// With a flush interval and no one waiting for acknowledgements, the
/// writer polls the queue (sleeping while it is empty) instead of blocking
/// on it: a deciding thread then never has to wake the writer, which would
/// cost it a system call per decision.
fn run(
    segments: &mut Segments,
    rx: &Receiver<Message>,
    flush: FlushPolicy,
    mandatory: bool,
    counters: &LogCounters,
    shared_failure: &OnceLock<LogError>,
) -> Result<(), LogError> {
    let mut failed: Option<LogError> = None;
    let fail = |failed: &mut Option<LogError>, e: LogError| {
        let _ = shared_failure.set(e.clone());
        failed.get_or_insert(e);
    };
    let mut dirty_since: Option<Instant> = None;
    let interval = match flush {
        FlushPolicy::Interval(every) => Some(every),
        FlushPolicy::EveryRecord => None,
    };
    let poll_every = interval.filter(|_| !mandatory);
    loop {
        if let (Some(every), Some(since)) = (interval, dirty_since)
            && since.elapsed() >= every
        {
            // Due: flush even while records keep arriving.
            if failed.is_none()
                && let Err(e) = segments.flush()
            {
                fail(&mut failed, e);
            }
            dirty_since = None;
        }
        let message = if let Some(every) = poll_every {
            match rx.try_recv() {
                Ok(m) => Some(m),
                Err(TryRecvError::Disconnected) => Some(Message::Close),
                Err(TryRecvError::Empty) => {
                    let wait =
                        dirty_since.map_or(every, |since| every.saturating_sub(since.elapsed()));
                    std::thread::sleep(wait.min(every));
                    continue;
                }
            }
        } else {
            match (flush, dirty_since) {
                (FlushPolicy::Interval(every), Some(since)) => {
                    let left = every.saturating_sub(since.elapsed());
                    match rx.recv_timeout(left) {
                        Ok(m) => Some(m),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => Some(Message::Close),
                    }
                }
                _ => Some(rx.recv().unwrap_or(Message::Close)),
            }
        };
        match message {
            None => {
                if failed.is_none()
                    && let Err(e) = segments.flush()
                {
                    fail(&mut failed, e);
                }
                dirty_since = None;
            }
            Some(Message::Record(entry, ack)) => {
                counters.queue_depth.fetch_sub(1, Ordering::Relaxed);
                let result = match &failed {
                    Some(e) => Err(e.clone()),
                    None => segments.append_decision(&entry).and_then(|()| {
                        if flush == FlushPolicy::EveryRecord || ack.is_some() {
                            segments.flush()
                        } else {
                            Ok(())
                        }
                    }),
                };
                match &result {
                    Ok(()) => {
                        counters.written.fetch_add(1, Ordering::Relaxed);
                        if dirty_since.is_none() && flush != FlushPolicy::EveryRecord {
                            dirty_since = Some(Instant::now());
                        }
                    }
                    Err(e) => {
                        counters.failures.fetch_add(1, Ordering::Relaxed);
                        if failed.is_none() {
                            fail(&mut failed, e.clone());
                        }
                    }
                }
                if let Some(ack) = ack {
                    ack.answer(result);
                }
            }
            Some(Message::Close) => {
                // Records queued before the close are still written; their
                // waiters learn the outcome once the final checkpoint and
                // the flush have succeeded (or not). Records queued after
                // this drain are discarded with the channel: their waiters
                // are told `Closed`.
                let mut waiting = Vec::new();
                while let Ok(Message::Record(entry, ack)) = rx.try_recv() {
                    counters.queue_depth.fetch_sub(1, Ordering::Relaxed);
                    let result = match &failed {
                        Some(e) => Err(e.clone()),
                        None => segments.append_decision(&entry),
                    };
                    if let Err(e) = &result {
                        counters.failures.fetch_add(1, Ordering::Relaxed);
                        if failed.is_none() {
                            fail(&mut failed, e.clone());
                        }
                    } else {
                        counters.written.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(ack) = ack {
                        waiting.push((ack, result));
                    }
                }
                let closed = match failed {
                    Some(e) => Err(e),
                    None => segments.close(),
                };
                for (ack, result) in waiting {
                    ack.answer(result.and_then(|()| closed.clone()));
                }
                return closed;
            }
        }
    }
}

/// `<prefix>-NNNNNN.jsonl` files of `dir`, by index.
pub(crate) fn list_segments(dir: &Path, prefix: &str) -> Result<Vec<(u32, PathBuf)>, LogError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LogError::io(dir, "list the log directory", &e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io(dir, "list the log directory", &e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(index) = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('-'))
            .and_then(|r| r.strip_suffix(".jsonl"))
            .filter(|r| r.len() == 6 && r.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|r| r.parse::<u32>().ok())
        {
            out.push((index, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn segment_path(dir: &Path, prefix: &str, index: u32) -> PathBuf {
    dir.join(format!("{prefix}-{index:06}.jsonl"))
}

/// The segment files and the chain's state; owned by the writer thread.
struct Segments {
    dir: PathBuf,
    prefix: String,
    index: u32,
    path: PathBuf,
    file: BufWriter<File>,
    size: u64,
    total: u64,
    next_seq: u64,
    prev: String,
    since_checkpoint: u64,
    config: DecisionLogConfig,
    salt: Option<hmac::Key>,
    counters: Arc<LogCounters>,
}

/// What the last whole record of an existing log says.
struct Resume {
    seq: u64,
    hash: String,
}

fn read_last_record(path: &Path, text: &[u8]) -> Result<Option<Resume>, LogError> {
    let Some(line) = text.split(|&b| b == b'\n').rfind(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let corrupt = |m: &str| {
        Err(LogError::new(
            LogErrorKind::Corrupt,
            Some(path),
            format!("cannot resume: the last record {m}; run `agentriage log verify`"),
        ))
    };
    let Ok(Value::Object(record)) = serde_json::from_slice::<Value>(line) else {
        return corrupt("is not a JSON object");
    };
    let (Some(seq), Some(hash)) = (
        record.get("seq").and_then(Value::as_u64),
        record.get("hash").and_then(Value::as_str),
    ) else {
        return corrupt("has no `seq` or `hash`");
    };
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    canonical::write_object(&mut h, &record, &["hash"]);
    let computed = format!("sha256:{}", super::hex(&sha2::Digest::finalize(h)));
    if computed != hash {
        return corrupt("does not match its hash");
    }
    Ok(Some(Resume {
        seq,
        hash: hash.to_owned(),
    }))
}

impl Segments {
    fn open(config: &DecisionLogConfig, counters: Arc<LogCounters>) -> Result<Segments, LogError> {
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| LogError::io(&config.dir, "create the log directory", &e))?;
        let existing = list_segments(&config.dir, &config.prefix)?;
        let mut total = 0;
        for (_, p) in &existing {
            total += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        }
        let mut resume = None;
        let mut torn: Option<(u64, String)> = None;
        let mut index = 1;
        let mut fresh_segment = true;
        // Newest first: the last whole record may sit in an earlier segment
        // when a crash left the newest one empty.
        for (i, (idx, path)) in existing.iter().enumerate().rev() {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|e| LogError::io(path, "open the segment", &e))?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .map_err(|e| LogError::io(path, "read the segment", &e))?;
            let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            if i + 1 == existing.len() {
                index = *idx;
                if whole < bytes.len() {
                    let tail = bytes.get(whole..).unwrap_or_default();
                    torn = Some((tail.len() as u64, sha256_tag(tail)));
                    file.set_len(whole as u64)
                        .map_err(|e| LogError::io(path, "cut the torn last line", &e))?;
                    total = total.saturating_sub(tail.len() as u64);
                }
                fresh_segment = whole == 0;
            }
            if let Some(r) = read_last_record(path, bytes.get(..whole).unwrap_or_default())? {
                resume = Some(r);
                break;
            }
        }
        let path = segment_path(&config.dir, &config.prefix, index);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| LogError::io(&path, "open the segment", &e))?;
        let size = file
            .metadata()
            .map_err(|e| LogError::io(&path, "read the segment's size", &e))?
            .len();
        let (next_seq, prev) = match resume {
            Some(r) => (r.seq.saturating_add(1), r.hash),
            None => (0, GENESIS.to_owned()),
        };
        let mut segments = Segments {
            dir: config.dir.clone(),
            prefix: config.prefix.clone(),
            index,
            path,
            file: BufWriter::with_capacity(64 << 10, file),
            size,
            total,
            next_seq,
            prev,
            since_checkpoint: 0,
            salt: config
                .salt
                .as_ref()
                .map(|s| hmac::Key::new(hmac::HMAC_SHA256, s)),
            config: config.clone(),
            counters,
        };
        if fresh_segment {
            segments.write_segment_header()?;
        }
        let mut open = Members::default();
        open.put_str("kind", "open");
        if let Some((bytes, hash)) = torn {
            open.put_u64("torn_bytes", bytes);
            open.put_str("torn_sha256", &hash);
        }
        segments.write(open)?;
        segments.flush()?;
        Ok(segments)
    }

    fn write_segment_header(&mut self) -> Result<(), LogError> {
        let mut m = Members::default();
        m.put_str("kind", "segment");
        m.put_u64("segment", u64::from(self.index));
        self.write(m)
    }

    /// Adds `seq`, `prev`, `v` and `time` where absent.
    fn fill(&self, m: &mut Members) {
        if !m.has("seq") {
            m.put_u64("seq", self.next_seq);
        }
        if !m.has("prev") {
            m.put_str("prev", &self.prev);
        }
        if !m.has("v") {
            m.put_u64("v", FORMAT_VERSION);
        }
        if !m.has("time") {
            m.put_str("time", &Timestamp::now().to_string());
        }
    }

    /// Completes, seals and appends a record.
    fn write(&mut self, mut m: Members) -> Result<(), LogError> {
        self.fill(&mut m);
        let (mut line, hash) = m.seal();
        line.push(b'\n');
        let len = line.len() as u64;
        if let Some(quota) = self.config.max_total_bytes
            && self.total + len > quota
        {
            return Err(LogError::new(
                LogErrorKind::Full,
                Some(&self.path),
                format!("the log's quota of {quota} bytes is used up"),
            ));
        }
        self.file
            .write_all(&line)
            .map_err(|e| LogError::io(&self.path, "write a record", &e))?;
        self.size += len;
        self.total += len;
        self.counters.bytes.fetch_add(len, Ordering::Relaxed);
        self.next_seq += 1;
        self.prev = hash;
        Ok(())
    }

    fn append_decision(&mut self, entry: &Entry) -> Result<(), LogError> {
        let mut m = Members::default();
        m.put_str("kind", "decision");
        m.put_str("time", &entry.time.to_string());
        let decision = serde_json::to_value(&entry.decision).map_err(|e| {
            LogError::new(
                LogErrorKind::Io,
                Some(&self.path),
                format!("cannot encode the decision: {e}"),
            )
        })?;
        m.put("decision", canonical::to_vec(&decision));
        let mut request = match entry.request.to_json() {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let done = entry.redaction.apply(&mut request, self.salt.as_ref());
        m.put("request", canonical::to_vec(&Value::Object(request)));
        if !done.is_empty() {
            let mut r = Map::new();
            r.insert("dropped".into(), done.dropped.into());
            r.insert("hashed".into(), done.hashed.into());
            m.put("redacted", canonical::to_vec(&Value::Object(r)));
        }
        self.write(m)?;
        self.since_checkpoint += 1;
        if self.since_checkpoint >= self.config.checkpoint_every {
            self.checkpoint(false)?;
        }
        if self.size >= self.config.max_segment_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    /// A signed checkpoint over the chain so far; nothing without a key.
    fn checkpoint(&mut self, last: bool) -> Result<(), LogError> {
        self.since_checkpoint = 0;
        let Some(key) = self.config.key.clone() else {
            return Ok(());
        };
        let public = super::unhex(key.public_key_hex()).unwrap_or_default();
        let mut m = Members::default();
        m.put_str("kind", "checkpoint");
        m.put(
            "final",
            if last {
                b"true".to_vec()
            } else {
                b"false".to_vec()
            },
        );
        m.put_str("key_id", &key_id(&public));
        m.put_str("public_key", key.public_key_hex());
        self.fill(&mut m);
        let signature = key.sign(&m.encode());
        m.put_str("signature", &signature);
        self.write(m)?;
        self.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), LogError> {
        self.checkpoint(false)?;
        self.flush()?;
        self.index += 1;
        self.path = segment_path(&self.dir, &self.prefix, self.index);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| LogError::io(&self.path, "open the segment", &e))?;
        self.file = BufWriter::with_capacity(64 << 10, file);
        self.size = 0;
        self.write_segment_header()
    }

    fn flush(&mut self) -> Result<(), LogError> {
        self.file
            .flush()
            .map_err(|e| LogError::io(&self.path, "flush the segment", &e))?;
        if self.config.sync {
            self.file
                .get_ref()
                .sync_data()
                .map_err(|e| LogError::io(&self.path, "sync the segment", &e))?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), LogError> {
        self.checkpoint(true)?;
        self.flush()?;
        self.file
            .get_ref()
            .sync_all()
            .map_err(|e| LogError::io(&self.path, "sync the segment", &e))
    }
}
