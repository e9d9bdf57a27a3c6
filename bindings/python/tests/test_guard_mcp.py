"""The MCP guard with the real `mcp` SDK: an MCPServer and its in-process Client."""

from __future__ import annotations

import asyncio
from typing import Any, Optional

import pytest

import agentriage
from conftest import require
from guard_support import CONTEXT, ESCALATED_BY, REJECTED_BY, clock, invoice, router, shipment

require("mcp")

from mcp import Client  # noqa: E402
from mcp.server.mcpserver import Context, MCPServer  # noqa: E402
from mcp_types import ElicitResult  # noqa: E402

from agentriage.guards.mcp import guarded_tool  # noqa: E402


def build(engine: agentriage.Engine, seen: list[tuple[str, agentriage.Decision]]) -> tuple[MCPServer, list[str]]:
    server = MCPServer("logistics")
    performed: list[str] = []
    common: dict[str, Any] = {
        "principal": lambda ctx: router(),
        "context": CONTEXT,
        "clock": clock,
        "on_decision": lambda tool, args, d: seen.append((tool, d)),
    }

    @server.tool()
    @guarded_tool(engine, action="shipment.reroute", resource=shipment, **common)
    async def reroute_shipment(shipment_id: str, route: str, ctx: Context) -> str:
        performed.append(f"{shipment_id} {route}")
        return f"{shipment_id} now travels {route}"

    @server.tool()
    @guarded_tool(engine, action="payment.release", resource=invoice, **common)
    async def release_payment(invoice_id: str, ctx: Context) -> str:
        performed.append(f"pay {invoice_id}")
        return "paid"

    return server, performed


def answer(approved: Optional[bool], asked: list[str]) -> Any:
    async def callback(context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        if approved is None:
            return ElicitResult(action="decline")
        return ElicitResult(action="accept", content={"approved": approved})

    return callback


def call(server: MCPServer, tool: str, args: dict[str, Any], approved: Optional[bool], asked: list[str], mode: Any = "legacy") -> Any:
    # "legacy": the initialize handshake (protocol <= 2025-11-25), where the
    # server can send the client an elicitation request mid-call.
    async def main() -> Any:
        async with Client(server, elicitation_callback=answer(approved, asked), mode=mode) as client:
            return await client.call_tool(tool, args)

    return asyncio.run(main())


def text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def test_execute_runs_the_tool(engine: agentriage.Engine) -> None:
    seen: list[tuple[str, agentriage.Decision]] = []
    server, performed = build(engine, seen)
    asked: list[str] = []
    result = call(server, "reroute_shipment", {"shipment_id": "SH-1001", "route": "dc-4"}, True, asked)
    assert not result.is_error, text(result)
    assert "SH-1001 now travels dc-4" in text(result)
    assert performed == ["SH-1001 dc-4"] and asked == []
    assert [(t, d.outcome.value) for t, d in seen] == [("reroute_shipment", "execute")]


def test_reject_is_a_tool_error(engine: agentriage.Engine) -> None:
    seen: list[tuple[str, agentriage.Decision]] = []
    server, performed = build(engine, seen)
    asked: list[str] = []
    result = call(server, "release_payment", {"invoice_id": "INV-88"}, True, asked)
    assert result.is_error
    assert "refused by policy" in text(result) and all(p in text(result) for p in REJECTED_BY)
    assert performed == [] and asked == []


@pytest.mark.parametrize("approved,runs", [(True, True), (False, False), (None, False)])
def test_escalate_elicits_the_users_approval(engine: agentriage.Engine, approved: Optional[bool], runs: bool) -> None:
    seen: list[tuple[str, agentriage.Decision]] = []
    server, performed = build(engine, seen)
    asked: list[str] = []
    result = call(server, "reroute_shipment", {"shipment_id": "SH-1002", "route": "dc-5"}, approved, asked)
    assert len(asked) == 1 and ESCALATED_BY[0] in asked[0]
    assert result.is_error is (not runs), text(result)
    assert performed == (["SH-1002 dc-5"] if runs else [])
    if not runs:
        assert "did not approve" in text(result)


def test_without_a_back_channel_an_escalation_is_refused(engine: agentriage.Engine) -> None:
    # On a 2026-07-28 connection (the in-process default) the server cannot
    # send a request mid-call: no one can be asked, so the call is refused.
    server, performed = build(engine, [])
    asked: list[str] = []
    result = call(server, "reroute_shipment", {"shipment_id": "SH-1002", "route": "dc-5"}, True, asked, mode="auto")
    assert result.is_error and "could not be asked" in text(result)
    assert performed == [] and asked == []
    ok = call(server, "reroute_shipment", {"shipment_id": "SH-1001", "route": "dc-5"}, True, asked, mode="auto")
    assert not ok.is_error and performed == ["SH-1001 dc-5"]


def test_without_an_access_token_the_caller_has_no_principal(engine: agentriage.Engine) -> None:
    server = MCPServer("logistics")
    performed: list[str] = []

    @server.tool()
    @guarded_tool(engine, action="shipment.reroute", resource=shipment, clock=clock)
    async def reroute_shipment(shipment_id: str, ctx: Context) -> str:
        performed.append(shipment_id)
        return "done"

    result = call(server, "reroute_shipment", {"shipment_id": "SH-1001"}, True, [])
    assert result.is_error and "not decided, so not run" in text(result) and "principal" in text(result)
    assert performed == []


def test_a_tool_without_a_context_parameter_is_refused_at_decoration(engine: agentriage.Engine) -> None:
    with pytest.raises(TypeError, match="ctx: Context"):

        @guarded_tool(engine, action="x")
        async def tool(a: int) -> int:
            return a
