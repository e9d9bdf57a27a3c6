"""Guards: agentriage in front of an agent framework's tools and tasks.

Every guard maps the framework's caller identity and tool arguments to a
request, asks the engine, and answers in the framework's own idiom:
``execute`` runs the tool, ``reject`` is the framework's refusal, ``escalate``
its pause (input required, an approval, an interrupt). Anything but a clear
``execute`` (or a human's explicit approval of an escalation) does not run
the tool: an invalid request or an engine error stops the call too.

The framework modules import their framework only when used, so
``import agentriage.guards.mcp`` works without ``mcp`` installed:

- :mod:`agentriage.guards.a2a`: an ``a2a-sdk`` ``AgentExecutor`` wrapper;
- :mod:`agentriage.guards.mcp`: tools of a Python ``mcp`` SDK server;
- :mod:`agentriage.guards.openai_agents`: OpenAI Agents SDK tool guardrail
  and approval hook;
- :mod:`agentriage.guards.adk`: Google ADK ``before_tool_callback``;
- :mod:`agentriage.guards.langgraph`: LangGraph ``ToolNode(wrap_tool_call=...)``.

For plain functions, :func:`guard` is a decorator::

    @guard(engine, action="shipment.reroute",
           principal=current_agent,
           resource=lambda args: {"type": "shipment", "id": args["shipment_id"]})
    async def reroute(shipment_id: str, destination: str) -> str: ...
"""

from agentriage.guards._core import (
    ApprovalDenied,
    ApprovalRequired,
    Guard,
    PolicyRefusal,
    PolicyRejected,
    guard,
    reasons_text,
)

__all__ = [
    "ApprovalDenied",
    "ApprovalRequired",
    "Guard",
    "PolicyRefusal",
    "PolicyRejected",
    "guard",
    "reasons_text",
]
