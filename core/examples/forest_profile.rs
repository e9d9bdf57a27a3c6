//! Where Isolation Forest batch scoring time goes: scores a batch of
//! 100 000 events × 8 features through 100 trees (the batch of
//! `bindings/python/bench/bench_anomaly.py`), on the calling thread's
//! parallel pool and in blocks small enough to stay on one thread, and
//! prints the median of the repeats in events per second.
//!
//! `cargo run --release -p agentriage --example forest_profile -- [ROWS] [REPEATS]`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

#[global_allocator]
static GLOBAL: agentriage::alloc::Counting<mimalloc::MiMalloc> =
    agentriage::alloc::Counting::new(mimalloc::MiMalloc);

use std::time::Instant;

use agentriage::anomaly::IsolationForest;
use ndarray::{Array2, Axis};

/// Gaussian-ish inliers with 1% uniform outliers, reproducible.
fn events(rows: usize, seed: u64) -> Array2<f64> {
    let mut rng = fastrand::Rng::with_seed(seed);
    Array2::from_shape_fn((rows, 8), |(i, _)| {
        if i % 100 == 0 {
            (rng.f64() - 0.5) * 20.0
        } else {
            rng.f64() + rng.f64() + rng.f64() - 1.5
        }
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().map_or(100_000, |a| a.parse().unwrap());
    let repeats: usize = args.next().map_or(9, |a| a.parse().unwrap());
    let model = IsolationForest::params()
        .seed(0)
        .fit(events(rows, 1).view())
        .unwrap();
    let probe = events(rows, 2);
    let mut checksum = 0.0;
    let batch = median(
        (0..repeats)
            .map(|_| {
                let t = Instant::now();
                checksum += model.scores(probe.view()).unwrap().sum();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    );
    // Chunks below the parallel threshold: one thread's throughput.
    let single = median(
        (0..repeats)
            .map(|_| {
                let t = Instant::now();
                for chunk in probe.axis_chunks_iter(Axis(0), 4000) {
                    checksum += model.scores(chunk).unwrap().sum();
                }
                t.elapsed().as_secs_f64()
            })
            .collect(),
    );
    println!(
        "{rows} events x 8, 100 trees: batch {:.1} ms ({:.0} events/s), one thread {:.1} ms ({:.0} events/s); checksum {checksum:.6}",
        batch * 1e3,
        rows as f64 / batch,
        single * 1e3,
        rows as f64 / single
    );
}
