"""The reference pack's expected decisions (its YAML suites), through Python."""

from __future__ import annotations

import json
from typing import Any

import pytest

import agentriage

from conftest import REFERENCE_BUNDLE, decision_cases, sample_lines, sample_requests

CASES = decision_cases()


@pytest.mark.parametrize(("name", "request_", "case"), CASES, ids=[c[0] for c in CASES])
def test_expected_decision(
    engine: agentriage.Engine, name: str, request_: dict[str, Any], case: dict[str, Any]
) -> None:
    if case["prior"]:
        # Quotas and used approvals: the case's own state, on a new engine.
        engine = agentriage.Engine.from_bundle(REFERENCE_BUNDLE)
        for _ in range(case["prior"]):
            engine.decide(request_)
    decision = engine.decide(request_)
    assert decision.outcome == case["outcome"], (name, decision)
    assert decision.outcome is agentriage.Outcome(case["outcome"])
    if "reasons" in case:
        assert set(decision.policy_ids) == set(case["reasons"]), (name, decision.reasons)
    if decision.outcome != agentriage.Outcome.EXECUTE:
        assert decision.reasons, "a reject or escalate always says why"


@pytest.mark.parametrize(("name", "request_", "case"), CASES, ids=[c[0] for c in CASES])
def test_text_and_dict_agree(
    engine: agentriage.Engine, name: str, request_: dict[str, Any], case: dict[str, Any]
) -> None:
    from_dict = engine.decide(request_)
    from_text = engine.decide(json.dumps(request_))
    from_bytes = engine.decide(json.dumps(request_).encode())
    assert from_dict.outcome == from_text.outcome == from_bytes.outcome
    assert from_dict.reasons == from_text.reasons == from_bytes.reasons
    assert from_dict.obligations == from_text.obligations


def test_decide_many_matches_decide(engine: agentriage.Engine) -> None:
    requests = [request for _, request, _ in CASES]
    batch = engine.decide_many(requests)
    assert len(batch) == len(requests)
    for request, decision in zip(requests, batch):
        single = engine.decide(request)
        assert (decision.outcome, decision.reasons) == (single.outcome, single.reasons)


def test_decide_many_takes_any_iterable(engine: agentriage.Engine) -> None:
    lines = sample_requests()
    from_list = engine.decide_many(lines)
    from_generator = engine.decide_many(line for line in lines)
    assert [d.outcome for d in from_list] == [d.outcome for d in from_generator]
    assert engine.decide_many([]) == []


def test_sample_requests_decide_or_raise(engine: agentriage.Engine) -> None:
    decided = 0
    for line in sample_lines():
        try:
            decision = engine.decide(line)
        except agentriage.InvalidRequestError as error:
            # Never a decision for a request that breaks the contract.
            assert error.path != "", error
            with pytest.raises(agentriage.InvalidRequestError):
                engine.decide(json.loads(line))
            continue
        decided += 1
        assert decision.outcome in {"execute", "reject", "escalate"}
        assert decision.bundle == engine.bundle
        assert engine.decide(json.loads(line)).outcome == decision.outcome
    assert decided


def test_trace_id_is_carried(engine: agentriage.Engine) -> None:
    request = decision_cases()[0][1]
    assert engine.decide(request).trace_id == request["trace_id"]
    del request["trace_id"]
    fresh = engine.decide(request).trace_id
    assert len(fresh) == 32 and int(fresh, 16) != 0
