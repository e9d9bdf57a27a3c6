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
gets a result with ``isError``); ``escalate`` asks the user with MCP
elicitation and runs the tool only when the user accepts with
``approved: true``. The question goes through the SDK's resolvers
(``Resolve``/``Elicit``), so it follows the negotiated protocol: on
2026-07-28 the call returns an ``InputRequiredResult`` and runs when the
client calls again with the answer (the answer rides the SDK's sealed
``requestState``; the policy is decided again on that round and the answer
counts only if the same question is asked); on <= 2025-11-25 the
elicitation request is sent mid-call. A client without form elicitation,
or a decline or cancel, leaves the tool not run. The guard adds two
parameters (``agentriage_decision``, ``agentriage_approval``) that the SDK
fills and leaves out of the tool's input schema. Called directly (outside
``MCPServer``), the guard decides itself and asks through ``ctx.elicit``.

``mcp`` is imported only when a tool is decorated.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Optional, TypeVar, Union

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


_DECISION = "agentriage_decision"
_APPROVAL = "agentriage_approval"
_CTX = "agentriage_ctx"


class _Decided:
    """A decision made by the guard's own resolver (a type no client can send)."""

    __slots__ = ("decision",)

    def __init__(self, decision: Decision) -> None:
        self.decision = decision


def _decision_of(outcome: Any) -> Decision:
    """The decision inside the SDK's wrapping of the decide resolver's value;
    anything else is refused (the tool must not run on what it cannot read)."""
    from mcp.server.mcpserver.exceptions import ToolError

    decided = getattr(outcome, "data", outcome)
    if not isinstance(decided, _Decided):
        raise ToolError("not decided, so not run: the guard's decision is missing")
    return decided.decision


def _approved(outcome: Any) -> bool:
    """True only for an accepted elicitation answering ``approved: true``."""
    from mcp.server.elicitation import AcceptedElicitation

    return isinstance(outcome, AcceptedElicitation) and getattr(outcome.data, "approved", None) is True


def _as_resolver(
    resolver: Callable[..., Any],
    tool: Callable[..., Any],
    part: str,
    parameters: list[inspect.Parameter],
    annotations: dict[str, Any],
) -> None:
    """Gives a resolver the signature the SDK plans from and a name unique
    per tool (the SDK keys its ``requestState`` entries by qualified name)."""
    params = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY, default=inspect.Parameter.empty, annotation=inspect.Parameter.empty)
        for p in parameters
    ]
    if part == "decide":
        params.append(inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY))
    resolver.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    resolver.__annotations__ = dict(annotations)
    resolver.__qualname__ = f"guarded_tool.{tool.__module__}.{tool.__qualname__}.{part}"
    resolver.__name__ = f"{tool.__name__}_{part}"


async def _ask_directly(ctx: Any, tool: str, decision: Decision) -> Optional[bool]:
    """Asks through ``ctx.elicit`` (a call made outside ``MCPServer``'s resolvers)."""
    from mcp.server.mcpserver.exceptions import ToolError

    why = reasons_text(decision)
    if ctx is None:
        raise ToolError(f"needs a human's approval and no one can be asked: {why}")
    try:
        answer = await ctx.elicit(f"`{tool}` needs your approval: {why}", schema=_approval_schema())
    except Exception as e:  # the client cannot elicit: refuse
        raise ToolError(f"needs a human's approval, which could not be asked ({e}): {why}") from e
    data = getattr(answer, "data", None)
    return getattr(answer, "action", None) == "accept" and getattr(data, "approved", None) is True


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
    from mcp.server.elicitation import ElicitationResult
    from mcp.server.mcpserver import Context
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.server.mcpserver.resolve import Elicit, Resolve
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
        for hidden in (_DECISION, _APPROVAL, _CTX):
            if hidden in signature.parameters:
                raise TypeError(f"`{fn.__name__}` has a parameter `{hidden}`, a name the guard reserves")
        tool_args = [p for n, p in signature.parameters.items() if n != ctx_name]

        async def decide(who: Any, arguments: dict[str, Any]) -> Decision:
            res = resource(arguments) if callable(resource) else resource
            try:
                decision = await g.decide_async(action, resource=res, principal=who)
            except Error as e:
                # An invalid request (no principal, say) or an engine error:
                # the tool does not run, and the client is told why.
                raise ToolError(f"not decided, so not run: {e}") from e
            if on_decision is not None:
                on_decision(fn.__name__, arguments, decision)
            return decision

        async def decide_resolver(**kwargs: Any) -> _Decided:
            ctx = kwargs.pop(_CTX)
            who = principal(ctx) if principal is not None else principal_from_access_token()
            return _Decided(await decide(who, kwargs))

        _as_resolver(decide_resolver, fn, "decide", tool_args, {_CTX: Context})

        def approval_resolver(decided: Any) -> Any:
            decision = _decision_of(decided)
            why = reasons_text(decision)
            if decision.outcome is Outcome.EXECUTE:
                return None
            if decision.outcome is Outcome.ESCALATE:
                # The same words on every round: the SDK takes a recorded
                # answer only for the question it was given to.
                return Elicit(f"`{fn.__name__}` needs your approval: {why}", _approval_schema())
            raise ToolError(f"refused by policy (decision {decision.decision_id}): {why}")

        _as_resolver(
            approval_resolver,
            fn,
            "approval",
            [inspect.Parameter("decided", inspect.Parameter.POSITIONAL_OR_KEYWORD)],
            {"decided": Annotated[ElicitationResult[Any], Resolve(decide_resolver)]},
        )

        @functools.wraps(fn)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            decided = kwargs.pop(_DECISION, None)
            approval = kwargs.pop(_APPROVAL, None)
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            ctx = arguments.pop(ctx_name, None)
            if decided is None:
                # Not called by MCPServer's resolvers: decide here, and ask
                # (if at all) over the connection's back-channel.
                who = principal(ctx) if principal is not None else principal_from_access_token()
                decision = await decide(who, arguments)
                approved = await _ask_directly(ctx, fn.__name__, decision) if decision.outcome is Outcome.ESCALATE else None
            else:
                decision = _decision_of(decided)
                approved = _approved(approval)
            why = reasons_text(decision)
            if decision.outcome is Outcome.EXECUTE:
                return await fn(*args, **kwargs)
            if decision.outcome is Outcome.ESCALATE:
                if approved is True:
                    return await fn(*args, **kwargs)
                raise ToolError(f"a human did not approve (decision {decision.decision_id}): {why}")
            raise ToolError(f"refused by policy (decision {decision.decision_id}): {why}")

        # The SDK reads the parameters from the signature and the resolvers
        # from the annotations; both gain the two hidden parameters.
        params = list(signature.parameters.values())
        at = next((i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD), len(params))
        hidden_params = [
            inspect.Parameter(_DECISION, inspect.Parameter.KEYWORD_ONLY, default=None),
            inspect.Parameter(_APPROVAL, inspect.Parameter.KEYWORD_ONLY, default=None),
        ]
        guarded.__signature__ = signature.replace(parameters=params[:at] + hidden_params + params[at:])  # type: ignore[attr-defined]
        guarded.__annotations__ = {
            **getattr(fn, "__annotations__", {}),
            _DECISION: Annotated[ElicitationResult[Any], Resolve(decide_resolver)],
            _APPROVAL: Annotated[ElicitationResult[Any], Resolve(approval_resolver)],
        }
        return guarded  # type: ignore[return-value]

    return decorate
