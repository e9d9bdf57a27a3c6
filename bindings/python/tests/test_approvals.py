"""Approvals from Python: an escalation approved by the right role, exactly
once, for exactly that action; quotas; the decision says what happened."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import agentriage
from agentriage import approval
from conftest import REFERENCE_BUNDLE, REPO, load_yaml

KEYS = REPO / "testdata" / "approvals" / "keys"
T = datetime(2026, 11, 21, 14, 5, tzinfo=timezone.utc)


def reroute(value: int) -> dict:
    base = copy.deepcopy(load_yaml(REFERENCE_BUNDLE / "tests" / "bases.yaml")["bases"]["reroute"])
    base["resource"]["attributes"]["value_usd"] = value
    return base


def sign_as(who: str, request: object, **kw: object) -> str:
    name, alg, kid, iss = {
        "lee": ("lee-logistics", "ES256", "lee-2026-11", "mailto:lee.brandt@acme.example"),
        "sam": ("sam-analyst", "EdDSA", "sam-2026-11", "mailto:sam.ito@acme.example"),
    }[who]
    pem = (KEYS / f"{name}.pem").read_text()
    return approval.sign(pem, alg=alg, kid=kid, iss=iss, request=request, iat=T, **kw)


def test_an_escalation_is_approved_once_by_the_right_role() -> None:
    engine = agentriage.Engine.from_bundle(REFERENCE_BUNDLE)
    request = reroute(250_000)
    escalated = engine.decide(request)
    assert escalated.outcome == agentriage.Outcome.ESCALATE
    ask = escalated.approval_request
    assert ask is not None
    assert ask["action_digest"] == approval.digest(request, context_fields=["workflow_id"])
    assert ask["reasons"] == [
        {"policy": "R9.value_threshold", "roles": ["finance-approver", "logistics-supervisor"]}
    ]
    assert escalated.to_dict()["approval_request"] == ask

    token = sign_as("lee", escalated)
    approved = engine.decide({**request, "approval": token})
    assert approved.outcome == agentriage.Outcome.EXECUTE, approved.reasons
    assert approved.approval["status"] == "used"
    assert approved.approval["approver"] == "mailto:lee.brandt@acme.example"
    assert "approval" in approved.policy_ids

    again = engine.decide({**request, "approval": token})
    assert again.outcome == agentriage.Outcome.REJECT
    assert again.policy_ids == ["approval.reused"]


def test_an_approval_for_another_action_or_role_rejects() -> None:
    engine = agentriage.Engine.from_bundle(REFERENCE_BUNDLE)
    request = reroute(250_000)
    escalated = engine.decide(request)
    token = sign_as("lee", escalated)
    other = engine.decide({**reroute(250_001), "approval": token})
    assert other.outcome == agentriage.Outcome.REJECT
    assert "approval.action_mismatch" in other.policy_ids
    by_analyst = engine.decide({**request, "approval": sign_as("sam", escalated)})
    assert "approval.role" in by_analyst.policy_ids
    assert by_analyst.approval["status"] == "refused"
    # Neither refusal used the good approval up.
    assert engine.decide({**request, "approval": token}).outcome == agentriage.Outcome.EXECUTE


def test_sign_needs_an_approval_request_or_explicit_claims() -> None:
    engine = agentriage.Engine.from_bundle(REFERENCE_BUNDLE)
    executed = engine.decide(reroute(10))
    assert executed.approval_request is None
    try:
        sign_as("lee", executed)
    except ValueError as e:
        assert "approval_request" in str(e)
    else:
        raise AssertionError("signing for a decision without approval_request must fail")
