"""The ADK guard with the real `google-adk`: an LlmAgent run by InMemoryRunner, a scripted model (no network)."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncGenerator

import pytest

import agentriage
from conftest import require
from guard_support import ACTIONS, CONTEXT, ESCALATED_BY, REJECTED_BY, clock, router

require("google.adk")

from google.adk.agents import LlmAgent  # noqa: E402
from google.adk.models import BaseLlm, LlmResponse  # noqa: E402
from google.adk.runners import InMemoryRunner  # noqa: E402
from google.genai import types  # noqa: E402
from pydantic import Field  # noqa: E402

from agentriage.guards.adk import ToolGuard  # noqa: E402

PERFORMED: list[str] = []


def reroute_shipment(shipment_id: str, destination: str) -> str:
    """Reroute a shipment."""
    PERFORMED.append(f"reroute {shipment_id}")
    return "rerouted"


def release_payment(invoice_id: str) -> str:
    """Release a payment."""
    PERFORMED.append(f"pay {invoice_id}")
    return "paid"


class Scripted(BaseLlm):
    """Answers each model turn with the next scripted content."""

    model: str = "scripted"
    steps: list[Any] = Field(default_factory=list)
    seen: list[Any] = Field(default_factory=list)

    async def generate_content_async(self, llm_request: Any, stream: bool = False) -> AsyncGenerator[LlmResponse, None]:
        self.seen.append(llm_request)
        yield LlmResponse(content=self.steps.pop(0))


def call(name: str, args: dict[str, Any], call_id: str) -> types.Content:
    return types.Content(role="model", parts=[types.Part(function_call=types.FunctionCall(name=name, args=args, id=call_id))])


def say(text: str) -> types.Content:
    return types.Content(role="model", parts=[types.Part(text=text)])


USERS = {"router-user": router()}


def run(engine: agentriage.Engine, steps: list[types.Content], confirm: Any = None) -> tuple[list[Any], ToolGuard]:
    guard = ToolGuard(engine, actions=ACTIONS, principal=lambda ctx: USERS.get(ctx.user_id), context=CONTEXT, clock=clock)
    agent = LlmAgent(name="router", model=Scripted(steps=steps), tools=[reroute_shipment, release_payment],
                     before_tool_callback=guard)
    runner = InMemoryRunner(agent=agent, app_name="logistics")

    async def main() -> list[Any]:
        session = await runner.session_service.create_session(app_name="logistics", user_id="router-user")
        events = [e async for e in runner.run_async(
            user_id="router-user", session_id=session.id, new_message=types.Content(role="user", parts=[types.Part(text="go")]))]
        if confirm is not None:
            asks = [p.function_call for e in events for p in (e.content.parts if e.content else []) or []
                    if p.function_call and p.function_call.name == "adk_request_confirmation"]
            assert len(asks) == 1
            answer = types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
                name="adk_request_confirmation", id=asks[0].id, response={"confirmed": confirm}))])
            events += [e async for e in runner.run_async(user_id="router-user", session_id=session.id, new_message=answer)]
        return events

    return asyncio.run(main()), guard


def responses(events: list[Any], name: str) -> list[dict[str, Any]]:
    return [dict(p.function_response.response or {}) for e in events for p in (e.content.parts if e.content else []) or []
            if p.function_response and p.function_response.name == name]


def test_execute_runs_and_reject_returns_an_error_result(engine: agentriage.Engine) -> None:
    PERFORMED.clear()
    events, guard = run(engine, [
        call("reroute_shipment", {"shipment_id": "SH-1001", "destination": "dc-2"}, "c1"),
        call("release_payment", {"invoice_id": "INV-88"}, "c2"),
        say("done"),
    ])
    assert PERFORMED == ["reroute SH-1001"]
    [refused] = responses(events, "release_payment")
    assert "refused by policy" in refused["error"] and all(p in refused["error"] for p in REJECTED_BY)
    assert [(n, d.outcome.value) for n, d in guard.decisions] == [("reroute_shipment", "execute"), ("release_payment", "reject")]


@pytest.mark.parametrize("confirmed", [True, False])
def test_escalate_asks_for_a_tool_confirmation(engine: agentriage.Engine, confirmed: bool) -> None:
    PERFORMED.clear()
    events, guard = run(engine, [
        call("reroute_shipment", {"shipment_id": "SH-1002", "destination": "dc-2"}, "c1"),
        say("waiting"),
        say("done"),
    ], confirm=confirmed)
    assert PERFORMED == (["reroute SH-1002"] if confirmed else [])
    assert guard.decisions[0][1].policy_ids == ESCALATED_BY
