"""Per-decision cost of agentriage through Python, with OPA side by side.

Not a test: a benchmark. Over the reference pack (policies/a2a-supply-chain)
it decides a typical request (the `reroute` base of the reference pack's suites, tests/bases.yaml:
15 fields, Rego and Cedar both evaluated) and reports p50 and p99 per
decision, for

- one thread: `engine.decide(dict)`, `engine.decide(str)` and
  `engine.decide_many(...)` (per decision, batches of 100);
- 4 threads deciding concurrently on one shared engine.

When `opa-golib-python-bindings` is installed (OPA's Go engine in-process via
a c-shared library; `pip install --ignore-requires-python
opa-golib-python-bindings`), the same pack's Rego modules and data are
evaluated by OPA for the same request, single thread and 4 threads. OPA runs
only the Rego half (agentriage also runs the Cedar half) and gets the derived
facts precomputed in its input, so the comparison favours OPA.

    python bindings/python/bench/bench_decide.py [--n 20000] [--threads 4]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import agentriage

REPO = Path(__file__).resolve().parents[3]
BUNDLE = REPO / "policies" / "a2a-supply-chain"


def typical_request() -> dict[str, Any]:
    import yaml

    text = (BUNDLE / "tests" / "bases.yaml").read_text(encoding="utf-8")
    request: dict[str, Any] = yaml.safe_load(text)["bases"]["reroute"]
    return request


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, (len(ordered) * 99) // 100)]
    return p50 / 1000, p99 / 1000


def time_calls(call: Callable[[], object], n: int) -> list[int]:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(n):
        t0 = clock()
        call()
        samples.append(clock() - t0)
    return samples


def threaded(call: Callable[[], object], n: int, threads: int) -> tuple[list[int], float]:
    """Per-call latencies of `threads` threads calling concurrently, and calls per second."""
    barrier = threading.Barrier(threads + 1)
    results: list[list[int]] = [[] for _ in range(threads)]

    def worker(slot: int) -> None:
        barrier.wait()
        results[slot] = time_calls(call, n)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    merged = [s for r in results for s in r]
    return merged, len(merged) / elapsed


def report(name: str, samples_ns: list[int], extra: str = "") -> tuple[float, float]:
    p50, p99 = percentiles(samples_ns)
    print(f"{name:<48} p50 {p50:8.2f} µs   p99 {p99:8.2f} µs{extra}")
    return p50, p99


def opa_engine() -> Any:
    """OPA loaded with the Rego half of the reference pack, or None."""
    try:
        from opa_bindings import OpaEngine
    except ImportError:
        return None
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        return None
    manifest = tomllib.loads((BUNDLE / "bundle.toml").read_text(encoding="utf-8"))
    opa = OpaEngine()
    for module in manifest["rego"]["modules"]:
        opa.add_policy(module, (BUNDLE / module).read_text(encoding="utf-8"))
    for data in manifest["rego"]["data"]:
        opa.add_data(json.loads((BUNDLE / data).read_text(encoding="utf-8")))
    # The same entry point agentriage compiles: every reject, escalate,
    # obligation and the allow rule, in one document.
    opa.add_policy(
        "decision.rego",
        """package decision
import rego.v1
default allow := false
allow if data.agentriage.allow == true
result := {
  "reject": [x | some x in data.agentriage.reject],
  "escalate": [x | some x in data.agentriage.escalate],
  "obligations": [x | some x in data.agentriage.obligations],
  "allow": allow,
}
""",
    )
    return opa


def opa_input(request: dict[str, Any]) -> dict[str, Any]:
    """The request plus the facts agentriage derives (precomputed once: OPA's advantage)."""
    return {
        **request,
        "facts": {
            "time": request["time"],
            "time_unix": 1763733900,
            "hour_utc": 14,
            "risk_class": "transactional",
            "credential_ttl_s": 300,
            "attestation_age_s": 300,
            "anomaly_score": request["anomaly"]["score"],
        },
    }


def pack_with_evaluator(evaluator: str, into: Path) -> Optional[agentriage.Engine]:
    """The reference pack with `[rego] evaluator` set, or None if the core has no such setting."""
    target = into / evaluator
    shutil.copytree(BUNDLE, target)
    manifest = target / "bundle.toml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.replace("[rego]\n", f'[rego]\nevaluator = "{evaluator}"\n'), encoding="utf-8")
    try:
        return agentriage.Engine.from_bundle(target)
    except agentriage.BundleError:
        return None


def measure(engine: agentriage.Engine, request: dict[str, Any], n: int, threads: int) -> float:
    """Reports one engine; returns the p50 of decide(dict) on one thread, in µs."""
    text = json.dumps(request)
    decision = engine.decide(request)
    assert decision.outcome == agentriage.Outcome.EXECUTE, decision

    def decide_dict() -> object:
        return engine.decide(request)

    def decide_text() -> object:
        return engine.decide(text)

    time_calls(decide_dict, n // 10)
    single = 0.0
    for label, call in (("dict", decide_dict), ("str", decide_text)):
        p50, _ = report(f"agentriage decide({label}), 1 thread", time_calls(call, n))
        single = single or p50
        # The binding's own cost: each call's latency minus the time the core
        # reports for the same decision (`duration_us`, whole µs, from the
        # start of `decide`/`decide_json` to the finished decision; a plain
        # dict is read into the typed request before that clock starts).
        # For `str` the core time is the Rust `decide_json` figure itself.
        inside: list[int] = []
        overhead: list[int] = []
        clock = time.perf_counter_ns
        for _ in range(n):
            t0 = clock()
            d = call()
            elapsed = clock() - t0
            assert isinstance(d, agentriage.Decision)
            inside.append(d.duration_us)
            overhead.append(elapsed - d.duration_us * 1000)
        print(f"{'  core time of the same calls (duration_us)':<48} p50 {statistics.median(inside):8.2f} µs (whole µs)")
        report("  binding cost: call minus core time (paired)", overhead)

    # Conversion alone: `_prepare` converts the request (a `dict` read into
    # the core's typed request) and returns it undecided, as
    # `decide_async` does before handing it to a worker thread.
    report("agentriage conversion only (_prepare(dict))", time_calls(lambda: engine._prepare(request), n))

    batch = [request] * 100
    per_batch = time_calls(lambda: engine.decide_many(batch), max(1, n // 100))
    report("agentriage decide_many(100 dicts), per decision", [s // 100 for s in per_batch])

    samples, rate = threaded(decide_dict, n, threads)
    report(f"agentriage decide(dict), {threads} threads", samples, f"   {rate:,.0f} decisions/s total")
    return single


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="decisions per measurement and thread")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    n, threads = args.n, args.threads

    request = typical_request()
    engines = [("bundle default (rego interpreter)", agentriage.Engine.from_bundle(BUNDLE))]
    scratch = tempfile.TemporaryDirectory()
    vm = pack_with_evaluator("vm", Path(scratch.name))
    if vm is not None:
        engines.append(("rego evaluator = vm", vm))

    print(f"agentriage {agentriage.__version__}, Python {platform.python_version()}, {platform.machine()}")
    print(f"bundle {BUNDLE.name}; request: reroute base of tests/bases.yaml")
    print(f"{n} decisions per measurement (after {n // 10} warm-up)")
    p50s = {}
    for label, engine in engines:
        print(f"\n[{label}]")
        p50s[label] = measure(engine, request, n, threads)
    scratch.cleanup()

    opa = opa_engine()
    if opa is None:
        print("\nOPA: `opa-golib-python-bindings` not installed (or Python < 3.11); skipped")
        return
    given = opa_input(request)
    verdict = opa.eval_document("decision.result", given)
    assert verdict["allow"] is True and not verdict["reject"] and not verdict["escalate"], verdict

    def opa_decide() -> object:
        return opa.eval_document("decision.result", given)

    time_calls(opa_decide, max(1, n // 50))
    opa_n = max(1, n // 5)
    print()
    opa_single, _ = report("OPA (Go, in-process) Rego half, 1 thread", time_calls(opa_decide, opa_n))
    samples, rate = threaded(opa_decide, opa_n // threads, threads)
    report(f"OPA (Go, in-process) Rego half, {threads} threads", samples, f"   {rate:,.0f} evaluations/s total")
    print()
    for label, p50 in p50s.items():
        print(f"agentriage decide(dict) [{label}]: {opa_single / p50:.1f}x faster than OPA at p50 (1 thread)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
