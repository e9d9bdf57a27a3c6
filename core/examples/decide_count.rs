//! Decides one request N times: the instruction count of one decision is
//! the difference between two runs under `valgrind --tool=callgrind`
//! divided by the difference in N (exact and independent of machine load).
//!
//! ```text
//! cargo build --release -p agentriage --example decide_count
//! valgrind --tool=callgrind target/release/examples/decide_count 0 [BUNDLE]
//! valgrind --tool=callgrind target/release/examples/decide_count 1000 [BUNDLE]
//! ```
//!
//! A third argument `json` decides the request from its JSON text
//! (`Engine::decide_json`: parsing and reading the request included).
//!
//! The request is the `baseline reroute executes` case of the reference
//! pack's suites (both engines run in full; it executes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The allocator the CLI and the Python and Node modules ship, wrapped in the
// heap counter they install: the figures are those of the shipped builds.
#[global_allocator]
static GLOBAL: agentriage::alloc::Counting<mimalloc::MiMalloc> =
    agentriage::alloc::Counting::new(mimalloc::MiMalloc);

use agentriage::{Engine, Request};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().map_or(1000, |a| a.parse().expect("a count"));
    let bundle = args
        .get(1)
        .map_or("policies/a2a-supply-chain", String::as_str);
    let suite = agentriage::testing::load_suite("policies/a2a-supply-chain/tests/baseline.yaml")
        .expect("run from the repository root");
    let agentriage::testing::SuiteFileKind::Suite(suite) = suite else {
        panic!("baseline.yaml is a suite");
    };
    let case = suite
        .cases
        .into_iter()
        .find(|c| c.name == "baseline reroute executes")
        .expect("the baseline reroute case");
    let request = Request::from_value(&case.request).unwrap();
    let text = case.request.to_string();
    let json = args.get(2).is_some_and(|a| a == "json");
    let engine = Engine::from_dir(bundle).unwrap();
    // One decision before counting: per-thread evaluators are created lazily.
    let first = engine.decide(&request).unwrap();
    for _ in 0..n {
        if json {
            std::hint::black_box(engine.decide_json(std::hint::black_box(&text)).unwrap());
        } else {
            std::hint::black_box(engine.decide(std::hint::black_box(&request)).unwrap());
        }
    }
    println!("{n} decisions, outcome {}", first.outcome);
}
