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
    assert engine.close_decision_log() is True
    # A closed mandatory log cannot log: every later decision is rejected.
    after = engine.decide(first)
    assert after.outcome == agentriage.Outcome.REJECT
    assert after.reasons[0].policy == "decision-log"
    assert engine.close_decision_log() is False


def test_optional_log_is_detached_on_close(tmp_path: Path) -> None:
    engine = agentriage.Engine.from_bundle(REFERENCE_BUNDLE)
    engine.enable_decision_log(tmp_path)
    first = requests()[0]
    engine.decide(first)
    assert engine.close_decision_log() is True
    assert engine.decide(first).outcome == agentriage.Outcome.EXECUTE
    assert engine.close_decision_log() is False


def test_mandatory_log_closed_while_threads_decide(tmp_path: Path) -> None:
    engine = agentriage.Engine.from_bundle(REFERENCE_BUNDLE)
    der, public = agentriage.generate_signing_key()
    engine.enable_decision_log(tmp_path, key=der, mandatory=True)
    first = requests()[0]
    closed = threading.Event()
    results: list[tuple[bool, agentriage.Decision]] = []
    lock = threading.Lock()
    started = threading.Barrier(5)

    def decide() -> None:
        started.wait()
        after = 0
        while after < 25:
            was_closed = closed.is_set()
            d = engine.decide(first)
            after += was_closed
            with lock:
                results.append((was_closed, d))

    threads = [threading.Thread(target=decide) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait()
    while True:
        with lock:
            if len(results) >= 100:
                break
    assert engine.close_decision_log() is True
    closed.set()
    for t in threads:
        t.join()
    files = sorted(tmp_path.glob("decisions-*.jsonl"))
    report = agentriage.verify_log(files, key=public)
    assert report["intact"], report
    logged = {
        r["decision"]["decision_id"]
        for r in (json.loads(x) for f in files for x in f.read_text().splitlines())
        if r["kind"] == "decision"
    }
    for was_closed, d in results:
        if d.decision_id in logged:
            assert not was_closed and d.outcome == agentriage.Outcome.EXECUTE
        else:
            assert d.outcome == agentriage.Outcome.REJECT
            assert d.reasons[0].policy == "decision-log"
    assert sum(1 for c, _ in results if c) == 100


def _forge(lines: list[str], start: int, edit) -> list[str]:
    """Drops checkpoints from ``start`` on, edits decisions, re-chains."""
    import hashlib

    out = lines[:start]
    before = json.loads(out[-1])
    prev, seq = before["hash"], before["seq"] + 1
    for line in lines[start:]:
        r = json.loads(line)
        if r["kind"] == "checkpoint":
            continue
        if r["kind"] == "decision":
            edit(r)
        r["prev"], r["seq"] = prev, seq
        r.pop("hash")
        body = json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        prev = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
        r["hash"] = prev
        seq += 1
        out.append(json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    return out


def test_rewritten_log_without_checkpoints_is_not_intact(tmp_path: Path) -> None:
    der, public = agentriage.generate_signing_key()
    engine = agentriage.Engine.from_bundle(REFERENCE_BUNDLE)
    engine.enable_decision_log(tmp_path, key=der, checkpoint_every=5)
    for r in requests() * 3:
        engine.decide(r)
    engine.close_decision_log()
    files = sorted(tmp_path.glob("decisions-*.jsonl"))
    lines = files[0].read_text().splitlines()

    def execute(r: dict) -> None:
        r["decision"]["outcome"] = "execute"

    files[0].write_text("\n".join(_forge(lines, 1, execute)) + "\n")
    report = agentriage.verify_log(files, key=public)
    assert not report["intact"] and not report["proven"]
    assert report["problem"]["kind"] == "unsigned_tail"
    assert report["integrity"] == "broken" and report["checkpoints"] == 0
    assert not agentriage.verify_log(files, key=public, allow_unsigned_tail=True)["intact"]
    # Without a key a careless ``if report["intact"]:`` does not pass.
    unkeyed = agentriage.verify_log(files)
    assert unkeyed["chain_verifies"] and not unkeyed["intact"]
    assert unkeyed["integrity"] == "unproven" and unkeyed["proven"] is False

    # One record edited after the last checkpoint it keeps: only with the
    # option, and the tail is named.
    last_checkpoint = max(i for i, x in enumerate(lines) if '"kind":"checkpoint"' in x and i < len(lines) - 8)
    forged = _forge(lines, last_checkpoint + 1, execute)
    files[0].write_text("\n".join(forged) + "\n")
    report = agentriage.verify_log(files, key=public)
    assert not report["intact"] and report["problem"]["kind"] == "unsigned_tail"
    report = agentriage.verify_log(files, key=public, allow_unsigned_tail=True)
    assert report["intact"] and report["integrity"] == "proven_except_tail"
    assert report["unsigned_tail_seq"] == (last_checkpoint + 1, len(forged) - 1)
    assert report["unsigned_tail"] == len(forged) - last_checkpoint - 1


def test_repeated_member_is_a_problem(tmp_path: Path) -> None:
    der, public = agentriage.generate_signing_key()
    engine = agentriage.Engine.from_bundle(REFERENCE_BUNDLE)
    engine.enable_decision_log(tmp_path, key=der)
    engine.decide(requests()[0])
    engine.close_decision_log()
    files = sorted(tmp_path.glob("decisions-*.jsonl"))
    lines = files[0].read_text().splitlines()
    at = next(i for i, x in enumerate(lines) if '"kind":"decision"' in x)
    lines[at] = lines[at].replace("{", '{"decision":{"outcome":"execute"},', 1)
    files[0].write_text("\n".join(lines) + "\n")
    report = agentriage.verify_log(files, key=public)
    assert report["problem"]["kind"] == "duplicate_member"
    assert report["problem"]["line"] == at + 1


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
