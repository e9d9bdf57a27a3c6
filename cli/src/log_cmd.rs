//! `agentriage log …`, `agentriage replay`, and the decision-log options of
//! `agentriage eval`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use agentriage::audit::{self, DecisionLog, DecisionLogConfig, SigningKey, VerifyOptions};
use agentriage::{Engine, Request, Timestamp};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

/// Exit codes of `log verify`.
pub mod verify_exit {
    /// The chain verifies and every record is covered by a checkpoint
    /// signed with `--key` (or the chain verifies, with `--chain-only`).
    pub const OK: u8 = 0;
    /// A record was modified, deleted, inserted or reordered, a checkpoint
    /// fails, or the input is not a valid log.
    pub const PROBLEM: u8 = 1;
    /// The chain verifies but no `--key` was given: integrity is unproven.
    pub const UNPROVEN: u8 = 3;
    /// A file cannot be read, or the key is not valid.
    pub const IO: u8 = 4;
    /// Everything verifies but the last line is torn (a crash during a write).
    pub const TORN: u8 = 5;
}

/// Exit codes of `replay`.
pub mod replay_exit {
    /// No outcome changed.
    pub const UNCHANGED: u8 = 0;
    /// At least one outcome changed, or a record could not be replayed.
    pub const CHANGED: u8 = 1;
    /// The candidate bundle could not be loaded.
    pub const BUNDLE: u8 = 3;
    /// A log file cannot be read or holds a line that is not a record.
    pub const IO: u8 = 4;
}

pub const VERIFY_EXIT_CODES: &str = "\
Exit codes:
  0  intact: the chain verifies and every record is covered by a checkpoint
     signed with --key (records after the last one only with
     --allow-unsigned-tail); with --chain-only, the chain verifies
  1  tampering or an invalid log: the first problem is printed (records not
     covered by a signed checkpoint are one)
  2  bad command-line usage
  3  the chain links up but integrity is unproven: no --key was given
  4  a file cannot be read, or the key is not valid
  5  everything verifies but the last line is torn (a crash during a write)";

pub const REPLAY_EXIT_CODES: &str = "\
Exit codes:
  0  no recorded outcome changes under the candidate bundle
  1  at least one outcome changes, or a record cannot be replayed
  2  bad command-line usage
  3  the candidate bundle could not be loaded
  4  a log file cannot be read, or holds a line that is not a record";

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Columns for people.
    Table,
    /// One JSON document, for CI.
    Json,
}

/// `agentriage log …`.
#[derive(Subcommand)]
pub enum LogCommand {
    /// Verify a decision log: hash chain, sequence, checkpoint signatures.
    ///
    /// Give the segment files in order (`decisions-*.jsonl` expands in
    /// order). Reports the first record that was modified, deleted,
    /// inserted or reordered, a checkpoint whose signature fails, a missing
    /// file, a torn last line, a line that is not JSON, or a record of a
    /// newer format.
    #[command(after_help = VERIFY_EXIT_CODES)]
    Verify {
        /// Segment files, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The host's public key (64 hex digits, or a file holding them):
        /// every record must be covered by a checkpoint signed by it.
        #[arg(long)]
        key: Option<String>,
        /// Accept records after the last signed checkpoint (a log still
        /// being written): they are reported, not proven.
        #[arg(long, requires = "key")]
        allow_unsigned_tail: bool,
        /// Without --key: check only the hash chain and exit 0 when it
        /// links up (integrity stays unproven, and the report says so).
        #[arg(long, conflicts_with = "key")]
        chain_only: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Generate a checkpoint signing key: writes the private key (PKCS#8,
    /// DER) to FILE and prints the public key for `log verify --key`.
    Keygen {
        /// Where to write the private key (must not exist).
        file: PathBuf,
    },
}

/// Decision-log options of `agentriage eval`.
#[derive(Args, Debug, Default)]
pub struct LogArgs {
    /// Log every decision to this directory (a tamper-evident decision log).
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Private key (PKCS#8 DER, see `log keygen`) that signs checkpoints.
    #[arg(long, value_name = "FILE", requires = "log_dir")]
    pub log_key: Option<PathBuf>,
    /// Reject decisions that cannot be logged.
    #[arg(long, requires = "log_dir")]
    pub log_mandatory: bool,
}

/// Opens the log the options ask for and attaches it to `engine`.
pub fn attach(engine: Engine, args: &LogArgs) -> Result<(Engine, Option<DecisionLog>), String> {
    let Some(dir) = &args.log_dir else {
        return Ok((engine, None));
    };
    let mut config = DecisionLogConfig::new(dir).mandatory(args.log_mandatory);
    if let Some(path) = &args.log_key {
        let der = std::fs::read(path)
            .map_err(|e| format!("cannot read the log key `{}`: {e}", path.display()))?;
        let key = SigningKey::from_pkcs8(&der).map_err(|e| format!("{}: {e}", path.display()))?;
        config = config.signing_key(key);
    }
    let log = DecisionLog::open(config).map_err(|e| e.to_string())?;
    Ok((engine.with_decision_log(log.clone()), Some(log)))
}

pub fn log(command: LogCommand) -> u8 {
    match command {
        LogCommand::Verify {
            files,
            key,
            allow_unsigned_tail,
            chain_only,
            format,
        } => verify(
            &files,
            key.as_deref(),
            allow_unsigned_tail,
            chain_only,
            format,
        ),
        LogCommand::Keygen { file } => keygen(&file),
    }
}

fn keygen(file: &Path) -> u8 {
    let result = SigningKey::generate_pkcs8()
        .map_err(|e| e.to_string())
        .and_then(|der| {
            let key = SigningKey::from_pkcs8(&der).map_err(|e| e.to_string())?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(file)
                .map_err(|e| format!("cannot create `{}`: {e}", file.display()))?;
            f.write_all(&der)
                .map_err(|e| format!("cannot write `{}`: {e}", file.display()))?;
            Ok(key.public_key_hex().to_owned())
        });
    match result {
        Ok(public) => {
            println!("{public}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            verify_exit::IO
        }
    }
}

fn verify(
    files: &[PathBuf],
    key: Option<&str>,
    allow_unsigned_tail: bool,
    chain_only: bool,
    format: Format,
) -> u8 {
    let options = match key {
        None => VerifyOptions::new(),
        Some(k) => {
            let text = if Path::new(k).is_file() {
                match std::fs::read_to_string(k) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("error: cannot read the key `{k}`: {e}");
                        return verify_exit::IO;
                    }
                }
            } else {
                k.to_owned()
            };
            match VerifyOptions::with_key(text.trim()) {
                Ok(o) => o.allow_unsigned_tail(allow_unsigned_tail),
                Err(e) => {
                    eprintln!("error: --key: {e}");
                    return verify_exit::IO;
                }
            }
        }
    };
    let report = match audit::verify(files, &options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return verify_exit::IO;
        }
    };
    let code = if report.problem.is_some() {
        verify_exit::PROBLEM
    } else if !report.integrity.is_proven() && !chain_only {
        verify_exit::UNPROVEN
    } else if report.torn.is_some() {
        verify_exit::TORN
    } else {
        verify_exit::OK
    };
    let text = match format {
        Format::Table => report.to_string(),
        Format::Json => json!({
            "status": match code {
                verify_exit::OK => "ok",
                verify_exit::TORN => "torn",
                verify_exit::UNPROVEN => "unproven",
                _ => "problem",
            },
            "problem": report.problem.as_ref().map(|p| json!({
                "kind": p.kind.as_str(),
                "file": p.file.display().to_string(),
                "line": p.line,
                "seq": p.seq,
                "message": p.message,
            })),
            "torn": report.torn.as_ref().map(|t| json!({
                "file": t.file.display().to_string(),
                "line": t.line,
                "bytes": t.bytes,
            })),
            "files": report.files,
            "records": report.records,
            "decisions": report.decisions,
            "checkpoints": report.checkpoints,
            "key_checked": report.key_checked,
            "integrity": report.integrity.as_str(),
            "chain_only": chain_only,
            "unsigned_tail": report.unsigned_tail,
            "unsigned_tail_seq": report.unsigned_tail_seq.map(|(first, last)| json!({
                "first": first,
                "last": last,
            })),
            "closed": report.closed,
            "last_hash": report.last_hash,
        })
        .to_string(),
    };
    println!("{text}");
    code
}

/// One replayed decision whose outcome changed, or that could not be replayed.
struct Change {
    file: PathBuf,
    line: usize,
    record: Value,
    candidate: Result<agentriage::Decision, String>,
    redacted: Vec<String>,
}

pub fn replay(logs: &[PathBuf], bundle: &Path, format: Format) -> u8 {
    let engine = match Engine::from_dir(bundle) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot load bundle: {e}");
            return replay_exit::BUNDLE;
        }
    };
    let mut replayed = 0u64;
    let mut with_redactions = 0u64;
    let mut changes = Vec::new();
    for file in logs {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", file.display());
                return replay_exit::IO;
            }
        };
        let complete = text.ends_with('\n');
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if i + 1 == lines.len() && !complete {
                eprintln!(
                    "warning: {}:{}: torn last line skipped",
                    file.display(),
                    i + 1
                );
                break;
            }
            let record: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("error: {}:{}: not a record: {e}", file.display(), i + 1);
                    return replay_exit::IO;
                }
            };
            if at(&record, "/kind") != "decision" {
                continue;
            }
            replayed += 1;
            let redacted: Vec<String> = ["dropped", "hashed"]
                .iter()
                .flat_map(|k| {
                    at(&record, &format!("/redacted/{k}"))
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            if !redacted.is_empty() {
                with_redactions += 1;
            }
            let candidate = replay_one(&engine, &record);
            let recorded = at(&record, "/decision/outcome")
                .as_str()
                .unwrap_or_default();
            let changed = match &candidate {
                Ok(d) => d.outcome.as_str() != recorded,
                Err(_) => true,
            };
            if changed {
                changes.push(Change {
                    file: file.clone(),
                    line: i + 1,
                    record,
                    candidate,
                    redacted,
                });
            }
        }
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let written = match format {
        Format::Table => write_table(&mut out, &changes, replayed, with_redactions),
        Format::Json => write_json(&mut out, &changes, replayed, with_redactions, &engine),
    };
    if let Err(e) = written {
        eprintln!("error: {e}");
        return replay_exit::IO;
    }
    if changes.is_empty() {
        replay_exit::UNCHANGED
    } else {
        replay_exit::CHANGED
    }
}

/// The value at JSON pointer `path`, or null.
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    v.pointer(path).unwrap_or(&Value::Null)
}

/// Re-decides a recorded request at its recorded time.
fn replay_one(engine: &Engine, record: &Value) -> Result<agentriage::Decision, String> {
    let mut request = Request::from_value(at(record, "/request")).map_err(|e| e.to_string())?;
    if request.time.is_none() {
        request.time = match at(record, "/time") {
            Value::Null => None,
            Value::String(t) => {
                Some(Timestamp::parse(t).map_err(|e| format!("the record's `time`: {e}"))?)
            }
            other => return Err(format!("the record's `time` is not a string: `{other}`")),
        };
    }
    engine.decide(&request).map_err(|e| e.to_string())
}

fn policies(v: &Value) -> String {
    at(v, "/reasons")
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|r| at(r, "/policy").as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn write_table(
    out: &mut impl Write,
    changes: &[Change],
    replayed: u64,
    with_redactions: u64,
) -> io::Result<()> {
    if !changes.is_empty() {
        writeln!(
            out,
            "{:<28} {:<24} {:<9} {:<9} POLICIES / NOTE",
            "RECORD", "ACTION", "RECORDED", "CANDIDATE"
        )?;
    }
    for c in changes {
        let place = format!(
            "{}:{}",
            c.file.file_name().unwrap_or_default().to_string_lossy(),
            c.line
        );
        let (candidate, note) = match &c.candidate {
            Ok(d) => (
                d.outcome.as_str().to_owned(),
                d.policy_ids().collect::<Vec<_>>().join(","),
            ),
            Err(e) => ("-".to_owned(), format!("not replayable: {e}")),
        };
        let redacted = if c.redacted.is_empty() {
            String::new()
        } else {
            format!("  (redacted: {})", c.redacted.join(", "))
        };
        writeln!(
            out,
            "{:<28} {:<24} {:<9} {:<9} {note}{redacted}",
            place,
            at(&c.record, "/request/action/name")
                .as_str()
                .unwrap_or("?"),
            at(&c.record, "/decision/outcome").as_str().unwrap_or("?"),
            candidate,
        )?;
    }
    writeln!(
        out,
        "{} replayed, {} changed; {with_redactions} had redacted fields (replayed as logged, so their outcome may differ from the original's)",
        crate::count(replayed, "decision"),
        changes.len()
    )
}

fn write_json(
    out: &mut impl Write,
    changes: &[Change],
    replayed: u64,
    with_redactions: u64,
    engine: &Engine,
) -> io::Result<()> {
    let info = engine.bundle_info();
    let changed: Vec<Value> = changes
        .iter()
        .map(|c| {
            let mut v = json!({
                "file": c.file.display().to_string(),
                "line": c.line,
                "decision_id": at(&c.record, "/decision/decision_id"),
                "trace_id": at(&c.record, "/decision/trace_id"),
                "action": at(&c.record, "/request/action/name"),
                "time": at(&c.record, "/time"),
                "recorded": at(&c.record, "/decision/outcome"),
                "recorded_policies": policies(at(&c.record, "/decision")),
                "recorded_bundle": at(&c.record, "/decision/bundle/digest"),
                "redacted": c.redacted,
            });
            if let Some(m) = v.as_object_mut() {
                match &c.candidate {
                    Ok(d) => {
                        m.insert("candidate".into(), d.outcome.as_str().into());
                        m.insert(
                            "candidate_policies".into(),
                            d.policy_ids().collect::<Vec<_>>().join(",").into(),
                        );
                    }
                    Err(e) => {
                        m.insert("candidate".into(), Value::Null);
                        m.insert("error".into(), e.clone().into());
                    }
                }
            }
            v
        })
        .collect();
    writeln!(
        out,
        "{}",
        json!({
            "candidate_bundle": {"name": info.name, "revision": info.revision, "digest": info.digest},
            "replayed": replayed,
            "changed": changes.len(),
            "with_redactions": with_redactions,
            "changes": changed,
        })
    )
}
