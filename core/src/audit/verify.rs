//! Verification of a series of segment files.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

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
                allow_unsigned_tail: false,
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

/// One parsed record: the members the chain checks read; every member only
/// when the full parser read it (checkpoints, and lines the fast paths do
/// not take); `line` is the record as written.
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
}

fn parse(line: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
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
        let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        // `split` yields an empty piece after a final newline; a non-empty
        // one is a line without its newline.
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

    fn lines(&mut self, path: &Path, lines: &[&[u8]]) -> Result<(), Problem> {
        for (i, line) in lines.iter().enumerate() {
            let record = self.record(path, i + 1, line)?;
            let next = lines.get(i + 1).copied();
            self.check(
                path,
                i + 1,
                i == 0,
                record,
                next,
                lines.get(i + 1..).unwrap_or_default(),
            )?;
        }
        Ok(())
    }

    fn record<'l>(&self, path: &Path, n: usize, line: &'l [u8]) -> Result<Record<'l>, Problem> {
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
                    Err(e) if e.to_string().starts_with(strict_json::DUPLICATE_KEY) => {
                        e.to_string()
                    }
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
        self.full_record(path, n, line)
    }

    fn full_record<'l>(
        &self,
        path: &Path,
        n: usize,
        line: &'l [u8],
    ) -> Result<Record<'l>, Problem> {
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

    #[allow(clippy::too_many_arguments)]
    fn check(
        &mut self,
        path: &Path,
        n: usize,
        first_in_file: bool,
        r: Record,
        next: Option<&[u8]>,
        rest: &[&[u8]],
    ) -> Result<(), Problem> {
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

        let fast = match r.hash_member {
            Some(member) => line_without_member_matches(r.line, member, &r.hash),
            None => line_matches_hash(r.line, &r.hash),
        };
        let computed = if fast {
            None
        } else {
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
            Some(format!("sha256:{}", hex(&h.finalize())))
        };
        if let Some(computed) = computed
            && computed != *r.hash
        {
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
            self.checkpoint(&r).map_err(|(kind, m)| problem(kind, m))?;
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

    fn checkpoint(&self, r: &Record) -> Result<(), (ProblemKind, String)> {
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
        if let Some(key) = &self.options.key
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
