"""The OpenAI Agents SDK guard with the real `openai-agents`: Runner + the SDK's ScriptedModel (no network)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import agentriage
from conftest import require
from guard_support import ACTIONS, CONTEXT, ESCALATED_BY, REJECTED_BY, clock, router

require("agents")

from agents import Agent, Runner, function_tool, set_tracing_disabled  # noqa: E402
from agents.testing import ScriptedModel  # noqa: E402
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText  # noqa: E402

from agentriage.guards.openai_agents import AgentsToolGuard  # noqa: E402

# Offline: no trace export.
set_tracing_disabled(True)


class Host:
    """The run's context object: who the agent is."""

    def __init__(self, identity: dict[str, Any]) -> None:
        self.identity = identity


def call(name: str, args: dict[str, Any], call_id: str) -> list[Any]:
    return [ResponseFunctionToolCall(type="function_call", call_id=call_id, name=name, arguments=json.dumps(args), id=f"fc-{call_id}")]


def say(text: str) -> list[Any]:
    return [ResponseOutputMessage(id="m", type="message", role="assistant", status="completed",
                                  content=[ResponseOutputText(type="output_text", text=text, annotations=[])])]


def build(engine: agentriage.Engine, steps: list[Any]) -> tuple[Agent[Any], AgentsToolGuard, list[str], ScriptedModel]:
    performed: list[str] = []
    guard = AgentsToolGuard(engine, actions=ACTIONS, principal=lambda host: host.identity, context=CONTEXT, clock=clock)

    @function_tool(tool_input_guardrails=[guard.input_guardrail()], needs_approval=guard.needs_approval("reroute_shipment"))
    def reroute_shipment(shipment_id: str, destination: str) -> str:
        """Reroute a shipment."""
        performed.append(f"reroute {shipment_id}")
        return "rerouted"

    @function_tool(tool_input_guardrails=[guard.input_guardrail()], needs_approval=guard.needs_approval("release_payment"))
    def release_payment(invoice_id: str) -> str:
        """Release a payment."""
        performed.append(f"pay {invoice_id}")
        return "paid"

    model = ScriptedModel(steps)
    agent = Agent(name="router", model=model, tools=[reroute_shipment, release_payment])
    return agent, guard, performed, model


def tool_outputs(model: ScriptedModel) -> list[str]:
    """What the model was told the tools returned, in order."""
    outputs = []
    last = model.last_call
    assert last is not None
    items = last.input if isinstance(last.input, list) else []
    for item in items:
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            outputs.append(str(item.get("output")))
    return outputs


def test_execute_runs_and_reject_is_refused_content(engine: agentriage.Engine) -> None:
    agent, guard, performed, model = build(engine, [
        call("reroute_shipment", {"shipment_id": "SH-1001", "destination": "dc-2"}, "c1"),
        call("release_payment", {"invoice_id": "INV-88"}, "c2"),
        say("done"),
    ])
    result = asyncio.run(Runner.run(agent, "go", context=Host(router())))
    assert result.final_output == "done"
    assert performed == ["reroute SH-1001"]
    outputs = tool_outputs(model)
    assert outputs[0] == "rerouted"
    assert "refused by policy" in outputs[1] and all(p in outputs[1] for p in REJECTED_BY)
    assert [(t, d.outcome.value) for t, d in guard.decisions][-1] == ("release_payment", "reject")


@pytest.mark.parametrize("approve", [True, False])
def test_escalate_interrupts_for_a_human(engine: agentriage.Engine, approve: bool) -> None:
    agent, guard, performed, model = build(engine, [
        call("reroute_shipment", {"shipment_id": "SH-1002", "destination": "dc-2"}, "c1"),
        say("done"),
    ])

    async def main() -> Any:
        result = await Runner.run(agent, "go", context=Host(router()))
        assert performed == []
        [item] = result.interruptions
        assert item.tool_name == "reroute_shipment"
        state = result.to_state()
        if approve:
            state.approve(item)
        else:
            state.reject(item)
        return await Runner.run(agent, state)

    result = asyncio.run(main())
    assert result.final_output == "done"
    assert performed == (["reroute SH-1002"] if approve else [])
    assert guard.decisions[0][1].policy_ids == ESCALATED_BY


def test_an_escalation_without_the_approval_hook_is_refused(engine: agentriage.Engine) -> None:
    performed: list[str] = []
    guard = AgentsToolGuard(engine, actions=ACTIONS, principal=lambda host: host.identity, context=CONTEXT, clock=clock)

    @function_tool(tool_input_guardrails=[guard.input_guardrail()])
    def reroute_shipment(shipment_id: str, destination: str) -> str:
        """Reroute a shipment."""
        performed.append(shipment_id)
        return "rerouted"

    model = ScriptedModel([call("reroute_shipment", {"shipment_id": "SH-1002", "destination": "dc-2"}, "c1"), say("done")])
    agent = Agent(name="router", model=model, tools=[reroute_shipment])
    asyncio.run(Runner.run(agent, "go", context=Host(router())))
    assert performed == []
    assert "needs a human's approval" in tool_outputs(model)[0]
