"""Identity helpers through Python: the shared cases (same answers as Rust
and Node), typed errors, and a subject deciding in the reference pack."""

from __future__ import annotations

import json
from typing import Any

import pytest

import agentriage
from agentriage import identity

from conftest import REFERENCE_BUNDLE, TESTDATA

IDENTITY = TESTDATA / "identity"
CASES = json.loads((IDENTITY / "cases.json").read_text(encoding="utf-8"))["cases"]


def run(case: dict[str, Any]) -> dict[str, Any]:
    source = case["source"]
    if source == "token":
        return identity.from_token_claims(case["input"])
    if source == "user_token":
        return identity.from_user_token_claims(case["input"])
    if source == "mcp":
        return identity.from_mcp_auth_info(case["input"])
    assert source == "svid"
    path = IDENTITY / case["input"]
    data: str | bytes = path.read_text() if path.suffix == ".pem" else path.read_bytes()
    return identity.from_x509_svid(data)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_shared_cases(case: dict[str, Any]) -> None:
    if "principal" in case:
        assert run(case) == case["principal"]
    else:
        with pytest.raises(identity.IdentityError) as e:
            run(case)
        assert (e.value.kind, e.value.field) == (case["error"]["kind"], case["error"]["field"])
        assert str(e.value).startswith(f"invalid identity at `{case['error']['field']}`: ")
        assert isinstance(e.value, agentriage.Error)
        assert isinstance(e.value, ValueError)


def test_non_mappings_are_refused() -> None:
    with pytest.raises(identity.IdentityError) as e:
        identity.from_token_claims(["sub"])  # type: ignore[arg-type]
    assert e.value.field == "$"


def test_an_object_with_model_dump_reads_like_its_dict() -> None:
    class AccessToken:
        def model_dump(self, mode: str = "python") -> dict[str, Any]:
            return {"token": "t", "client_id": "router", "scopes": ["a"], "expires_at": 1795273200}

    p = identity.from_mcp_auth_info(AccessToken())
    assert p["id"] == "router"
    assert p["credential"] == {"expires_at": "2026-11-21T15:00:00Z"}
    assert "t" not in json.dumps(p).split('"')


def test_the_subject_decides_in_the_reference_pack() -> None:
    engine = agentriage.Engine.from_bundle(str(REFERENCE_BUNDLE))

    def read_for(claims: dict[str, Any]) -> agentriage.Decision:
        return engine.decide({
            "time": "2026-11-21T14:05:00Z",
            "principal": identity.from_token_claims(claims),
            "action": {"name": "invoice.read"},
            "resource": {"type": "invoice", "id": "INV-88"},
        })

    agent = "spiffe://acme.example/ns/finance/sa/payments"
    allowed = read_for({"sub": "alice@acme.example", "scope": "invoices:read", "act": {"sub": agent}})
    assert allowed.outcome == agentriage.Outcome.EXECUTE
    refused = read_for({"sub": "mallory@acme.example", "scope": "shipments:read", "act": {"sub": agent}})
    assert refused.outcome == agentriage.Outcome.REJECT
    assert [r.policy for r in refused.reasons] == ["R15.subject_not_permitted"]
