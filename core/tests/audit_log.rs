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
    self, DecisionLog, DecisionLogConfig, FlushPolicy, LogErrorKind, ProblemKind, SigningKey,
    VerifyOptions, VerifyReport,
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
    // A verifier without the key still checks the chain, but says so.
    let unkeyed = audit::verify(&files, &VerifyOptions::new()).unwrap();
    assert!(unkeyed.is_intact() && !unkeyed.key_checked);
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
            .is_intact()
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
    assert!(report.is_intact(), "{report}");
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
    let run = |files: &[PathBuf]| {
        std::process::Command::new("python3")
            .arg(&script)
            .args(files)
            .output()
            .expect("python3 runs")
    };
    let ok = run(&files);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut l = lines(&files[0]);
    l[3] = l[3].replacen("\"seq\":3", "\"seq\":3,\"x\":1", 1);
    write_lines(&files[0], &l);
    let bad = run(&files);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stdout).contains("line 4"));
}
