//! `decide` over the reference pack: one typical request (both engines run
//! in full and it executes), through each Rego evaluator, from a typed
//! request and from JSON text, and N threads sharing one engine.
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
use std::sync::Barrier;
use std::time::{Duration, Instant};

use agentriage::{Engine, Request};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "support/intents.rs"]
mod intents;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `reroute` base request of the reference pack's suites.
pub fn typical_request() -> String {
    common::typical_request()
}

/// The reference pack, copied with `evaluator` set.
fn pack_with(evaluator: &str) -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let src = root().join("policies/a2a-supply-chain");
    common::copy_dir(&src, dir.path());
    let manifest = dir.path().join("bundle.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text.replace(
        "[rego]\n",
        &format!("[rego]\nevaluator = \"{evaluator}\"\n"),
    );
    std::fs::write(&manifest, text).unwrap();
    let engine = Engine::from_dir(dir.path()).unwrap();
    (dir, engine)
}

fn single(c: &mut Criterion) {
    let text = typical_request();
    let request = Request::from_json(&text).unwrap();
    let mut group = c.benchmark_group("decide");
    for evaluator in ["interpreter", "vm"] {
        let (_dir, engine) = pack_with(evaluator);
        assert!(engine.decide(&request).unwrap().is_execute());
        group.bench_function(format!("typed/{evaluator}"), |b| {
            b.iter(|| engine.decide(black_box(&request)).unwrap())
        });
        group.bench_function(format!("json/{evaluator}"), |b| {
            b.iter(|| engine.decide_json(black_box(&text)).unwrap())
        });
    }
    group.bench_function("parse_request", |b| {
        b.iter(|| Request::from_json(black_box(&text)).unwrap())
    });
    group.finish();
}

fn threads(c: &mut Criterion) {
    let text = typical_request();
    let request = Request::from_json(&text).unwrap();
    for evaluator in ["interpreter", "vm"] {
        let (_dir, engine) = pack_with(evaluator);
        let mut group = c.benchmark_group(format!("threads/{evaluator}"));
        group.measurement_time(Duration::from_secs(4));
        for n in [1usize, 2, 8] {
            group.throughput(Throughput::Elements(n as u64));
            group.bench_function(format!("{n}"), |b| {
                b.iter_custom(|iters| {
                    let barrier = Barrier::new(n + 1);
                    std::thread::scope(|s| {
                        for _ in 0..n {
                            s.spawn(|| {
                                barrier.wait();
                                for _ in 0..iters {
                                    black_box(engine.decide(&request).unwrap());
                                }
                            });
                        }
                        barrier.wait();
                        let start = Instant::now();
                        // Leaving the scope joins every thread.
                        start
                    })
                    .elapsed()
                })
            });
        }
        group.finish();
    }
}

fn intent(c: &mut Criterion) {
    // The payment base of the pack's suites, without the case's own intent.
    let mut request = common::decision_cases()
        .into_iter()
        .find(|c| c.name == "baseline payment executes")
        .unwrap()
        .request;
    request.as_object_mut().unwrap().remove("intent");
    let payment = serde_json::to_string(&request).unwrap();
    intents::intents(c, &root(), &payment);
}

criterion_group!(benches, single, threads, intent);
criterion_main!(benches);
