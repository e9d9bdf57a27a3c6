"""The typed shortcut for request dicts against the general path.

A plain request `dict` is read straight into the core's typed request
(bindings/python/src/convert/typed.rs); everything else goes the general
way (Python values to JSON values, read by the core). The shortcut must
never accept what the general path refuses, nor build a different request:
these tests compare both, through the `_request_paths` test hook, on every
request the test data holds and on many mutations of them.
"""

from __future__ import annotations

import copy
import datetime
import json
import types
from collections.abc import Iterator
from typing import Any

import pytest

from agentriage import _native

from conftest import BASES, INVALID, STRICT, decision_cases, sample_lines

pytestmark = pytest.mark.skipif(
    not hasattr(_native, "_request_paths") and not STRICT,
    reason="needs the module built with the test-hooks feature",
)


def paths(request: Any) -> tuple[str | None, str, bool | None]:
    result: tuple[str | None, str, bool | None] = _native._request_paths(request)  # type: ignore[attr-defined]
    return result


def assert_agree(request: Any) -> bool:
    """The shortcut built the general path's request, or left it to it.
    True when the shortcut took the request."""
    typed, general, same = paths(request)
    if typed is None:
        return False
    assert not general.startswith(("conversion error", "request error")), (
        f"the shortcut accepted a request the general path refuses: {general}\n{request!r}"
    )
    assert same is True, f"the paths built different requests:\n{typed}\n{general}"
    assert json.loads(typed) == json.loads(general)
    return True


def corpus() -> list[Any]:
    requests: list[Any] = [copy.deepcopy(b) for b in BASES.values()]
    requests += [request for _, request, _ in decision_cases()]
    for line in sample_lines():
        try:
            requests.append(json.loads(line))
        except ValueError:
            continue
    return requests


# Values a field may be set to: of every type the general path reads, and
# some it refuses.
REPLACEMENTS: list[Any] = [
    None,
    "",
    "x",
    "2026-11-21T14:05:00Z",
    "2026-11-21T14:05:00",
    "4bf92f3577b34da6a3ce929d0e0e4736",
    "user",
    "service",
    "facts",
    0,
    1,
    -1,
    0.5,
    1.5,
    2**63,
    2**64,
    float("nan"),
    float("inf"),
    True,
    False,
    [],
    ["a"],
    [""],
    ["a", 1],
    ("a",),
    {},
    {"a": 1},
    {"facts": 1},
    {1: "a"},
    b"bytes",
    b"\xff",
    bytearray(b"ba"),
    datetime.datetime(2026, 11, 21, 14, 5, tzinfo=datetime.timezone.utc),
    datetime.datetime(2026, 11, 21, 14, 5),
    types.MappingProxyType({"a": 1}),
    range(2),
    {1, 2},
    object(),
    "\ud800",
]


# Every member name of the contract's objects, and two that are none.
FIELD_NAMES = [
    "trace_id", "traceparent", "time", "principal", "action", "resource", "context",
    "anomaly", "intent", "approval", "id", "type", "trust_zone", "roles", "delegation",
    "credential", "attestation", "on_behalf_of", "attributes", "issuer", "expires_at",
    "status", "kind", "verified_at", "name", "score", "features", "scopes",
    "unknown", "facts",
]  # fmt: skip


def leaves(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every value in `value`, containers included."""
    yield at
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from leaves(item, (*at, i))


def replaced(request: Any, at: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(request)
    if not at:
        return value
    target = out
    for step in at[:-1]:
        target = target[step]
    target[at[-1]] = value
    return out


def removed(request: Any, at: tuple[Any, ...]) -> Any:
    out = copy.deepcopy(request)
    target = out
    for step in at[:-1]:
        target = target[step]
    del target[at[-1]]
    return out


def test_the_shortcut_takes_the_typical_requests() -> None:
    # The shortcut is really used: every base of the pack's suites is plain.
    for name, base in BASES.items():
        assert assert_agree(copy.deepcopy(base)), f"base {name} went the general way"


def test_both_paths_agree_on_every_request_of_the_test_data() -> None:
    taken = sum(assert_agree(request) for request in corpus())
    assert taken >= len(BASES)


def test_both_paths_agree_on_the_invalid_requests() -> None:
    for case in INVALID["cases"]:
        if "request" in case:
            typed, general, _ = paths(case["request"])
            assert typed is None, f"{case['name']}: the shortcut accepted it"
            assert general.startswith(("conversion error", "request error")), case["name"]


def test_both_paths_agree_on_every_field_set_to_every_kind_of_value() -> None:
    seen = 0
    for base in BASES.values():
        for at in leaves(base):
            for value in REPLACEMENTS:
                assert_agree(replaced(base, at, value))
                seen += 1
    assert seen > 1000


def test_both_paths_agree_with_fields_removed_or_added() -> None:
    for base in BASES.values():
        for at in leaves(base):
            if at:
                assert_agree(removed(base, at))
            target = base
            for step in at:
                target = target[step]
            if isinstance(target, dict):
                for key in FIELD_NAMES:
                    for value in REPLACEMENTS:
                        assert_agree(replaced(base, (*at, key), value))


def test_anomaly_features_and_on_behalf_of_are_read_alike() -> None:
    base = copy.deepcopy(next(iter(BASES.values())))
    base["anomaly"] = {"features": {"amount": 12, "hour": 3.5, "big": 2**63}}
    assert assert_agree(base)
    for features in ({"a": True}, {"a": None}, {"a": "1"}, {"a": float("nan")}, {1: 1.0}, [], None):
        assert_agree(replaced(base, ("anomaly", "features"), features))
    assert_agree(replaced(base, ("anomaly",), {"features": {"a": 1}, "score": 0.5}))
    base["principal"]["on_behalf_of"] = {
        "id": "alice@acme.example",
        "type": "user",
        "roles": ["buyer"],
        "scopes": ["payments:release"],
    }
    assert assert_agree(base)
    for at in leaves(base["principal"]["on_behalf_of"], ("principal", "on_behalf_of")):
        for value in REPLACEMENTS:
            assert_agree(replaced(base, at, value))


def refused(general: str) -> bool:
    return general.startswith(("conversion error", "request error"))


def test_the_byte_limit_is_counted_alike() -> None:
    # At the limit both paths take the request; one byte over, both refuse
    # it: the shortcut counts JSON text exactly, not just conservatively.
    limit: int = _native.MAX_REQUEST_BYTES
    base = copy.deepcopy(next(iter(BASES.values())))
    base["context"]["pad"] = ""
    base["principal"]["trust_zone"] = ""
    size = len(json.dumps(base, separators=(",", ":"), ensure_ascii=False).encode())
    for extra in (-1, 0, 1):
        # In a free-form map, and in a typed field as escaped characters
        # (a `"` takes two bytes of JSON text).
        for at, text in (
            (("context", "pad"), "a" * (limit - size + extra)),
            (("principal", "trust_zone"), '"' * ((limit - size) // 2) + "a" * ((limit - size) % 2 + extra)),
        ):
            request = replaced(base, at, text)
            typed, general, _ = paths(request)
            assert refused(general) == (extra > 0), (at, extra, general[:200])
            assert (typed is not None) == (extra <= 0), (at, extra)
            if typed is not None:
                assert assert_agree(request)


def test_deep_nesting_is_refused_alike() -> None:
    base = copy.deepcopy(next(iter(BASES.values())))
    limit: int = _native.MAX_DEPTH
    for depth in range(limit - 3, limit + 2):
        value: Any = 1
        for _ in range(depth):
            value = [value]
        assert_agree(replaced(base, ("context", "deep"), value))
