"""Decisions in the host's own OpenTelemetry setup.

``instrument(engine)`` returns an engine that decides exactly as ``engine``
does and, for every decision, makes a span ``agentriage.decide`` with the
host's tracer provider and counts it with the host's meter provider::

    from agentriage import otel

    engine = otel.instrument(agentriage.Engine.from_bundle("policies/a2a-supply-chain"))
    decision = await engine.decide_async(request)   # a span under the current one

The span is a child of the span current where the call is made; with no
current span, of the request's ``traceparent`` (so the decision lands in the
trace the caller named); with neither, it starts a trace. Its attributes are
the ones the CLI's OTLP exporter (``agentriage eval --otlp-endpoint``)
writes, with the same names (docs/observability.md lists them). An engine
error (an invalid request, an internal error) ends the span with status
``ERROR``, the exception recorded and ``error.type`` set to its class name;
the error is raised as before.

Metrics, on the meter ``agentriage``: ``agentriage.decisions`` (a counter,
by ``outcome``, or by ``error.type`` for a call that failed) and
``agentriage.decision.duration`` (a histogram in seconds of the whole call,
conversion of the request included, by the same attribute; for a batch,
the call's time divided by its size, once per decision).

This module imports without OpenTelemetry installed; ``instrument`` needs
``opentelemetry-api`` (the SDK, exporters and providers are the host's).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Optional, cast

if TYPE_CHECKING:
    from agentriage._native import Decision, Engine

__all__ = ["SPAN_NAME", "instrument", "decision_attributes", "InstrumentedEngine"]

#: The name of every decision span, as the OTLP exporter names it.
SPAN_NAME = "agentriage.decide"
_SCOPE = "agentriage"


def decision_attributes(decision: Decision, request: Any = None) -> dict[str, Any]:
    """The span attributes of ``decision`` (made for ``request``), named as
    the OTLP exporter names them."""
    bundle = decision.bundle
    attrs: dict[str, Any] = {
        "agentriage.outcome": str(decision.outcome),
        "agentriage.decision_id": decision.decision_id,
        "agentriage.bundle.name": bundle.name,
        "agentriage.bundle.revision": bundle.revision,
        "agentriage.bundle.digest": bundle.digest,
        "agentriage.policies": list(decision.policy_ids),
        "agentriage.duration_us": decision.duration_us,
    }
    attrs.update(_request_attributes(request))
    return attrs


def _as_mapping(request: Any) -> Optional[Mapping[str, Any]]:
    if isinstance(request, Mapping):
        return request
    if isinstance(request, (str, bytes, bytearray)):
        try:
            parsed = json.loads(request)
        except ValueError:
            return None
        return parsed if isinstance(parsed, Mapping) else None
    return None


def _request_attributes(request: Any) -> dict[str, Any]:
    """``agentriage.action`` and ``agentriage.principal.id`` from the request,
    when it names them (as strings)."""
    req = _as_mapping(request)
    out: dict[str, Any] = {}
    if req is None:
        return out
    action = req.get("action")
    if isinstance(action, Mapping) and isinstance(action.get("name"), str):
        out["agentriage.action"] = action["name"]
    principal = req.get("principal")
    if isinstance(principal, Mapping) and isinstance(principal.get("id"), str):
        out["agentriage.principal.id"] = principal["id"]
    return out


def _traceparent(request: Any) -> Optional[str]:
    req = _as_mapping(request)
    if req is None:
        return None
    tp = req.get("traceparent")
    return tp if isinstance(tp, str) else None


class _Telemetry:
    """The tracer and instruments, from the host's providers."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        try:
            from opentelemetry import metrics, trace
            from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
        except ImportError as e:
            raise ImportError(
                "agentriage.otel.instrument needs the OpenTelemetry API: pip install opentelemetry-api "
                "(and the host's SDK setup, e.g. opentelemetry-sdk)"
            ) from e
        from agentriage import __version__

        self.propagator = TraceContextTextMapPropagator()
        self.tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        self.counter = meter.create_counter(
            "agentriage.decisions", unit="{decision}", description="decisions made, by outcome"
        )
        self.duration = meter.create_histogram(
            "agentriage.decision.duration",
            unit="s",
            description="time of a decide call, request conversion included",
        )

    def parent(self, request: Any) -> Any:
        """The context the span starts in: the current one when it has a
        span, else the request's ``traceparent`` (when valid), else none."""
        from opentelemetry import trace

        if trace.get_current_span().get_span_context().is_valid:
            return None
        tp = _traceparent(request)
        if tp is None:
            return None
        ctx = self.propagator.extract({"traceparent": tp})
        return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None

    def record(self, outcome_or_error: dict[str, str], start: float, count: int = 1) -> None:
        elapsed = time.perf_counter() - start
        self.counter.add(count, outcome_or_error)
        self.duration.record(elapsed, outcome_or_error)

    @contextmanager
    def span(self, request: Any, extra: Optional[dict[str, Any]] = None) -> Iterator[Any]:
        """A decision span around the block; ends it with status ERROR and
        the exception recorded when the block raises."""
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind

        attributes = _request_attributes(request)
        if extra:
            attributes.update(extra)
        span = self.tracer.start_span(
            SPAN_NAME,
            context=self.parent(request),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
        )
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                yield span
        except BaseException as e:
            _failed_span(span, e)
            raise
        finally:
            span.end()


def _failed_span(span: Any, e: BaseException) -> None:
    """Marks ``span`` as failed by ``e``: status ERROR, ``error.type``, the
    exception as an event."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", type(e).__name__)
    span.record_exception(e)
    span.set_status(Status(StatusCode.ERROR, f"{type(e).__name__}: {e}"))


def _finish(span: Any, decision: Decision) -> None:
    span.set_attributes(decision_attributes(decision))


class InstrumentedEngine:
    """An engine whose ``decide``, ``decide_many``, ``decide_async`` and
    ``decide_many_async`` make a span per decision and count it; every other
    attribute is the wrapped engine's (``engine``)."""

    def __init__(self, engine: Engine, telemetry: _Telemetry) -> None:
        self.engine = engine
        self._t = telemetry

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def __repr__(self) -> str:
        return f"agentriage.otel.InstrumentedEngine({self.engine!r})"

    def _failed(self, e: BaseException, start: float, count: int = 1) -> None:
        self._t.record({"error.type": type(e).__name__}, start, count)

    def decide(self, request: Any) -> Decision:
        """``Engine.decide``, in a span."""
        start = time.perf_counter()
        try:
            with self._t.span(request) as span:
                decision = self.engine.decide(request)
                _finish(span, decision)
        except BaseException as e:
            self._failed(e, start)
            raise
        self._t.record({"outcome": str(decision.outcome)}, start)
        return decision

    async def decide_async(self, request: Any) -> Decision:
        """``Engine.decide_async``, in a span (the span is current in the
        awaiting task's context)."""
        start = time.perf_counter()
        try:
            with self._t.span(request) as span:
                decision = await self.engine.decide_async(request)
                _finish(span, decision)
        except BaseException as e:
            self._failed(e, start)
            raise
        self._t.record({"outcome": str(decision.outcome)}, start)
        return decision

    def _batch_spans(self, requests: list[Any], decisions: list[Decision], start_ns: int, start: float) -> None:
        from opentelemetry.trace import SpanKind

        share = (time.perf_counter() - start) / max(len(requests), 1)
        for request, decision in zip(requests, decisions):
            attributes = decision_attributes(decision, request)
            attributes["agentriage.batch.size"] = len(requests)
            span = self._t.tracer.start_span(
                SPAN_NAME,
                context=self._t.parent(request),
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                start_time=start_ns,
            )
            span.end()
            outcome = {"outcome": str(decision.outcome)}
            self._t.counter.add(1, outcome)
            self._t.duration.record(share, outcome)

    def _batch_failed(self, batch: list[Any], e: BaseException, start: float) -> None:
        extra: dict[str, Any] = {"agentriage.batch.size": len(batch)}
        index = getattr(e, "index", None)
        first = None
        if isinstance(index, int) and 0 <= index < len(batch):
            extra["agentriage.batch.index"] = index
            first = batch[index]
        span = self._t.tracer.start_span(SPAN_NAME, context=self._t.parent(first), attributes=extra)
        _failed_span(span, e)
        span.end()
        self._failed(e, start)

    def decide_many(self, requests: Iterable[Any]) -> list[Decision]:
        """``Engine.decide_many``: one span per decision, each spanning the
        batch; a batch that fails makes one span with status ERROR (naming
        the offending request's ``agentriage.batch.index``)."""
        batch = list(requests)
        start_ns, start = time.time_ns(), time.perf_counter()
        try:
            decisions = self.engine.decide_many(batch)
        except BaseException as e:
            self._batch_failed(batch, e, start)
            raise
        self._batch_spans(batch, decisions, start_ns, start)
        return decisions

    async def decide_many_async(self, requests: Iterable[Any]) -> list[Decision]:
        """``Engine.decide_many_async``, with spans as ``decide_many`` makes them."""
        batch = list(requests)
        start_ns, start = time.time_ns(), time.perf_counter()
        try:
            decisions = await self.engine.decide_many_async(batch)
        except BaseException as e:
            self._batch_failed(batch, e, start)
            raise
        self._batch_spans(batch, decisions, start_ns, start)
        return decisions


def instrument(engine: Engine, *, tracer_provider: Any = None, meter_provider: Any = None) -> Engine:
    """``engine`` with a span and metrics per decision, through the host's
    OpenTelemetry providers (the global ones unless given).

    The result decides as ``engine`` does (same decisions, same errors) and
    has all of its methods; pass it wherever an ``Engine`` goes (the guards
    included). Raises ``ImportError`` without ``opentelemetry-api``.
    """
    if isinstance(engine, InstrumentedEngine):
        raise TypeError("this engine is already instrumented")
    telemetry = _Telemetry(tracer_provider, meter_provider)
    return cast("Engine", InstrumentedEngine(engine, telemetry))
