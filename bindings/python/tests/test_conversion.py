"""Python values reach the policies exactly.

The echo bundle (tests/bundles/echo) returns, per context key, what its Rego
policy received: the value, its Rego type and how comparisons came out.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

import agentriage


def received(echo: agentriage.Engine, **context: Any) -> dict[str, dict[str, Any]]:
    decision = echo.decide(
        {"principal": {"id": "agent"}, "action": {"name": "probe"}, "context": context}
    )
    seen = {}
    for obligation in decision.obligations:
        assert obligation.id.startswith("echo:")
        seen[obligation.id[len("echo:"):]] = obligation.params
    assert set(seen) == set(context), decision
    return seen


@pytest.mark.parametrize(
    ("value", "rego_type", "json_text"),
    [
        (False, "boolean", "false"),
        (True, "boolean", "true"),
        (None, "null", "null"),
        (0, "number", "0"),
        (-1, "number", "-1"),
        ("", "string", '""'),
        ("False", "string", '"False"'),
        ({}, "object", "{}"),
        ([], "array", "[]"),
        ((), "array", "[]"),
        ([False, None, 0], "array", "[false,null,0]"),
        ({"a": {}}, "object", '{"a":{}}'),
        (b"bytes", "string", '"bytes"'),
        ("ünïcödé ✓", "string", '"ünïcödé ✓"'),
    ],
)
def test_value_reaches_policy(echo: agentriage.Engine, value: Any, rego_type: str, json_text: str) -> None:
    seen = received(echo, probe=value)["probe"]
    assert seen["type"] == rego_type
    assert seen["json"] == json_text
    expected = list(value) if isinstance(value, tuple) else value
    if isinstance(value, bytes):
        expected = value.decode()
    assert seen["value"] == expected
    assert type(seen["value"]) is type(expected)


def test_false_none_and_zero_compare_as_themselves(echo: agentriage.Engine) -> None:
    seen = received(echo, f=False, n=None, i=0, x=0.0, e={}, l=[], s="")
    assert seen["f"]["is_false"] is True and seen["f"]["is_null"] is False
    assert seen["n"]["is_null"] is True and seen["n"]["is_false"] is False
    assert seen["i"]["is_zero"] is True and seen["i"]["is_false"] is False
    assert seen["x"]["is_zero"] is True and seen["x"]["type"] == "number"
    for key in ("e", "l", "s"):
        assert seen[key]["is_empty"] is True
        assert seen[key]["is_false"] is False and seen[key]["is_null"] is False


def test_incident_mode_false_fires_nothing(echo: agentriage.Engine) -> None:
    """The regression seen in published regorus bindings: False treated as true."""
    def decide(flag: Any) -> agentriage.Decision:
        return echo.decide(
            {"principal": {"id": "agent"}, "action": {"name": "probe"}, "context": {"incident_mode": flag}}
        )

    assert decide(False).outcome == agentriage.Outcome.EXECUTE
    assert decide(False).policy_ids == ["agentriage.allow"]
    # Rego holds a bare term unless it is false or undefined: null and 0 are
    # values, not false, and reach the policy as such.
    assert decide(None).policy_ids == ["echo.flag_set"]
    assert decide(0).policy_ids == ["echo.flag_set"]
    assert set(decide(True).policy_ids) == {"echo.flag_true", "echo.flag_set"}
    assert decide(True).outcome == agentriage.Outcome.REJECT
    absent = echo.decide({"principal": {"id": "agent"}, "action": {"name": "probe"}})
    assert absent.outcome == agentriage.Outcome.EXECUTE


def test_incident_mode_false_through_reference_pack(engine: agentriage.Engine) -> None:
    from conftest import BASES

    base = dict(BASES["reroute"])
    base["context"] = {"workflow_id": "wf-1", "incident_mode": False, "site": "dc-1"}
    assert engine.decide(base).outcome == agentriage.Outcome.EXECUTE
    base["context"] = {**base["context"], "incident_mode": True}
    decision = engine.decide(base)
    assert decision.outcome == agentriage.Outcome.ESCALATE
    assert decision.policy_ids == ["R6.incident_mode"]


@pytest.mark.parametrize(
    "number",
    [
        2**53,
        2**53 + 1,
        2**63 - 1,
        -(2**63),
        2**64 - 1,
        0.1,
        1e308,
        -2.5e-308,
        123456789.123456789,
    ],
)
def test_numbers_keep_their_value(echo: agentriage.Engine, number: float) -> None:
    seen = received(echo, n=number)["n"]
    assert seen["type"] == "number"
    assert type(json.loads(seen["json"])) is type(number)
    # What the policy received, printed by the policy (`sprintf("%v")`): exact.
    assert type(number)(seen["text"]) == number, seen
    # `json.marshal` in regorus and the obligation params in the core go
    # through serde_json's default float parser, which may be one ulp off.
    if isinstance(number, int):
        assert seen["value"] == number
    else:
        assert math.isclose(seen["value"], number, rel_tol=4e-16, abs_tol=0.0)


def test_keys_and_order_are_kept(echo: agentriage.Engine) -> None:
    value = {"z": 1, "a": {"nested": [1, 2, {"deep": False}]}, "": "empty key"}
    seen = received(echo, v=value)["v"]
    assert seen["value"] == value


def test_dict_subclasses_and_str_subclasses(echo: agentriage.Engine) -> None:
    import collections
    import enum

    class Colour(str, enum.Enum):
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    seen = received(echo, c=Colour.RED, l=Level.HIGH, d=collections.OrderedDict(a=1))
    assert (seen["c"]["type"], seen["c"]["value"]) == ("string", "red")
    assert (seen["l"]["type"], seen["l"]["value"]) == ("number", 3)
    assert seen["d"]["value"] == {"a": 1}


def test_request_is_not_modified(engine: agentriage.Engine) -> None:
    import copy

    from conftest import BASES

    request = copy.deepcopy(BASES["reroute"])
    before = copy.deepcopy(request)
    engine.decide(request)
    assert request == before
