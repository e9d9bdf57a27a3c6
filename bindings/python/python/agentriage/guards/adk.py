"""Guard the tools of a Google ADK agent: a ``before_tool_callback``.

::

    from agentriage.guards.adk import ToolGuard

    guard = ToolGuard(engine, principal=lambda ctx: agents_by_user[ctx.user_id], actions={
        "reroute_shipment": lambda args: ("shipment.reroute",
                                          {"type": "shipment", "id": args["shipment_id"]}),
    })
    LlmAgent(..., tools=[reroute_shipment], before_tool_callback=guard)

``execute`` returns ``None`` (ADK runs the tool); ``reject`` returns an
``{"error": ...}`` result instead of running it, naming the policies;
``escalate`` asks for ADK's tool confirmation
(``tool_context.request_confirmation``: the run pauses with an
``adk_request_confirmation`` call for the user) and runs the tool only when
the user's ``ToolConfirmation`` comes back ``confirmed``. A tool not named
in ``actions`` is refused. ``principal(tool_context)`` maps ADK's caller
(``tool_context.user_id``, session state) to the principal.

``google.adk`` is never imported by this module: it works on the objects
ADK passes in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Optional

from agentriage._native import Decision, Engine
from agentriage._outcome import Outcome
from agentriage.guards._core import Guard, reasons_text, utc_now

#: Tool name -> function of the call's arguments giving ``(action, resource)``.
Actions = Mapping[str, Callable[[Mapping[str, Any]], tuple[str, Optional[Mapping[str, Any]]]]]


class ToolGuard:
    """An async ``before_tool_callback``; see the module doc.

    ``decisions`` keeps ``(tool name, decision)`` of every call, in order.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        actions: Actions,
        principal: Callable[[Any], Optional[Mapping[str, Any]]],
        context: Optional[Mapping[str, Any]] = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.actions = dict(actions)
        self.principal = principal
        self.guard = Guard(engine, context=context, clock=clock)
        self.decisions: list[tuple[str, Decision]] = []

    async def __call__(self, tool: Any, args: dict[str, Any], tool_context: Any) -> Optional[dict[str, Any]]:
        name = getattr(tool, "name", "")
        mapping = self.actions.get(name)
        if mapping is None:
            return {"error": f"`{name}` is not a governed tool"}
        action, resource = mapping(args)
        decision = await self.guard.decide_async(action, resource=resource, principal=self.principal(tool_context))
        self.decisions.append((name, decision))
        why = reasons_text(decision)
        if decision.outcome is Outcome.EXECUTE:
            return None
        if decision.outcome is Outcome.ESCALATE:
            confirmation = getattr(tool_context, "tool_confirmation", None)
            if confirmation is None:
                tool_context.request_confirmation(
                    hint=f"`{name}` needs your approval (decision {decision.decision_id}): {why}",
                    payload={"decision_id": decision.decision_id, "policies": decision.policy_ids},
                )
                return {"error": f"needs a human's approval; asked for it: {why}"}
            if confirmation.confirmed is True:
                return None
            return {"error": f"a human did not approve: {why}"}
        return {"error": f"refused by policy: {why}"}
