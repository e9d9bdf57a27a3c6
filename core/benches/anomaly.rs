//! Anomaly model figures: one event through 100 trees, a batch of
//! 100 000 events × 8 features, and training 100 trees on 100 000 events.
//!
//! `env -u RUST_BACKTRACE cargo bench -p agentriage --bench anomaly`
#![allow(missing_docs, clippy::unwrap_used)]

// The allocator the CLI and the Python and Node modules ship, wrapped in the
// heap counter they install: the figures are those of the shipped builds.
#[global_allocator]
static GLOBAL: agentriage::alloc::Counting<mimalloc::MiMalloc> =
    agentriage::alloc::Counting::new(mimalloc::MiMalloc);

use std::hint::black_box;

use agentriage::anomaly::IsolationForest;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::Array2;

const ROWS: usize = 100_000;
const FEATURES: usize = 8;

/// Gaussian-ish inliers with 1% uniform outliers, reproducible.
fn events(rows: usize, seed: u64) -> Array2<f64> {
    let mut rng = fastrand::Rng::with_seed(seed);
    Array2::from_shape_fn((rows, FEATURES), |(i, _)| {
        if i % 100 == 0 {
            (rng.f64() - 0.5) * 20.0
        } else {
            rng.f64() + rng.f64() + rng.f64() - 1.5
        }
    })
}

fn bench(c: &mut Criterion) {
    let train = events(ROWS, 1);
    let model = IsolationForest::params().seed(0).fit(train.view()).unwrap();
    let probe = events(ROWS, 2);
    let row: Vec<f64> = probe.row(1).to_vec();

    let mut g = c.benchmark_group("anomaly");
    g.bench_function("score one event, 100 trees", |b| {
        b.iter(|| model.score(black_box(&row)).unwrap())
    });
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(20);
    g.bench_function("score batch 100k x 8", |b| {
        b.iter(|| model.scores(black_box(probe.view())).unwrap())
    });
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.bench_function("train 100 trees on 100k x 8", |b| {
        b.iter_batched(
            || IsolationForest::params().seed(3),
            |p| p.fit(train.view()).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("load model json", |b| {
        let text = model.to_json();
        b.iter(|| IsolationForest::from_json(black_box(&text)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
