"""Approvals of escalated actions: the action digest, and signing.

An ``escalate`` decision an approval can settle carries
``decision.approval_request``: the action's digest, the reasons and the
roles that may approve each, the audience and when the request expires. An
approver signs an approval for it; the host decides again with the token in
the request's ``approval`` field::

    from agentriage import approval

    decision = engine.decide(request)
    if decision.outcome == "escalate" and decision.approval_request:
        token = approval.sign(approver_pem, kid="dana-2026-11",
                              iss="mailto:dana.okafor@acme.example",
                              request=decision)          # after a human said yes
        decision = engine.decide({**request, "approval": token})

The engine checks the token (signature, approver and role, the action's
digest, expiry) and uses it up when the decision executes; see
``docs/escalation.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from agentriage import _native
from agentriage.intent import _unix_seconds as _intent_seconds

__all__ = ["digest", "sign"]


def digest(request: Mapping[str, Any] | str, *, context_fields: Sequence[str] = ()) -> str:
    """The ``sha256:`` digest of the request's action (principal, action,
    resource with its attributes, and the named context fields), as the
    engine computes it. Raises ``ValueError`` for a request that breaks the
    contract."""
    text = request if isinstance(request, str) else json.dumps(request)
    return _native.approval_digest(text, list(context_fields))


def _unix_seconds(t: datetime | float | None) -> int:
    return _intent_seconds(t, "an approval")


def sign(
    private_key_pem: str,
    *,
    alg: str = "EdDSA",
    kid: str,
    iss: str,
    request: Any = None,
    action_digest: str | None = None,
    aud: str | None = None,
    reasons: Sequence[str] = (),
    iat: datetime | float | None = None,
    lifetime_s: int = 900,
    jti: str | None = None,
) -> str:
    """Signs an approval; returns the compact JWS for the request's
    ``approval`` field.

    Either ``request``: an escalated ``Decision`` (or its ``to_dict()``, or
    its ``approval_request`` dict), which gives the digest, the reasons, the
    audience and the request's expiry; or ``action_digest``, ``aud`` and
    ``reasons``. ``iat`` defaults to now, ``jti`` to a fresh UUID. Raises
    ``ValueError`` for an unusable key or claim.
    """
    decision_id = None
    request_exp = None
    if request is not None:
        ask = request
        if hasattr(request, "approval_request"):
            decision_id = request.decision_id
            ask = request.approval_request
        elif isinstance(request, Mapping) and "approval_request" in request:
            decision_id = request.get("decision_id")
            ask = request["approval_request"]
        if not isinstance(ask, Mapping):
            raise ValueError("the decision carries no approval_request: it cannot be approved")
        action_digest = ask["action_digest"]
        aud = ask["audience"]
        reasons = [r["policy"] for r in ask["reasons"]]
        request_exp = _unix_seconds(datetime.fromisoformat(ask["expires_at"].replace("Z", "+00:00")))
    if action_digest is None or aud is None or not reasons:
        raise ValueError("give request=, or action_digest=, aud= and reasons=")
    return _native.approval_sign(
        private_key_pem,
        alg,
        kid,
        iss,
        aud,
        action_digest,
        list(reasons),
        _unix_seconds(iat),
        lifetime_s,
        jti,
        decision_id,
        request_exp,
    )
