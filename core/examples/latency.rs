//! Latency percentiles and multi-thread throughput of `decide` on a bundle.
//!
//! ```text
//! cargo run --release -p agentriage --example latency -- [BUNDLE] [REQUEST.json]
//! ```
//!
//! Defaults: the reference pack and the `reroute` base request of
//! the reference pack's suites (`policies/a2a-supply-chain/tests/baseline.yaml`;
//! both engines run in full; it executes).
//! Criterion (`cargo bench -p agentriage`) gives medians with confidence
//! intervals; this adds the tail (p99, p99.9) and threads' throughput.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

// The allocator the CLI and the Python and Node modules ship, wrapped in the
// heap counter they install: the figures are those of the shipped builds.
#[global_allocator]
static GLOBAL: agentriage::alloc::Counting<mimalloc::MiMalloc> =
    agentriage::alloc::Counting::new(mimalloc::MiMalloc);

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use agentriage::{Engine, Request};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bundle = args
        .first()
        .map_or("policies/a2a-supply-chain", String::as_str);
    let request_text = match args.get(1) {
        Some(path) => std::fs::read_to_string(path).expect("request file"),
        None => {
            let suite =
                agentriage::testing::load_suite("policies/a2a-supply-chain/tests/baseline.yaml")
                    .expect("run from the repository root");
            let cases = match suite {
                agentriage::testing::SuiteFileKind::Suite(s) => s.cases,
                agentriage::testing::SuiteFileKind::Library => Vec::new(),
            };
            let case = cases
                .into_iter()
                .find(|c| c.name == "baseline reroute executes")
                .expect("the baseline reroute case");
            serde_json::to_string(&case.request).unwrap()
        }
    };
    let engine = Engine::from_dir(bundle).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(3)
    });
    let request = Request::from_json(&request_text).unwrap();
    let outcome = engine.decide(&request).unwrap().outcome;
    println!(
        "bundle {bundle} ({}), request outcome: {outcome}",
        engine.bundle_info().digest
    );

    for (name, json) in [
        ("decide (typed request)", false),
        ("decide_json (parse included)", true),
    ] {
        let mut samples = Vec::with_capacity(50_000);
        for i in 0..55_000 {
            let t = Instant::now();
            if json {
                black_box(engine.decide_json(&request_text).unwrap());
            } else {
                black_box(engine.decide(&request).unwrap());
            }
            if i >= 5_000 {
                samples.push(t.elapsed());
            }
        }
        samples.sort_unstable();
        let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e6;
        println!(
            "{name:<30} p50 {:>7.2} µs   p90 {:>7.2} µs   p99 {:>7.2} µs   p99.9 {:>7.2} µs",
            pct(0.5),
            pct(0.9),
            pct(0.99),
            pct(0.999)
        );
    }

    let mut single = 0.0;
    for threads in [1usize, 2, 4, 8] {
        let barrier = Barrier::new(threads);
        let run = Duration::from_secs(2);
        let total: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        let start = Instant::now();
                        let mut n = 0u64;
                        while start.elapsed() < run {
                            for _ in 0..100 {
                                black_box(engine.decide(&request).unwrap());
                            }
                            n += 100;
                        }
                        n
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        let per_second = total as f64 / run.as_secs_f64();
        if threads == 1 {
            single = per_second;
        }
        println!(
            "{threads} thread(s) on one engine: {per_second:>10.0} decisions/s  ({:.2}× one thread)",
            per_second / single
        );
    }
}
