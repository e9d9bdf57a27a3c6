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

    let single = throughput(&[&engine], 1, &request);
    println!("1 thread(s) on one engine: {single:>10.0} decisions/s  (1.00× one thread)");
    for threads in [2usize, 4, 8] {
        let per_second = throughput(&[&engine], threads, &request);
        println!(
            "{threads} thread(s) on one engine: {per_second:>10.0} decisions/s  ({:.2}× one thread)",
            per_second / single
        );
    }
    // The same work on engines that share nothing: each thread decides on an
    // engine of its own, loaded from the same bundle. What one engine gains
    // less than this is what sharing it costs; what this gains less than
    // the thread count is the machine's.
    let second = Engine::from_dir(bundle).unwrap();
    second.decide(&request).unwrap();
    let per_second = throughput(&[&engine, &second], 2, &request);
    println!(
        "2 thread(s), one engine each: {per_second:>10.0} decisions/s  ({:.2}× one thread)",
        per_second / single
    );
}

/// Decisions per second of `threads` threads deciding `request` for two
/// seconds, thread `i` on `engines[i % engines.len()]`.
fn throughput(engines: &[&Engine], threads: usize, request: &Request) -> f64 {
    let barrier = Barrier::new(threads);
    let run = Duration::from_secs(2);
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let engine = engines[i % engines.len()];
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    let mut n = 0u64;
                    while start.elapsed() < run {
                        for _ in 0..100 {
                            black_box(engine.decide(request).unwrap());
                        }
                        n += 100;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / run.as_secs_f64()
}
