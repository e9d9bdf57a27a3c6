"""Guard the tool calls of a LangGraph agent with agentriage.

Every tool call the model makes goes through ``PolicyGuard`` — LangGraph's own
``ToolNode(wrap_tool_call=...)`` hook — before the tool runs:

- ``execute``: the tool runs;
- ``escalate``: the graph pauses with LangGraph's ``interrupt()`` until a
  human answers. The answer is not a yes/no flag: it is a **signed
  approval** (``Command(resume={"approval": token})``) bound to this exact
  action, which the guard hands back to the engine; the tool runs only if
  that second decision executes (right approver role, same action, not
  expired, not used before). See ``docs/escalation.md``;
- ``reject``: the tool does not run; the model gets a refusal naming the
  policies that fired.

The model here is LangChain's ``GenericFakeChatModel`` playing a scripted
conversation, so the example runs without network or LLM access; swap in any
chat model that supports tool calling. The policies are the reference A2A
supply-chain pack in ``policies/a2a-supply-chain``.

Run it: ``python bindings/python/examples/langgraph_guard.py``
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Optional

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command, interrupt

import agentriage

BUNDLE = Path(__file__).resolve().parents[3] / "policies" / "a2a-supply-chain"

# The systems of record. Policy inputs such as a shipment's value come from
# here, never from the model's tool arguments, which a prompt can steer.
SHIPMENTS: dict[str, dict[str, Any]] = {
    "SH-1001": {"value_usd": 12_000, "state": "in_transit"},
    "SH-1002": {"value_usd": 240_000, "state": "in_transit"},
}
INVOICES: dict[str, dict[str, Any]] = {"INV-88": {"amount_usd": 5_000}}

# What the tools actually did; a refused call never shows up here.
PERFORMED: list[str] = []


@tool
def reroute_shipment(shipment_id: str, destination: str) -> str:
    """Reroute a shipment to another destination."""
    PERFORMED.append(f"reroute {shipment_id} -> {destination}")
    return f"{shipment_id} rerouted to {destination}"


@tool
def release_payment(invoice_id: str) -> str:
    """Release the payment of an invoice."""
    PERFORMED.append(f"pay {invoice_id}")
    return f"payment for {invoice_id} released"


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def router_identity(now: dt.datetime) -> dict[str, Any]:
    """The agent's workload identity, as the host knows it (here: SPIFFE + TPM attestation)."""
    return {
        "id": "spiffe://acme.example/ns/logistics/sa/router",
        "type": "agent",
        "trust_zone": "cloud",
        "credential": {
            "issuer": "spiffe://acme.example/spire",
            "expires_at": _iso(now + dt.timedelta(minutes=5)),
        },
        "attestation": {
            "status": "verified",
            "kind": "tpm",
            "verified_at": _iso(now - dt.timedelta(minutes=5)),
        },
    }


def reroute_request(args: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    shipment_id = str(args["shipment_id"])
    record = SHIPMENTS.get(shipment_id, {})
    return "shipment.reroute", {"type": "shipment", "id": shipment_id, "attributes": record}


def payment_request(args: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    invoice_id = str(args["invoice_id"])
    record = INVOICES.get(invoice_id, {})
    return "payment.release", {"type": "invoice", "id": invoice_id, "attributes": record}


# Tool name -> (action name, resource) for the policy request.
ACTIONS: dict[str, Callable[[Mapping[str, Any]], tuple[str, dict[str, Any]]]] = {
    "reroute_shipment": reroute_request,
    "release_payment": payment_request,
}


class PolicyGuard:
    """Decides every tool call with agentriage before LangGraph runs it."""

    def __init__(
        self,
        engine: agentriage.Engine,
        identity: Callable[[dt.datetime], dict[str, Any]],
        context: dict[str, Any],
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    ) -> None:
        self.engine = engine
        self.identity = identity
        self.context = context
        self.clock = clock
        self.decisions: list[tuple[str, agentriage.Decision]] = []

    def request_for(self, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        action, resource = ACTIONS[name](args)
        now = self.clock()
        return {
            "time": _iso(now),
            "principal": self.identity(now),
            "action": {"name": action},
            "resource": resource,
            "context": self.context,
        }

    def __call__(
        self,
        request: ToolCallRequest,
        execute: Callable[[ToolCallRequest], ToolMessage | Command[Any]],
    ) -> ToolMessage | Command[Any]:
        call = request.tool_call
        name, call_id = call["name"], call["id"] or ""
        if name not in ACTIONS:
            # A tool the policies know nothing about fails closed.
            return refusal(call_id, f"`{name}` is not a governed tool")
        decision = self.engine.decide(self.request_for(name, call["args"]))
        self.decisions.append((name, decision))
        why = "; ".join(f"{r.policy}: {r.message}" for r in decision.reasons)

        if decision.outcome is agentriage.Outcome.EXECUTE:
            return execute(request)
        if decision.outcome is agentriage.Outcome.ESCALATE:
            # Pauses the graph; the value is what the human reviewer sees. On
            # resume LangGraph re-runs this node and `interrupt` returns the answer.
            answer = interrupt(
                {
                    "tool": name,
                    "args": call["args"],
                    "reasons": [r.to_dict() for r in decision.reasons],
                    "decision_id": decision.decision_id,
                    "trace_id": decision.trace_id,
                    # What an approver signs: the action's digest, the reasons
                    # and who may approve them, the expiry.
                    "approval_request": decision.approval_request,
                    "decision": decision.to_dict(),
                }
            )
            token = answer.get("approval") if isinstance(answer, Mapping) else None
            if not isinstance(token, str):
                return refusal(call_id, f"a human did not approve: {why}")
            # The engine, not this code, judges the approval: decide again.
            approved = self.engine.decide({**self.request_for(name, call["args"]), "approval": token})
            self.decisions.append((name, approved))
            if approved.outcome is agentriage.Outcome.EXECUTE:
                return execute(request)
            refused = "; ".join(f"{r.policy}: {r.message}" for r in approved.reasons)
            return refusal(call_id, f"the approval was refused: {refused}")
        return refusal(call_id, f"refused by policy: {why}")


def refusal(call_id: str, text: str) -> ToolMessage:
    return ToolMessage(content=text, tool_call_id=call_id, status="error")


def scripted_model() -> GenericFakeChatModel:
    """The model's side of the conversation, scripted: three tool calls, then an answer."""

    def call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
        return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])

    messages: Iterator[AIMessage | str] = iter(
        [
            call("reroute_shipment", {"shipment_id": "SH-1001", "destination": "dc-2"}, "call-1"),
            call("reroute_shipment", {"shipment_id": "SH-1002", "destination": "dc-2"}, "call-2"),
            call("release_payment", {"invoice_id": "INV-88"}, "call-3"),
            AIMessage(content="Rerouted both shipments; the payment needs the finance agent."),
        ]
    )
    return GenericFakeChatModel(messages=messages)


def build_agent(guard: PolicyGuard, model: GenericFakeChatModel) -> CompiledStateGraph[Any, Any, Any, Any]:
    tools: list[BaseTool] = [reroute_shipment, release_payment]

    def agent(state: MessagesState) -> dict[str, list[AnyMessage]]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools, wrap_tool_call=guard))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    # Interrupts need a checkpointer: the paused run is kept there.
    return graph.compile(checkpointer=InMemorySaver())


# A DEMO approver: Lee, logistics supervisor. The private key is the
# test-only key published in testdata/approvals/keys/; a real approver signs
# in their own tool (`agentriage approval sign`, or any JOSE library).
DEMO_APPROVER = Path(__file__).resolve().parents[3] / "testdata" / "approvals" / "keys" / "lee-logistics.pem"


def demo_approver(pending: dict[str, Any], now: Optional[dt.datetime] = None) -> Optional[str]:
    """Plays the human reviewer: approves what it is shown, with a signed
    approval made at `now` (default: the current time)."""
    if not pending.get("approval_request"):
        return None
    return agentriage.approval.sign(
        DEMO_APPROVER.read_text(),
        alg="ES256",
        kid="lee-2026-11",
        iss="mailto:lee.brandt@acme.example",
        request=pending["decision"],
        iat=now,
    )


def run(
    engine: Optional[agentriage.Engine] = None,
    approve: Callable[[dict[str, Any]], Optional[str]] = demo_approver,
    out: Callable[[str], None] = print,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
) -> dict[str, Any]:
    """Runs the scripted conversation; `approve` plays the human reviewer (it
    returns a signed approval, or None to deny), `clock` says when."""
    engine = engine or agentriage.Engine.from_bundle(BUNDLE)
    context = {"workflow_id": "wf-1", "incident_mode": False, "site": "dc-1"}
    guard = PolicyGuard(engine, router_identity, context, clock)
    agent = build_agent(guard, scripted_model())
    config: Any = {"configurable": {"thread_id": "wf-1"}}

    result = agent.invoke({"messages": [HumanMessage("Move SH-1001 and SH-1002 to dc-2, then pay INV-88.")]}, config)
    paused = []
    while "__interrupt__" in result:
        for pending in result["__interrupt__"]:
            value = pending.value
            paused.append(value)
            reasons = ", ".join(r["policy"] for r in value["reasons"])
            token = approve(value)
            out(f"PAUSED   {value['tool']}({value['args']}) for a human: {reasons} -> approved={token is not None}")
        result = agent.invoke(Command(resume={"approval": token}), config)

    for name, decision in guard.decisions:
        out(f"{decision.outcome.value.upper():8} {name}: {', '.join(decision.policy_ids) or '-'}")
    for message in result["messages"]:
        if isinstance(message, ToolMessage):
            out(f"TOOL     {message.status}: {message.content}")
    out(f"AGENT    {result['messages'][-1].content}")
    return {"result": result, "paused": paused, "decisions": guard.decisions, "performed": list(PERFORMED)}


if __name__ == "__main__":
    run()
    sys.exit(0)
