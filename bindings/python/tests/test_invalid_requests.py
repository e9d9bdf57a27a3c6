"""Requests that break the contract (testdata/invalid-requests.json) and
Python values that JSON cannot hold: always an agentriage exception naming
the JSON path, never a decision."""

from __future__ import annotations

import collections
import math
import types
from typing import Any

import pytest

import agentriage

from conftest import INVALID

READER = {"id": "spiffe://acme.example/ns/analytics/sa/reporter"}


def request(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"principal": dict(READER), "action": {"name": "shipment.read"}}
    base.update(fields)
    return base


@pytest.mark.parametrize("case", INVALID["cases"], ids=[c["name"] for c in INVALID["cases"]])
def test_shared_invalid_request(engine: agentriage.Engine, case: dict[str, Any]) -> None:
    sent = case["text"] if "text" in case else case["request"]
    with pytest.raises(agentriage.InvalidRequestError) as caught:
        engine.decide(sent)
    error = caught.value
    assert (error.kind, error.path) == (case["kind"], case["path"]), str(error)
    assert error.index is None
    assert isinstance(error, agentriage.Error) and isinstance(error, ValueError)
    assert error.path in str(error)


@pytest.mark.parametrize(
    ("value", "kind", "path"),
    [
        (["principal"], "type", "$"),
        (("principal",), "type", "$"),
        (None, "type", "$"),
        (42, "type", "$"),
        ({"principal": ["x"], "action": {"name": "a"}}, "type", "principal"),
        (request(context={1: "one"}), "type", "context"),
        (request(context={"nested": {("a", "b"): 1}}), "type", "context.nested"),
        (request(context={"score": math.nan}), "value", "context.score"),
        (request(anomaly={"score": math.nan}), "value", "anomaly.score"),
        (request(anomaly={"score": math.inf}), "value", "anomaly.score"),
        (request(context={"x": -math.inf}), "value", "context.x"),
        (request(context={"blob": b"\xff\xfe"}), "value", "context.blob"),
        (request(context={"items": [1, bytearray(b"\xc3")]}), "value", "context.items[1]"),
        (request(context={"big": 2**64}), "value", "context.big"),
        (request(context={"small": -(2**63) - 1}), "value", "context.small"),
        (request(context={"tags": {"a", "b"}}), "type", "context.tags"),
        (request(context={"when": object()}), "type", "context.when"),
        (request(context={"text": "\ud800"}), "value", "context.text"),
        ("\ud800", "syntax", "$"),
        (b"\xff{}", "syntax", "$"),
        ("", "syntax", "$"),
    ],
)
def test_python_values_json_cannot_hold(
    engine: agentriage.Engine, value: Any, kind: str, path: str
) -> None:
    with pytest.raises(agentriage.InvalidRequestError) as caught:
        engine.decide(value)
    assert (caught.value.kind, caught.value.path) == (kind, path), str(caught.value)


def test_too_deep_is_refused(engine: agentriage.Engine) -> None:
    deep: Any = 1
    for _ in range(100):
        deep = [deep]
    with pytest.raises(agentriage.InvalidRequestError) as caught:
        engine.decide(request(context={"deep": deep}))
    assert caught.value.kind == "too_deep"


def test_depth_limit_matches_text(engine: agentriage.Engine) -> None:
    # The request itself is level 1, `context` level 2: 62 more lists fit.
    ok: Any = 1
    for _ in range(agentriage.MAX_DEPTH - 2):
        ok = [ok]
    engine.decide(request(context={"deep": ok}))
    with pytest.raises(agentriage.InvalidRequestError) as caught:
        engine.decide(request(context={"deep": [ok]}))
    assert caught.value.kind == "too_deep"


def test_self_referencing_values_raise(engine: agentriage.Engine) -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(agentriage.InvalidRequestError) as caught:
        engine.decide(request(context=loop))
    assert caught.value.kind == "too_deep"
    items: list[Any] = []
    items.append(items)
    with pytest.raises(agentriage.InvalidRequestError):
        engine.decide(request(context={"items": items}))


def test_text_over_one_mebibyte_is_refused(engine: agentriage.Engine) -> None:
    import json

    big = json.dumps(request(context={"pad": "x" * agentriage.MAX_REQUEST_BYTES}))
    with pytest.raises(agentriage.InvalidRequestError) as caught:
        engine.decide(big)
    assert caught.value.kind == "too_large"


def test_batch_error_names_the_request(engine: agentriage.Engine) -> None:
    good = request()
    with pytest.raises(agentriage.InvalidRequestError) as caught:
        engine.decide_many([good, good, request(anomaly={"score": 2})])
    assert (caught.value.index, caught.value.path) == (2, "anomaly.score")
    assert str(caught.value).startswith("request 2: ")
    with pytest.raises(agentriage.InvalidRequestError) as caught:
        engine.decide_many([good, request(context={"x": math.nan})])
    assert (caught.value.index, caught.value.path) == (1, "context.x")


def test_batch_container_must_be_an_iterable_of_requests(engine: agentriage.Engine) -> None:
    for not_a_batch in ("{}", b"{}", request(), 42):
        with pytest.raises(agentriage.InvalidRequestError) as caught:
            engine.decide_many(not_a_batch)  # type: ignore[arg-type]
        assert caught.value.kind == "type"


def test_other_mappings_are_accepted(engine: agentriage.Engine) -> None:
    ordered = collections.OrderedDict(request())
    assert engine.decide(ordered).outcome == "execute"
    proxy = types.MappingProxyType(request(context=types.MappingProxyType({"site": "dc-1"})))
    assert engine.decide(proxy).outcome == "execute"


def test_errors_pickle() -> None:
    import pickle

    error = agentriage.InvalidRequestError("bad", kind="value", path="anomaly.score", index=3)
    again = pickle.loads(pickle.dumps(error))
    assert (again.kind, again.path, again.message, again.index) == ("value", "anomaly.score", "bad", 3)
    assert str(again) == str(error)
    bundle = agentriage.BundleError("oops", kind="rego", file="a.rego", line=7)
    again_b = pickle.loads(pickle.dumps(bundle))
    assert (again_b.kind, again_b.file, again_b.line) == ("rego", "a.rego", 7)
    assert str(again_b) == "a.rego:7: oops"
