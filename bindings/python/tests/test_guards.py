"""The `@guard` decorator, and every guard module importable without its framework."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import agentriage
from agentriage.guards import ApprovalDenied, ApprovalRequired, Guard, PolicyRejected, guard
from guard_support import CONTEXT, ESCALATED_BY, REJECTED_BY, clock, invoice, router, shipment


def make(engine: agentriage.Engine, **options: Any) -> tuple[Any, Any, list[str]]:
    ran: list[str] = []

    @guard(engine, action="shipment.reroute", principal=router, resource=shipment, context=CONTEXT, clock=clock, **options)
    def reroute(shipment_id: str, destination: str = "dc-2") -> str:
        ran.append(f"{shipment_id}->{destination}")
        return "rerouted"

    @guard(engine, action="shipment.reroute", principal=router, resource=shipment, context=CONTEXT, clock=clock, **options)
    async def reroute_async(shipment_id: str, destination: str = "dc-2") -> str:
        ran.append(f"async {shipment_id}->{destination}")
        return "rerouted"

    return reroute, reroute_async, ran


def test_execute_runs_the_function(engine: agentriage.Engine) -> None:
    reroute, reroute_async, ran = make(engine)
    assert reroute("SH-1001") == "rerouted"
    assert asyncio.run(reroute_async(shipment_id="SH-1001", destination="dc-9")) == "rerouted"
    assert ran == ["SH-1001->dc-2", "async SH-1001->dc-9"]
    assert reroute.__name__ == "reroute"


def test_escalate_without_an_approver_does_not_run(engine: agentriage.Engine) -> None:
    reroute, reroute_async, ran = make(engine)
    with pytest.raises(ApprovalRequired) as e:
        reroute("SH-1002")
    assert e.value.decision.policy_ids == ESCALATED_BY
    with pytest.raises(ApprovalRequired):
        asyncio.run(reroute_async("SH-1002"))
    assert ran == []


def test_escalate_runs_only_on_an_explicit_yes(engine: agentriage.Engine) -> None:
    asked: list[tuple[str, dict[str, Any]]] = []

    def human(decision: agentriage.Decision, arguments: Any) -> Any:
        asked.append((decision.outcome.value, dict(arguments)))
        return arguments["destination"] == "dc-2"

    reroute, _, ran = make(engine, approve=human)
    assert reroute("SH-1002") == "rerouted"
    with pytest.raises(ApprovalDenied):
        reroute("SH-1002", "dc-3")
    assert ran == ["SH-1002->dc-2"]
    assert asked == [("escalate", {"shipment_id": "SH-1002", "destination": "dc-2"}),
                     ("escalate", {"shipment_id": "SH-1002", "destination": "dc-3"})]


def test_truthy_answers_that_are_not_true_refuse(engine: agentriage.Engine) -> None:
    reroute, _, ran = make(engine, approve=lambda d, a: "yes")
    with pytest.raises(ApprovalDenied):
        reroute("SH-1002")
    assert ran == []


def test_an_async_approver_is_awaited_by_async_functions_and_refused_by_sync_ones(engine: agentriage.Engine) -> None:
    async def human(decision: agentriage.Decision, arguments: Any) -> bool:
        await asyncio.sleep(0)
        return True

    reroute, reroute_async, ran = make(engine, approve=human)
    assert asyncio.run(reroute_async("SH-1002")) == "rerouted"
    with pytest.raises(ApprovalDenied):
        reroute("SH-1002")
    assert ran == ["async SH-1002->dc-2"]


def test_reject_raises_and_does_not_run(engine: agentriage.Engine) -> None:
    ran: list[str] = []

    @guard(engine, action="payment.release", principal=router, resource=invoice, context=CONTEXT, clock=clock,
           approve=lambda d, a: True)
    def pay(invoice_id: str) -> None:
        ran.append(invoice_id)

    with pytest.raises(PolicyRejected) as e:
        pay("INV-88")
    assert e.value.decision.policy_ids == REJECTED_BY
    assert "R3.role_not_permitted" in str(e.value)
    assert ran == []


def test_an_invalid_request_raises_and_does_not_run(engine: agentriage.Engine) -> None:
    ran: list[str] = []

    @guard(engine, action="shipment.reroute", principal=lambda: None, resource=shipment, clock=clock)
    def reroute(shipment_id: str) -> None:
        ran.append(shipment_id)

    with pytest.raises(agentriage.InvalidRequestError) as e:
        reroute("SH-1001")
    assert e.value.path == "principal"
    assert ran == []


def test_guard_builds_the_request(engine: agentriage.Engine) -> None:
    g = Guard(engine, principal=router, context={"site": "dc-1"}, clock=clock)
    req = g.request("shipment.read", context={"workflow_id": "wf"})
    assert req["action"] == {"name": "shipment.read"}
    assert req["context"] == {"site": "dc-1", "workflow_id": "wf"}
    assert "resource" not in req and req["time"] == clock()


FRAMEWORKS = ["a2a", "mcp", "agents", "google.adk", "langgraph", "langchain_core", "pydantic"]


def test_every_guard_module_imports_without_its_framework() -> None:
    code = textwrap.dedent(
        f"""
        import importlib.abc, sys
        blocked = {FRAMEWORKS!r}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if any(name == b or name.startswith(b + ".") for b in blocked):
                    raise ImportError(f"blocked: {{name}}")
                return None
        sys.meta_path.insert(0, Block())
        import agentriage.guards
        from agentriage.guards import a2a, adk, langgraph, mcp, openai_agents
        assert not any(m == b or m.startswith(b + ".") for m in sys.modules for b in blocked), sorted(sys.modules)
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
