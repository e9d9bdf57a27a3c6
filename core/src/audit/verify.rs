//! Verification of a series of segment files.
//!
//! Each line is verified in two phases. Phase 1 (`prepare`) is
//! everything that depends on the line alone: the one-pass scan (syntax,
//! repeated members, the chain members; unusual lines go to the full
//! parsers), the SHA-256 of the line without its `hash` member, and for a
//! checkpoint its key and Ed25519 signature. It is given the options,
//! never the chain state. Phase 2 (`Verifier::check`) is the chain:
//! `seq`, `prev` against the last hash, segment numbering, checkpoints
//! covering the records, the unsigned tail, torn and truncated files. It
//! consumes the results of phase 1 strictly in line order, and a result is
//! used only when the checks reach its line, exactly where the sequential
//! verifier computed it; so the first problem, its line, `seq` and message,
//! and every count of the report are the same however phase 1 was spread.
//!
//! A file's lines go in chunks of 4 096: phase 1 of a chunk of at least 64
//! lines runs on up to two threads (`std::thread::scope`; the available
//! parallelism, capped at two), which take blocks of up to 256 lines in
//! turn; then phase 2 walks the chunk. A shorter chunk, or a machine with
//! one CPU, runs each line's phase 1 just before its phase 2 on the calling
//! thread. At most a chunk of results is held, and at most a chunk of
//! phase 1 is wasted past the first problem. Below 64 lines, starting a
//! thread costs more than it saves. Reading and splitting the files and
//! phase 2 stay on the calling thread.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::error::{LogError, LogErrorKind};
use super::key::{key_id, verify_signature};
use super::scan::{self, Scanned};
use super::{FORMAT_VERSION, GENESIS, canonical, hex, unhex};
use crate::strict_json;

/// How to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    key: Option<Vec<u8>>,
    allow_unsigned_tail: bool,
    parallel: Parallel,
}

/// Most threads phase 1 uses. Two is what was measured (on two cores, phase
/// 1 takes about two thirds of the time, reading, splitting and phase 2 the
/// rest, so more threads would bring less and less), and the verifier often
/// runs on the host of the decision point it audits, which it should not
/// crowd out.
const MAX_THREADS: usize = 2;

/// Lines per chunk: phase 1 runs this far ahead of phase 2 at most, which
/// bounds the results held and the work wasted past a problem.
const CHUNK_LINES: usize = 4096;

/// Lines a thread of phase 1 takes at a time.
const BLOCK_LINES: usize = 256;

/// Fewest lines of a chunk for which phase 1 starts a helper thread.
const PARALLEL_MIN_LINES: usize = 64;

/// How phase 1 is spread over threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parallel {
    /// Threads for phase 1 of a chunk; `None`: the available parallelism,
    /// up to [`MAX_THREADS`].
    threads: Option<usize>,
    /// Lines per chunk.
    chunk: usize,
    /// Lines a thread takes at a time.
    block: usize,
    /// Fewest lines of a chunk worth a helper thread.
    min_lines: usize,
}

impl Default for Parallel {
    fn default() -> Parallel {
        Parallel {
            threads: None,
            chunk: CHUNK_LINES,
            block: BLOCK_LINES,
            min_lines: PARALLEL_MIN_LINES,
        }
    }
}

impl VerifyOptions {
    /// Verify the chain; check checkpoint signatures against the key each
    /// checkpoint names (which proves integrity, not authorship).
    pub fn new() -> VerifyOptions {
        VerifyOptions::default()
    }

    /// Verify the chain and require every record to be covered by a
    /// checkpoint signed by the host key whose public half is `public_hex`
    /// (64 hex digits). Records after the last checkpoint are a problem
    /// ([`ProblemKind::UnsignedTail`]) unless
    /// [`allow_unsigned_tail`](Self::allow_unsigned_tail) accepts them.
    pub fn with_key(public_hex: &str) -> Result<VerifyOptions, LogError> {
        match unhex(public_hex) {
            Some(key) if key.len() == 32 => Ok(VerifyOptions {
                key: Some(key),
                ..VerifyOptions::default()
            }),
            _ => Err(LogError::new(
                LogErrorKind::Key,
                None,
                "a public key is 64 hex digits (32 bytes of Ed25519 public key)",
            )),
        }
    }

    /// Accept records after the last signed checkpoint (a log still being
    /// written, or one whose writer stopped): they are reported in
    /// [`VerifyReport::unsigned_tail`] and the integrity is
    /// [`Integrity::ProvenExceptTail`]. Their content is not proven: anyone
    /// who can write the files can rewrite them. A log with no checkpoint
    /// signed by the key at all is still not intact. Without a key this
    /// changes nothing: the report is [`Integrity::Unproven`].
    pub fn allow_unsigned_tail(mut self, allow: bool) -> VerifyOptions {
        self.allow_unsigned_tail = allow;
        self
    }

    /// Phase 1 on `threads` threads (1: the sequential verifier), in
    /// chunks of `chunk` lines taken `block` at a time, for chunks of at
    /// least `min_lines` lines: the tests compare every way of spreading it.
    #[cfg(test)]
    pub(crate) fn parallel(
        mut self,
        threads: usize,
        chunk: usize,
        block: usize,
        min_lines: usize,
    ) -> VerifyOptions {
        self.parallel = Parallel {
            threads: Some(threads),
            chunk,
            block,
            min_lines,
        };
        self
    }
}

/// What a verification proves about the log's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Integrity {
    /// Every record is covered by a checkpoint signed with the given key.
    Proven,
    /// Every record up to the last checkpoint signed with the given key is
    /// covered; the records after it were accepted unsigned
    /// ([`VerifyOptions::allow_unsigned_tail`]) and are not proven.
    ProvenExceptTail,
    /// No key was given: the chain links up, but anyone able to write the
    /// files can recompute every hash (and sign checkpoints with a key of
    /// their own), so nothing is proven.
    #[default]
    Unproven,
    /// A problem was found.
    Broken,
}

impl Integrity {
    /// A stable, machine-readable name (`proven`, `proven_except_tail`,
    /// `unproven`, `broken`).
    pub fn as_str(self) -> &'static str {
        match self {
            Integrity::Proven => "proven",
            Integrity::ProvenExceptTail => "proven_except_tail",
            Integrity::Unproven => "unproven",
            Integrity::Broken => "broken",
        }
    }

    /// Whether the log's content is proven by signatures of the given key
    /// (all of it, or all but an accepted unsigned tail).
    pub fn is_proven(self) -> bool {
        matches!(self, Integrity::Proven | Integrity::ProvenExceptTail)
    }
}

/// What is wrong with a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A record's content no longer matches its hash, or a record was
    /// changed and re-hashed (the next record's `prev` disagrees).
    Modified,
    /// Records are missing from the middle of a file.
    Deleted,
    /// A record that was never written by the log sits in the chain.
    Inserted,
    /// Records are out of order.
    Reordered,
    /// A checkpoint's signature does not verify.
    BadSignature,
    /// A checkpoint is signed by another key than the one given.
    WrongKey,
    /// A line is not JSON.
    NotJson,
    /// A record lacks a required member or has one of the wrong type.
    Malformed,
    /// A record of a format version this library does not know.
    FutureVersion,
    /// A segment file of the series is missing.
    MissingFile,
    /// A file other than the last ends inside a record.
    Truncated,
    /// A line repeats a member name (at any depth): readers disagree on
    /// which value counts.
    DuplicateMember,
    /// With a key: records after the last checkpoint signed by it, not
    /// accepted by [`VerifyOptions::allow_unsigned_tail`] (or no checkpoint
    /// at all). Checkpoints deleted after a rewrite leave exactly this.
    UnsignedTail,
    /// With a key: a segment file followed by another does not end with a
    /// signed checkpoint, as rotation writes one.
    UnsignedSegment,
}

impl ProblemKind {
    /// A stable, machine-readable name (`modified`, `deleted`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Modified => "modified",
            ProblemKind::Deleted => "deleted",
            ProblemKind::Inserted => "inserted",
            ProblemKind::Reordered => "reordered",
            ProblemKind::BadSignature => "bad_signature",
            ProblemKind::WrongKey => "wrong_key",
            ProblemKind::NotJson => "not_json",
            ProblemKind::Malformed => "malformed",
            ProblemKind::FutureVersion => "future_version",
            ProblemKind::MissingFile => "missing_file",
            ProblemKind::Truncated => "truncated",
            ProblemKind::DuplicateMember => "duplicate_member",
            ProblemKind::UnsignedTail => "unsigned_tail",
            ProblemKind::UnsignedSegment => "unsigned_segment",
        }
    }
}

/// The first problem found: what, where, and an explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// The file it is in.
    pub file: PathBuf,
    /// The 1-based line of the record at fault.
    pub line: usize,
    /// The record's `seq`, where it has one.
    pub seq: Option<u64>,
    /// What was found.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.kind.as_str(),
            self.message
        )
    }
}

/// A last line cut short, as a crash in the middle of a write leaves it:
/// not tampering; the writer cuts it off when it resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornLine {
    /// The (last) file.
    pub file: PathBuf,
    /// The 1-based line.
    pub line: usize,
    /// Its length in bytes.
    pub bytes: usize,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Files read.
    pub files: usize,
    /// Whole records that verified.
    pub records: u64,
    /// Decision records among them.
    pub decisions: u64,
    /// Checkpoints whose signature verified.
    pub checkpoints: u64,
    /// Whether checkpoints were checked against a given key (otherwise
    /// against the key each names: integrity, not authorship).
    pub key_checked: bool,
    /// Records after the last verified checkpoint (not covered by a signature).
    pub unsigned_tail: u64,
    /// The first and last `seq` of those records, when there are any.
    pub unsigned_tail_seq: Option<(u64, u64)>,
    /// What the verification proves; see [`VerifyReport::is_intact`].
    pub integrity: Integrity,
    /// Whether the log ends with the final checkpoint of a clean close.
    pub closed: bool,
    /// The hash of the last verified record.
    pub last_hash: Option<String>,
    /// The first problem, if any.
    pub problem: Option<Problem>,
    /// A torn last line, if any.
    pub torn: Option<TornLine>,
}

impl VerifyReport {
    /// No problem, no torn line, and the content is proven by checkpoints
    /// signed with the given key ([`Integrity::is_proven`]). Without a key
    /// a log is never intact: see [`chain_verifies`](Self::chain_verifies).
    pub fn is_intact(&self) -> bool {
        self.chain_verifies() && self.integrity.is_proven()
    }

    /// No problem and no torn line: the chain links up. Without a key this
    /// proves nothing against someone able to rewrite the files.
    pub fn chain_verifies(&self) -> bool {
        self.problem.is_none() && self.torn.is_none()
    }
}

/// `n` and the noun, plural unless `n` is 1: `1 record`, `2 records`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.problem {
            writeln!(f, "TAMPERED or INVALID: {p}")?;
        } else if let Some(t) = &self.torn {
            writeln!(
                f,
                "TORN: {}:{}: the last line ({} bytes) was cut short, as a crash during a write leaves it; every record before it verifies",
                t.file.display(),
                t.line,
                t.bytes
            )?;
        } else {
            match self.integrity {
                Integrity::Proven => writeln!(
                    f,
                    "OK: the chain verifies and every record is covered by a checkpoint signed with the given key"
                )?,
                Integrity::ProvenExceptTail => writeln!(
                    f,
                    "OK: the chain verifies and every record up to the last checkpoint is covered by a checkpoint signed with the given key; the unsigned tail after it was accepted and is not proven"
                )?,
                Integrity::Unproven | Integrity::Broken => writeln!(
                    f,
                    "UNPROVEN: the chain links up, but integrity is unproven without the host's public key: anyone able to write the files can recompute every hash; give --key"
                )?,
            }
        }
        if let Some((first, last)) = self.unsigned_tail_seq {
            writeln!(
                f,
                "unsigned tail: {} (seq {first} to {last}) after the last checkpoint {} not covered by a signature",
                count(self.unsigned_tail, "record"),
                if self.unsigned_tail == 1 { "is" } else { "are" }
            )?;
        }
        write!(
            f,
            "integrity {}: {}, {} ({}), {} ({}), {} after the last checkpoint, {}",
            self.integrity.as_str(),
            count(self.files as u64, "file"),
            count(self.records, "record"),
            count(self.decisions, "decision"),
            count(self.checkpoints, "signed checkpoint"),
            if self.key_checked {
                "signed by the given key"
            } else {
                "signer not checked: give --key"
            },
            count(self.unsigned_tail, "record"),
            if self.closed {
                "closed cleanly"
            } else {
                "not closed (still open, or the process stopped)"
            }
        )
    }
}

/// A line after phase 1: the record and the verdicts on it that do not
/// depend on earlier lines, for phase 2 to use where the sequential checks
/// need them.
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Prepared<'a> {
    record: Record<'a>,
    /// The hash of the record's content when it is not the one written.
    mismatch: Option<String>,
    /// A checkpoint's key and signature checks.
    signature: Option<Result<(), (ProblemKind, String)>>,
}

/// One parsed record: the members the chain checks read; every member only
/// when the full parser read it (checkpoints, and lines the fast paths do
/// not take); `line` is the record as written.
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Record<'a> {
    map: Option<Map<String, Value>>,
    seq: u64,
    kind: Cow<'a, str>,
    prev: Cow<'a, str>,
    hash: Cow<'a, str>,
    segment: Option<u64>,
    line: &'a [u8],
    /// The byte range of the top-level `"hash":"…"` member, when the
    /// one-pass scan found it.
    hash_member: Option<(usize, usize)>,
}

/// The members the chain checks read, parsed without building the rest.
#[derive(serde::Deserialize)]
struct Head<'a> {
    v: Option<u64>,
    seq: Option<u64>,
    #[serde(borrow)]
    prev: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    hash: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    time: Option<std::borrow::Cow<'a, str>>,
    segment: Option<u64>,
}

/// Whether `hash` is the sha256 of `line` without its `"hash":"…"` member:
/// the canonical encoding of the record without `hash`, as the writer
/// writes it. `false` sends the record to the full canonical check.
fn line_matches_hash(line: &[u8], hash: &str) -> bool {
    let member = format!("\"hash\":\"{hash}\"");
    let member = member.as_bytes();
    let Some(at) = line
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'"')
        .map(|(i, _)| i)
        .find(|&i| line.get(i..).is_some_and(|rest| rest.starts_with(member)))
    else {
        return false;
    };
    line_without_member_matches(line, (at, at + member.len()), hash)
}

/// Whether `hash` is the sha256 of `line` without the member at
/// `at..end` (and one comma next to it).
fn line_without_member_matches(line: &[u8], (at, end): (usize, usize), hash: &str) -> bool {
    // Drop the member and one comma next to it.
    let (cut_start, cut_end) = match (line.get(at.wrapping_sub(1)), line.get(end)) {
        (Some(b','), _) => (at - 1, end),
        (_, Some(b',')) => (at, end + 1),
        _ => (at, end),
    };
    let mut h = Sha256::new();
    h.update(line.get(..cut_start).unwrap_or_default());
    h.update(line.get(cut_end..).unwrap_or_default());
    tag_matches(&h.finalize(), hash)
}

/// Whether `tag` is `sha256:` and the lowercase hex of `digest`.
fn tag_matches(digest: &[u8], tag: &str) -> bool {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let Some(digits) = tag.strip_prefix("sha256:") else {
        return false;
    };
    let digits = digits.as_bytes();
    digits.len() == digest.len() * 2
        && digest.iter().zip(digits.chunks_exact(2)).all(|(b, pair)| {
            pair.first() == DIGITS.get(usize::from(b >> 4))
                && pair.get(1) == DIGITS.get(usize::from(b & 15))
        })
}

impl Record<'_> {
    /// A string member of a record the full parser read.
    fn str(&self, name: &str) -> Option<&str> {
        self.map.as_ref()?.get(name).and_then(Value::as_str)
    }
}

/// Verifies the segment files `paths`, in the order given (the order of
/// their names: `<prefix>-000001.jsonl`, …).
///
/// `Err` only when a file cannot be read; everything found in the files is
/// in the report.
pub fn verify<P: AsRef<Path>>(
    paths: &[P],
    options: &VerifyOptions,
) -> Result<VerifyReport, LogError> {
    let mut contents = Vec::with_capacity(paths.len());
    for path in paths {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| LogError::io(path, "read the log file", &e))?;
        contents.push((path.to_path_buf(), bytes));
    }
    Ok(verify_contents(&contents, options))
}

/// [`verify`] over segments already in memory: `(name, bytes)` in order.
pub fn verify_contents<P: AsRef<Path>, B: AsRef<[u8]>>(
    segments: &[(P, B)],
    options: &VerifyOptions,
) -> VerifyReport {
    let mut v = Verifier {
        options,
        report: VerifyReport {
            key_checked: options.key.is_some(),
            ..VerifyReport::default()
        },
        expected: 0,
        last_hash: GENESIS.to_owned(),
        last_prev: String::new(),
        last_at: None,
        segment: 0,
        last_was_checkpoint: false,
        tail_start: None,
        files: Vec::with_capacity(segments.len()),
        threads: None,
    };
    for (i, (path, bytes)) in segments.iter().enumerate() {
        v.report.files += 1;
        v.files.push(path.as_ref().to_path_buf());
        let last_file = i + 1 == segments.len();
        if let Err(problem) = v.file(path.as_ref(), bytes.as_ref(), last_file) {
            v.report.problem = Some(problem);
            break;
        }
        if !last_file && options.key.is_some() && v.report.records > 0 && !v.last_was_checkpoint {
            let (file, line) = v
                .last_at()
                .unwrap_or_else(|| (path.as_ref().to_path_buf(), 1));
            v.report.problem = Some(Problem {
                kind: ProblemKind::UnsignedSegment,
                file,
                line,
                seq: v.expected.checked_sub(1),
                message: format!(
                    "segment {} is followed by another file but does not end with a signed checkpoint, as rotation writes one: its last checkpoint was removed",
                    v.segment
                ),
            });
            break;
        }
    }
    if v.report.problem.is_none() && v.report.files > 0 && v.report.records == 0 {
        v.report.problem = v.report.torn.is_none().then(|| Problem {
            kind: ProblemKind::Malformed,
            file: segments
                .first()
                .map(|p| p.0.as_ref().to_path_buf())
                .unwrap_or_default(),
            line: 1,
            seq: None,
            message: "the log holds no record".into(),
        });
    }
    if v.report.records > 0 {
        v.report.last_hash = Some(v.last_hash.clone());
    }
    v.finish();
    v.report
}

struct Verifier<'a> {
    options: &'a VerifyOptions,
    report: VerifyReport,
    expected: u64,
    last_hash: String,
    last_prev: String,
    /// Where the last verified record is: index in `files`, line.
    last_at: Option<(usize, usize)>,
    segment: u64,
    /// Whether the last verified record is a checkpoint.
    last_was_checkpoint: bool,
    /// Where the records after the last checkpoint start: index in
    /// `files`, line, seq.
    tail_start: Option<(usize, usize, u64)>,
    /// The files read so far, the current one last.
    files: Vec<PathBuf>,
    /// The threads phase 1 uses, once looked up.
    threads: Option<usize>,
}

fn parse(line: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// The pieces of `bytes` between newlines, as `bytes.split(|&b| b ==
/// b'\n')` yields them (the last one is empty after a final newline),
/// found 32 bytes at a time: a comparison the compiler vectorizes, over a
/// file the threads of phase 1 wait for.
fn split_lines(bytes: &[u8]) -> Vec<&[u8]> {
    const WIDTH: usize = 32;
    let mut lines = Vec::new();
    let mut start = 0;
    let chunks = bytes.chunks_exact(WIDTH);
    let rest = chunks.remainder();
    let pieces = chunks
        .enumerate()
        .filter(|(_, chunk)| chunk.iter().fold(false, |any, &b| any | (b == b'\n')))
        .map(|(c, chunk)| (c * WIDTH, chunk))
        .chain(std::iter::once((bytes.len() - rest.len(), rest)));
    for (at, piece) in pieces {
        for (i, &b) in piece.iter().enumerate() {
            if b == b'\n' {
                lines.push(bytes.get(start..at + i).unwrap_or_default());
                start = at + i + 1;
            }
        }
    }
    lines.push(bytes.get(start..).unwrap_or_default());
    lines
}

/// Just the `seq` of a line, for look-ahead.
fn seq_of(line: &[u8]) -> Option<u64> {
    parse(line).ok()?.get("seq")?.as_u64()
}

impl Verifier<'_> {
    /// The file and line of the last verified record.
    fn last_at(&self) -> Option<(PathBuf, usize)> {
        let (file, line) = self.last_at?;
        Some((self.files.get(file)?.clone(), line))
    }

    /// The index in `files` of the file being read.
    fn current_file(&self) -> usize {
        self.files.len().saturating_sub(1)
    }

    /// Judges coverage by signatures once every record has been read.
    fn finish(&mut self) {
        let r = &mut self.report;
        if r.unsigned_tail > 0
            && let Some((_, _, first)) = &self.tail_start
        {
            r.unsigned_tail_seq = Some((*first, self.expected.saturating_sub(1)));
        }
        if r.problem.is_some() {
            r.integrity = Integrity::Broken;
            return;
        }
        if self.options.key.is_none() {
            r.integrity = Integrity::Unproven;
            return;
        }
        if r.unsigned_tail == 0 {
            r.integrity = Integrity::Proven;
            return;
        }
        let (file, line, first) = self
            .tail_start
            .map(|(f, line, first)| (self.files.get(f).cloned().unwrap_or_default(), line, first))
            .unwrap_or_default();
        let last = self.expected.saturating_sub(1);
        let message = if r.checkpoints == 0 {
            Some(format!(
                "no checkpoint signed by the given key: none of the {} records (seq {first} to {last}) is covered by a signature, as a log whose checkpoints were deleted looks",
                r.unsigned_tail
            ))
        } else if !self.options.allow_unsigned_tail {
            Some(format!(
                "{} records (seq {first} to {last}) after the last checkpoint are not covered by a signature, as a log rewritten after its last kept checkpoint looks; accept a log still being written with --allow-unsigned-tail",
                r.unsigned_tail
            ))
        } else {
            None
        };
        match message {
            Some(message) => {
                r.problem = Some(Problem {
                    kind: ProblemKind::UnsignedTail,
                    file,
                    line,
                    seq: Some(first),
                    message,
                });
                r.integrity = Integrity::Broken;
            }
            None => r.integrity = Integrity::ProvenExceptTail,
        }
    }

    fn file(&mut self, path: &Path, bytes: &[u8], last_file: bool) -> Result<(), Problem> {
        let mut lines = split_lines(bytes);
        // The piece after a final newline is empty; a non-empty one is a
        // line without its newline.
        let unterminated = lines.pop().filter(|l| !l.is_empty());
        if let Some(tail) = unterminated {
            if last_file {
                // Records before it are checked first: a torn line is only
                // reported as such when everything before it verifies.
                self.lines(path, &lines)?;
                self.report.torn = Some(TornLine {
                    file: path.to_path_buf(),
                    line: lines.len() + 1,
                    bytes: tail.len(),
                });
                return Ok(());
            }
            self.lines(path, &lines)?;
            return Err(Problem {
                kind: ProblemKind::Truncated,
                file: path.to_path_buf(),
                line: lines.len() + 1,
                seq: None,
                message: format!(
                    "the file ends inside a record ({} bytes without a newline) but is not the last of the series",
                    tail.len()
                ),
            });
        }
        self.lines(path, &lines)
    }

    /// The lines of a file, chunk by chunk: phase 1 for a chunk (on
    /// several threads when it is long enough), then phase 2, the chain
    /// checks, over its results in order. On one thread, phase 1 of each
    /// line runs just before its phase 2.
    fn lines(&mut self, path: &Path, lines: &[&[u8]]) -> Result<(), Problem> {
        let parallel = self.options.parallel;
        let mut start = 0;
        while let Some(rest) = lines.get(start..).filter(|rest| !rest.is_empty()) {
            let chunk = rest.get(..parallel.chunk.max(1)).unwrap_or(rest);
            let threads = if chunk.len() >= parallel.min_lines {
                self.threads(parallel)
            } else {
                1
            };
            let mut prepared = if threads > 1 {
                prepare_parallel(
                    self.options,
                    path,
                    start + 1,
                    chunk,
                    threads,
                    parallel.block,
                )
            } else {
                Vec::new()
            }
            .into_iter();
            for (i, line) in (start..).zip(chunk) {
                // Every line goes through phase 2: one without a phase-1
                // result (all of them on one thread) gets it here.
                let p = match prepared.next() {
                    Some(p) => p,
                    None => prepare(self.options, path, i + 1, line),
                }?;
                self.check(
                    path,
                    i + 1,
                    i == 0,
                    p,
                    lines.get(i + 1).copied(),
                    lines.get(i + 1..).unwrap_or_default(),
                )?;
            }
            start += chunk.len();
        }
        Ok(())
    }

    /// How many threads phase 1 of a long chunk uses: `parallel.threads`,
    /// or the available parallelism up to [`MAX_THREADS`], looked up once.
    fn threads(&mut self, parallel: Parallel) -> usize {
        if let Some(threads) = parallel.threads {
            return threads;
        }
        *self.threads.get_or_insert_with(|| {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn check(
        &mut self,
        path: &Path,
        n: usize,
        first_in_file: bool,
        prepared: Prepared,
        next: Option<&[u8]>,
        rest: &[&[u8]],
    ) -> Result<(), Problem> {
        let Prepared {
            record: r,
            mismatch,
            signature,
        } = prepared;
        let problem = |kind, message: String| Problem {
            kind,
            file: path.to_path_buf(),
            line: n,
            seq: Some(r.seq),
            message,
        };
        let start = self.report.records == 0;
        if first_in_file {
            let segment = r.segment;
            if r.kind != "segment" || segment.is_none() {
                return Err(problem(
                    ProblemKind::Malformed,
                    "a segment file must start with its `segment` record".into(),
                ));
            }
            let segment = segment.unwrap_or_default();
            if start && (segment != 1 || r.seq != 0) {
                return Err(problem(
                    ProblemKind::MissingFile,
                    format!(
                        "the series starts at segment {segment} (seq {}): segments 1 to {} are missing",
                        r.seq,
                        segment.saturating_sub(1)
                    ),
                ));
            }
            if !start && segment != self.segment.saturating_add(1) {
                return Err(problem(
                    ProblemKind::MissingFile,
                    format!(
                        "segment {segment} follows segment {}: the file of segment {} is missing",
                        self.segment,
                        self.segment.saturating_add(1)
                    ),
                ));
            }
            if !start && r.seq != self.expected {
                return Err(problem(
                    ProblemKind::Deleted,
                    format!(
                        "segment {segment} starts at seq {}, the previous one ended at seq {}: records are missing at the end of the previous file",
                        r.seq,
                        self.expected.saturating_sub(1)
                    ),
                ));
            }
            self.segment = segment;
        } else if r.kind == "segment" {
            return Err(problem(
                ProblemKind::Inserted,
                "a `segment` record in the middle of a file".into(),
            ));
        }

        if r.seq < self.expected {
            // Was the previous record the one inserted? It would claim the
            // same predecessor as this one, and the next record links to this.
            let inserted_before = *r.prev == *self.last_prev
                && *r.hash != *self.last_hash
                && next
                    .and_then(|l| parse(l).ok())
                    .and_then(|m| m.get("prev").and_then(Value::as_str).map(str::to_owned))
                    .is_some_and(|p| p == *r.hash);
            if inserted_before && let Some((file, line)) = self.last_at() {
                return Err(Problem {
                    kind: ProblemKind::Inserted,
                    file,
                    line,
                    seq: Some(r.seq),
                    message: format!(
                        "this record claims seq {}, which the record at line {n} also holds, and the chain continues through that one: this record was inserted",
                        r.seq
                    ),
                });
            }
            return Err(problem(
                ProblemKind::Inserted,
                format!(
                    "seq {} was already used by an earlier record (expected seq {}): this record was inserted",
                    r.seq, self.expected
                ),
            ));
        }
        if r.seq > self.expected {
            let missing = self.expected;
            if rest.iter().any(|l| seq_of(l) == Some(missing)) {
                return Err(problem(
                    ProblemKind::Reordered,
                    format!(
                        "seq {} comes before seq {missing}, which appears later: records were reordered",
                        r.seq
                    ),
                ));
            }
            return Err(problem(
                ProblemKind::Deleted,
                format!(
                    "seq {} follows seq {}: {} record(s) were deleted before this line",
                    r.seq,
                    missing.saturating_sub(1),
                    r.seq - missing
                ),
            ));
        }

        if let Some(computed) = mismatch {
            if next.and_then(seq_of) == Some(r.seq) {
                return Err(problem(
                    ProblemKind::Inserted,
                    format!(
                        "this record does not match its hash and the next record holds the same seq {}: it was inserted",
                        r.seq
                    ),
                ));
            }
            return Err(problem(
                ProblemKind::Modified,
                format!(
                    "the record does not match its hash (computed {computed}): its content was modified"
                ),
            ));
        }
        if *r.prev != *self.last_hash {
            let (file, line) = self.last_at().unwrap_or_else(|| (path.to_path_buf(), n));
            return Err(Problem {
                kind: ProblemKind::Modified,
                file,
                line,
                seq: r.seq.checked_sub(1),
                message: format!(
                    "the next record (seq {}) names a different previous hash: this record was modified and re-hashed",
                    r.seq
                ),
            });
        }

        if r.kind == "checkpoint" {
            signature
                .unwrap_or_else(|| checkpoint(self.options, &r))
                .map_err(|(kind, m)| problem(kind, m))?;
            self.report.checkpoints += 1;
            self.report.unsigned_tail = 0;
            self.report.closed = r
                .map
                .as_ref()
                .and_then(|m| m.get("final"))
                .and_then(Value::as_bool)
                == Some(true);
        } else {
            if self.report.unsigned_tail == 0 {
                self.tail_start = Some((self.current_file(), n, r.seq));
            }
            self.report.unsigned_tail += 1;
            self.report.closed = false;
            if r.kind == "decision" {
                self.report.decisions += 1;
            }
        }
        self.report.records += 1;
        self.expected = r.seq.saturating_add(1);
        self.last_prev.clear();
        self.last_prev.push_str(&r.prev);
        self.last_hash.clear();
        self.last_hash.push_str(&r.hash);
        self.last_at = Some((self.current_file(), n));
        self.last_was_checkpoint = r.kind == "checkpoint";
        Ok(())
    }
}

/// Phase 1 for one line: the record and every verdict on it that does not
/// depend on the lines before it. It is given the options, never the chain
/// state, so it can run ahead of the chain checks, on any thread.
fn prepare<'l>(
    options: &VerifyOptions,
    path: &Path,
    n: usize,
    line: &'l [u8],
) -> Result<Prepared<'l>, Problem> {
    let record = record(path, n, line)?;
    let mismatch = hash_mismatch(&record);
    let signature = (record.kind == "checkpoint").then(|| checkpoint(options, &record));
    Ok(Prepared {
        record,
        mismatch,
        signature,
    })
}

/// Phase 1 for `lines` of `path` (the first is line `first`) on `threads`
/// threads, the current one and helpers, each taking the next `block`
/// lines until none is left: the results in the order of the lines.
fn prepare_parallel<'l>(
    options: &VerifyOptions,
    path: &Path,
    first: usize,
    lines: &[&'l [u8]],
    threads: usize,
    block: usize,
) -> Vec<Result<Prepared<'l>, Problem>> {
    // At least four blocks a thread, so that a short chunk is shared too.
    let block = block
        .min(lines.len().div_ceil(threads.saturating_mul(4)))
        .max(1);
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let b = next.fetch_add(1, Ordering::Relaxed);
            let start = b.saturating_mul(block);
            let Some(part) = lines.get(start..).filter(|part| !part.is_empty()) else {
                return done;
            };
            let part = part.get(..block).unwrap_or(part);
            let results: Vec<_> = part
                .iter()
                .zip(first.saturating_add(start)..)
                .map(|(line, n)| prepare(options, path, n, line))
                .collect();
            done.push((b, results));
        }
    };
    let mut parts = std::thread::scope(|scope| {
        // A helper that cannot be started leaves its blocks to the others.
        let helpers: Vec<_> = (1..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("agentriage-verify".into())
                    .spawn_scoped(scope, work)
                    .ok()
            })
            .collect();
        let mut parts = work();
        for helper in helpers {
            match helper.join() {
                Ok(theirs) => parts.extend(theirs),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        parts
    });
    parts.sort_unstable_by_key(|(b, _)| *b);
    parts.into_iter().flat_map(|(_, results)| results).collect()
}

/// The hash of the content of `r` when it differs from the one `r` holds;
/// `None` when they agree.
fn hash_mismatch(r: &Record) -> Option<String> {
    let fast = match r.hash_member {
        Some(member) => line_without_member_matches(r.line, member, &r.hash),
        None => line_matches_hash(r.line, &r.hash),
    };
    if fast {
        return None;
    }
    let full;
    let map = match &r.map {
        Some(map) => map,
        None => {
            full = parse(r.line).unwrap_or_default();
            &full
        }
    };
    let mut h = Sha256::new();
    canonical::write_object(&mut h, map, &["hash"]);
    let computed = format!("sha256:{}", hex(&h.finalize()));
    (computed != *r.hash).then_some(computed)
}

fn record<'l>(path: &Path, n: usize, line: &'l [u8]) -> Result<Record<'l>, Problem> {
    // Every reader must see the same record: a repeated member (the
    // hash covers both copies) would let them disagree.
    let duplicate = |message: String| Problem {
        kind: ProblemKind::DuplicateMember,
        file: path.to_path_buf(),
        line: n,
        seq: seq_of(line),
        message: format!(
            "the record repeats a member ({message}): readers disagree on which value counts"
        ),
    };
    match scan::scan(line) {
        Scanned::Head(head) if head.v <= FORMAT_VERSION && head.kind != "checkpoint" => {
            return Ok(Record {
                map: None,
                seq: head.seq,
                kind: Cow::Borrowed(head.kind),
                prev: Cow::Borrowed(head.prev),
                hash: Cow::Borrowed(head.hash),
                segment: head.segment,
                line,
                hash_member: Some(head.hash_member),
            });
        }
        Scanned::Duplicate(name) => {
            // serde's message (with the position) when its scan finds
            // the same; the scan's own otherwise.
            let message = match strict_json::check_unique_keys(line) {
                Err(e) if e.to_string().starts_with(strict_json::DUPLICATE_KEY) => e.to_string(),
                _ => format!("{} `{name}`", strict_json::DUPLICATE_KEY),
            };
            return Err(duplicate(message));
        }
        Scanned::Head(_) | Scanned::Other => {}
    }
    if let Err(e) = strict_json::check_unique_keys(line) {
        let message = e.to_string();
        if message.starts_with(strict_json::DUPLICATE_KEY) {
            return Err(duplicate(message));
        }
    }
    if let Ok(head) = serde_json::from_slice::<Head<'_>>(line)
        && let (Some(v), Some(seq), Some(prev), Some(hash), Some(kind), Some(_)) =
            (head.v, head.seq, head.prev, head.hash, head.kind, head.time)
        && v <= FORMAT_VERSION
        && kind != "checkpoint"
    {
        return Ok(Record {
            map: None,
            seq,
            kind,
            prev,
            hash,
            segment: head.segment,
            line,
            hash_member: None,
        });
    }
    full_record(path, n, line)
}

fn full_record<'l>(path: &Path, n: usize, line: &'l [u8]) -> Result<Record<'l>, Problem> {
    let problem = |kind, seq, message: String| Problem {
        kind,
        file: path.to_path_buf(),
        line: n,
        seq,
        message,
    };
    let map = parse(line).map_err(|m| problem(ProblemKind::NotJson, None, m))?;
    let seq = map.get("seq").and_then(Value::as_u64);
    match map.get("v").and_then(Value::as_u64) {
        Some(v) if v > FORMAT_VERSION => {
            return Err(problem(
                ProblemKind::FutureVersion,
                seq,
                format!(
                    "record of format version {v}; this verifier knows versions up to {FORMAT_VERSION}: upgrade agentriage"
                ),
            ));
        }
        Some(_) => {}
        None => {
            return Err(problem(
                ProblemKind::Malformed,
                seq,
                "no format version `v`".into(),
            ));
        }
    }
    for member in ["seq", "prev", "hash", "kind", "time"] {
        let ok = match member {
            "seq" => seq.is_some(),
            _ => map.get(member).is_some_and(Value::is_string),
        };
        if !ok {
            return Err(problem(
                ProblemKind::Malformed,
                seq,
                format!("member `{member}` is missing or of the wrong type"),
            ));
        }
    }
    let member = |name: &str| {
        Cow::Owned(
            map.get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let (kind, prev, hash) = (member("kind"), member("prev"), member("hash"));
    let segment = map.get("segment").and_then(Value::as_u64);
    Ok(Record {
        map: Some(map),
        seq: seq.unwrap_or_default(),
        kind,
        prev,
        hash,
        segment,
        line,
        hash_member: None,
    })
}

fn checkpoint(options: &VerifyOptions, r: &Record) -> Result<(), (ProblemKind, String)> {
    let malformed = |m: &str| (ProblemKind::Malformed, m.to_owned());
    let public = r
        .str("public_key")
        .and_then(unhex)
        .filter(|k| k.len() == 32)
        .ok_or_else(|| malformed("checkpoint without a valid `public_key`"))?;
    let signature = r
        .str("signature")
        .and_then(unhex)
        .ok_or_else(|| malformed("checkpoint without a valid `signature`"))?;
    if let Some(key) = &options.key
        && *key != public
    {
        return Err((
            ProblemKind::WrongKey,
            format!(
                "checkpoint signed by key {} ({}), not by the given key {}",
                key_id(&public),
                hex(&public),
                key_id(key)
            ),
        ));
    }
    let map = r
        .map
        .as_ref()
        .ok_or_else(|| malformed("checkpoint not read in full"))?;
    let mut message = Vec::new();
    canonical::write_object(&mut message, map, &["hash", "signature"]);
    if !verify_signature(&public, &message, &signature) {
        return Err((
            ProblemKind::BadSignature,
            "the checkpoint's signature does not verify: records before it were changed and the chain rewritten, or the checkpoint was forged".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    /// What the writer writes takes the one-pass scan: every record but the
    /// checkpoints (which the full parser reads to check their signature).
    #[test]
    fn the_writers_records_take_the_one_pass_scan() {
        use crate::audit::{DecisionLog, DecisionLogConfig, SigningKey};
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_seed(&[5; 32]).unwrap();
        let public = key.public_key_hex().to_owned();
        let log = DecisionLog::open(DecisionLogConfig::new(dir.path()).signing_key(key)).unwrap();
        let engine = crate::Engine::from_dir("../policies/a2a-supply-chain")
            .unwrap()
            .with_decision_log(log.clone());
        let text = std::fs::read_to_string("../testdata/requests.jsonl").unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let _ = engine.decide_json(line);
        }
        log.close().unwrap();
        let files = log.segments().unwrap();
        let report = verify(&files, &VerifyOptions::with_key(&public).unwrap()).unwrap();
        assert!(report.is_intact(), "{report}");
        assert!(report.decisions > 5, "{report}");
        let (mut fast, mut checkpoints) = (0, 0);
        for file in &files {
            for line in std::fs::read(file).unwrap().split(|&b| b == b'\n') {
                if line.is_empty() {
                    continue;
                }
                match scan::scan(line) {
                    Scanned::Head(h) if h.kind == "checkpoint" => checkpoints += 1,
                    Scanned::Head(_) => fast += 1,
                    _ => panic!("not scanned: {}", String::from_utf8_lossy(line)),
                }
            }
        }
        assert_eq!(fast + checkpoints, report.records);
        assert_eq!(checkpoints, report.checkpoints);
    }

    #[test]
    fn lines_split_as_the_slice_splits_them() {
        let mut long = vec![b'x'; 200];
        for at in [0, 31, 32, 33, 63, 64, 100, 199] {
            long[at] = b'\n';
        }
        let cases: [&[u8]; 10] = [
            b"",
            b"\n",
            b"a",
            b"a\n",
            b"\n\n",
            b"a\nb",
            &[b'x'; 70],
            &[b'\n'; 70],
            &long,
            &long[1..],
        ];
        for bytes in cases {
            let expected: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
            assert_eq!(split_lines(bytes), expected, "{bytes:?}");
        }
    }

    #[test]
    fn the_summary_counts_in_singular_and_plural() {
        let one = VerifyReport {
            files: 1,
            records: 1,
            decisions: 1,
            checkpoints: 1,
            unsigned_tail: 1,
            unsigned_tail_seq: Some((7, 7)),
            ..VerifyReport::default()
        };
        let text = one.to_string();
        assert!(
            text.contains(": 1 file, 1 record (1 decision), 1 signed checkpoint ("),
            "{text}"
        );
        assert!(
            text.contains("unsigned tail: 1 record (seq 7 to 7) after the last checkpoint is not"),
            "{text}"
        );
        let two = VerifyReport {
            files: 2,
            records: 2,
            decisions: 0,
            checkpoints: 2,
            unsigned_tail: 2,
            unsigned_tail_seq: Some((3, 4)),
            ..VerifyReport::default()
        };
        let text = two.to_string();
        assert!(
            text.contains(": 2 files, 2 records (0 decisions), 2 signed checkpoints ("),
            "{text}"
        );
        assert!(
            text.contains("2 records after the last checkpoint"),
            "{text}"
        );
        assert!(text.contains("checkpoint are not covered"), "{text}");
    }
}

/// The parallel phase 1 against the sequential verifier: the same report
/// for every tampering, wherever it is.
#[cfg(test)]
mod parallel_tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use std::sync::Arc;

    use super::*;
    use crate::audit::{DecisionLog, DecisionLogConfig, Entry, Redaction, SigningKey};
    use crate::request::Timestamp;

    const SEED: [u8; 32] = [9; 32];

    /// A log as lines per file.
    type Log = Vec<(PathBuf, Vec<String>)>;

    /// A log as the bytes of each file.
    type Files = Vec<(PathBuf, Vec<u8>)>;

    /// A closed log of `n` decisions (one decision, repeated) with a
    /// checkpoint every `every` records and segments of `segment_bytes`.
    fn written_log(n: usize, every: u64, segment_bytes: u64) -> Log {
        let dir = tempfile::tempdir().unwrap();
        let log = DecisionLog::open(
            DecisionLogConfig::new(dir.path())
                .signing_key(SigningKey::from_seed(&SEED).unwrap())
                .checkpoint_every(every)
                .max_segment_bytes(segment_bytes),
        )
        .unwrap();
        let engine = crate::Engine::from_dir("../policies/a2a-supply-chain").unwrap();
        let request = crate::Request::from_json(
            r#"{"principal":{"id":"spiffe://x/y"},"action":{"name":"inventory.read"}}"#,
        )
        .unwrap();
        let decision = engine.decide(&request).unwrap();
        let redaction = Arc::new(Redaction::default());
        for _ in 0..n {
            log.append(Entry {
                decision: decision.clone(),
                request: request.clone(),
                redaction: Arc::clone(&redaction),
                time: Timestamp::now(),
            })
            .unwrap();
        }
        log.close().unwrap();
        log.segments()
            .unwrap()
            .into_iter()
            .map(|path| {
                let text = std::fs::read_to_string(&path).unwrap();
                (path, text.lines().map(str::to_owned).collect())
            })
            .collect()
    }

    /// The files of `log`, every line ending with a newline.
    fn contents(log: &[(PathBuf, Vec<String>)]) -> Files {
        log.iter()
            .map(|(path, lines)| {
                let mut bytes = Vec::new();
                for line in lines {
                    bytes.extend_from_slice(line.as_bytes());
                    bytes.push(b'\n');
                }
                (path.clone(), bytes)
            })
            .collect()
    }

    fn map_of(line: &str) -> Map<String, Value> {
        parse(line.as_bytes()).unwrap()
    }

    /// `line` after `edit`, re-hashed (and so still canonical), as a forger
    /// who knows the format writes it.
    fn rehashed(line: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut map = map_of(line);
        edit(&mut map);
        rehash(&mut map)
    }

    fn rehash(map: &mut Map<String, Value>) -> String {
        let mut h = Sha256::new();
        canonical::write_object(&mut h, map, &["hash"]);
        map.insert(
            "hash".into(),
            format!("sha256:{}", hex(&h.finalize())).into(),
        );
        String::from_utf8(canonical::to_vec(&Value::Object(map.clone()))).unwrap()
    }

    /// From line `at` on, drop every checkpoint and re-chain the rest.
    fn forged_from(log: &Log, (file, line): (usize, usize)) -> Log {
        let mut out = Log::new();
        let (mut prev, mut seq) = (None::<String>, 0u64);
        for (f, (path, lines)) in log.iter().enumerate() {
            let mut kept = Vec::new();
            for (i, l) in lines.iter().enumerate() {
                let map = map_of(l);
                if (f, i) < (file, line) {
                    prev = map.get("hash").and_then(Value::as_str).map(str::to_owned);
                    seq = map.get("seq").and_then(Value::as_u64).unwrap() + 1;
                    kept.push(l.clone());
                    continue;
                }
                if map.get("kind").and_then(Value::as_str) == Some("checkpoint") {
                    continue;
                }
                let mut map = map;
                map.insert("seq".into(), seq.into());
                map.insert(
                    "prev".into(),
                    prev.clone().unwrap_or_else(|| GENESIS.to_owned()).into(),
                );
                let written = rehash(&mut map);
                prev = map.get("hash").and_then(Value::as_str).map(str::to_owned);
                seq += 1;
                kept.push(written);
            }
            out.push((path.clone(), kept));
        }
        out
    }

    /// Every tampering of `log` at line `at` (file, 0-based line), named.
    fn tamperings(log: &Log, at: (usize, usize)) -> Vec<(&'static str, Files)> {
        let (f, i) = at;
        let line = log[f].1[i].clone();
        let with = |edit: &dyn Fn(&mut Vec<String>)| {
            let mut changed = log.clone();
            edit(&mut changed[f].1);
            contents(&changed)
        };
        let mut out = vec![
            (
                "edited",
                with(&|l| l[i] = l[i].replacen("\"seq\":", "\"x\":0,\"seq\":", 1)),
            ),
            (
                "re-hashed",
                with(&|l| {
                    l[i] = rehashed(&l[i], |m| {
                        m.insert("x".into(), 0.into());
                    })
                }),
            ),
            ("not json", with(&|l| l[i] = "{\"v\":1,".into())),
            ("blank", with(&|l| l[i] = String::new())),
            (
                "deleted",
                with(&|l| {
                    l.remove(i);
                }),
            ),
            ("repeated", with(&|l| l.insert(i, l[i].clone()))),
            (
                "duplicate member",
                with(&|l| l[i] = l[i].replacen('{', "{\"x\":1,\"x\":1,", 1)),
            ),
            (
                "future version",
                with(&|l| {
                    l[i] = rehashed(&l[i], |m| {
                        m.insert("v".into(), 2.into());
                    })
                }),
            ),
            ("forged from here", contents(&forged_from(log, at))),
        ];
        if i + 1 < log[f].1.len() {
            out.push(("swapped", with(&|l| l.swap(i, i + 1))));
        }
        // A problem the chain checks find, and a later line phase 1
        // refuses: the first one counts.
        if i + 3 < log[f].1.len() {
            out.push((
                "deleted, a later line not json",
                with(&|l| {
                    l[i + 3] = "{\"v\":1,".into();
                    l.remove(i);
                }),
            ));
            out.push((
                "re-hashed, a later line not json",
                with(&|l| {
                    l[i + 2] = "{\"v\":1,".into();
                    l[i] = rehashed(&l[i], |m| {
                        m.insert("x".into(), 0.into());
                    });
                }),
            ));
        }
        // Cut inside the line: the later files kept (truncated unless it
        // is the last), or dropped (a torn last line).
        let cut = |keep_later: bool| {
            let mut files = contents(&log[..=f]);
            let mut bytes = contents(&[(log[f].0.clone(), log[f].1[..i].to_vec())])
                .pop()
                .unwrap()
                .1;
            bytes.extend_from_slice(&line.as_bytes()[..line.len() / 2]);
            files[f].1 = bytes;
            if keep_later {
                files.extend(contents(&log[f + 1..]));
            }
            files
        };
        out.push(("cut, later files kept", cut(true)));
        out.push(("cut, later files dropped", cut(false)));
        out
    }

    /// The options every tampering is verified with.
    fn option_sets() -> Vec<(&'static str, VerifyOptions)> {
        let public = SigningKey::from_seed(&SEED)
            .unwrap()
            .public_key_hex()
            .to_owned();
        vec![
            ("key", VerifyOptions::with_key(&public).unwrap()),
            (
                "key, unsigned tail allowed",
                VerifyOptions::with_key(&public)
                    .unwrap()
                    .allow_unsigned_tail(true),
            ),
            ("no key", VerifyOptions::new()),
        ]
    }

    /// For each tampering at each of `positions` and each of `options`:
    /// the report of every spreading in `spreads` ((threads, chunk, block,
    /// fewest lines), or `None` for the default one) equals the sequential
    /// report, which must see the change: it differs from the untouched
    /// log's, and with the key (the first options) the log is not intact.
    /// The untouched log is also verified with another key. `only` names
    /// the tamperings to try (all when empty).
    fn compare(
        log: &Log,
        positions: &[(usize, usize)],
        options: &[(&str, VerifyOptions)],
        spreads: &[Option<(usize, usize, usize, usize)>],
        only: &[&str],
    ) {
        let same = |what: &str, name: &str, files: &[(PathBuf, Vec<u8>)], o: &VerifyOptions| {
            let sequential = verify_contents(files, &o.clone().parallel(1, 1, 1, 1));
            for spread in spreads {
                let o = match *spread {
                    Some((threads, chunk, block, min)) => {
                        o.clone().parallel(threads, chunk, block, min)
                    }
                    None => o.clone(),
                };
                let parallel = verify_contents(files, &o);
                assert_eq!(parallel, sequential, "{what}, {name}, {:?}", o.parallel);
            }
            sequential
        };
        let intact = contents(log);
        let other = SigningKey::from_seed(&[1; 32]).unwrap();
        let other = VerifyOptions::with_key(other.public_key_hex()).unwrap();
        let report = same("untouched", "another key", &intact, &other);
        assert_eq!(
            problem_kind(&report),
            Some(ProblemKind::WrongKey),
            "{report}"
        );
        let untouched: Vec<VerifyReport> = options
            .iter()
            .map(|(name, o)| same("untouched", name, &intact, o))
            .collect();
        assert!(untouched[0].is_intact(), "{}", untouched[0]);
        for &at in positions {
            for (tampering, files) in tamperings(log, at) {
                if !only.is_empty() && !only.contains(&tampering) {
                    continue;
                }
                let what = format!("{tampering} at {at:?}");
                for ((name, o), untouched) in options.iter().zip(&untouched) {
                    let report = same(&what, name, &files, o);
                    assert_ne!(&report, untouched, "{what}, {name}: not seen");
                }
                let report = verify_contents(&files, &options[0].1.clone().parallel(1, 1, 1, 1));
                assert!(!report.is_intact(), "{what}: intact: {report}");
            }
        }
    }

    fn problem_kind(report: &VerifyReport) -> Option<ProblemKind> {
        report.problem.as_ref().map(|p| p.kind)
    }

    /// In every file: the first two lines, the middle one, the last two
    /// and the first checkpoint; in the first file also the lines `lines`.
    fn positions_of(log: &Log, lines: &[usize]) -> Vec<(usize, usize)> {
        let mut at: Vec<(usize, usize)> = lines.iter().map(|&i| (0, i)).collect();
        for (f, (_, l)) in log.iter().enumerate() {
            let last = l.len() - 1;
            at.extend([(f, 0), (f, 1), (f, last / 2), (f, last - 1), (f, last)]);
            let checkpoint = l.iter().position(|x| x.contains("\"kind\":\"checkpoint\""));
            at.extend(checkpoint.map(|i| (f, i)));
        }
        at.sort_unstable();
        at.dedup();
        at
    }

    /// Small chunks and blocks (and the defaults) over a rotated log:
    /// tampering at the first line, block and chunk boundaries, a
    /// checkpoint, the first, middle and last lines of every segment.
    #[test]
    fn every_tampering_reports_the_same_on_any_number_of_threads() {
        let log = written_log(150, 10, 4096 * 16);
        assert!(log.len() >= 2, "{} files", log.len());
        assert!(log[0].1.len() >= PARALLEL_MIN_LINES, "{}", log[0].1.len());
        let positions = positions_of(&log, &[7, 8, 31, 32, 49, 50]);
        compare(
            &log,
            &positions,
            &option_sets(),
            &[Some((2, 32, 8, 16)), Some((3, 50, 7, 1)), None],
            &[],
        );
    }

    /// A record edited on any line, of any file, is found on that line,
    /// however phase 1 is spread.
    #[test]
    fn an_edit_on_any_line_is_found_there_on_any_number_of_threads() {
        let log = written_log(150, 10, 4096 * 16);
        let (_, key) = option_sets().swap_remove(0);
        for (f, (path, lines)) in log.iter().enumerate() {
            for (i, line) in lines.iter().enumerate() {
                let mut edited = log.clone();
                edited[f].1[i] = line.replacen("\"seq\":", "\"x\":0,\"seq\":", 1);
                let files = contents(&edited);
                let sequential = verify_contents(&files, &key.clone().parallel(1, 1, 1, 1));
                let p = sequential.problem.as_ref().unwrap();
                assert_eq!(
                    (p.kind, &p.file, p.line),
                    (ProblemKind::Modified, path, i + 1),
                    "{p}"
                );
                for (threads, chunk, block, min) in [(2, 32, 8, 16), (3, 50, 7, 1)] {
                    let o = key.clone().parallel(threads, chunk, block, min);
                    assert_eq!(
                        verify_contents(&files, &o),
                        sequential,
                        "{p}, {:?}",
                        o.parallel
                    );
                }
            }
        }
    }

    /// At the default sizes, over a log of several chunks: tampering at a
    /// block boundary, a checkpoint, either side of the first chunk
    /// boundary, the last line.
    #[test]
    fn a_long_log_reports_the_same_as_the_sequential_verifier() {
        let log = written_log(CHUNK_LINES + 500, 1000, 64 << 20);
        let lines = &log[0].1;
        assert!(lines.len() > CHUNK_LINES, "{}", lines.len());
        let checkpoint = lines
            .iter()
            .position(|l| l.contains("\"kind\":\"checkpoint\""))
            .unwrap();
        let positions = [
            (0, BLOCK_LINES),
            (0, checkpoint),
            (0, CHUNK_LINES - 1),
            (0, CHUNK_LINES),
            (0, lines.len() - 1),
        ];
        let key = option_sets().swap_remove(0);
        compare(
            &log,
            &positions,
            &[key],
            &[Some((2, CHUNK_LINES, BLOCK_LINES, PARALLEL_MIN_LINES))],
            &[
                "edited",
                "re-hashed",
                "deleted",
                "swapped",
                "cut, later files dropped",
                "deleted, a later line not json",
            ],
        );

        // Phase 1 of every line, on any number of threads and from any
        // first line, is the one the sequential verifier computes: with
        // lines of every kind (edited, not JSON, repeated members,
        // checkpoints), wherever they are.
        let mut mixed = log.clone();
        for (i, line) in mixed[0].1.iter_mut().enumerate() {
            match i % 11 {
                3 => *line = line.replacen("\"seq\":", "\"x\":0,\"seq\":", 1),
                5 => *line = "{\"v\":1,".into(),
                7 => *line = line.replacen('{', "{\"x\":1,\"x\":1,", 1),
                _ => {}
            }
        }
        let (path, bytes) = contents(&mixed).swap_remove(0);
        let lines = split_lines(&bytes);
        let (_, key) = option_sets().swap_remove(0);
        let sequential: Vec<_> = (1..)
            .zip(&lines)
            .map(|(n, line)| prepare(&key, &path, n, line))
            .collect();
        for (threads, block) in [(2, BLOCK_LINES), (3, 7)] {
            for start in [0, 1, BLOCK_LINES + 3] {
                let parallel =
                    prepare_parallel(&key, &path, start + 1, &lines[start..], threads, block);
                assert!(
                    parallel == sequential[start..],
                    "{threads} threads, blocks of {block}, from line {}",
                    start + 1
                );
            }
        }
    }
}
