"""Guard the tool calls of a LangGraph agent: a ``ToolNode`` call wrapper.

::

    from agentriage.guards.langgraph import ToolCallGuard

    guard = ToolCallGuard(engine, principal=router_identity, actions={
        "reroute_shipment": lambda args: ("shipment.reroute",
                                          {"type": "shipment", "id": args["shipment_id"]}),
    })
    ToolNode(tools, wrap_tool_call=guard, awrap_tool_call=guard.awrap)

``execute`` runs the tool; ``reject`` answers the model with an error
``ToolMessage`` naming the policies; ``escalate`` pauses the graph with
LangGraph's ``interrupt()`` (a checkpointer is needed) until a human resumes
it with ``Command(resume={"approved": True})`` — any other answer refuses. A
tool not named in ``actions`` is refused (it is not governed). The async
wrapper decides off the event loop (``Engine.decide_async``).

``langgraph`` and ``langchain_core`` are imported only when a call is guarded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Optional

from agentriage._native import Decision, Engine
from agentriage._outcome import Outcome
from agentriage.guards._core import Guard, PrincipalSource, reasons_text, utc_now

#: Tool name -> function of the call's arguments giving ``(action, resource)``.
Actions = Mapping[str, Callable[[Mapping[str, Any]], tuple[str, Optional[Mapping[str, Any]]]]]


class ToolCallGuard:
    """Decides every tool call of a ``ToolNode``; see the module doc.

    ``decisions`` keeps ``(tool name, decision)`` of every call, in order.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        actions: Actions,
        principal: PrincipalSource,
        context: Optional[Mapping[str, Any]] = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.actions = dict(actions)
        self.guard = Guard(engine, principal=principal, context=context, clock=clock)
        self.decisions: list[tuple[str, Decision]] = []

    def _request(self, call: Mapping[str, Any]) -> Optional[dict[str, Any]]:
        mapping = self.actions.get(call["name"])
        if mapping is None:
            return None
        action, resource = mapping(call.get("args") or {})
        return self.guard.request(action, resource=resource)

    def _verdict(self, call: Mapping[str, Any], decision: Decision) -> Optional[Any]:
        """``None`` to run the tool, else the refusal ``ToolMessage``."""
        from langgraph.types import interrupt

        self.decisions.append((call["name"], decision))
        why = reasons_text(decision)
        if decision.outcome is Outcome.EXECUTE:
            return None
        if decision.outcome is Outcome.ESCALATE:
            # Pauses the graph; on resume LangGraph re-runs the node and
            # `interrupt` returns the human's answer.
            answer = interrupt(
                {
                    "tool": call["name"],
                    "args": call.get("args"),
                    "reasons": [r.to_dict() for r in decision.reasons],
                    "decision_id": decision.decision_id,
                    "trace_id": decision.trace_id,
                }
            )
            if isinstance(answer, Mapping) and answer.get("approved") is True:
                return None
            return _refusal(call, f"a human did not approve: {why}")
        return _refusal(call, f"refused by policy: {why}")

    def __call__(self, request: Any, execute: Callable[[Any], Any]) -> Any:
        """The sync wrapper (``ToolNode(wrap_tool_call=guard)``)."""
        call = request.tool_call
        req = self._request(call)
        if req is None:
            return _refusal(call, f"`{call['name']}` is not a governed tool")
        refusal = self._verdict(call, self.guard.engine.decide(req))
        return execute(request) if refusal is None else refusal

    async def awrap(self, request: Any, execute: Callable[[Any], Awaitable[Any]]) -> Any:
        """The async wrapper (``ToolNode(awrap_tool_call=guard.awrap)``)."""
        call = request.tool_call
        req = self._request(call)
        if req is None:
            return _refusal(call, f"`{call['name']}` is not a governed tool")
        refusal = self._verdict(call, await self.guard.engine.decide_async(req))
        return await execute(request) if refusal is None else refusal


def _refusal(call: Mapping[str, Any], text: str) -> Any:
    from langchain_core.messages import ToolMessage

    return ToolMessage(content=text, tool_call_id=call.get("id") or "", status="error")
