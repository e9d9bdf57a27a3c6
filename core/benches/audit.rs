//! The decision log's cost: `decide` with the log enabled (flush every
//! 10 ms) against `decide` without, single thread; and verification
//! throughput over a log of 100 000 decisions.
//!
//! `env -u RUST_BACKTRACE cargo bench -p agentriage --bench audit`
//!
//! Besides criterion's estimates, `percentiles` prints the median and p99
//! of single `decide` calls, measured one by one, for both settings in the
//! same run.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

// The allocator the CLI and the Python and Node modules ship, wrapped in the
// heap counter they install: the figures are those of the shipped builds.
#[global_allocator]
static GLOBAL: agentriage::alloc::Counting<mimalloc::MiMalloc> =
    agentriage::alloc::Counting::new(mimalloc::MiMalloc);

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agentriage::audit::{
    self, DecisionLog, DecisionLogConfig, FlushPolicy, SigningKey, VerifyOptions,
};
use agentriage::{Engine, Request};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `reroute` base request of testdata/decisions.json (it executes).
fn typical_request() -> Request {
    let text = std::fs::read_to_string(root().join("testdata/decisions.json")).unwrap();
    let data: serde_json::Value = serde_json::from_str(&text).unwrap();
    Request::from_value(&data["bases"]["reroute"]).unwrap()
}

fn engine() -> Engine {
    Engine::from_dir(root().join("policies/a2a-supply-chain")).unwrap()
}

fn logged_engine(dir: &Path) -> (Engine, DecisionLog) {
    let log = DecisionLog::open(
        DecisionLogConfig::new(dir)
            .flush(FlushPolicy::Interval(Duration::from_millis(10)))
            .signing_key(SigningKey::from_seed(&[3; 32]).unwrap()),
    )
    .unwrap();
    (engine().with_decision_log(log.clone()), log)
}

fn decide(c: &mut Criterion) {
    let request = typical_request();
    let plain = engine();
    assert!(plain.decide(&request).unwrap().is_execute());
    let dir = tempfile::tempdir().unwrap();
    let (logged, log) = logged_engine(dir.path());
    let mut group = c.benchmark_group("decide");
    group.bench_function("no_log", |b| {
        b.iter(|| plain.decide(black_box(&request)).unwrap())
    });
    group.bench_function("log_flush_10ms", |b| {
        b.iter(|| logged.decide(black_box(&request)).unwrap())
    });
    group.finish();
    log.close().unwrap();
    let stats = log.stats();
    eprintln!(
        "log: {} records written, {} waits for a full queue",
        stats.written, stats.waits
    );
}

/// Median and p99 of one `decide` call, each setting measured in
/// alternating rounds so that host noise falls on both.
fn percentiles(_: &mut Criterion) {
    let request = typical_request();
    let plain = engine();
    let dir = tempfile::tempdir().unwrap();
    let (logged, log) = logged_engine(dir.path());
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..2_000 {
        plain.decide(&request).unwrap();
        logged.decide(&request).unwrap();
    }
    for _round in 0..20 {
        for (i, engine) in [&plain, &logged].into_iter().enumerate() {
            for _ in 0..2_500 {
                let start = Instant::now();
                black_box(engine.decide(black_box(&request)).unwrap());
                times[i].push(start.elapsed().as_nanos() as u64);
            }
        }
    }
    log.close().unwrap();
    for (name, t) in ["no_log", "log_flush_10ms"].iter().zip(times.iter_mut()) {
        t.sort_unstable();
        let at = |q: f64| t[((t.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
        eprintln!(
            "decide/{name}: median {:.2} µs, p99 {:.2} µs ({} calls)",
            at(0.5),
            at(0.99),
            t.len()
        );
    }
}

fn verify(c: &mut Criterion) {
    const DECISIONS: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_seed(&[3; 32]).unwrap();
    let public = key.public_key_hex().to_owned();
    let log = DecisionLog::open(DecisionLogConfig::new(dir.path()).signing_key(key)).unwrap();
    let engine = engine().with_decision_log(log.clone());
    let request = typical_request();
    for _ in 0..DECISIONS {
        engine.decide(&request).unwrap();
    }
    log.close().unwrap();
    let files = log.segments().unwrap();
    let options = VerifyOptions::with_key(&public).unwrap();
    let report = audit::verify(&files, &options).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.decisions, DECISIONS as u64);
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    eprintln!(
        "log of {DECISIONS} decisions: {} records, {} checkpoints, {} files, {:.1} MB",
        report.records,
        report.checkpoints,
        files.len(),
        bytes as f64 / 1e6
    );
    let mut group = c.benchmark_group("verify");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(report.records));
    group.bench_function("100k_decisions", |b| {
        b.iter(|| audit::verify(black_box(&files), &options).unwrap())
    });
    group.finish();
}

criterion_group!(benches, decide, percentiles, verify);
criterion_main!(benches);
