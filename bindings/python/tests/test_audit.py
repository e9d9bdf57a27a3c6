"""Decision log, verification, metrics and hot reload from Python."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

import agentriage

from conftest import REFERENCE_BUNDLE, TESTDATA


def requests() -> list[str]:
    return (TESTDATA / "requests.jsonl").read_text().splitlines()


def test_log_verify_and_tamper(tmp_path: Path) -> None:
    der, public = agentriage.generate_signing_key()
    engine = agentriage.Engine.from_bundle(REFERENCE_BUNDLE)
    engine.enable_decision_log(tmp_path / "log", key=der, checkpoint_every=5)
    decided = [engine.decide(r) for r in requests() * 3]
    assert engine.close_decision_log() is True
    assert engine.close_decision_log() is False
    files = sorted((tmp_path / "log").glob("decisions-*.jsonl"))
    report = agentriage.verify_log(files, key=public)
    assert report["intact"] and report["closed"] and report["key_checked"]
    assert report["decisions"] == len(decided)
    records = [json.loads(line) for line in files[0].read_text().splitlines()]
    ids = [r["decision"]["decision_id"] for r in records if r["kind"] == "decision"]
    assert ids == [d.decision_id for d in decided]

    lines = files[0].read_text().splitlines()
    lines[3] = lines[3].replace('"v":1', '"v":1,"x":0', 1)
    files[0].write_text("\n".join(lines) + "\n")
    report = agentriage.verify_log(files, key=public)
    assert not report["intact"]
    assert report["problem"]["kind"] == "modified"
    assert report["problem"]["line"] == 4


def test_log_errors_are_typed(tmp_path: Path) -> None:
    engine = agentriage.Engine.from_bundle(REFERENCE_BUNDLE)
    with pytest.raises(agentriage.DecisionLogError) as e:
        engine.enable_decision_log(tmp_path, key=b"not a key")
    assert e.value.kind == "key"
    with pytest.raises(agentriage.DecisionLogError) as e:
        agentriage.verify_log([tmp_path / "missing.jsonl"])
    assert e.value.kind == "io" and "missing.jsonl" in str(e.value)
    with pytest.raises(agentriage.DecisionLogError):
        agentriage.verify_log([], key="zz")


def test_mandatory_log_rejects_when_full(tmp_path: Path) -> None:
    engine = agentriage.Engine.from_bundle(REFERENCE_BUNDLE)
    engine.enable_decision_log(tmp_path, mandatory=True, max_segment_bytes=4096)
    first = requests()[0]
    assert engine.decide(first).outcome == agentriage.Outcome.EXECUTE
    engine.close_decision_log()
    # A closed log is detached: decisions go on unlogged.
    assert engine.decide(first).outcome == agentriage.Outcome.EXECUTE


def test_metrics_text_counts_decisions() -> None:
    engine = agentriage.Engine.from_bundle(REFERENCE_BUNDLE)
    for r in requests():
        engine.decide(r)
    text = engine.metrics_text()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    total = sum(v for k, v in samples.items() if k.startswith("agentriage_decisions_total{"))
    assert total == len(requests())
    assert samples["agentriage_decision_duration_seconds_count"] == total


def test_reload_swaps_while_threads_decide(tmp_path: Path) -> None:
    candidate = tmp_path / "candidate"
    shutil.copytree(REFERENCE_BUNDLE, candidate)
    manifest = candidate / "bundle.toml"
    manifest.write_text(
        manifest.read_text()
        .replace('revision = "2026.11.0"', 'revision = "candidate"')
        .replace('    "shipment.reroute",\n', "")
    )
    engine = agentriage.Engine.from_bundle(REFERENCE_BUNDLE)
    original = engine.bundle
    reroute = requests()[0]
    seen: dict[str, set[str]] = {}
    errors: list[BaseException] = []
    stop = threading.Event()

    def work() -> None:
        try:
            while not stop.is_set():
                d = engine.decide(reroute)
                seen.setdefault(d.bundle.revision, set()).add(d.outcome.value)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(20):
        engine.reload(candidate if i % 2 == 0 else REFERENCE_BUNDLE)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert seen["2026.11.0"] == {"execute"}
    assert seen.get("candidate", {"reject"}) == {"reject"}
    assert engine.bundle.digest == original.digest
    with pytest.raises(agentriage.BundleError):
        engine.reload(tmp_path / "nothing")
    assert engine.bundle.digest == original.digest
