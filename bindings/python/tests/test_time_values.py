"""Time fields of the contract: aware datetimes accepted, naive ones and epoch numbers refused.

The same cases run in the Node module (bindings/node/test/time-values.test.js)
with `Date` objects, and give the same errors.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import agentriage
from guard_support import CONTEXT, WORKING_HOURS

UTC = dt.timezone.utc
T = dt.datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


def request(time: Any = "2026-11-24T10:30:00Z", expires: Any = "2026-11-24T10:35:00Z", verified: Any = "2026-11-24T10:25:00Z") -> dict[str, Any]:
    return {
        "time": time,
        "principal": {
            "id": "spiffe://acme.example/ns/logistics/sa/router",
            "type": "agent",
            "trust_zone": "cloud",
            "credential": {"issuer": "spiffe://acme.example/spire", "expires_at": expires},
            "attestation": {"status": "verified", "kind": "tpm", "verified_at": verified},
        },
        "action": {"name": "shipment.reroute"},
        "resource": {"type": "shipment", "id": "SH-1", "attributes": {"value_usd": 12_000, "state": "in_transit"}},
        "context": CONTEXT,
    }


FIELDS = {
    "time": "time",
    "expires": "principal.credential.expires_at",
    "verified": "principal.attestation.verified_at",
}


def test_aware_datetimes_decide_as_their_rfc3339_text(engine: agentriage.Engine) -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    as_text = engine.decide(request())
    as_datetimes = engine.decide(
        request(time=T, expires=(T + dt.timedelta(minutes=5)).astimezone(plus2), verified=T - dt.timedelta(minutes=5))
    )
    assert as_text.outcome == as_datetimes.outcome == "execute"
    assert as_text.policy_ids == as_datetimes.policy_ids


def test_an_expired_credential_given_as_datetime_is_seen_as_expired(engine: agentriage.Engine) -> None:
    d = engine.decide(request(time=T, expires=T - dt.timedelta(seconds=1)))
    assert d.outcome == "reject"


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_a_naive_datetime_is_refused(engine: agentriage.Engine, field: str) -> None:
    with pytest.raises(agentriage.InvalidRequestError) as e:
        engine.decide(request(**{field: dt.datetime(2026, 11, 24, 10, 30)}))
    assert (e.value.kind, e.value.path) == ("value", FIELDS[field])
    assert "naive datetime" in str(e.value)


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_epoch_seconds_are_refused_with_a_hint(engine: agentriage.Engine, field: str) -> None:
    with pytest.raises(agentriage.InvalidRequestError) as e:
        engine.decide(request(**{field: 1764611100}))
    assert (e.value.kind, e.value.path) == ("type", FIELDS[field])
    assert e.value.message == "expected an RFC 3339 string; got 1764611100 \u2014 seconds since epoch?"


def test_epoch_milliseconds_and_floats_get_their_unit(engine: agentriage.Engine) -> None:
    with pytest.raises(agentriage.InvalidRequestError) as e:
        engine.decide(request(time=1764611100000))
    assert e.value.message == "expected an RFC 3339 string; got 1764611100000 \u2014 milliseconds since epoch?"
    with pytest.raises(agentriage.InvalidRequestError) as e:
        engine.decide(request(time=1764611100.5))
    assert e.value.message == "expected an RFC 3339 string; got 1764611100.5 \u2014 seconds since epoch?"


def test_the_async_path_gives_the_same_errors(engine: agentriage.Engine) -> None:
    import asyncio

    with pytest.raises(agentriage.InvalidRequestError) as e:
        asyncio.run(engine.decide_async(request(time=1764611100)))
    assert e.value.message == "expected an RFC 3339 string; got 1764611100 \u2014 seconds since epoch?"
    assert WORKING_HOURS == T
