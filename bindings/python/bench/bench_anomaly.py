"""The anomaly model through Python, side by side with scikit-learn.

Not a test: a benchmark. On synthetic events (8 features, 1% outliers) it
reports, for agentriage and for scikit-learn's IsolationForest(n_estimators=100):

- one event: p50 and p99 per call (agentriage ``score(row)`` and
  ``score_samples`` on a 1-row array; scikit-learn ``score_samples``);
- a batch of 100 000 events x 8: median seconds and events per second
  (agentriage with its default threads and with one thread's worth of
  work measured separately is not possible from Python, so the figure is
  the library as shipped);
- training 100 trees on 100 000 events: median seconds (agentriage's
  default parallel training and ``parallel=False``; scikit-learn with its
  default ``n_jobs=None`` and ``n_jobs=-1``).

    python bindings/python/bench/bench_anomaly.py [--rows 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest as SkIsolationForest

from agentriage import anomaly


def events(rows: int, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, size=(rows, 8))
    odd = rng.random(rows) < 0.01
    x[odd] = rng.uniform(-10.0, 10.0, size=(int(odd.sum()), 8))
    return x


def per_call_us(call: Callable[[], object], n: int) -> tuple[float, float]:
    clock = time.perf_counter_ns
    for _ in range(min(n, 1000)):
        call()
    samples = []
    for _ in range(n):
        t0 = clock()
        call()
        samples.append(clock() - t0)
    samples.sort()
    return samples[len(samples) // 2] / 1000, samples[min(len(samples) - 1, len(samples) * 99 // 100)] / 1000


def median_s(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--single", type=int, default=20_000, help="calls for one-event figures")
    args = parser.parse_args()

    import sklearn

    print(f"# {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    train = events(args.rows, 1)
    probe = events(args.rows, 2)
    sk = SkIsolationForest(n_estimators=100, random_state=0).fit(train)
    imported = anomaly.from_sklearn(sk)
    native = anomaly.train(train, seed=0)
    assert np.max(np.abs(imported.score_samples(probe) - sk.score_samples(probe))) <= 1e-12

    row = probe[1].copy()
    row_list = [float(v) for v in row]
    one = probe[1:2].copy()
    print("\n## one event, 100 trees (microseconds per call: p50 / p99)")
    for name, call, n in [
        ("agentriage score(ndarray row)", lambda: imported.score(row), args.single),
        ("agentriage score(list row)", lambda: imported.score(row_list), args.single),
        ("agentriage score_samples(1x8 array)", lambda: imported.score_samples(one), args.single),
        ("scikit-learn score_samples(1x8 array)", lambda: sk.score_samples(one), max(200, args.single // 100)),
    ]:
        p50, p99 = per_call_us(call, n)
        print(f"{name:40s} {p50:10.2f} {p99:10.2f}")

    print(f"\n## batch of {args.rows} events x 8, 100 trees (median of {args.repeat})")
    ours = median_s(lambda: imported.score_samples(probe), args.repeat)
    theirs = median_s(lambda: sk.score_samples(probe), max(1, args.repeat // 2))
    print(f"{'agentriage score_samples':40s} {ours:8.3f} s {args.rows / ours:14,.0f} events/s")
    print(f"{'scikit-learn score_samples':40s} {theirs:8.3f} s {args.rows / theirs:14,.0f} events/s")
    print(f"{'throughput ratio':40s} {theirs / ours:8.1f} x")

    print(f"\n## training 100 trees on {args.rows} events x 8 (median of {args.repeat})")
    results = [
        ("agentriage train (parallel)", median_s(lambda: anomaly.train(train, seed=3), args.repeat)),
        ("agentriage train (parallel=False)", median_s(lambda: anomaly.train(train, seed=3, parallel=False), args.repeat)),
        ("scikit-learn fit (n_jobs=None)", median_s(lambda: SkIsolationForest(random_state=3).fit(train), args.repeat)),
        ("scikit-learn fit (n_jobs=-1)", median_s(lambda: SkIsolationForest(random_state=3, n_jobs=-1).fit(train), args.repeat)),
    ]
    for name, seconds in results:
        print(f"{name:40s} {seconds:8.3f} s")
    _ = native


if __name__ == "__main__":
    main()
