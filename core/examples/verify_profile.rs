//! Where verification time goes: times `audit::verify` over a log of N
//! decisions, and its parts (reading, JSON parsing, canonical hashing).
//!
//! `cargo run --release -p agentriage --example verify_profile -- 20000`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use agentriage::Engine;
use agentriage::audit::{self, DecisionLog, DecisionLogConfig, SigningKey, VerifyOptions};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(20_000, |a| a.parse().unwrap());
    let dir =
        std::env::temp_dir().join(format!("agentriage-verify-profile-{}", std::process::id()));
    let key = SigningKey::from_seed(&[3; 32]).unwrap();
    let public = key.public_key_hex().to_owned();
    let log = DecisionLog::open(DecisionLogConfig::new(&dir).signing_key(key)).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let engine = Engine::from_dir(root.join("policies/a2a-supply-chain"))
        .unwrap()
        .with_decision_log(log.clone());
    let text = std::fs::read_to_string(root.join("testdata/requests.jsonl")).unwrap();
    let first = text.lines().next().unwrap();
    for _ in 0..n {
        engine.decide_json(first).unwrap();
    }
    log.close().unwrap();
    let files = log.segments().unwrap();
    let options = VerifyOptions::with_key(&public).unwrap();

    let start = Instant::now();
    let bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let read = start.elapsed();
    let start = Instant::now();
    let mut parsed = 0;
    for b in &bytes {
        for line in b.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            parsed += usize::from(v.is_object());
        }
    }
    let parse = start.elapsed();
    let start = Instant::now();
    let report = audit::verify(&files, &options).unwrap();
    let total = start.elapsed();
    assert!(report.is_intact(), "{report}");
    let records = report.records as f64;
    println!(
        "{} records ({parsed} parsed), {:.1} MB: read {:?}, parse {:?}, verify {:?} = {:.0} records/s",
        report.records,
        bytes.iter().map(Vec::len).sum::<usize>() as f64 / 1e6,
        read,
        parse,
        total,
        records / total.as_secs_f64()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
