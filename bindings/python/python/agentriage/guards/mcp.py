"""Guard the tools of a Python ``mcp`` SDK server (``MCPServer``).

::

    from mcp.server.mcpserver import Context, MCPServer
    from agentriage.guards.mcp import guarded_tool

    server = MCPServer("logistics")

    @server.tool()
    @guarded_tool(engine, action="shipment.reroute",
                  resource=lambda a: {"type": "shipment", "id": a["shipment_id"]})
    async def reroute_shipment(shipment_id: str, route: str, ctx: Context) -> str: ...

The caller is the server's authenticated access token (``get_access_token``:
``subject``, else ``client_id``; scopes and client id as attributes, the
token's expiry as the credential's), or what ``principal(ctx)`` returns.
``execute`` runs the tool; ``reject`` raises MCP's ``ToolError`` (the client
gets a result with ``isError``); ``escalate`` asks the user through MCP
elicitation (``ctx.elicit``) and runs the tool only when the user accepts
with ``approved: true``. Elicitation mid-call needs a connection with a
back-channel (the initialize handshake, protocol <= 2025-11-25); on one
without (a 2026-07-28 connection), or with a client that cannot elicit, an
escalated call is refused.

``mcp`` is imported only when a tool is decorated.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Optional, TypeVar, Union

from agentriage._errors import Error
from agentriage._native import Decision, Engine
from agentriage._outcome import Outcome
from agentriage.guards._core import Guard, reasons_text, utc_now

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

ResourceSource = Union[Mapping[str, Any], Callable[[Mapping[str, Any]], Optional[Mapping[str, Any]]]]


def principal_from_access_token() -> Optional[dict[str, Any]]:
    """The caller as the server's auth middleware verified it, or ``None``
    (no token: the request then has no principal and is refused)."""
    from mcp.server.auth.middleware.auth_context import get_access_token

    token = get_access_token()
    if token is None:
        return None
    principal: dict[str, Any] = {
        "id": token.subject or token.client_id,
        "attributes": {"client_id": token.client_id, "scopes": list(token.scopes)},
    }
    if token.expires_at is not None:
        principal["credential"] = {
            "expires_at": dt.datetime.fromtimestamp(token.expires_at, dt.timezone.utc),
        }
    return principal


def _approval_schema() -> Any:
    """The form the user answers: ``{"approved": bool}`` (a pydantic model, made when first asked)."""
    from pydantic import Field, create_model

    return create_model("Approval", approved=(bool, Field(description="Run the tool call as requested")))


def guarded_tool(
    engine: Engine,
    *,
    action: str,
    resource: Optional[ResourceSource] = None,
    principal: Optional[Callable[[Any], Optional[Mapping[str, Any]]]] = None,
    context: Optional[Mapping[str, Any]] = None,
    clock: Callable[[], dt.datetime] = utc_now,
    on_decision: Optional[Callable[[str, Mapping[str, Any], Decision], None]] = None,
) -> Callable[[F], F]:
    """Decorates an async MCP tool; it must take a ``Context`` parameter
    (the guard reads the caller from it and elicits approvals through it).

    ``resource`` is a mapping or a function of the tool's arguments (by
    name, the context left out); ``on_decision(tool, arguments, decision)``
    sees every decision (an audit hook).
    """
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.server.mcpserver.utilities.context_injection import find_context_parameter

    g = Guard(engine, context=context, clock=clock)

    def decorate(fn: F) -> F:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"guarded_tool takes an async tool function; `{fn.__name__}` is not async")
        ctx_name = find_context_parameter(fn)
        if ctx_name is None:
            raise TypeError(
                f"guarded_tool needs the tool's `Context`: add a parameter `ctx: Context` to `{fn.__name__}`"
            )
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            ctx = arguments.pop(ctx_name, None)
            who = principal(ctx) if principal is not None else principal_from_access_token()
            res = resource(arguments) if callable(resource) else resource
            try:
                decision = await g.decide_async(action, resource=res, principal=who)
            except Error as e:
                # An invalid request (no principal, say) or an engine error:
                # the tool does not run, and the client is told why.
                raise ToolError(f"not decided, so not run: {e}") from e
            if on_decision is not None:
                on_decision(fn.__name__, arguments, decision)
            why = reasons_text(decision)
            if decision.outcome is Outcome.EXECUTE:
                return await fn(*args, **kwargs)
            if decision.outcome is Outcome.ESCALATE:
                if ctx is None:
                    raise ToolError(f"needs a human's approval and no one can be asked: {why}")
                try:
                    answer = await ctx.elicit(
                        f"`{fn.__name__}` needs your approval (decision {decision.decision_id}): {why}",
                        schema=_approval_schema(),
                    )
                except Exception as e:  # the client cannot elicit: refuse
                    raise ToolError(f"needs a human's approval, which could not be asked ({e}): {why}") from e
                data = getattr(answer, "data", None)
                if getattr(answer, "action", None) == "accept" and getattr(data, "approved", None) is True:
                    return await fn(*args, **kwargs)
                raise ToolError(f"a human did not approve (decision {decision.decision_id}): {why}")
            raise ToolError(f"refused by policy (decision {decision.decision_id}): {why}")

        return guarded  # type: ignore[return-value]

    return decorate
