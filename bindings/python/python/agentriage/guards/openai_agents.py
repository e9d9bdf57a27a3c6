"""Guard the function tools of an OpenAI Agents SDK agent (``openai-agents``).

Two hooks of the SDK, from one :class:`AgentsToolGuard`::

    from agents import function_tool
    from agentriage.guards.openai_agents import AgentsToolGuard

    guard = AgentsToolGuard(engine, principal=lambda ctx: ctx.agent_identity, actions={
        "reroute_shipment": lambda args: ("shipment.reroute",
                                          {"type": "shipment", "id": args["shipment_id"]}),
    })

    @function_tool(tool_input_guardrails=[guard.input_guardrail()],
                   needs_approval=guard.needs_approval("reroute_shipment"))
    def reroute_shipment(shipment_id: str, route: str) -> str: ...

- ``needs_approval`` decides before the tool runs: ``escalate`` interrupts
  the run for a human (``result.interruptions``; resume with
  ``state.approve(item)`` or ``state.reject(item)``);
- the tool input guardrail runs the tool on ``execute``, refuses with
  ``reject_content`` (the model sees the refusal, the run goes on) on
  ``reject``, and lets an escalated call run only after that approval —
  an escalated call the approval hook did not interrupt (the hook is not
  installed, or the run was resumed in another process) is refused.

``principal(context)`` gets the run's context object (``RunContextWrapper.context``).
``agents`` is imported only when a hook is built.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any, Optional

from agentriage._native import Decision, Engine
from agentriage._outcome import Outcome
from agentriage.guards._core import Guard, reasons_text, utc_now

#: Tool name -> function of the call's arguments giving ``(action, resource)``.
Actions = Mapping[str, Callable[[Mapping[str, Any]], tuple[str, Optional[Mapping[str, Any]]]]]


class AgentsToolGuard:
    """See the module doc. ``decisions`` keeps ``(tool, decision)`` in order."""

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
        # call id -> the escalation the approval hook interrupted the run for.
        self._asked: dict[str, Decision] = {}

    async def _decide(self, tool: str, args: Mapping[str, Any], run_context: Any) -> Optional[Decision]:
        mapping = self.actions.get(tool)
        if mapping is None:
            return None
        action, resource = mapping(args)
        decision = await self.guard.decide_async(action, resource=resource, principal=self.principal(run_context))
        self.decisions.append((tool, decision))
        return decision

    def needs_approval(self, tool: str) -> Callable[[Any, dict[str, Any], str], Any]:
        """The ``needs_approval`` hook of tool ``tool``: ``True`` on ``escalate``."""

        async def hook(wrapper: Any, params: dict[str, Any], call_id: str) -> bool:
            decision = await self._decide(tool, params, wrapper.context)
            if decision is not None and decision.outcome is Outcome.ESCALATE:
                self._asked[call_id] = decision
                return True
            return False

        return hook

    def input_guardrail(self) -> Any:
        """A ``ToolInputGuardrail`` for the governed tools (see the module doc)."""
        from agents import ToolGuardrailFunctionOutput, tool_input_guardrail

        @tool_input_guardrail(name="agentriage")
        async def agentriage_policy(data: Any) -> Any:
            ctx = data.context
            asked = self._asked.pop(ctx.tool_call_id, None)
            if asked is not None:
                # The SDK runs the tool only after a human approved the
                # interruption this escalation made.
                return ToolGuardrailFunctionOutput.allow(output_info={"decision_id": asked.decision_id})
            if ctx.tool_name not in self.actions:
                return ToolGuardrailFunctionOutput.reject_content(f"`{ctx.tool_name}` is not a governed tool")
            try:
                args = json.loads(ctx.tool_arguments or "{}")
            except ValueError:
                return ToolGuardrailFunctionOutput.reject_content("the tool arguments are not JSON")
            if not isinstance(args, dict):
                return ToolGuardrailFunctionOutput.reject_content("the tool arguments are not a JSON object")
            decision = await self._decide(ctx.tool_name, args, ctx.context)
            assert decision is not None
            info = {"decision_id": decision.decision_id, "outcome": decision.outcome.value}
            if decision.outcome is Outcome.EXECUTE:
                return ToolGuardrailFunctionOutput.allow(output_info=info)
            why = reasons_text(decision)
            if decision.outcome is Outcome.ESCALATE:
                return ToolGuardrailFunctionOutput.reject_content(
                    f"needs a human's approval, which was not asked: {why}", output_info=info
                )
            return ToolGuardrailFunctionOutput.reject_content(f"refused by policy: {why}", output_info=info)

        return agentriage_policy
