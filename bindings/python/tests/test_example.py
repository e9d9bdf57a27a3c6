"""The LangGraph example runs offline and the policies steer the agent."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import agentriage

from conftest import require

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# The pack treats regulated actions differently outside 06:00-20:00 UTC (R13),
# so the conversation runs at fixed times rather than whenever the test runs.
WORKING_HOURS = dt.datetime(2026, 11, 24, 10, 30, tzinfo=dt.timezone.utc)
AFTER_HOURS = dt.datetime(2026, 11, 24, 22, 15, tzinfo=dt.timezone.utc)


def load_example() -> ModuleType:
    require("langgraph")
    spec = importlib.util.spec_from_file_location("langgraph_guard", EXAMPLES / "langgraph_guard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_guarded_agent_executes_pauses_and_refuses() -> None:
    example = load_example()
    engine = agentriage.Engine.from_bundle(example.BUNDLE)
    seen_by_human: list[dict[str, Any]] = []

    def human(pending: dict[str, Any]) -> str | None:
        seen_by_human.append(pending)
        return example.demo_approver(pending, now=WORKING_HOURS)

    lines: list[str] = []
    outcome = example.run(engine, approve=human, out=lines.append, clock=lambda: WORKING_HOURS)

    # Escalate paused the graph for a human, who saw why and what to sign.
    [pending] = seen_by_human
    assert pending["tool"] == "reroute_shipment"
    assert pending["args"]["shipment_id"] == "SH-1002"
    assert [r["policy"] for r in pending["reasons"]] == ["R9.value_threshold"]
    assert pending["approval_request"]["action_digest"].startswith("sha256:")

    # Execute ran, the approved escalation ran after a second decision that
    # used the approval, the reject never did.
    assert outcome["performed"] == ["reroute SH-1001 -> dc-2", "reroute SH-1002 -> dc-2"]
    first = [(name, d.outcome.value) for name, d in outcome["decisions"]]
    assert first[0] == ("reroute_shipment", "execute")
    assert ("reroute_shipment", "escalate") in first
    approved = [d for name, d in outcome["decisions"] if d.approval is not None]
    assert [d.approval["status"] for d in approved] == ["used"]
    assert first[-1] == ("release_payment", "reject")
    refused = [d for name, d in outcome["decisions"] if name == "release_payment"]
    assert refused[0].policy_ids == ["R3.role_not_permitted", "R14.intent_missing"]
    tool_messages = [m for m in outcome["result"]["messages"] if m.type == "tool"]
    assert [m.status for m in tool_messages] == ["success", "success", "error"]
    assert "R3.role_not_permitted" in tool_messages[-1].content


def test_denied_escalation_does_not_run(engine: agentriage.Engine) -> None:
    example = load_example()
    outcome = example.run(engine, approve=lambda pending: None, out=lambda line: None, clock=lambda: WORKING_HOURS)
    assert outcome["performed"] == ["reroute SH-1001 -> dc-2"]
    tool_messages = [m for m in outcome["result"]["messages"] if m.type == "tool"]
    assert "a human did not approve" in tool_messages[1].content


def test_a_yes_without_a_valid_approval_does_not_run() -> None:
    example = load_example()
    engine = agentriage.Engine.from_bundle(example.BUNDLE)
    # A reviewer who answers with something that is not a valid approval of
    # this action: the engine refuses it, the tool does not run.
    outcome = example.run(engine, approve=lambda pending: "yes", out=lambda line: None, clock=lambda: WORKING_HOURS)
    assert outcome["performed"] == ["reroute SH-1001 -> dc-2"]
    refused = [d for name, d in outcome["decisions"] if d.approval is not None]
    assert refused[0].outcome is agentriage.Outcome.REJECT
    assert "approval.token" in refused[0].policy_ids
    tool_messages = [m for m in outcome["result"]["messages"] if m.type == "tool"]
    assert "the approval was refused" in tool_messages[1].content


def test_after_hours_the_payment_also_needs_a_human(engine: agentriage.Engine) -> None:
    example = load_example()
    outcome = example.run(
        engine,
        approve=lambda pending: example.demo_approver(pending, now=AFTER_HOURS),
        out=lambda line: None,
        clock=lambda: AFTER_HOURS,
    )
    refused = [d for name, d in outcome["decisions"] if name == "release_payment"]
    assert refused[0].outcome is agentriage.Outcome.REJECT
    assert refused[0].policy_ids == ["R3.role_not_permitted", "R13.outside_business_hours", "R14.intent_missing"]


def test_example_runs_as_a_script() -> None:
    require("langgraph")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "langgraph_guard.py")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert "PAUSED   reroute_shipment" in done.stdout
    assert "REJECT   release_payment: R3.role_not_permitted" in done.stdout
