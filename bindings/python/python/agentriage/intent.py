"""Signed intents: generate keys, sign intents, verify them.

An intent is a compact JWS (EdDSA or ES256) over JWT claims: ``iss`` (the
issuing agent), ``aud``, ``jti``, ``iat``, optional ``nbf``, ``exp``, ``act``
(the action), ``res`` (``type:id``), ``purpose`` and optional ``scope``. Any
JOSE library (PyJWT, ``jose`` on npm) can make and check one; these
functions do it without one::

    from agentriage import intent

    private_pem, jwk = intent.keygen("EdDSA", kid="pay-1", iss=AGENT_ID)
    token = intent.sign(private_pem, alg="EdDSA", kid="pay-1", iss=AGENT_ID,
                        aud=RECEIVER_ID, act="payment.release",
                        res="invoice:INV-88", purpose="settle INV-88")

The engine verifies a request's ``intent`` itself (replay cache included)
and shows policies the result as ``facts.intent``; :func:`verify` runs the
same checks on its own, without recording the ``jti``.
"""

from __future__ import annotations

import json
import time as _time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from agentriage import _native

__all__ = ["keygen", "sign", "verify"]


def keygen(alg: str = "EdDSA", *, kid: str, iss: str) -> tuple[str, dict[str, Any]]:
    """A new key: ``(private_key_pem, public_jwk)``.

    ``alg`` is ``"EdDSA"`` (Ed25519) or ``"ES256"`` (P-256). The private key
    is PKCS#8 PEM (keep it secret); the public JWK carries ``kid``, ``alg``,
    ``use`` and ``iss`` (the issuer the key is bound to) and goes into the
    receiver's key set (``{"keys": [...]}``).
    """
    pem, jwk = _native.intent_keygen(alg, kid, iss)
    return pem, json.loads(jwk)


def _unix_seconds(t: datetime | float | None, what: str = "an intent") -> int:
    """Seconds since the epoch of ``t`` (now when None); shared with ``approval``."""
    if t is None:
        return int(_time.time())
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise ValueError(f"a datetime for {what} must be timezone-aware")
        return int(t.timestamp())
    return int(t)


def sign(
    private_key_pem: str,
    *,
    alg: str = "EdDSA",
    kid: str,
    iss: str,
    aud: str | Sequence[str],
    act: str,
    res: str,
    purpose: str,
    iat: datetime | float | None = None,
    lifetime_s: int = 300,
    jti: str | None = None,
    nbf: datetime | float | None = None,
    scope: Sequence[str] = (),
) -> str:
    """Signs an intent; returns the compact JWS.

    ``iat`` defaults to now and ``jti`` to a fresh UUID; ``exp`` is
    ``iat + lifetime_s``. Raises ``ValueError`` for an unusable key or claim
    (``iss`` must be the issuer the key is bound to for the receiver).
    """
    audiences = [aud] if isinstance(aud, str) else list(aud)
    return _native.intent_sign(
        private_key_pem,
        alg,
        kid,
        iss,
        audiences,
        act,
        res,
        purpose,
        _unix_seconds(iat),
        lifetime_s,
        jti,
        None if nbf is None else _unix_seconds(nbf),
        list(scope),
    )


def verify(
    token: str,
    *,
    keys: str | Mapping[str, Any],
    audience: str,
    principal: str,
    action: str,
    resource: str | None,
    time: datetime | float | None = None,
    clock_skew_s: int = 60,
    max_lifetime_s: int = 900,
) -> dict[str, Any]:
    """Verifies ``token`` for a request by ``principal`` for ``action`` on
    ``resource`` (``"type:id"``), at ``time`` (default now).

    ``keys`` is a JWKS, as text or as a dict. Returns the fact policies would
    see: ``{"status": "verified", "iss": ..., "purpose": ..., ...}`` or
    ``{"status": "invalid", "error": "<check>", "message": ...}``. The
    ``jti`` is not recorded: replay protection is the engine's job.
    Raises ``ValueError`` for a key set that cannot be read.
    """
    keys_json = keys if isinstance(keys, str) else json.dumps(keys)
    if time is None:
        nanos = None
    elif isinstance(time, datetime):
        if time.tzinfo is None:
            raise ValueError("a datetime for an intent must be timezone-aware")
        nanos = int(time.timestamp()) * 1_000_000_000 + time.microsecond * 1000
    else:
        nanos = int(time * 1_000_000_000)
    fact = _native.intent_verify(
        token,
        keys_json,
        audience,
        principal,
        action,
        resource,
        nanos,
        clock_skew_s,
        max_lifetime_s,
    )
    result: dict[str, Any] = json.loads(fact)
    return result
