//! The decision log: writing, redaction, recovery, rotation, mandatory
//! logging, and verification against every kind of tampering.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use agentriage::audit::{
    self, DecisionLog, DecisionLogConfig, FlushPolicy, Integrity, LogErrorKind, ProblemKind,
    SigningKey, VerifyOptions, VerifyReport,
};
use agentriage::{Engine, LOG_FAILURE_POLICY, Outcome};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

fn requests() -> Vec<String> {
    std::fs::read_to_string(common::repo().join("testdata/requests.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn seed_key() -> SigningKey {
    SigningKey::from_seed(&[7u8; 32]).unwrap()
}

/// A closed log of `n` decisions with a checkpoint every 10 records.
fn make_log(dir: &Path, n: usize, segment_bytes: u64) -> Vec<PathBuf> {
    let log = DecisionLog::open(
        DecisionLogConfig::new(dir)
            .signing_key(seed_key())
            .checkpoint_every(10)
            .max_segment_bytes(segment_bytes),
    )
    .unwrap();
    let engine = Engine::from_dir(common::reference_pack())
        .unwrap()
        .with_decision_log(log.clone());
    let reqs = requests();
    for i in 0..n {
        engine.decide_json(&reqs[i % reqs.len()]).unwrap();
    }
    log.close().unwrap();
    log.segments().unwrap()
}

fn verify_with_key(files: &[PathBuf]) -> VerifyReport {
    audit::verify(
        files,
        &VerifyOptions::with_key(seed_key().public_key_hex()).unwrap(),
    )
    .unwrap()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Canonical re-encoding of a record line after a change: the lines are
/// canonical, so re-serialising with sorted keys (all ASCII) is enough for
/// these records.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<_> = m.keys().cloned().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&m[&k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Re-hashes a record (as a forger who knows the format would).
fn rehash(record: &mut Value) -> String {
    let obj = record.as_object_mut().unwrap();
    obj.remove("hash");
    let body = serde_json::to_string(&sorted(&Value::Object(obj.clone()))).unwrap();
    let hash = format!("sha256:{}", hex(&Sha256::digest(body.as_bytes())));
    obj.insert("hash".into(), hash.clone().into());
    hash
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn line_json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

fn to_line(v: &Value) -> String {
    serde_json::to_string(&sorted(v)).unwrap()
}

/// Index of the first decision line at or after `from`.
fn decision_at(lines: &[String], from: usize) -> usize {
    (from..lines.len())
        .find(|&i| line_json(&lines[i])["kind"] == "decision")
        .unwrap()
}

fn problem(report: &VerifyReport) -> &audit::Problem {
    report
        .problem
        .as_ref()
        .unwrap_or_else(|| panic!("no problem found: {report}"))
}

#[test]
fn a_log_verifies_and_holds_every_decision() {
    let dir = tempfile::tempdir().unwrap();
    let log = DecisionLog::open(
        DecisionLogConfig::new(dir.path())
            .signing_key(seed_key())
            .checkpoint_every(10),
    )
    .unwrap();
    let engine = Engine::from_dir(common::reference_pack())
        .unwrap()
        .with_decision_log(log.clone());
    let mut ids = Vec::new();
    for r in requests().iter().cycle().take(35) {
        ids.push(engine.decide_json(r).unwrap());
    }
    log.close().unwrap();
    let files = log.segments().unwrap();
    let report = verify_with_key(&files);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.decisions, 35);
    assert!(report.closed);
    assert_eq!(report.unsigned_tail, 0);
    assert_eq!(
        report.checkpoints, 4,
        "three every 10 decisions and a final one"
    );
    let all = lines(&files[0]);
    let decisions: Vec<Value> = all
        .iter()
        .map(|l| line_json(l))
        .filter(|v| v["kind"] == "decision")
        .collect();
    let times: Vec<Value> = requests()
        .iter()
        .map(|r| line_json(r)["time"].clone())
        .collect();
    for (i, (record, d)) in decisions.iter().zip(&ids).enumerate() {
        assert_eq!(record["decision"]["decision_id"], d.decision_id.as_str());
        assert_eq!(record["decision"]["outcome"], d.outcome.as_str());
        assert_eq!(
            record["decision"]["bundle"]["digest"],
            d.bundle.digest.as_str()
        );
        assert_eq!(record["time"], times[i % times.len()]);
    }
    assert_eq!(report.integrity, Integrity::Proven);
    // A verifier without the key still checks the chain, but says that
    // integrity is unproven, and the log is not intact.
    let unkeyed = audit::verify(&files, &VerifyOptions::new()).unwrap();
    assert!(
        unkeyed.chain_verifies() && !unkeyed.key_checked,
        "{unkeyed}"
    );
    assert!(!unkeyed.is_intact(), "{unkeyed}");
    assert_eq!(unkeyed.integrity, Integrity::Unproven);
    assert!(unkeyed.to_string().starts_with("UNPROVEN"), "{unkeyed}");
    // After close, decisions are not logged (the log is not mandatory).
    assert_eq!(
        engine.decide_json(&requests()[0]).unwrap().outcome,
        ids[0].outcome
    );
}

#[test]
fn the_bundle_redaction_applies_to_logged_requests() {
    let bundle = tempfile::tempdir().unwrap();
    common::copy_dir(&common::reference_pack(), bundle.path());
    let manifest = bundle.path().join("bundle.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str(
        "\n[log]\ndrop = [\"resource.attributes.value_usd\"]\nhash = [\"principal.id\", \"context.*\"]\n",
    );
    std::fs::write(&manifest, text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = DecisionLog::open(DecisionLogConfig::new(dir.path()).salt(*b"host secret")).unwrap();
    let engine = Engine::from_dir(bundle.path())
        .unwrap()
        .with_decision_log(log.clone());
    engine.decide_json(&requests()[0]).unwrap();
    log.close().unwrap();
    let record = lines(&log.segments().unwrap()[0])
        .iter()
        .map(|l| line_json(l))
        .find(|v| v["kind"] == "decision")
        .unwrap();
    let request = &record["request"];
    assert!(request["resource"]["attributes"].get("value_usd").is_none());
    assert_eq!(request["resource"]["attributes"]["state"], "in_transit");
    assert!(
        request["principal"]["id"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    assert!(
        request["context"]["site"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    assert_eq!(
        record["redacted"]["dropped"][0],
        "resource.attributes.value_usd"
    );
    assert_eq!(record["redacted"]["hashed"][0], "principal.id");
    assert!(
        audit::verify(&log.segments().unwrap(), &VerifyOptions::new())
            .unwrap()
            .chain_verifies()
    );
}

#[test]
fn a_bad_redaction_path_names_the_manifest_line() {
    let bundle = tempfile::tempdir().unwrap();
    common::copy_dir(&common::reference_pack(), bundle.path());
    let manifest = bundle.path().join("bundle.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    let line = text.lines().count() + 4;
    text.push_str("\n[log]\ndrop = [\n  \"secrets.token\",\n]\n");
    std::fs::write(&manifest, text).unwrap();
    let e = agentriage::Bundle::load(bundle.path()).unwrap_err();
    assert_eq!(e.line(), Some(u32::try_from(line).unwrap()), "{e}");
    assert!(e.message().contains("`secrets.token`"), "{e}");
}

#[test]
fn a_modified_record_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 30, 64 << 20);
    let mut l = lines(&files[0]);
    let i = decision_at(&l, 5);
    l[i] = l[i]
        .replacen("\"outcome\":\"reject\"", "\"outcome\":\"execute\"", 1)
        .replacen("\"outcome\":\"escalate\"", "\"outcome\":\"execute\"", 1);
    if !l[i].contains("execute") || l[i] == lines(&files[0])[i] {
        l[i] = l[i].replacen("\"duration_us\":", "\"duration_us\":1", 1);
    }
    write_lines(&files[0], &l);
    let report = verify_with_key(&files);
    let p = problem(&report);
    assert_eq!(p.kind, ProblemKind::Modified, "{p}");
    assert_eq!(p.line, i + 1);
}

#[test]
fn a_modified_and_rehashed_record_is_found_by_the_next_link() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 30, 64 << 20);
    let mut l = lines(&files[0]);
    let i = decision_at(&l, 5);
    let mut v = line_json(&l[i]);
    v["decision"]["outcome"] = "execute".into();
    v["decision"]["reasons"] = Value::Array(Vec::new());
    rehash(&mut v);
    l[i] = to_line(&v);
    write_lines(&files[0], &l);
    let p = problem(&verify_with_key(&files)).clone();
    assert_eq!(p.kind, ProblemKind::Modified, "{p}");
    assert_eq!(p.line, i + 1, "{p}");
}

#[test]
fn a_deleted_record_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 30, 64 << 20);
    let mut l = lines(&files[0]);
    let i = decision_at(&l, 5);
    l.remove(i);
    write_lines(&files[0], &l);
    let p = problem(&verify_with_key(&files)).clone();
    assert_eq!(p.kind, ProblemKind::Deleted, "{p}");
    assert_eq!(p.line, i + 1);
}

#[test]
fn a_replayed_record_is_found_as_inserted() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 30, 64 << 20);
    let mut l = lines(&files[0]);
    let i = decision_at(&l, 5);
    l.insert(i + 1, l[i].clone());
    write_lines(&files[0], &l);
    let p = problem(&verify_with_key(&files)).clone();
    assert_eq!(p.kind, ProblemKind::Inserted, "{p}");
    assert_eq!(p.line, i + 2);
}

#[test]
fn a_forged_record_is_found_as_inserted() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 30, 64 << 20);
    let mut l = lines(&files[0]);
    let i = decision_at(&l, 5);
    // A well-formed record claiming the next seq, chained to record i.
    let mut forged = line_json(&l[i + 1]);
    let prev = line_json(&l[i])["hash"].clone();
    forged["prev"] = prev;
    forged["kind"] = "decision".into();
    forged["decision"] = line_json(&l[i])["decision"].clone();
    forged["request"] = line_json(&l[i])["request"].clone();
    forged["decision"]["outcome"] = "execute".into();
    for k in ["final", "key_id", "public_key", "signature"] {
        forged.as_object_mut().unwrap().remove(k);
    }
    rehash(&mut forged);
    l.insert(i + 1, to_line(&forged));
    write_lines(&files[0], &l);
    let p = problem(&verify_with_key(&files)).clone();
    assert_eq!(p.kind, ProblemKind::Inserted, "{p}");
    assert_eq!(p.line, i + 2, "the forged line is named: {p}");
}

#[test]
fn reordered_records_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 30, 64 << 20);
    let mut l = lines(&files[0]);
    let i = decision_at(&l, 5);
    l.swap(i, i + 1);
    write_lines(&files[0], &l);
    let p = problem(&verify_with_key(&files)).clone();
    assert_eq!(p.kind, ProblemKind::Reordered, "{p}");
    assert_eq!(p.line, i + 1);
}

#[test]
fn a_rewritten_chain_fails_at_the_next_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 30, 64 << 20);
    let mut l = lines(&files[0]);
    let i = decision_at(&l, 3);
    let mut prev = String::new();
    let mut checkpoint_line = None;
    for (j, line) in l.iter_mut().enumerate().skip(i) {
        let mut v = line_json(line);
        if j == i {
            v["decision"]["outcome"] = "execute".into();
        } else {
            v["prev"] = prev.clone().into();
        }
        if v["kind"] == "checkpoint" && checkpoint_line.is_none() {
            checkpoint_line = Some(j + 1);
        }
        prev = rehash(&mut v);
        *line = to_line(&v);
    }
    write_lines(&files[0], &l);
    let p = problem(&verify_with_key(&files)).clone();
    assert_eq!(p.kind, ProblemKind::BadSignature, "{p}");
    assert_eq!(Some(p.line), checkpoint_line);
}

#[test]
fn checkpoints_signed_by_another_key_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 12, 64 << 20);
    let other = SigningKey::from_seed(&[9u8; 32]).unwrap();
    let report = audit::verify(
        &files,
        &VerifyOptions::with_key(other.public_key_hex()).unwrap(),
    )
    .unwrap();
    assert_eq!(problem(&report).kind, ProblemKind::WrongKey);
}

#[test]
fn a_line_that_is_not_json_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 12, 64 << 20);
    let mut l = lines(&files[0]);
    l[4] = "{\"not\": json".into();
    write_lines(&files[0], &l);
    let p = problem(&verify_with_key(&files)).clone();
    assert_eq!((p.kind, p.line), (ProblemKind::NotJson, 5), "{p}");
}

#[test]
fn a_record_of_a_future_version_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 12, 64 << 20);
    let mut l = lines(&files[0]);
    let mut v = line_json(&l[4]);
    v["v"] = 2.into();
    rehash(&mut v);
    l[4] = to_line(&v);
    write_lines(&files[0], &l);
    let p = problem(&verify_with_key(&files)).clone();
    assert_eq!((p.kind, p.line), (ProblemKind::FutureVersion, 5), "{p}");
    assert!(p.message.contains("version 2"));
}

#[test]
fn a_torn_last_line_is_reported_as_torn_and_the_writer_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 12, 64 << 20);
    let mut text = std::fs::read_to_string(&files[0]).unwrap();
    text.push_str("{\"decision\":{\"outcome\":\"exe");
    std::fs::write(&files[0], &text).unwrap();
    let report = verify_with_key(&files);
    assert!(report.problem.is_none(), "{report}");
    let torn = report.torn.as_ref().unwrap();
    assert_eq!(torn.bytes, 27);
    assert_eq!(torn.line, text.lines().count());
    assert_eq!(report.decisions, 12);

    // Reopening cuts the torn line, notes it, and continues the chain.
    let files = make_log(dir.path(), 5, 64 << 20);
    let report = verify_with_key(&files);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.decisions, 17);
    let open = lines(&files[0])
        .iter()
        .map(|l| line_json(l))
        .filter(|v| v["kind"] == "open")
        .nth(1)
        .unwrap();
    assert_eq!(open["torn_bytes"], 27);
}

#[test]
fn rotation_continues_the_chain_and_a_missing_file_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 40, 4096);
    assert!(files.len() >= 3, "{files:?}");
    let report = verify_with_key(&files);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.decisions, 40);

    let gap = [files[0].clone(), files[2].clone()];
    let p = problem(&verify_with_key(&gap)).clone();
    assert_eq!(p.kind, ProblemKind::MissingFile, "{p}");
    assert_eq!(p.file, files[2]);
    assert!(p.message.contains("segment 2"), "{p}");

    let late = files[1..].to_vec();
    assert_eq!(
        problem(&verify_with_key(&late)).kind,
        ProblemKind::MissingFile
    );

    // A file cut short in the middle of the series is not a crash.
    let text = std::fs::read(&files[0]).unwrap();
    std::fs::write(&files[0], &text[..text.len() - 10]).unwrap();
    assert_eq!(
        problem(&verify_with_key(&files)).kind,
        ProblemKind::Truncated
    );
}

#[test]
fn a_mandatory_log_that_cannot_write_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let log = DecisionLog::open(
        DecisionLogConfig::new(dir.path())
            .mandatory(true)
            .max_total_bytes(Some(12_000)),
    )
    .unwrap();
    let engine = Engine::from_dir(common::reference_pack())
        .unwrap()
        .with_decision_log(log.clone());
    let execute = &requests()[0];
    let mut logged = 0;
    let mut rejected = None;
    for _ in 0..100 {
        let d = engine.decide_json(execute).unwrap();
        if d.policy_ids().any(|p| p == LOG_FAILURE_POLICY) {
            assert_eq!(d.outcome, Outcome::Reject);
            assert!(d.reasons[0].message.contains("quota"), "{:?}", d.reasons);
            rejected = Some(d);
            break;
        }
        assert_eq!(d.outcome, Outcome::Execute);
        logged += 1;
    }
    assert!(rejected.is_some() && logged > 0);
    // Once failed, every decision is rejected until the log is reopened.
    let d = engine.decide_json(execute).unwrap();
    assert_eq!(d.outcome, Outcome::Reject);
    assert_eq!(log.failure().unwrap().kind(), LogErrorKind::Full);
    assert!(
        engine
            .metrics_text()
            .contains("agentriage_log_failures_total 2")
    );
    let _ = log.close();
    // What was written is whole and chained: exactly the executed decisions.
    let report = audit::verify(&log.segments().unwrap(), &VerifyOptions::new()).unwrap();
    assert!(
        report.problem.is_none() && report.torn.is_none(),
        "{report}"
    );
    assert_eq!(report.decisions, logged);
}

#[test]
fn an_optional_log_that_cannot_write_leaves_decisions_alone() {
    let dir = tempfile::tempdir().unwrap();
    let log = DecisionLog::open(
        DecisionLogConfig::new(dir.path())
            .flush(FlushPolicy::EveryRecord)
            .max_total_bytes(Some(6_000)),
    )
    .unwrap();
    let engine = Engine::from_dir(common::reference_pack())
        .unwrap()
        .with_decision_log(log.clone());
    for _ in 0..30 {
        assert_eq!(
            engine.decide_json(&requests()[0]).unwrap().outcome,
            Outcome::Execute
        );
    }
    let _ = log.close();
    let stats = log.stats();
    assert!(stats.failures > 0 && stats.written > 0, "{stats:?}");
    assert_eq!(stats.failures + stats.written, 30);
}

#[test]
fn a_full_queue_makes_decide_wait_and_drops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = DecisionLog::open(
        DecisionLogConfig::new(dir.path())
            .queue_capacity(1)
            .flush(FlushPolicy::EveryRecord)
            .sync(true),
    )
    .unwrap();
    let engine = Engine::from_dir(common::reference_pack())
        .unwrap()
        .with_decision_log(log.clone());
    let reqs = requests();
    std::thread::scope(|s| {
        for t in 0..4 {
            let engine = &engine;
            let reqs = &reqs;
            s.spawn(move || {
                for i in 0..150 {
                    engine.decide_json(&reqs[(t + i) % reqs.len()]).unwrap();
                }
            });
        }
    });
    log.close().unwrap();
    let stats = log.stats();
    assert_eq!(stats.written, 600);
    assert_eq!(stats.queue_depth, 0);
    assert!(stats.waits > 0, "{stats:?}");
    let report = audit::verify(&log.segments().unwrap(), &VerifyOptions::new()).unwrap();
    assert!(report.chain_verifies(), "{report}");
    assert_eq!(report.decisions, 600);
}

#[test]
fn a_log_whose_last_record_was_altered_is_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 3, 64 << 20);
    let mut l = lines(&files[0]);
    let last = l.len() - 1;
    l[last] = l[last].replacen("\"final\":true", "\"final\":false", 1);
    write_lines(&files[0], &l);
    let e = DecisionLog::open(DecisionLogConfig::new(dir.path())).unwrap_err();
    assert_eq!(e.kind(), LogErrorKind::Corrupt, "{e}");
    assert_eq!(e.file(), Some(files[0].as_path()));
}

#[test]
fn bad_configurations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for config in [
        DecisionLogConfig::new(dir.path()).prefix("a/b"),
        DecisionLogConfig::new(dir.path()).queue_capacity(0),
        DecisionLogConfig::new(dir.path()).checkpoint_every(0),
        DecisionLogConfig::new(dir.path()).max_segment_bytes(10),
        DecisionLogConfig::new(dir.path()).flush(FlushPolicy::Interval(Duration::ZERO)),
    ] {
        assert_eq!(
            DecisionLog::open(config).unwrap_err().kind(),
            LogErrorKind::Config
        );
    }
    assert_eq!(
        SigningKey::from_seed(&[1; 5]).unwrap_err().kind(),
        LogErrorKind::Key
    );
    assert!(VerifyOptions::with_key("abc").is_err());
}

#[test]
fn the_documented_python_verifier_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 20, 4096);
    let script = common::repo().join("docs/verify_log.py");
    let public = seed_key().public_key_hex().to_owned();
    let run = |flags: &[&str], files: &[PathBuf]| {
        let o = std::process::Command::new("python3")
            .arg(&script)
            .args(flags)
            .args(files)
            .output()
            .expect("python3 runs");
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, out) = run(&["--key", &public], &files);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK: every record is covered"), "{out}");
    let (code, out) = run(&[], &files);
    assert_eq!(code, 3, "{out}");
    assert!(out.starts_with("UNPROVEN"), "{out}");
    assert_eq!(run(&["--chain-only"], &files).0, 0);
    let other = SigningKey::from_seed(&[9u8; 32]).unwrap();
    assert_eq!(run(&["--key", other.public_key_hex()], &files).0, 1);

    let original: Vec<Vec<String>> = files.iter().map(|f| lines(f)).collect();
    let restore = || {
        for (f, l) in files.iter().zip(&original) {
            write_lines(f, l);
        }
    };
    // A rotated file whose closing checkpoint is gone (the rest re-chained).
    let mut joined: Vec<String> = original.concat();
    let first_len = original[0].len();
    joined.remove(first_len - 1);
    let forged = forge(&joined, first_len - 1, |_| {});
    write_lines(&files[0], &forged[..first_len - 1]);
    write_lines(&files[1], &forged[first_len - 1..]);
    let two = [files[0].clone(), files[1].clone()];
    let (code, out) = run(&["--key", &public], &two);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("unsigned segment"), "{out}");
    restore();

    // The whole log rewritten, checkpoints deleted.
    let all = forge(&original[0], 1, |v| {
        v["decision"]["outcome"] = "execute".into()
    });
    write_lines(&files[0], &all);
    let (code, out) = run(&["--key", &public, "--allow-unsigned-tail"], &files[..1]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("unsigned tail: no checkpoint"), "{out}");
    restore();

    // The final checkpoint gone: an unsigned tail, accepted only with the option.
    let last_file = files.last().unwrap();
    let mut l = original.last().unwrap().clone();
    assert_eq!(line_json(l.last().unwrap())["final"], true);
    l.pop();
    write_lines(last_file, &l);
    let (code, out) = run(&["--key", &public], &files);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("unsigned tail:"), "{out}");
    let (code, out) = run(&["--key", &public, "--allow-unsigned-tail"], &files);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("accepted unsigned tail"), "{out}");
    restore();

    // A repeated member.
    let mut l = original[0].clone();
    let at = decision_at(&l, 2);
    l[at] = l[at].replacen('{', "{\"decision\":{\"outcome\":\"execute\"},", 1);
    write_lines(&files[0], &l);
    let (code, out) = run(&["--key", &public], &files);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("repeated member `decision`"), "{out}");
    restore();

    let mut l = original[0].clone();
    l[3] = l[3].replacen("\"seq\":3", "\"seq\":3,\"x\":1", 1);
    write_lines(&files[0], &l);
    let (code, out) = run(&["--key", &public], &files);
    assert_eq!(code, 1);
    assert!(out.contains("line 4"), "{out}");
}

/// What a forger without the checkpoint key can do: from line `from` on,
/// drop every checkpoint, apply `edit` to each decision, and renumber,
/// re-link and re-hash every record so that the chain links up again.
fn forge(l: &[String], from: usize, edit: impl Fn(&mut Value)) -> Vec<String> {
    let mut out: Vec<String> = l[..from].to_vec();
    let (mut prev, mut seq) = match out.last() {
        Some(before) => {
            let before = line_json(before);
            (
                before["hash"].as_str().unwrap().to_owned(),
                before["seq"].as_u64().unwrap() + 1,
            )
        }
        None => (audit::GENESIS.to_owned(), 0),
    };
    for line in &l[from..] {
        let mut v = line_json(line);
        if v["kind"] == "checkpoint" {
            continue;
        }
        if v["kind"] == "decision" {
            edit(&mut v);
        }
        v["prev"] = prev.clone().into();
        v["seq"] = seq.into();
        prev = rehash(&mut v);
        seq += 1;
        out.push(to_line(&v));
    }
    out
}

fn verify_allowing_tail(files: &[PathBuf]) -> VerifyReport {
    audit::verify(
        files,
        &VerifyOptions::with_key(seed_key().public_key_hex())
            .unwrap()
            .allow_unsigned_tail(true),
    )
    .unwrap()
}

#[test]
fn a_log_rewritten_to_execute_with_its_checkpoints_deleted_is_not_intact() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 1000, 64 << 20);
    let l = lines(&files[0]);
    let forged = forge(&l, 0, |v| v["decision"]["outcome"] = "execute".into());
    assert!(forged.iter().all(|x| !x.contains("\"checkpoint\"")));
    write_lines(&files[0], &forged);

    let report = verify_with_key(&files);
    let p = problem(&report).clone();
    assert_eq!(p.kind, ProblemKind::UnsignedTail, "{p}");
    assert!(p.message.contains("no checkpoint"), "{p}");
    assert_eq!((p.line, p.seq), (1, Some(0)), "{p}");
    assert!(!report.is_intact());
    assert_eq!(report.integrity, Integrity::Broken);
    assert_eq!(report.unsigned_tail, forged.len() as u64);
    assert_eq!(report.unsigned_tail_seq, Some((0, forged.len() as u64 - 1)));
    // Accepting an unsigned tail does not accept a log with no signature.
    let report = verify_allowing_tail(&files);
    assert_eq!(problem(&report).kind, ProblemKind::UnsignedTail, "{report}");
    // Without a key the chain links up, and the report says it proves nothing.
    let report = audit::verify(&files, &VerifyOptions::new()).unwrap();
    assert!(report.chain_verifies(), "{report}");
    assert!(!report.is_intact());
    assert_eq!(report.integrity, Integrity::Unproven);
    assert!(
        report.to_string().contains("integrity is unproven"),
        "{report}"
    );
}

#[test]
fn one_record_edited_with_the_later_checkpoints_dropped_is_not_intact() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 100, 64 << 20);
    let l = lines(&files[0]);
    let target = decision_at(&l, l.len() / 2);
    // The forgery starts after the last checkpoint before the edited record.
    let from = (0..target)
        .rev()
        .find(|&i| line_json(&l[i])["kind"] == "checkpoint")
        .unwrap()
        + 1;
    let edited_id = line_json(&l[target])["decision"]["decision_id"].clone();
    let forged = forge(&l, from, |v| {
        if v["decision"]["decision_id"] == edited_id {
            v["decision"]["outcome"] = "execute".into();
            v["decision"]["reasons"] = Value::Array(vec![]);
        }
    });
    write_lines(&files[0], &forged);

    let report = verify_with_key(&files);
    let p = problem(&report).clone();
    assert_eq!(p.kind, ProblemKind::UnsignedTail, "{p}");
    assert_eq!(p.line, from + 1, "{p}");
    let first = line_json(&forged[from])["seq"].as_u64().unwrap();
    let last = line_json(forged.last().unwrap())["seq"].as_u64().unwrap();
    assert_eq!(p.seq, Some(first));
    assert_eq!(report.unsigned_tail_seq, Some((first, last)));
    assert_eq!(report.unsigned_tail, (forged.len() - from) as u64);
    assert!(p.message.contains("--allow-unsigned-tail"), "{p}");
    assert!(!report.is_intact());

    // Accepted as a log still being written, the edited record is in the
    // part the report names as not proven.
    let report = verify_allowing_tail(&files);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.integrity, Integrity::ProvenExceptTail);
    let edited_seq = forged
        .iter()
        .map(|x| line_json(x))
        .find(|v| v["decision"]["decision_id"] == edited_id)
        .unwrap()["seq"]
        .as_u64()
        .unwrap();
    let (a, b) = report.unsigned_tail_seq.unwrap();
    assert!((a..=b).contains(&edited_seq));
    assert!(
        report.to_string().contains(&format!("seq {a} to {b}")),
        "{report}"
    );
}

#[test]
fn a_log_still_being_written_is_intact_only_when_its_unsigned_tail_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let log = DecisionLog::open(
        DecisionLogConfig::new(dir.path())
            .signing_key(seed_key())
            .checkpoint_every(10)
            .flush(FlushPolicy::EveryRecord),
    )
    .unwrap();
    let engine = Engine::from_dir(common::reference_pack())
        .unwrap()
        .with_decision_log(log.clone());
    let reqs = requests();
    for i in 0..14 {
        engine.decide_json(&reqs[i % reqs.len()]).unwrap();
    }
    // Wait for the writer to hand the 14 records to the system.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while log.stats().written < 14 {
        assert!(std::time::Instant::now() < deadline, "the writer stalled");
        std::thread::yield_now();
    }
    let files = log.segments().unwrap();
    let report = verify_with_key(&files);
    assert_eq!(problem(&report).kind, ProblemKind::UnsignedTail, "{report}");
    assert_eq!(report.unsigned_tail, 4, "{report}");
    let accepted = verify_allowing_tail(&files);
    assert!(accepted.is_intact(), "{accepted}");
    assert_eq!(accepted.integrity, Integrity::ProvenExceptTail);
    assert_eq!(accepted.unsigned_tail, 4);
    assert!(!accepted.closed);
    log.close().unwrap();
    let report = verify_with_key(&files);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.integrity, Integrity::Proven);
    assert_eq!((report.unsigned_tail, report.unsigned_tail_seq), (0, None));
}

#[test]
fn a_rotated_segment_whose_checkpoint_was_removed_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 40, 4096);
    assert!(files.len() >= 3, "{files:?}");
    // Drop the rotation checkpoint of the first file and re-chain the
    // second, dropping its checkpoints too.
    let mut first = lines(&files[0]);
    let last = line_json(first.last().unwrap());
    assert_eq!(last["kind"], "checkpoint");
    first.pop();
    let tail = line_json(first.last().unwrap());
    let second = lines(&files[1]);
    let mut joined = first.clone();
    joined.extend(second);
    let mut rechained = forge(&joined, first.len(), |_| {});
    let second: Vec<String> = rechained.split_off(first.len());
    assert_eq!(line_json(&second[0])["prev"], tail["hash"]);
    write_lines(&files[0], &first);
    write_lines(&files[1], &second);
    let two = [files[0].clone(), files[1].clone()];
    let p = problem(&verify_with_key(&two)).clone();
    assert_eq!(p.kind, ProblemKind::UnsignedSegment, "{p}");
    assert_eq!(
        (p.file.clone(), p.line),
        (files[0].clone(), first.len()),
        "{p}"
    );
}

#[test]
fn a_repeated_member_is_found_even_when_the_hash_matches() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_log(dir.path(), 30, 64 << 20);
    let l = lines(&files[0]);
    let i = decision_at(&l, 5);
    let original = line_json(&l[i]);
    assert_eq!(original["decision"]["outcome"], "reject", "{}", l[i]);
    // A forged copy first: a reader keeping the first member sees it, one
    // keeping the last sees the original, which still matches its hash.
    let mut forged_decision = original["decision"].clone();
    forged_decision["outcome"] = "execute".into();
    let top = format!(
        "{{\"decision\":{},{}",
        serde_json::to_string(&forged_decision).unwrap(),
        &l[i][1..]
    );
    let mut nested = l.clone();
    nested[i] = l[i].replacen(
        "\"request\":{",
        "\"request\":{\"action\":{\"name\":\"inventory.read\"},",
        1,
    );
    assert_ne!(nested[i], l[i]);
    for (what, edited) in [
        ("top level", {
            let mut e = l.clone();
            e[i] = top.clone();
            e
        }),
        ("nested", nested),
    ] {
        write_lines(&files[0], &edited);
        let p = problem(&verify_with_key(&files)).clone();
        assert_eq!(p.kind, ProblemKind::DuplicateMember, "{what}: {p}");
        assert_eq!(p.line, i + 1, "{what}: {p}");
        assert_eq!(p.seq, original["seq"].as_u64(), "{what}: {p}");
        assert!(p.message.contains("duplicate key `"), "{what}: {p}");
    }
}

#[test]
fn after_close_a_mandatory_log_rejects_on_every_thread_and_loses_nothing() {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let log = DecisionLog::open(
        DecisionLogConfig::new(dir.path())
            .signing_key(seed_key())
            .checkpoint_every(50)
            .mandatory(true),
    )
    .unwrap();
    let engine = Arc::new(
        Engine::from_dir(common::reference_pack())
            .unwrap()
            .with_decision_log(log.clone()),
    );
    let execute = requests()[0].clone();
    assert_eq!(
        Engine::from_dir(common::reference_pack())
            .unwrap()
            .decide_json(&execute)
            .unwrap()
            .outcome,
        Outcome::Execute
    );
    let closed = Arc::new(AtomicBool::new(false));
    let after_close = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (engine, execute) = (Arc::clone(&engine), execute.clone());
            let (closed, after_close, done) = (
                Arc::clone(&closed),
                Arc::clone(&after_close),
                Arc::clone(&done),
            );
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                // Each thread keeps deciding until every thread has made
                // 25 decisions that started after the close returned.
                while after_close.load(Ordering::SeqCst) < 100 {
                    let started_after_close = closed.load(Ordering::SeqCst);
                    let d = engine.decide_json(&execute).unwrap();
                    done.fetch_add(1, Ordering::SeqCst);
                    if started_after_close {
                        after_close.fetch_add(1, Ordering::SeqCst);
                    }
                    seen.push((d, started_after_close));
                }
                seen
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::SeqCst) < 200 {
        assert!(std::time::Instant::now() < deadline, "no decisions");
        std::thread::yield_now();
    }
    assert!(engine.close_decision_log().unwrap());
    closed.store(true, Ordering::SeqCst);
    assert!(!engine.close_decision_log().unwrap(), "closed once");
    let decisions: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();

    let files = log.segments().unwrap();
    let report = verify_with_key(&files);
    assert!(report.is_intact() && report.closed, "{report}");
    let logged: HashSet<String> = files
        .iter()
        .flat_map(|f| lines(f))
        .map(|x| line_json(&x))
        .filter(|v| v["kind"] == "decision")
        .map(|v| v["decision"]["decision_id"].as_str().unwrap().to_owned())
        .collect();
    let (mut executed, mut refused) = (0, 0);
    for (d, started_after_close) in &decisions {
        if logged.contains(d.decision_id.as_str()) {
            assert!(!started_after_close, "logged after the close: {d:?}");
            assert_eq!(d.outcome, Outcome::Execute);
            executed += 1;
        } else {
            // Not in the log: rejected for that reason, never executed.
            assert_eq!(d.outcome, Outcome::Reject, "{d:?}");
            assert_eq!(d.reasons[0].policy, LOG_FAILURE_POLICY, "{d:?}");
            refused += 1;
        }
    }
    assert_eq!(executed as u64, report.decisions);
    assert!(executed >= 200 && refused >= 100, "{executed} {refused}");
}

#[test]
fn an_optional_log_is_detached_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let log = DecisionLog::open(DecisionLogConfig::new(dir.path())).unwrap();
    let engine = Engine::from_dir(common::reference_pack())
        .unwrap()
        .with_decision_log(log.clone());
    engine.decide_json(&requests()[0]).unwrap();
    assert!(engine.close_decision_log().unwrap());
    assert!(engine.decision_log().is_none() && log.is_closed());
    assert!(!engine.close_decision_log().unwrap());
    assert_eq!(
        engine.decide_json(&requests()[0]).unwrap().outcome,
        Outcome::Execute
    );
}
