//! `agentriage log verify`, `log keygen`, `replay` and `eval --log-dir`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn agentriage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentriage"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A log of the test requests (repeated 4 times) written by `eval
/// --log-dir`, signed with a key from `log keygen`; returns the directory,
/// the public key and the segment file.
fn logged(dir: &Path) -> (String, PathBuf) {
    let key = dir.join("key.der");
    let public_file = dir.join("key.pub");
    if !key.exists() {
        let keygen = agentriage(&["log", "keygen", key.to_str().unwrap()]);
        assert!(keygen.status.success());
        std::fs::write(&public_file, stdout(&keygen)).unwrap();
    }
    let public = std::fs::read_to_string(&public_file)
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(public.len(), 64);
    let requests = std::fs::read_to_string(repo().join("testdata/requests.jsonl")).unwrap();
    let input = dir.join("requests.jsonl");
    std::fs::write(&input, requests.repeat(4)).unwrap();
    let logs = dir.join("logs");
    let eval = agentriage(&[
        "eval",
        "-b",
        repo().join("policies/a2a-supply-chain").to_str().unwrap(),
        "-i",
        input.to_str().unwrap(),
        "--log-dir",
        logs.to_str().unwrap(),
        "--log-key",
        key.to_str().unwrap(),
    ]);
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    (public, logs.join("decisions-000001.jsonl"))
}

fn verify(file: &Path, public: &str) -> (i32, serde_json::Value) {
    let o = agentriage(&[
        "log",
        "verify",
        file.to_str().unwrap(),
        "--key",
        public,
        "--format",
        "json",
    ]);
    (
        o.status.code().unwrap(),
        serde_json::from_str(&stdout(&o)).unwrap(),
    )
}

fn edit(file: &Path, f: impl FnOnce(&mut Vec<String>)) {
    let mut lines: Vec<String> = std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    f(&mut lines);
    std::fs::write(file, lines.join("\n") + "\n").unwrap();
}

/// The problem kind reported after `change`, with the exit code.
fn after(change: impl FnOnce(&mut Vec<String>)) -> (i32, String, u64) {
    let dir = tempfile::tempdir().unwrap();
    let (public, file) = logged(dir.path());
    edit(&file, change);
    let (code, report) = verify(&file, &public);
    (
        code,
        report["problem"]["kind"]
            .as_str()
            .unwrap_or("none")
            .to_owned(),
        report["problem"]["line"].as_u64().unwrap_or(0),
    )
}

#[test]
fn an_intact_log_verifies_with_its_key_and_replays_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (public, file) = logged(dir.path());
    let (code, report) = verify(&file, &public);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["decisions"], 28);
    assert_eq!(report["closed"], true);
    let table = agentriage(&["log", "verify", file.to_str().unwrap(), "--key", &public]);
    assert!(stdout(&table).starts_with("OK: the chain verifies"));

    let replay = agentriage(&[
        "replay",
        "--log",
        file.to_str().unwrap(),
        "-b",
        repo().join("policies/a2a-supply-chain").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(replay.status.code(), Some(0));
    let r: serde_json::Value = serde_json::from_str(&stdout(&replay)).unwrap();
    assert_eq!(
        (r["replayed"].as_u64(), r["changed"].as_u64()),
        (Some(28), Some(0))
    );
}

#[test]
fn replay_reports_changed_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let (_, file) = logged(dir.path());
    let candidate = dir.path().join("candidate");
    copy_dir(&repo().join("policies/a2a-supply-chain"), &candidate);
    let manifest = candidate.join("bundle.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("    \"shipment.reroute\",\n", "")).unwrap();
    let args = |format: &str| {
        agentriage(&[
            "replay",
            "--log",
            file.to_str().unwrap(),
            "--bundle",
            candidate.to_str().unwrap(),
            "--format",
            format,
        ])
    };
    let json = args("json");
    assert_eq!(json.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    let changes = r["changes"].as_array().unwrap();
    assert!(!changes.is_empty());
    for c in changes {
        assert_eq!(c["action"], "shipment.reroute");
        assert_eq!(c["candidate"], "reject");
        assert_ne!(c["recorded"], "reject");
        assert!(
            c["candidate_policies"]
                .as_str()
                .unwrap()
                .contains("R2.unknown_action")
        );
    }
    let table = stdout(&args("table"));
    assert!(
        table.contains("shipment.reroute") && table.contains("R2.unknown_action"),
        "{table}"
    );
    assert!(
        table.contains(&format!("{} changed", changes.len())),
        "{table}"
    );
    // One header line, each column named once.
    let header = table.lines().next().unwrap();
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns,
        [
            "RECORD",
            "ACTION",
            "RECORDED",
            "CANDIDATE",
            "POLICIES",
            "/",
            "NOTE"
        ],
        "{table}"
    );
    assert!(table.contains("28 decisions replayed"), "{table}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn decision_line(lines: &[String], from: usize) -> usize {
    (from..lines.len())
        .find(|&i| lines[i].contains("\"kind\":\"decision\""))
        .unwrap()
}

#[test]
fn a_modified_record_is_reported() {
    let mut at = 0;
    let (code, kind, line) = after(|l| {
        at = decision_line(l, 4);
        l[at] = l[at].replacen("\"duration_us\":", "\"duration_us\":9", 1);
    });
    assert_eq!((code, kind.as_str(), line), (1, "modified", at as u64 + 1));
}

#[test]
fn a_deleted_record_is_reported() {
    let mut at = 0;
    let (code, kind, line) = after(|l| {
        at = decision_line(l, 4);
        l.remove(at);
    });
    assert_eq!((code, kind.as_str(), line), (1, "deleted", at as u64 + 1));
}

#[test]
fn an_inserted_record_is_reported() {
    let mut at = 0;
    let (code, kind, line) = after(|l| {
        at = decision_line(l, 4);
        l.insert(at + 1, l[at].clone());
    });
    assert_eq!((code, kind.as_str(), line), (1, "inserted", at as u64 + 2));
}

#[test]
fn reordered_records_are_reported() {
    let mut at = 0;
    let (code, kind, line) = after(|l| {
        at = decision_line(l, 4);
        l.swap(at, at + 1);
    });
    assert_eq!((code, kind.as_str(), line), (1, "reordered", at as u64 + 1));
}

#[test]
fn a_forged_checkpoint_signature_is_reported() {
    let (code, kind, _) = after(|l| {
        let last = l.len() - 1;
        // Flip one hex digit of the signature and re-hash nothing: the
        // hash check catches it first, so re-hash as a forger would.
        let mut v: serde_json::Value = serde_json::from_str(&l[last]).unwrap();
        let sig = v["signature"].as_str().unwrap().to_owned();
        let flipped = if sig.starts_with('0') { "1" } else { "0" };
        v["signature"] = format!("{flipped}{}", &sig[1..]).into();
        v.as_object_mut().unwrap().remove("hash");
        let body = canonical(&v);
        let hash = format!("sha256:{}", sha256_hex(body.as_bytes()));
        v["hash"] = hash.into();
        l[last] = canonical(&v);
    });
    assert_eq!((code, kind.as_str()), (1, "bad_signature"));
}

/// Sorted-key compact JSON: canonical for these all-ASCII records.
fn canonical(v: &serde_json::Value) -> String {
    fn sort(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<_> = m.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sort(&m[k]));
                }
                serde_json::Value::Object(out)
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sort(v)).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(bytes)?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

#[test]
fn a_line_that_is_not_json_is_reported() {
    let (code, kind, line) = after(|l| l[2] = "not json at all".into());
    assert_eq!((code, kind.as_str(), line), (1, "not_json", 3));
}

#[test]
fn a_record_of_a_future_version_is_reported() {
    let (code, kind, line) = after(|l| l[2] = l[2].replacen("\"v\":1", "\"v\":7", 1));
    assert_eq!((code, kind.as_str(), line), (1, "future_version", 3));
}

#[test]
fn a_torn_last_line_is_reported_as_torn() {
    let dir = tempfile::tempdir().unwrap();
    let (public, file) = logged(dir.path());
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("{\"decision\":{\"outcome\":\"exe");
    std::fs::write(&file, &text).unwrap();
    let (code, report) = verify(&file, &public);
    assert_eq!(code, 5, "{report}");
    assert!(report["problem"].is_null());
    assert_eq!(report["status"], "torn");
    assert_eq!(report["integrity"], "proven");
    // Without the key, integrity is unproven: that outranks the torn line.
    let table = agentriage(&["log", "verify", file.to_str().unwrap()]);
    assert_eq!(table.status.code(), Some(3));
    assert!(stdout(&table).starts_with("TORN:"), "{}", stdout(&table));
    assert!(
        stdout(&table).contains("integrity unproven"),
        "{}",
        stdout(&table)
    );

    // A crash inside the only checkpoint leaves nothing signed.
    text.truncate(text.len() - 60);
    std::fs::write(&file, &text).unwrap();
    let (code, report) = verify(&file, &public);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["problem"]["kind"], "unsigned_tail");
}

#[test]
fn a_missing_file_and_a_wrong_key_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (_, file) = logged(dir.path());
    let other = tempfile::tempdir().unwrap();
    let key = other.path().join("k.der");
    let public = stdout(&agentriage(&["log", "keygen", key.to_str().unwrap()]));
    let (code, report) = verify(&file, public.trim());
    assert_eq!(
        (code, report["problem"]["kind"].as_str()),
        (1, Some("wrong_key"))
    );

    // A series whose first file is gone.
    let second = file.with_file_name("decisions-000002.jsonl");
    std::fs::rename(&file, &second).unwrap();
    edit(&second, |l| {
        l[0] = l[0].replacen("\"segment\":1", "\"segment\":2", 1);
    });
    let o = agentriage(&["log", "verify", second.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("missing_file"), "{}", stdout(&o));

    let none = agentriage(&["log", "verify", "/nonexistent/decisions-000001.jsonl"]);
    assert_eq!(none.status.code(), Some(4));
    let bad_key = agentriage(&["log", "verify", second.to_str().unwrap(), "--key", "xyz"]);
    assert_eq!(bad_key.status.code(), Some(4));
}

fn lines_of(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// From line `from` on: drops checkpoints, applies `edit` to decisions, and
/// renumbers, re-links and re-hashes everything, as a forger without the
/// checkpoint key would.
fn forge(l: &[String], from: usize, edit: impl Fn(&mut serde_json::Value)) -> Vec<String> {
    let mut out: Vec<String> = l[..from].to_vec();
    let before: serde_json::Value = serde_json::from_str(&out[from - 1]).unwrap();
    let mut prev = before["hash"].as_str().unwrap().to_owned();
    let mut seq = before["seq"].as_u64().unwrap() + 1;
    for line in &l[from..] {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["kind"] == "checkpoint" {
            continue;
        }
        if v["kind"] == "decision" {
            edit(&mut v);
        }
        v["prev"] = prev.clone().into();
        v["seq"] = seq.into();
        v.as_object_mut().unwrap().remove("hash");
        prev = format!("sha256:{}", sha256_hex(canonical(&v).as_bytes()));
        v["hash"] = prev.clone().into();
        seq += 1;
        out.push(canonical(&v));
    }
    out
}

fn verify_args(args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["log", "verify"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let o = agentriage(&all);
    (
        o.status.code().unwrap(),
        serde_json::from_str(&stdout(&o)).unwrap(),
    )
}

#[test]
fn a_log_rewritten_to_execute_with_its_checkpoints_deleted_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (public, file) = logged(dir.path());
    let forged = forge(&lines_of(&file), 1, |v| {
        v["decision"]["outcome"] = "execute".into();
    });
    std::fs::write(&file, forged.join("\n") + "\n").unwrap();
    let f = file.to_str().unwrap();

    let (code, report) = verify_args(&[f, "--key", &public]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["problem"]["kind"], "unsigned_tail");
    assert_eq!(report["integrity"], "broken");
    assert_eq!(report["checkpoints"], 0);
    let (code, report) = verify_args(&[f, "--key", &public, "--allow-unsigned-tail"]);
    assert_eq!(
        (code, report["problem"]["kind"].as_str()),
        (1, Some("unsigned_tail"))
    );
    let table = agentriage(&["log", "verify", f, "--key", &public]);
    assert!(
        stdout(&table).starts_with("TAMPERED or INVALID:") && !stdout(&table).contains("OK"),
        "{}",
        stdout(&table)
    );

    // Without a key: the chain links up, but the log is not called intact.
    let (code, report) = verify_args(&[f]);
    assert_eq!(code, 3, "{report}");
    assert_eq!(
        (report["status"].as_str(), report["integrity"].as_str()),
        (Some("unproven"), Some("unproven"))
    );
    let table = agentriage(&["log", "verify", f]);
    assert_eq!(table.status.code(), Some(3));
    assert!(
        stdout(&table).starts_with("UNPROVEN:") && stdout(&table).contains("integrity is unproven"),
        "{}",
        stdout(&table)
    );
    // Only asking for the chain check exits 0, still saying it is unproven.
    let (code, report) = verify_args(&[f, "--chain-only"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["integrity"], "unproven");
    let both = agentriage(&["log", "verify", f, "--chain-only", "--key", &public]);
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn a_repeated_member_is_reported() {
    let mut at = 0;
    let (code, kind, line) = after(|l| {
        at = decision_line(l, 4);
        l[at] = l[at].replacen(
            "{",
            "{\"decision\":{\"outcome\":\"execute\",\"reasons\":[]},",
            1,
        );
    });
    assert_eq!(
        (code, kind.as_str(), line),
        (1, "duplicate_member", at as u64 + 1)
    );
}

#[test]
fn an_unsigned_tail_is_accepted_only_with_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    // Two sessions: the first closes with its final checkpoint.
    let (public, file) = logged(dir.path());
    let first_session = lines_of(&file).len();
    let (_, again) = logged(dir.path());
    assert_eq!(again, file);
    // The second session's records after an edit, its checkpoint dropped.
    let l = lines_of(&file);
    let forged = forge(&l, first_session, |v| {
        v["decision"]["outcome"] = "execute".into();
    });
    std::fs::write(&file, forged.join("\n") + "\n").unwrap();
    let f = file.to_str().unwrap();
    let (code, report) = verify_args(&[f, "--key", &public]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["problem"]["kind"], "unsigned_tail");
    assert_eq!(report["problem"]["line"], first_session as u64 + 1);
    let tail = (forged.len() - first_session) as u64;
    assert_eq!(report["unsigned_tail"], tail);

    let (code, report) = verify_args(&[f, "--key", &public, "--allow-unsigned-tail"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["integrity"], "proven_except_tail");
    assert_eq!(report["unsigned_tail"], tail);
    assert_eq!(report["unsigned_tail_seq"]["first"], first_session as u64);
    assert_eq!(report["unsigned_tail_seq"]["last"], forged.len() as u64 - 1);
    let table = agentriage(&[
        "log",
        "verify",
        f,
        "--key",
        &public,
        "--allow-unsigned-tail",
    ]);
    assert!(
        stdout(&table).contains(&format!("unsigned tail: {tail} records")),
        "{}",
        stdout(&table)
    );
    // The flag needs a key.
    let o = agentriage(&["log", "verify", f, "--allow-unsigned-tail"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Runs `eval` on a stream of requests with a decision log, SIGKILLs it
/// after it has answered `after` decisions, and returns the decision ids it
/// answered (each printed, and flushed, after its decision returned).
fn answered_then_killed(dir: &Path, mandatory: bool, after: usize) -> Vec<String> {
    use std::io::{BufRead, Write};
    let requests = std::fs::read_to_string(repo().join("testdata/requests.jsonl")).unwrap();
    let mut args = vec![
        "eval".to_owned(),
        "-b".into(),
        repo()
            .join("policies/a2a-supply-chain")
            .to_str()
            .unwrap()
            .into(),
        "-i".into(),
        "-".into(),
        "--log-dir".into(),
        dir.join("logs").to_str().unwrap().into(),
        "--log-key".into(),
        dir.join("key.der").to_str().unwrap().into(),
    ];
    if mandatory {
        args.push("--log-mandatory".into());
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentriage"))
        .args(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Feeds requests until the child is gone (the pipe then breaks).
    let feeder = std::thread::spawn(move || {
        for _ in 0..100_000 {
            if stdin.write_all(requests.as_bytes()).is_err() {
                break;
            }
        }
    });
    let mut ids = Vec::new();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while ids.len() < after {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "eval stopped early");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        ids.push(v["decision_id"].as_str().unwrap().to_owned());
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(out);
    feeder.join().unwrap();
    ids
}

/// `runs` SIGKILLs of `eval` writing to one log: decisions answered, and
/// answered decisions missing from the log.
fn crash_runs(mandatory: bool, runs: usize) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let keygen = agentriage(&[
        "log",
        "keygen",
        dir.path().join("key.der").to_str().unwrap(),
    ]);
    assert!(keygen.status.success());
    let (mut answered, mut lost) = (0, 0);
    for run in 0..runs {
        let ids = answered_then_killed(dir.path(), mandatory, 10 + 5 * run);
        let logs = dir.path().join("logs");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&logs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let logged: std::collections::HashSet<String> = files
            .iter()
            .flat_map(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                text.lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .filter(|v| v["kind"] == "decision")
                    .map(|v| v["decision"]["decision_id"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        answered += ids.len();
        lost += ids.iter().filter(|id| !logged.contains(*id)).count();
        // Every restart resumes the chain: it links up across the crashes
        // (a torn last line, exit 5, is what a kill mid-write leaves).
        let mut args = vec!["log", "verify", "--chain-only"];
        args.extend(files.iter().map(|f| f.to_str().unwrap()));
        let o = agentriage(&args);
        assert!(
            matches!(o.status.code(), Some(0 | 5)),
            "run {run}: {}",
            stdout(&o)
        );
    }
    (answered, lost)
}

#[test]
fn with_a_mandatory_log_a_crash_loses_no_answered_decision() {
    let (answered, lost) = crash_runs(true, 40);
    eprintln!("mandatory: 40 SIGKILLs, {answered} decisions answered, {lost} missing from the log");
    assert!(answered > 0);
    assert_eq!(
        lost, 0,
        "{lost} of {answered} answered decisions are not in the log"
    );
}

#[test]
fn without_mandatory_logging_a_crash_can_lose_answered_decisions() {
    // The documented trade: decisions are answered before their record is
    // flushed. The figure is printed (`-- --nocapture`); what is asserted
    // is that the log still resumes and links up after every crash.
    let (answered, lost) = crash_runs(false, 10);
    eprintln!("optional: 10 SIGKILLs, {answered} decisions answered, {lost} missing from the log");
    assert!(lost <= answered);
}
