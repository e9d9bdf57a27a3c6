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


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize("approved,runs", [(True, True), (False, False), (None, False)])
def test_escalate_elicits_the_users_approval(
    engine: agentriage.Engine, approved: Optional[bool], runs: bool, mode: str
) -> None:
    # "legacy": asked mid-call; "auto" (protocol 2026-07-28): the call returns
    # an InputRequiredResult, the client answers and calls again.
    seen: list[tuple[str, agentriage.Decision]] = []
    server, performed = build(engine, seen)
    asked: list[str] = []
    result = call(server, "reroute_shipment", {"shipment_id": "SH-1002", "route": "dc-5"}, approved, asked, mode=mode)
    assert len(asked) == 1 and ESCALATED_BY[0] in asked[0]
    assert result.is_error is (not runs), text(result)
    assert performed == (["SH-1002 dc-5"] if runs else [])
    if not runs:
        assert "did not approve" in text(result) or "decline" in text(result), text(result)
    # Every round decides again: one decision on the legacy path, two when
    # the answer comes back in a second call.
    assert [d.outcome.value for _, d in seen] == ["escalate"] * (1 if mode == "legacy" else 2)


def test_the_hidden_parameters_are_not_in_the_tools_input_schema(engine: agentriage.Engine) -> None:
    server, _ = build(engine, [])

    async def main() -> Any:
        async with Client(server, mode="auto") as client:
            return await client.list_tools()

    tools = {t.name: t for t in asyncio.run(main()).tools}
    props = set(tools["reroute_shipment"].input_schema["properties"])
    assert props == {"shipment_id", "route"}


def leaves(e: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups."""
    inner = getattr(e, "exceptions", None)
    return [x for sub in inner for x in leaves(sub)] if inner else [e]


@pytest.mark.parametrize("state", [None, "v1.forged"])
def test_an_answer_the_server_did_not_ask_for_does_not_run_the_tool(engine: agentriage.Engine, state: Optional[str]) -> None:
    # A client that skips the question and sends its own "approved" answer,
    # without the sealed requestState or with a made-up one.
    server, performed = build(engine, [])
    key = "agentriage.guards.mcp:guarded_tool.test_guard_mcp.build.<locals>.reroute_shipment.approval"
    asked: list[str] = []

    async def main() -> Any:
        # The session is driven by hand: no automatic rounds, the callback never runs.
        async with Client(server, elicitation_callback=answer(True, asked), mode="auto") as client:
            return await client.session.call_tool(
                "reroute_shipment",
                {"shipment_id": "SH-1002", "route": "dc-5"},
                input_responses={key: {"action": "accept", "content": {"approved": True}}},
                request_state=state,
                allow_input_required=True,
            )

    try:
        result = asyncio.run(main())
    except Exception as e:
        # A made-up state: the SDK refuses it as invalid params.
        assert state is not None, [repr(x) for x in leaves(e)]
        assert any("requestState" in str(x) for x in leaves(e)), repr(e)
    else:
        # No state: the answer is discarded and the question asked (again).
        assert state is None
        assert key in (getattr(result, "input_requests", None) or {}), result
    assert performed == [] and asked == []


def test_a_client_without_elicitation_is_refused(engine: agentriage.Engine) -> None:
    server, performed = build(engine, [])

    async def main() -> Any:
        async with Client(server, mode="auto") as client:
            return await client.call_tool("reroute_shipment", {"shipment_id": "SH-1002", "route": "dc-5"})

    try:
        result = asyncio.run(main())
    except Exception as e:  # missing client capability: an MCP error
        assert any("elicitation" in str(x) for x in leaves(e)), repr(e)
    else:
        assert result.is_error
    assert performed == []
    ok = call(server, "reroute_shipment", {"shipment_id": "SH-1001", "route": "dc-5"}, True, [], mode="auto")
    assert not ok.is_error and performed == ["SH-1001 dc-5"]


def test_called_directly_the_guard_still_decides(engine: agentriage.Engine) -> None:
    # Outside MCPServer (no resolvers ran) the guard decides itself.
    seen: list[tuple[str, agentriage.Decision]] = []
    performed: list[str] = []

    @guarded_tool(engine, action="payment.release", resource=invoice, principal=lambda ctx: router(),
                  context=CONTEXT, clock=clock, on_decision=lambda t, a, d: seen.append((t, d)))
    async def release_payment(invoice_id: str, ctx: Context) -> str:
        performed.append(invoice_id)
        return "paid"

    from mcp.server.mcpserver.exceptions import ToolError

    with pytest.raises(ToolError, match="refused by policy"):
        asyncio.run(release_payment("INV-88", None))  # type: ignore[arg-type]
    assert performed == [] and [d.outcome.value for _, d in seen] == ["reject"]


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
