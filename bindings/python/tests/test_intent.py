"""Signed intents through Python: the shared vectors, PyJWT interop both
ways, and the replay check inside ``Engine.decide``."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

import jwt
import pytest

import agentriage
from agentriage import intent

from conftest import BASES, REFERENCE_BUNDLE, REPO, TESTDATA

VECTORS = json.loads((TESTDATA / "intents" / "vectors.json").read_text(encoding="utf-8"))
KEYS = json.loads((REPO / VECTORS["keys"]).read_text(encoding="utf-8"))
AUDIENCE = VECTORS["audience"]
TIME = datetime.fromisoformat(VECTORS["time"].replace("Z", "+00:00"))
PAYMENTS = "spiffe://acme.example/ns/finance/sa/payments"
CUSTOMS = "spiffe://acme.example/ns/compliance/sa/customs"


def private_key(name: str) -> str:
    return (TESTDATA / "intents" / "keys" / f"{name}.pem").read_text(encoding="utf-8")


def jwk(kid: str) -> dict[str, Any]:
    return next(k for k in KEYS["keys"] if k["kid"] == kid)


def check(vector: dict[str, Any]) -> dict[str, Any]:
    return intent.verify(
        vector["token"],
        keys=KEYS,
        audience=AUDIENCE,
        principal=vector["principal"],
        action=vector["action"],
        resource=vector["resource"],
        time=TIME,
        clock_skew_s=VECTORS["clock_skew_s"],
        max_lifetime_s=VECTORS["max_lifetime_s"],
    )


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=[v["name"] for v in VECTORS["valid"]])
def test_valid_vectors_verify(vector: dict[str, Any]) -> None:
    fact = check(vector)
    assert fact["status"] == "verified", fact
    assert fact["iss"] == vector["principal"]


@pytest.mark.parametrize(
    "vector", VECTORS["invalid"], ids=[v["name"] for v in VECTORS["invalid"]]
)
def test_broken_vectors_fail_their_check(vector: dict[str, Any]) -> None:
    fact = check(vector)
    assert fact["status"] == "invalid"
    assert fact["error"] == vector["check"], fact


def payment_request(token: str | None) -> dict[str, Any]:
    request = copy.deepcopy(BASES["payment"])
    if token is not None:
        request["intent"] = token
    return request


def pyjwt_claims(jti: str) -> dict[str, Any]:
    iat = int(TIME.timestamp()) - 60
    return {
        "iss": PAYMENTS,
        "aud": AUDIENCE,
        "jti": jti,
        "iat": iat,
        "exp": iat + 600,
        "act": "payment.release",
        "res": "invoice:INV-88",
        "purpose": "settle invoice INV-88",
    }


@pytest.mark.parametrize(("alg", "key", "kid"), [("EdDSA", "payments", "payments-2026-11")])
def test_pyjwt_signed_intents_verify_in_decide_once(alg: str, key: str, kid: str) -> None:
    token = jwt.encode(pyjwt_claims("pyjwt-1"), private_key(key), algorithm=alg, headers={"kid": kid})
    engine = agentriage.Engine.from_bundle(REFERENCE_BUNDLE)
    first = engine.decide(payment_request(token))
    assert first.outcome == "execute", first.reasons
    again = engine.decide(payment_request(token))
    assert again.outcome == "reject"
    assert again.policy_ids == ["R14.intent_invalid"]
    assert "`replay`" in again.reasons[0].message
    missing = engine.decide(payment_request(None))
    assert missing.outcome == "escalate"
    assert missing.policy_ids == ["R14.intent_missing"]


def test_pyjwt_es256_intent_verifies() -> None:
    claims = {
        **pyjwt_claims("pyjwt-es256"),
        "iss": CUSTOMS,
        "act": "customs.declare",
        "res": "declaration:CD-7",
        "scope": "customs:export eu",
    }
    token = jwt.encode(
        claims, private_key("customs"), algorithm="ES256", headers={"kid": "customs-2026-11"}
    )
    fact = intent.verify(
        token,
        keys=json.dumps(KEYS),
        audience=AUDIENCE,
        principal=CUSTOMS,
        action="customs.declare",
        resource="declaration:CD-7",
        time=TIME,
    )
    assert fact["status"] == "verified", fact
    assert fact["alg"] == "ES256"
    assert fact["scope"] == ["customs:export", "eu"]


def test_pyjwt_hs256_with_the_public_key_is_refused() -> None:
    secret = jwk("payments-2026-11")["x"]
    token = jwt.encode(
        pyjwt_claims("pyjwt-hs"), secret, algorithm="HS256", headers={"kid": "payments-2026-11"}
    )
    fact = check({**VECTORS["valid"][0], "token": token})
    assert (fact["status"], fact["error"]) == ("invalid", "algorithm")


# The vectors were signed at a fixed time: PyJWT checks signature, audience
# and claims here, and the time window is checked by the tests above.
NO_TIME = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=[v["name"] for v in VECTORS["valid"]])
def test_vectors_signed_here_verify_with_pyjwt(vector: dict[str, Any]) -> None:
    kid = jwt.get_unverified_header(vector["token"])["kid"]
    key = jwt.PyJWK(jwk(kid))
    claims = jwt.decode(
        vector["token"],
        key=key,
        algorithms=["EdDSA", "ES256"],
        audience=AUDIENCE,
        options=NO_TIME,
    )
    assert claims["iss"] == vector["principal"]
    assert claims["act"] == vector["action"]


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_keygen_sign_verify_round_trip_and_pyjwt_agrees(alg: str) -> None:
    pem, public = intent.keygen(alg, kid="k1", iss=PAYMENTS)
    assert public["iss"] == PAYMENTS and "d" not in public
    token = intent.sign(
        pem,
        alg=alg,
        kid="k1",
        iss=PAYMENTS,
        aud=AUDIENCE,
        act="payment.release",
        res="invoice:INV-88",
        purpose="settle",
        iat=TIME,
        lifetime_s=300,
        scope=["payments"],
    )
    fact = intent.verify(
        token,
        keys={"keys": [public]},
        audience=AUDIENCE,
        principal=PAYMENTS,
        action="payment.release",
        resource="invoice:INV-88",
        time=TIME,
    )
    assert fact["status"] == "verified", fact
    assert fact["exp"] - fact["iat"] == 300
    claims = jwt.decode(
        token, key=jwt.PyJWK(public), algorithms=[alg], audience=AUDIENCE, options=NO_TIME
    )
    assert claims["purpose"] == "settle"
    # PyJWT loads the private key too (PKCS#8 PEM).
    other = jwt.encode(
        {**pyjwt_claims("rt"), "iat": int(TIME.timestamp())}, pem, algorithm=alg, headers={"kid": "k1"}
    )
    assert jwt.decode(other, key=jwt.PyJWK(public), algorithms=[alg], audience=AUDIENCE, options=NO_TIME)


def test_signing_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="not a supported algorithm"):
        intent.keygen("RS256", kid="k", iss=PAYMENTS)
    with pytest.raises(ValueError, match="iss"):
        intent.sign(
            private_key("payments"),
            kid="payments-2026-11",
            iss="",
            aud=AUDIENCE,
            act="a",
            res="t:i",
            purpose="p",
        )
    with pytest.raises(ValueError, match="keys\\[0\\].kty"):
        intent.verify(
            "a.b.c",
            keys={"keys": [{"kty": "RSA"}]},
            audience=AUDIENCE,
            principal=PAYMENTS,
            action="a",
            resource=None,
        )
    with pytest.raises(ValueError, match="timezone"):
        intent.sign(
            private_key("payments"),
            kid="payments-2026-11",
            iss=PAYMENTS,
            aud=AUDIENCE,
            act="a",
            res="t:i",
            purpose="p",
            iat=datetime(2026, 1, 1),
        )
