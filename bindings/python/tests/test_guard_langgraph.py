"""The LangGraph guard with the real `langgraph`: a ToolNode in a graph, sync and async."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import agentriage
from conftest import require
from guard_support import ACTIONS, CONTEXT, ESCALATED_BY, REJECTED_BY, clock, router

require("langgraph")

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from langgraph.graph import START, MessagesState, StateGraph  # noqa: E402
from langgraph.prebuilt import ToolNode, tools_condition  # noqa: E402
from langgraph.types import Command  # noqa: E402

from agentriage.guards.langgraph import ToolCallGuard  # noqa: E402

PERFORMED: list[str] = []


@tool
def reroute_shipment(shipment_id: str, destination: str) -> str:
    """Reroute a shipment."""
    PERFORMED.append(f"reroute {shipment_id}")
    return "rerouted"


@tool
def release_payment(invoice_id: str) -> str:
    """Release a payment."""
    PERFORMED.append(f"pay {invoice_id}")
    return "paid"


@tool
def delete_everything() -> str:
    """A tool the policies do not govern."""
    PERFORMED.append("delete")
    return "deleted"


def script() -> GenericFakeChatModel:
    def call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
        return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])

    return GenericFakeChatModel(messages=iter([
        call("reroute_shipment", {"shipment_id": "SH-1001", "destination": "dc-2"}, "c1"),
        call("reroute_shipment", {"shipment_id": "SH-1002", "destination": "dc-2"}, "c2"),
        call("release_payment", {"invoice_id": "INV-88"}, "c3"),
        call("delete_everything", {}, "c4"),
        AIMessage(content="done"),
    ]))


def graph(guard: ToolCallGuard, model: GenericFakeChatModel, use_async: bool) -> Any:
    tools = [reroute_shipment, release_payment, delete_everything]
    g = StateGraph(MessagesState)
    if use_async:
        async def agent(state: MessagesState) -> dict[str, Any]:
            return {"messages": [await model.ainvoke(state["messages"])]}
        g.add_node("tools", ToolNode(tools, awrap_tool_call=guard.awrap))
    else:
        def agent(state: MessagesState) -> dict[str, Any]:  # type: ignore[misc]
            return {"messages": [model.invoke(state["messages"])]}
        g.add_node("tools", ToolNode(tools, wrap_tool_call=guard))
    g.add_node("agent", agent)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=InMemorySaver())


@pytest.mark.parametrize("use_async", [False, True])
@pytest.mark.parametrize("approved", [True, False])
def test_the_graph_runs_pauses_and_refuses(engine: agentriage.Engine, use_async: bool, approved: bool) -> None:
    PERFORMED.clear()
    guard = ToolCallGuard(engine, actions=ACTIONS, principal=router, context=CONTEXT, clock=clock)
    app = graph(guard, script(), use_async)
    config: Any = {"configurable": {"thread_id": "t"}}

    async def run(value: Any) -> Any:
        return await app.ainvoke(value, config) if use_async else app.invoke(value, config)

    async def main() -> tuple[Any, list[Any]]:
        result = await run({"messages": [HumanMessage("go")]})
        paused = []
        while "__interrupt__" in result:
            paused.extend(p.value for p in result["__interrupt__"])
            result = await run(Command(resume={"approved": approved}))
        return result, paused

    result, paused = asyncio.run(main())
    assert [p["tool"] for p in paused] == ["reroute_shipment"]
    assert [r["policy"] for r in paused[0]["reasons"]] == ESCALATED_BY
    assert PERFORMED == ["reroute SH-1001"] + (["reroute SH-1002"] if approved else [])
    tools = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert [m.status for m in tools] == ["success", "success" if approved else "error", "error", "error"]
    assert all(p in tools[2].content for p in REJECTED_BY)
    assert "not a governed tool" in tools[3].content
    outcomes = [(n, d.outcome.value) for n, d in guard.decisions]
    assert outcomes[0] == ("reroute_shipment", "execute")
    assert outcomes[-1] == ("release_payment", "reject")
