"""Engine.decide_async / decide_many_async: same decisions, off the event loop, cancellable."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import agentriage
from guard_support import CONTEXT, WORKING_HOURS, router

RUN = asyncio.run


def reroute(shipment_id: str, value: int) -> dict[str, Any]:
    return {
        "time": WORKING_HOURS,
        "principal": router(),
        "action": {"name": "shipment.reroute"},
        "resource": {"type": "shipment", "id": shipment_id, "attributes": {"value_usd": value, "state": "in_transit"}},
        "context": CONTEXT,
    }


def test_decide_async_gives_the_decision_decide_gives(engine: agentriage.Engine) -> None:
    for value, outcome in [(12_000, "execute"), (240_000, "escalate")]:
        request = reroute("SH-1", value)
        sync = engine.decide(request)
        got = RUN(engine.decide_async(request))
        assert isinstance(got, agentriage.Decision)
        assert got.outcome == sync.outcome == outcome
        assert got.policy_ids == sync.policy_ids
        assert got.decision_id != sync.decision_id


def test_decide_many_async_keeps_the_order(engine: agentriage.Engine) -> None:
    values = [12_000, 240_000, 12_000, 240_000, 240_000]
    got = RUN(engine.decide_many_async([reroute(f"SH-{i}", v) for i, v in enumerate(values)]))
    assert [d.outcome.value for d in got] == ["execute" if v == 12_000 else "escalate" for v in values]


def test_json_text_requests_work_too(engine: agentriage.Engine) -> None:
    text = '{"principal":{"id":"spiffe://acme.example/ns/analytics/sa/reporter"},"action":{"name":"shipment.read"}}'
    assert RUN(engine.decide_async(text)).outcome == engine.decide(text).outcome
    assert len(RUN(engine.decide_many_async([text, text.encode()]))) == 2


def test_invalid_requests_raise_through_the_await(engine: agentriage.Engine) -> None:
    with pytest.raises(agentriage.InvalidRequestError) as e:
        RUN(engine.decide_async({"action": {"name": "x"}}))
    assert (e.value.kind, e.value.path) == ("missing", "principal")
    with pytest.raises(agentriage.InvalidRequestError) as e:
        RUN(engine.decide_many_async([reroute("SH-1", 1), {"principal": {"id": "a"}, "action": {"name": 3}}]))
    assert (e.value.index, e.value.path) == (1, "action.name")
    with pytest.raises(agentriage.InvalidRequestError) as e:
        RUN(engine.decide_many_async({"principal": {"id": "a"}}))
    assert e.value.kind == "type"


def test_the_request_is_read_when_the_coroutine_starts(engine: agentriage.Engine) -> None:
    async def main() -> agentriage.Decision:
        request = reroute("SH-1", 12_000)
        task = asyncio.ensure_future(engine.decide_async(request))
        await asyncio.sleep(0)  # the coroutine ran up to the executor
        request["resource"]["attributes"]["value_usd"] = 240_000
        return await task

    assert RUN(main()).outcome == "execute"


def test_the_event_loop_runs_while_a_batch_is_decided(engine: agentriage.Engine) -> None:
    batch = [reroute(f"SH-{i}", 240_000) for i in range(500)]

    async def main() -> tuple[int, list[agentriage.Decision], set[int]]:
        threads: set[int] = set()
        loop_thread = threading.get_ident()
        task = asyncio.ensure_future(engine.decide_many_async(batch))
        ticks = 0
        await asyncio.sleep(0)
        while not task.done():
            ticks += 1
            threads.add(threading.get_ident())
            await asyncio.sleep(0)
        assert threads <= {loop_thread}
        return ticks, await task, threads

    ticks, decisions, _ = RUN(main())
    # Had the batch run on the loop's thread, the task would have finished
    # in its first step and the loop would never have ticked meanwhile.
    assert ticks > 0
    assert len(decisions) == 500 and all(d.outcome == "escalate" for d in decisions)


def test_a_cancelled_await_drops_the_result_and_the_engine_goes_on(engine: agentriage.Engine) -> None:
    batch = [reroute(f"SH-{i}", 240_000) for i in range(500)]
    errors: list[dict[str, Any]] = []

    async def main() -> agentriage.Decision:
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
        tasks = [asyncio.ensure_future(engine.decide_many_async(batch)) for _ in range(4)]
        await asyncio.sleep(0)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with pytest.raises(asyncio.CancelledError):
                await t
        # Decisions already under way finish on their threads; the loop and
        # the engine carry on.
        return await engine.decide_async(reroute("SH-1", 12_000))

    assert RUN(main()).outcome == "execute"
    assert errors == []


def test_many_concurrent_awaits(engine: agentriage.Engine) -> None:
    async def main() -> list[agentriage.Decision]:
        return await asyncio.gather(*(engine.decide_async(reroute(f"SH-{i}", 12_000 if i % 2 else 240_000)) for i in range(64)))

    got = RUN(main())
    assert [d.outcome.value for d in got] == ["escalate" if i % 2 == 0 else "execute" for i in range(64)]
