"""Python requests hold the limits of JSON text.

Conversion counts the bytes the request takes as compact JSON text and its
depth as it goes, and stops with the error JSON text gets (`too_large` at
`$`, `too_deep`) as soon as a limit is crossed: nothing over the limits is
decided, and an endless container stops after about a megabyte.
"""

from __future__ import annotations

import collections
import datetime
import json
import threading
import types
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

import agentriage

MAX = agentriage.MAX_REQUEST_BYTES


def request(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"principal": {"id": "agent"}, "action": {"name": "probe"}}
    base.update(fields)
    return base


def refused(engine: agentriage.Engine, value: Any) -> agentriage.InvalidRequestError:
    with pytest.raises(agentriage.InvalidRequestError) as caught:
        engine.decide(value)
    return caught.value


def text_of(value: Any) -> str:
    """The compact JSON text serde_json writes for `value`."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def watchdog(seconds: float, f: Any) -> Any:
    """Runs `f` in a thread; fails if it has not returned after `seconds`
    (a guard against hangs, far above the expected time)."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = f()
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            result["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in result:
        raise result["error"]
    return result.get("value")


def test_fifty_megabyte_string_in_a_dict_is_too_large(echo: agentriage.Engine) -> None:
    big = request(context={"note": "x" * (50 * 1024 * 1024)})
    error = refused(echo, big)
    assert (error.kind, error.path) == ("too_large", "$"), str(error)
    assert "`context.note`" in error.message
    # The same request as JSON text gets the same error.
    as_text = refused(echo, text_of(big))
    assert (as_text.kind, as_text.path) == ("too_large", "$")
    as_bytes = refused(echo, text_of(big).encode())
    assert (as_bytes.kind, as_bytes.path) == ("too_large", "$")


def test_large_non_ascii_and_bytes_values_are_too_large(echo: agentriage.Engine) -> None:
    # 400k characters of 3 UTF-8 bytes each: under the limit in characters,
    # over it in bytes.
    wide = "✓" * 400_000
    assert len(wide) < MAX < len(wide.encode())
    assert refused(echo, request(context={"w": wide})).kind == "too_large"
    assert refused(echo, request(context={"b": b"x" * MAX})).kind == "too_large"
    assert refused(echo, request(context={"b": bytearray(MAX)})).kind == "too_large"


def test_million_element_list_is_too_large(echo: agentriage.Engine) -> None:
    items = [0] * 1_000_000
    error = refused(echo, request(context={"items": items}))
    assert (error.kind, error.path) == ("too_large", "$"), str(error)
    assert refused(echo, text_of(request(context={"items": items}))).kind == "too_large"
    assert refused(echo, request(context={"items": tuple(items)})).kind == "too_large"


def test_hundred_thousand_key_dict_is_too_large(echo: agentriage.Engine) -> None:
    wide = {f"k{i}": i for i in range(100_000)}
    assert len(text_of(wide).encode()) > MAX
    error = refused(echo, request(context=wide))
    assert (error.kind, error.path) == ("too_large", "$"), str(error)
    assert refused(echo, text_of(request(context=wide))).kind == "too_large"


def test_limit_is_the_bytes_of_compact_json_text(echo: agentriage.Engine) -> None:
    """At the limit exactly a request is decided, one byte over it is refused,
    as a dict and as text alike; escapes and non-ASCII text are counted as
    serde_json writes them."""
    tricky = 'quote " backslash \\ newline \n tab \t nul \x00 unit \x1f del \x7f é ✓ 😀 '

    def padded(total: int) -> dict[str, Any]:
        value = request(context={"tricky": tricky, "numbers": [0, -1, 2**63 - 1, 1.5], "pad": ""})
        missing = total - len(text_of(value).encode())
        assert missing > 0
        value["context"]["pad"] = "p" * missing
        assert len(text_of(value).encode()) == total
        return value

    at_limit = padded(MAX)
    assert echo.decide(at_limit).outcome == "execute"
    assert echo.decide(text_of(at_limit)).outcome == "execute"
    over = padded(MAX + 1)
    assert refused(echo, over).kind == "too_large"
    assert refused(echo, text_of(over)).kind == "too_large"


class Endless(Mapping[str, int]):
    """A mapping whose iterator never ends; counts the items read."""

    def __init__(self, same_key: bool = False) -> None:
        self.read = 0
        self.same_key = same_key

    def __getitem__(self, key: str) -> int:
        self.read += 1
        return 0

    def __iter__(self) -> Iterator[str]:
        i = 0
        while True:
            yield "k" if self.same_key else str(i)
            i += 1

    def __len__(self) -> int:
        return 1


class EndlessSequence(Sequence[int]):
    """A sequence that never raises IndexError; counts the items read."""

    def __init__(self) -> None:
        self.read = 0

    def __getitem__(self, index: Any) -> Any:
        self.read += 1
        return 0

    def __len__(self) -> int:
        return 1


@pytest.mark.parametrize("same_key", [False, True])
def test_endless_mapping_stops_at_the_limit(echo: agentriage.Engine, same_key: bool) -> None:
    endless = Endless(same_key)
    with pytest.raises(agentriage.InvalidRequestError) as caught:
        watchdog(60, lambda: echo.decide(request(context={"m": endless})))
    assert (caught.value.kind, caught.value.path) == ("too_large", "$")
    # Every member costs at least 4 bytes (`"k":0`) and a comma: the
    # conversion read no more than the limit allows, so its memory is bounded.
    assert 0 < endless.read <= MAX // 5 + 1, endless.read
    endless_top = Endless()
    with pytest.raises(agentriage.InvalidRequestError) as caught:
        watchdog(60, lambda: echo.decide(endless_top))
    assert (caught.value.kind, caught.value.path) == ("too_large", "$")
    assert endless_top.read <= MAX // 5 + 1


def test_endless_sequence_and_range_stop_at_the_limit(echo: agentriage.Engine) -> None:
    endless = EndlessSequence()
    with pytest.raises(agentriage.InvalidRequestError) as caught:
        watchdog(60, lambda: echo.decide(request(context={"s": endless})))
    assert (caught.value.kind, caught.value.path) == ("too_large", "$")
    assert 0 < endless.read <= MAX // 2 + 1, endless.read
    error = watchdog(60, lambda: refused(echo, request(context={"r": range(10**18)})))
    assert (error.kind, error.path) == ("too_large", "$")


def test_deep_nesting_is_too_deep_like_text(echo: agentriage.Engine) -> None:
    deep: Any = 0
    for _ in range(agentriage.MAX_DEPTH):
        deep = {"d": deep}
    # The request is level 1 and `context` (the outermost of these dicts)
    # level 2: MAX_DEPTH dicts make MAX_DEPTH + 1 levels.
    value = request(context=deep)
    error = refused(echo, value)
    assert (error.kind, error.path) == ("too_deep", "context" + ".d" * (agentriage.MAX_DEPTH - 1))
    assert refused(echo, text_of(value)).kind == "too_deep"
    fits = request(context=deep["d"])
    echo.decide(fits)
    echo.decide(text_of(fits))
    endless_depth = Endless()
    nested: Any = endless_depth
    for _ in range(200):
        nested = collections.deque([nested])
    assert refused(echo, request(context={"q": nested})).kind == "too_deep"


@pytest.mark.parametrize(
    ("value", "kind", "path"),
    [
        (2**64, "value", "context.v"),
        (-(2**63) - 1, "value", "context.v"),
        (2**200, "value", "context.v"),
        (float("nan"), "value", "context.v"),
        (float("inf"), "value", "context.v"),
        ({1: "a"}, "type", "context.v"),
        ({"a": {None: 1}}, "type", "context.v.a"),
        ({"a"}, "type", "context.v"),
        (frozenset({"a"}), "type", "context.v"),
        ([1, {2, 3}], "type", "context.v[1]"),
        (memoryview(b"abc"), "type", "context.v"),
        (datetime.datetime(2026, 11, 21, 14, 5), "value", "context.v"),
        (datetime.date(2026, 11, 21), "type", "context.v"),
        (iter([1, 2]), "type", "context.v"),
        (complex(1, 2), "type", "context.v"),
    ],
)
def test_values_json_cannot_hold_name_their_path(
    echo: agentriage.Engine, value: Any, kind: str, path: str
) -> None:
    error = refused(echo, request(context={"v": value}))
    assert (error.kind, error.path) == (kind, path), str(error)


def test_big_integer_message_is_short(echo: agentriage.Engine) -> None:
    error = refused(echo, request(context={"v": 7 * 10**3000}))
    assert error.kind == "value"
    assert len(error.message) < 200, error.message


def seen(echo: agentriage.Engine, value: Any) -> Any:
    decision = echo.decide(request(context={"v": value}))
    (obligation,) = decision.obligations
    return obligation.params


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime.datetime(2026, 11, 21, 14, 5, tzinfo=datetime.timezone.utc), "2026-11-21T14:05:00Z"),
        (
            datetime.datetime(
                2026, 11, 21, 14, 5, 0, 250, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
            "2026-11-21T12:05:00.000250Z",
        ),
        (range(3), [0, 1, 2]),
        (collections.deque(["a", False]), ["a", False]),
        (types.MappingProxyType({"a": None}), {"a": None}),
        (collections.UserList([1.5]), [1.5]),
    ],
)
def test_other_values_convert_exactly(echo: agentriage.Engine, value: Any, expected: Any) -> None:
    params = seen(echo, value)
    assert params["value"] == expected
    assert params["json"] == text_of(expected)


def test_aware_datetime_works_as_the_request_time(engine: agentriage.Engine) -> None:
    from conftest import BASES

    base = dict(BASES["reroute"])
    # The credential expires at 14:10: the time decides the outcome.
    outcomes = set()
    for text in ("2026-11-21T14:05:00Z", "2026-11-21T14:20:00Z"):
        as_text = engine.decide({**base, "time": text})
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        as_datetime = engine.decide({**base, "time": when})
        assert (as_datetime.outcome, as_datetime.policy_ids) == (as_text.outcome, as_text.policy_ids)
        outcomes.add(as_text.outcome)
    assert len(outcomes) == 2, outcomes
    naive = refused(engine, {**base, "time": datetime.datetime(2026, 11, 21, 14, 5)})
    assert (naive.kind, naive.path) == ("value", "time")


def test_a_dict_changed_during_conversion_is_not_an_internal_error(echo: agentriage.Engine) -> None:
    context: dict[str, Any] = {}

    class Grows(Mapping[str, int]):
        def __getitem__(self, key: str) -> int:
            return 1

        def __iter__(self) -> Iterator[str]:
            for i in range(100):
                context[f"added{i}"] = i
            yield "a"

        def __len__(self) -> int:
            return 1

    context["g"] = Grows()
    context["after"] = True
    decision = echo.decide(request(context=context))
    # The dict as it was when conversion reached it: `g` and `after`.
    assert sorted(o.id for o in decision.obligations) == ["echo:after", "echo:g"]


def test_a_batch_of_oversized_requests_names_the_one(echo: agentriage.Engine) -> None:
    with pytest.raises(agentriage.InvalidRequestError) as caught:
        echo.decide_many([request(), request(context={"m": Endless()})])
    assert (caught.value.kind, caught.value.index) == ("too_large", 1)


def test_a_batch_is_bounded_and_an_endless_one_stops(echo: agentriage.Engine) -> None:
    import itertools

    one = request()
    # An endless iterable of valid requests: refused once past the limit,
    # without reading further.
    read = 0

    def endless() -> Iterator[dict[str, Any]]:
        nonlocal read
        for _ in itertools.count():
            read += 1
            yield one

    with pytest.raises(agentriage.InvalidRequestError) as e:
        echo.decide_many(endless())
    assert e.value.kind == "too_large"
    assert "100000" in str(e.value)
    assert read == 100_001
