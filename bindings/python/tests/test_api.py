"""The Python surface: Decision, Outcome, BundleInfo, exceptions, panics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import agentriage
from agentriage import _native

from conftest import BASES, BROKEN_BUNDLE, REFERENCE_BUNDLE, STRICT, decision_cases


def escalating_request() -> dict:
    for name, request, _ in decision_cases():
        if name == "R9 reroute value 1 above the limit escalates":
            return request
    raise AssertionError("case not found")


def test_outcome_is_a_str_enum(engine: agentriage.Engine) -> None:
    decision = engine.decide(escalating_request())
    assert decision.outcome is agentriage.Outcome.ESCALATE
    assert decision.outcome == "escalate"
    assert isinstance(decision.outcome, str)
    assert str(decision.outcome) == "escalate"
    assert [o.value for o in agentriage.Outcome] == ["execute", "escalate", "reject"]


def test_decision_fields(engine: agentriage.Engine) -> None:
    request = escalating_request()
    decision = engine.decide(request)
    assert decision.trace_id == request["trace_id"]
    assert len(decision.decision_id) == 36
    assert decision.duration_us >= 0
    assert decision.bundle.name == "a2a-supply-chain"
    assert decision.bundle.digest.startswith("sha256:")
    assert decision.bundle == engine.bundle
    assert hash(decision.bundle) == hash(engine.bundle)
    [reason] = decision.reasons
    assert reason.policy == "R9.value_threshold"
    assert reason.effect == "escalate"
    assert reason.engine in {"rego", "cedar"}
    assert reason.message
    assert decision.policy_ids == ["R9.value_threshold"]


def test_to_dict_matches_the_json_contract(engine: agentriage.Engine) -> None:
    decision = engine.decide(escalating_request())
    as_dict = decision.to_dict()
    assert as_dict == json.loads(decision.to_json())
    # An escalation an approval can settle also carries what the approver needs.
    assert set(as_dict) == {
        "outcome", "reasons", "obligations", "trace_id", "decision_id", "bundle", "duration_us",
        "approval_request",
    }
    assert as_dict["approval_request"] == decision.approval_request
    assert as_dict["outcome"] == "escalate"
    assert as_dict["reasons"] == [r.to_dict() for r in decision.reasons]
    assert as_dict["bundle"] == decision.bundle.to_dict()
    json.dumps(as_dict)  # plain JSON types only


def test_obligations_carry_params(echo: agentriage.Engine) -> None:
    decision = echo.decide(
        {"principal": {"id": "a"}, "action": {"name": "x"}, "context": {"k": {"n": 1}}}
    )
    [obligation] = decision.obligations
    assert obligation.id == "echo:k"
    assert obligation.policy == "agentriage.obligations"
    assert obligation.params["value"] == {"n": 1}
    assert obligation.to_dict()["params"] == obligation.params
    assert "echo:k" in repr(obligation)


def test_reprs_are_readable(engine: agentriage.Engine) -> None:
    decision = engine.decide(escalating_request())
    text = repr(decision)
    assert text.startswith("Decision(outcome='escalate', reasons=['R9.value_threshold']")
    assert "a2a-supply-chain@2026.11.0" in text
    assert repr(engine).startswith("Engine(bundle='a2a-supply-chain'")
    assert "R9.value_threshold" in repr(decision.reasons[0])
    assert repr(decision.bundle).startswith("BundleInfo(name='a2a-supply-chain'")


def test_from_bundle_takes_str_and_pathlike() -> None:
    by_str = agentriage.Engine.from_bundle(str(REFERENCE_BUNDLE))
    by_path = agentriage.Engine.from_bundle(Path(REFERENCE_BUNDLE))
    assert by_str.bundle == by_path.bundle


def test_missing_bundle_is_a_bundle_error(tmp_path: Path) -> None:
    with pytest.raises(agentriage.BundleError) as caught:
        agentriage.Engine.from_bundle(tmp_path / "nowhere")
    assert caught.value.kind == "io"
    assert isinstance(caught.value, agentriage.Error)


def test_broken_rego_names_file_and_line() -> None:
    with pytest.raises(agentriage.BundleError) as caught:
        agentriage.Engine.from_bundle(BROKEN_BUNDLE)
    error = caught.value
    assert error.kind == "rego"
    assert Path(error.file).name == "bad.rego"
    assert error.line == 5
    assert error.message
    assert str(error).startswith(f"{error.file}:5: ")


def test_bad_manifest_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "bundle.toml").write_text('name = "x"\nrevision = "1"\n[defaults]\nno_permit = "execute"\n')
    with pytest.raises(agentriage.BundleError) as caught:
        agentriage.Engine.from_bundle(tmp_path)
    assert (caught.value.kind, caught.value.line) == ("manifest", 4)


def test_engine_cannot_be_constructed_directly() -> None:
    with pytest.raises(TypeError):
        agentriage.Engine()  # type: ignore[call-arg]


def test_version() -> None:
    assert agentriage.__version__.count(".") == 2


hooks = pytest.mark.skipif(
    not hasattr(_native, "_debug_panic") and not STRICT,
    reason="built without the `test-hooks` feature (scripts/test-python.sh enables it)",
)


@hooks
@pytest.mark.parametrize("where", ["attached", "detached"])
def test_panic_is_an_internal_error(engine: agentriage.Engine, where: str) -> None:
    with pytest.raises(agentriage.InternalError, match="deliberate panic"):
        _native._debug_panic(where)  # type: ignore[attr-defined]
    # The interpreter and the engine go on working.
    assert engine.decide(escalating_request()).outcome == "escalate"


@hooks
def test_panic_never_aborts_the_process() -> None:
    script = textwrap.dedent(
        f"""
        import agentriage
        from agentriage import _native
        for where in ("attached", "detached") * 50:
            try:
                _native._debug_panic(where)
            except agentriage.InternalError:
                pass
        engine = agentriage.Engine.from_bundle({str(REFERENCE_BUNDLE)!r})
        print("alive", engine.bundle.name)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        env={**os.environ, "RUST_BACKTRACE": "0"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "alive a2a-supply-chain"


def test_garbage_never_executes_nor_crashes(engine: agentriage.Engine) -> None:
    """Random mutations of valid requests: a decision or an agentriage.Error, nothing else."""
    import copy
    import math
    import random

    rng = random.Random(4)
    junk = [None, False, True, 0, -1, 2**70, math.nan, math.inf, "", "x", b"\xff", b"ok",
            [], {}, (), {1: 2}, {"a": None}, set(), object(), 1.5, [[[]]], "\ud800"]
    bases = list(BASES.values())

    def mutate(value: object, depth: int = 0) -> object:
        if isinstance(value, dict) and value and depth < 4:
            out = dict(value)
            key = rng.choice(list(out))
            roll = rng.random()
            if roll < 0.4:
                out[key] = rng.choice(junk)
            elif roll < 0.6:
                del out[key]
            else:
                out[key] = mutate(out[key], depth + 1)
            return out
        return rng.choice(junk)

    decided = refused = 0
    for _ in range(3000):
        request = mutate(copy.deepcopy(rng.choice(bases)))
        try:
            decision = engine.decide(request)  # type: ignore[arg-type]
        except agentriage.Error:
            refused += 1
            continue
        decided += 1
        assert decision.outcome in ("execute", "reject", "escalate")
    assert decided and refused
