"""Guard an A2A agent (``a2a-sdk``): an ``AgentExecutor`` that decides first.

::

    from agentriage.guards.a2a import GuardedAgentExecutor

    executor = GuardedAgentExecutor(
        RerouteExecutor(), engine,
        action="shipment.reroute",
        resource=lambda ctx: {"type": "shipment", "id": ctx.metadata["shipment_id"]},
    )
    # hand `executor` to DefaultRequestHandler as usual

The caller is the A2A server's authenticated user
(``context.call_context.user.user_name``), or what ``principal(context)``
returns; a call with no principal (unauthenticated, or unknown to
``principal``) ends in ``TASK_STATE_REJECTED`` without a decision.
``execute`` runs the wrapped executor; ``reject`` ends the task in
``TASK_STATE_REJECTED``; ``escalate`` moves it to
``TASK_STATE_INPUT_REQUIRED`` — both with an agent message naming the
policies — and the wrapped executor does not run. ``cancel`` is passed on.

``a2a`` is imported only when an executor is built.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Optional, Union

from agentriage._native import Decision, Engine
from agentriage._outcome import Outcome
from agentriage.guards._core import Guard, reasons_text, utc_now


def principal_from_user(context: Any) -> Optional[dict[str, Any]]:
    """The authenticated A2A user as the principal, or ``None``."""
    user = context.call_context.user
    if not user.is_authenticated or not user.user_name:
        return None
    return {"id": user.user_name}


class GuardedAgentExecutor:
    """Wraps an ``a2a.server.agent_execution.AgentExecutor``; see the module doc.

    ``action`` is the action name, or a function of the ``RequestContext``;
    ``resource`` a mapping or such a function; ``on_decision(context,
    decision)`` sees every decision.
    """

    def __init__(
        self,
        inner: Any,
        engine: Engine,
        *,
        action: Union[str, Callable[[Any], str]],
        resource: Union[None, Mapping[str, Any], Callable[[Any], Optional[Mapping[str, Any]]]] = None,
        principal: Callable[[Any], Optional[Mapping[str, Any]]] = principal_from_user,
        context: Optional[Mapping[str, Any]] = None,
        clock: Callable[[], dt.datetime] = utc_now,
        on_decision: Optional[Callable[[Any, Decision], None]] = None,
    ) -> None:
        from a2a.server.agent_execution import AgentExecutor

        # A virtual subclass: `isinstance(guarded, AgentExecutor)` holds
        # without importing a2a when this module is imported.
        AgentExecutor.register(GuardedAgentExecutor)
        self.inner = inner
        self.action = action
        self.resource = resource
        self.principal = principal
        self.on_decision = on_decision
        self.guard = Guard(engine, context=context, clock=clock)

    async def execute(self, context: Any, event_queue: Any) -> None:
        """Decides, then runs the wrapped executor or ends the turn."""
        action = self.action(context) if callable(self.action) else self.action
        resource = self.resource(context) if callable(self.resource) else self.resource
        who = self.principal(context)
        if who is None:
            # No principal to decide for: refused without asking the engine.
            await _finish(context, event_queue, escalate=False,
                          text="refused: the caller is not authenticated or not known (no principal)")
            return
        decision = await self.guard.decide_async(action, resource=resource, principal=who)
        if self.on_decision is not None:
            self.on_decision(context, decision)
        if decision.outcome is Outcome.EXECUTE:
            await self.inner.execute(context, event_queue)
            return
        why = reasons_text(decision)
        if decision.outcome is Outcome.ESCALATE:
            text = f"needs a human's approval (decision {decision.decision_id}): {why}"
        else:
            text = f"refused by policy (decision {decision.decision_id}): {why}"
        await _finish(context, event_queue, escalate=decision.outcome is Outcome.ESCALATE, text=text)

    async def cancel(self, context: Any, event_queue: Any) -> None:
        """Passes the cancellation on to the wrapped executor."""
        await self.inner.cancel(context, event_queue)


async def _finish(context: Any, event_queue: Any, *, escalate: bool, text: str) -> None:
    """Ends the turn: input required (``escalate``) or rejected, with ``text``."""
    from a2a.helpers.proto_helpers import new_task_from_user_message, new_text_part
    from a2a.server.tasks import TaskUpdater

    task = context.current_task
    if task is None:
        task = new_task_from_user_message(context.message)
        await event_queue.enqueue_event(task)
    updater = TaskUpdater(event_queue, task.id, task.context_id)
    message = updater.new_agent_message([new_text_part(text)])
    if escalate:
        await updater.requires_input(message)
    else:
        await updater.reject(message)
