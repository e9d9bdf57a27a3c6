"""agentriage.otel: decisions as spans and metrics of the host's own
OpenTelemetry setup, checked with the real SDK (in-memory exporter and
metric reader)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

import agentriage
from agentriage import otel
from conftest import require
from guard_support import CONTEXT, WORKING_HOURS, clock, router, shipment

require("opentelemetry.sdk")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"


class Host:
    """A host's OpenTelemetry setup: its providers, exporter and reader."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.tracer = self.tracer_provider.get_tracer("host")

    def instrument(self, engine: agentriage.Engine) -> agentriage.Engine:
        return otel.instrument(engine, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)

    def decision_spans(self) -> list[Any]:
        return [s for s in self.spans.get_finished_spans() if s.name == "agentriage.decide"]

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        out = []
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                assert sm.scope.name == "agentriage"
                for m in sm.metrics:
                    if m.name == name:
                        out.extend(m.data.data_points)
        return out


def reroute(value: int, **extra: Any) -> dict[str, Any]:
    return {
        "time": WORKING_HOURS,
        "principal": router(),
        "action": {"name": "shipment.reroute"},
        "resource": {"type": "shipment", "id": "SH-1", "attributes": {"value_usd": value, "state": "in_transit"}},
        "context": CONTEXT,
        **extra,
    }


def check_attributes(span: Any, decision: agentriage.Decision) -> None:
    attrs = dict(span.attributes)
    assert attrs == {
        "agentriage.outcome": str(decision.outcome),
        "agentriage.decision_id": decision.decision_id,
        "agentriage.bundle.name": decision.bundle.name,
        "agentriage.bundle.revision": decision.bundle.revision,
        "agentriage.bundle.digest": decision.bundle.digest,
        "agentriage.policies": tuple(decision.policy_ids),
        "agentriage.duration_us": decision.duration_us,
        "agentriage.action": "shipment.reroute",
        "agentriage.principal.id": "spiffe://acme.example/ns/logistics/sa/router",
        **({"agentriage.batch.size": attrs["agentriage.batch.size"]} if "agentriage.batch.size" in attrs else {}),
    }


def test_a_decision_is_a_child_span_of_the_current_one(engine: agentriage.Engine) -> None:
    host = Host()
    instrumented = host.instrument(engine)
    with host.tracer.start_as_current_span("tool call") as parent:
        decision = instrumented.decide(reroute(240_000))
    assert decision.outcome == "escalate"
    assert "R9.value_threshold" in decision.policy_ids
    [span] = host.decision_spans()
    assert span.parent is not None
    assert span.parent.span_id == parent.get_span_context().span_id
    assert span.context.trace_id == parent.get_span_context().trace_id
    assert span.kind == trace.SpanKind.INTERNAL
    assert span.status.status_code == StatusCode.UNSET
    check_attributes(span, decision)
    assert span.start_time is not None and span.end_time is not None and span.start_time <= span.end_time


def test_without_a_current_span_the_request_traceparent_is_the_parent(engine: agentriage.Engine) -> None:
    host = Host()
    decision = host.instrument(engine).decide(reroute(12_000, traceparent=TRACEPARENT))
    assert decision.outcome == "execute"
    [span] = host.decision_spans()
    assert format(span.context.trace_id, "032x") == TRACE == decision.trace_id
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT
    assert span.parent.is_remote
    check_attributes(span, decision)


def test_json_text_requests_give_the_same_attributes(engine: agentriage.Engine) -> None:
    import json

    host = Host()
    text = json.dumps(reroute(12_000, traceparent=TRACEPARENT), default=lambda t: t.isoformat())
    decision = host.instrument(engine).decide(text)
    [span] = host.decision_spans()
    check_attributes(span, decision)
    assert format(span.context.trace_id, "032x") == TRACE


def test_without_either_the_span_starts_a_trace(engine: agentriage.Engine) -> None:
    host = Host()
    host.instrument(engine).decide(reroute(12_000))
    [span] = host.decision_spans()
    assert span.parent is None
    assert span.context.trace_id != 0


def test_an_engine_error_ends_the_span_with_status_error(engine: agentriage.Engine) -> None:
    host = Host()
    instrumented = host.instrument(engine)
    bad = reroute(12_000)
    del bad["principal"]
    with pytest.raises(agentriage.InvalidRequestError) as raised:
        instrumented.decide(bad)
    [span] = host.decision_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert "principal" in (span.status.description or "")
    assert span.attributes["error.type"] == "InvalidRequestError"
    assert span.attributes["agentriage.action"] == "shipment.reroute"
    [event] = span.events
    assert event.name == "exception"
    assert event.attributes["exception.message"] == str(raised.value)
    [point] = host.points("agentriage.decisions")
    assert dict(point.attributes) == {"error.type": "InvalidRequestError"} and point.value == 1


def test_metrics_count_decisions_by_outcome_and_time_them(engine: agentriage.Engine) -> None:
    host = Host()
    instrumented = host.instrument(engine)
    for value in (12_000, 240_000, 12_000):
        instrumented.decide(reroute(value))
    counts = {p.attributes["outcome"]: p.value for p in host.points("agentriage.decisions")}
    assert counts == {"execute": 2, "escalate": 1}
    durations = {p.attributes["outcome"]: p for p in host.points("agentriage.decision.duration")}
    assert durations["execute"].count == 2 and durations["escalate"].count == 1
    assert all(p.sum > 0 for p in durations.values())


def test_decide_async_spans_sit_under_the_awaiting_task_span(engine: agentriage.Engine) -> None:
    host = Host()
    instrumented = host.instrument(engine)

    async def tool_call(value: int) -> tuple[agentriage.Decision, int]:
        with host.tracer.start_as_current_span(f"call {value}") as parent:
            decision = await instrumented.decide_async(reroute(value))
            return decision, parent.get_span_context().span_id

    async def main() -> list[tuple[agentriage.Decision, int]]:
        return list(await asyncio.gather(tool_call(12_000), tool_call(240_000)))

    results = asyncio.run(main())
    spans = {s.attributes["agentriage.decision_id"]: s for s in host.decision_spans()}
    assert len(spans) == 2
    for decision, parent_id in results:
        span = spans[decision.decision_id]
        assert span.parent is not None and span.parent.span_id == parent_id
        check_attributes(span, decision)
    assert {d.outcome for d, _ in results} == {"execute", "escalate"}


def test_batches_make_a_span_per_decision(engine: agentriage.Engine) -> None:
    host = Host()
    instrumented = host.instrument(engine)
    requests = [reroute(v) for v in (12_000, 240_000, 12_000)]
    with host.tracer.start_as_current_span("batch") as parent:
        decisions = instrumented.decide_many(requests)
        more = asyncio.run(instrumented.decide_many_async(requests[:2]))
    spans = {s.attributes["agentriage.decision_id"]: s for s in host.decision_spans()}
    assert len(spans) == 5
    for d in decisions + more:
        span = spans[d.decision_id]
        check_attributes(span, d)
        assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert sorted(s.attributes["agentriage.batch.size"] for s in spans.values()) == [2, 2, 3, 3, 3]
    counts = {p.attributes["outcome"]: p.value for p in host.points("agentriage.decisions")}
    assert counts == {"execute": 3, "escalate": 2}


def test_a_failed_batch_makes_one_error_span_naming_the_request(engine: agentriage.Engine) -> None:
    host = Host()
    bad = reroute(12_000)
    bad["action"] = {"name": 7}
    with pytest.raises(agentriage.InvalidRequestError):
        host.instrument(engine).decide_many([reroute(12_000), bad])
    [span] = host.decision_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["agentriage.batch.index"] == 1
    assert span.attributes["agentriage.batch.size"] == 2


def test_the_instrumented_engine_decides_as_the_engine_and_passes_everything_else(
    engine: agentriage.Engine,
) -> None:
    host = Host()
    instrumented = host.instrument(engine)
    assert instrumented.bundle == engine.bundle
    assert instrumented.metrics_text() == engine.metrics_text()
    for value in (12_000, 240_000):
        assert instrumented.decide(reroute(value)).policy_ids == engine.decide(reroute(value)).policy_ids
    with pytest.raises(TypeError, match="already instrumented"):
        otel.instrument(instrumented)


def test_a_guard_over_an_instrumented_engine_traces_its_decisions(engine: agentriage.Engine) -> None:
    from agentriage.guards import guard

    host = Host()
    instrumented = host.instrument(engine)
    ran = []

    @guard(
        instrumented,
        action="shipment.reroute",
        principal=router(),
        resource=shipment,
        context=CONTEXT,
        clock=clock,
    )
    def reroute_tool(shipment_id: str) -> str:
        ran.append(shipment_id)
        return "rerouted"

    assert reroute_tool("SH-1001") == "rerouted"
    [span] = host.decision_spans()
    assert span.attributes["agentriage.outcome"] == "execute"
    assert ran == ["SH-1001"]


def test_the_module_imports_without_opentelemetry() -> None:
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "import agentriage, agentriage.otel as o\n"
        "assert o.SPAN_NAME == 'agentriage.decide'\n"
        "e = agentriage.Engine.from_bundle(sys.argv[1])\n"
        "try:\n"
        "    o.instrument(e)\n"
        "except ImportError as err:\n"
        "    assert 'pip install opentelemetry-api' in str(err), err\n"
        "    print('refused')\n"
    )
    from conftest import ECHO_BUNDLE

    out = subprocess.run([sys.executable, "-c", code, str(ECHO_BUNDLE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "refused"
