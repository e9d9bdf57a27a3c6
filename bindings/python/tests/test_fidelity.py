"""The differential suite (fidelity/run.py) in CI: agentriage against OPA's Go
engine (opa-golib-python-bindings) and Cedar (cedarpy), on a reduced number
of generated requests per module. docs/fidelity.md has the full run.

The default evaluator, and Cedar, must never be more permissive than the
reference. Divergences that are known and tracked are listed in
fidelity/expected-permissive.json: one that appears without being listed
fails, and one that is listed but no longer appears fails too (so the list
shrinks as the fixes land). The VM's and the interpreter's divergences are
reported (target/fidelity/report.json), not asserted.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import pytest

import agentriage
from conftest import REPO, require

FIDELITY = REPO / "fidelity"
COUNT = int(os.environ.get("AGENTRIAGE_FIDELITY_COUNT", "300"))
REPORT_DIR = REPO / "target" / "fidelity"


def _runner():
    spec = importlib.util.spec_from_file_location("fidelity_run", FIDELITY / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


run = _runner()


@pytest.fixture(scope="module")
def tallies():
    require("opa_bindings")
    require("cedarpy")
    result = run.run(COUNT)
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    report = {"count": COUNT, "results": [t.to_json() for t in result]}
    (REPORT_DIR / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    (REPORT_DIR / "report.md").write_text(run.markdown(result, COUNT, 20261202))
    return result


def _expected() -> dict[str, dict[str, str]]:
    return json.loads((FIDELITY / "expected-permissive.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("evaluator", ["default", "cedar"])
def test_never_more_permissive_than_the_reference(tallies, evaluator):
    found = run.permissive(tallies, evaluator)
    expected = _expected()[evaluator]
    assert all(isinstance(v, str) and v for v in expected.values())
    unexpected = {m: ex[:2] for m, ex in found.items() if m not in expected}
    fixed = sorted(m for m in expected if m not in found)
    assert not unexpected, (
        f"agentriage ({evaluator}) is more permissive than the reference on: "
        + json.dumps(unexpected, ensure_ascii=False, indent=1)
    )
    assert not fixed, (
        f"no longer more permissive ({evaluator}): {fixed}; remove them from "
        "fidelity/expected-permissive.json so that a regression fails"
    )


def test_the_corpus_is_decided_in_full(tallies):
    rego = {t.module for t in tallies if t.engine == "rego"}
    cedar = {t.module for t in tallies if t.engine == "cedar"}
    assert len(rego) >= 12 and len(cedar) >= 5, (rego, cedar)
    for t in tallies:
        # The generators keep to the request contract: nearly every request
        # is decided, so the comparison covers what the spec generates.
        assert t.requests + t.invalid == COUNT, t.module
        # The number modules send numbers beyond ±2^63 on purpose, which the
        # request contract refuses (they would reach the policies rounded):
        # fewer of their requests are decided, by design.
        share = 0.3 if t.module in ("f_numbers", "thresholds") else 0.9
        assert t.requests >= share * COUNT, (t.module, t.evaluator, t.invalid)
    for evaluator in ("vm", "interpreter"):
        found = run.permissive(tallies, evaluator)
        print(f"{evaluator}: more permissive than OPA on {sorted(found)}")


def test_the_judge_classifies_by_strictness():
    r = run.combine
    execute = r([], True)
    escalate = r([("escalate", "E", "m")], True)
    reject = r([("reject", "R", "m")], False)
    no_permit = r([], False)
    assert no_permit.outcome == "reject" and no_permit.reasons == {("reject", "default")}
    assert run.classify(execute, escalate) == "permissive"
    assert run.classify(escalate, reject) == "permissive"
    assert run.classify(reject, execute) == "stricter"
    assert run.classify(reject, no_permit) == "reasons"
    assert run.classify(escalate, r([("escalate", "E", "other")], False)) == "messages"
    assert run.classify(reject, r([("reject", "R", "m"), ("escalate", "E", "m")], True)) == "reasons"
    assert run.classify(execute, r([], True)) == "agree"


INPUT_ECHO = """package agentriage
import rego.v1
reject contains {"id": "echo", "message": json.marshal(input)}
"""


def _small_numbers(value) -> bool:
    """True when every number is one both sides hold exactly (no big integers)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**64
    if isinstance(value, float):
        return abs(value) < 2**53
    if isinstance(value, list):
        return all(_small_numbers(v) for v in value)
    return all(_small_numbers(v) for v in value.values())


@pytest.mark.parametrize("evaluator", ["vm", "interpreter"])
def test_the_reference_sees_the_input_agentriage_gives_rego(evaluator):
    """The premise of the Rego comparison: OPA evaluates the same `input`
    document as regorus. The policy echoes `input` back as JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        bundle = run.rego_bundle(Path(tmp), "echo", INPUT_ECHO, evaluator)
        engine = agentriage.Engine.from_bundle(bundle)
        rng = random.Random(7)
        specs = sorted(run.REGO_DIR.glob("*.json")) + sorted(run.CEDAR_DIR.glob("*/spec.json"))
        compared = 0
        for path in specs:
            spec = json.loads(path.read_text(encoding="utf-8"))
            for _ in range(20):
                req = run.gen_request(rng, spec)
                text = json.dumps(req, ensure_ascii=False)
                try:
                    decision = engine.decide(text)
                except agentriage.InvalidRequestError:
                    continue
                if not _small_numbers(req):
                    continue
                [reason] = [r for r in decision.reasons if r.policy == "echo"]
                assert json.loads(reason.message) == run.rego_input(json.loads(text)), text
                compared += 1
        assert compared > 200
