"""One engine, many threads: the same answers as sequential calls, and the
GIL released while policies run."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import agentriage

from conftest import decision_cases, sample_requests

ROUNDS = 20
THREADS = 8


def summary(decision: agentriage.Decision) -> tuple[str, list[agentriage.Reason], list[Any]]:
    return (decision.outcome.value, decision.reasons, [o.to_dict() for o in decision.obligations])


def test_eight_threads_agree_with_sequential_calls(engine: agentriage.Engine) -> None:
    requests: list[Any] = [request for _, request, _ in decision_cases()]
    requests += sample_requests()
    expected = [summary(engine.decide(r)) for r in requests]

    barrier = threading.Barrier(THREADS)

    def worker(offset: int) -> list[tuple[int, Any]]:
        barrier.wait()
        seen = []
        for round_ in range(ROUNDS):
            # Each thread walks the requests from a different starting point,
            # so different requests are in flight at the same moment.
            for k in range(len(requests)):
                i = (k + offset * 7 + round_) % len(requests)
                seen.append((i, summary(engine.decide(requests[i]))))
        return seen

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(worker, range(THREADS)))

    assert len(results) == THREADS
    for seen in results:
        assert len(seen) == ROUNDS * len(requests)
        for i, got in seen:
            assert got == expected[i], (i, requests[i])


def test_decide_many_from_threads(engine: agentriage.Engine) -> None:
    requests = [request for _, request, _ in decision_cases()]
    expected = [summary(d) for d in engine.decide_many(requests)]
    with ThreadPoolExecutor(THREADS) as pool:
        batches = list(pool.map(lambda _: engine.decide_many(requests), range(THREADS * 2)))
    for batch in batches:
        assert [summary(d) for d in batch] == expected


def test_gil_is_released_while_deciding(engine: agentriage.Engine) -> None:
    """A pure-Python thread keeps running while a long batch is decided.

    Were the GIL held for the whole call, the ticker could not record a
    single timestamp inside the call's middle stretch.
    """
    batch = [json.dumps(request) for _, request, _ in decision_cases()] * 40
    stamps: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            stamps.append(time.perf_counter())

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        time.sleep(0.01)
        start = time.perf_counter()
        engine.decide_many(batch)
        end = time.perf_counter()
    finally:
        stop.set()
        thread.join()
    # The middle 60% of the call: far from any switch before or after it.
    lo = start + (end - start) * 0.2
    hi = start + (end - start) * 0.8
    inside = [t for t in stamps if lo <= t <= hi]
    assert end - start > 0.005, "batch too small to observe"
    assert len(inside) > 100, (len(inside), end - start)
