"""The asyncio side of ``Engine.decide_async`` and ``Engine.decide_many_async``.

The request is converted on the event loop's thread, under the GIL, when the
coroutine starts (it is quick, and sees the request as it is at that
moment); the decision itself runs on the loop's default executor, which
releases the GIL while the policies run. The loop is never blocked.

Cancelling the await cancels the executor job: a decision not yet started
never runs; one already running finishes on its thread and its result (or
error) is dropped. Either way nothing leaks and the engine stays usable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentriage._native import Decision, Engine


async def decide(engine: Engine, request: Any) -> Decision:
    """Converts ``request`` now and decides it on an executor thread."""
    pending = engine._prepare(request)
    loop = asyncio.get_running_loop()
    decision: Decision = await loop.run_in_executor(None, pending.run)
    return decision


async def decide_many(engine: Engine, requests: Iterable[Any]) -> list[Decision]:
    """Converts every request now and decides the batch on one executor thread."""
    pending = engine._prepare_many(requests)
    loop = asyncio.get_running_loop()
    decisions: list[Decision] = await loop.run_in_executor(None, pending.run)
    return decisions
