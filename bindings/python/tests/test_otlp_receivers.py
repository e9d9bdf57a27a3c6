"""The CLI's OTLP exporter (`agentriage eval --otlp-endpoint`) against real
receivers started here on 127.0.0.1 (free ports): an OTLP/HTTP receiver
decoding `http/protobuf` with the official generated classes
(`opentelemetry-proto`), and a gRPC server (`grpcio`) serving the
collector's TraceService, LogsService and MetricsService."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

import pytest

from conftest import REFERENCE_BUNDLE, REPO, STRICT, TESTDATA, require

require("opentelemetry.proto")
require("grpc")

import grpc  # noqa: E402
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc  # noqa: E402
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc  # noqa: E402
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue  # noqa: E402

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


def cli() -> Path:
    """The CLI binary: AGENTRIAGE_CLI, else the newest of target/{debug,release}."""
    given = os.environ.get("AGENTRIAGE_CLI")
    if given:
        return Path(given)
    found = [p for p in (REPO / "target" / "debug" / "agentriage", REPO / "target" / "release" / "agentriage") if p.is_file()]
    if not found:
        why = "no agentriage CLI binary: cargo build -p agentriage-cli (or set AGENTRIAGE_CLI)"
        if STRICT:
            pytest.fail(why)
        pytest.skip(why)
    return max(found, key=lambda p: p.stat().st_mtime)


@dataclass
class Received:
    """What a receiver got, decoded."""

    traces: list[Any] = field(default_factory=list)
    logs: list[Any] = field(default_factory=list)
    metrics: list[Any] = field(default_factory=list)
    content_types: set[str] = field(default_factory=set)
    # The `authorization` of every export (HTTP header or gRPC metadata).
    authorizations: list[Optional[str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def http_receiver() -> Iterator[tuple[str, Received]]:
    got = Received()
    kinds = {
        "/v1/traces": (trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse, got.traces),
        "/v1/logs": (logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse, got.logs),
        "/v1/metrics": (
            metrics_service_pb2.ExportMetricsServiceRequest,
            metrics_service_pb2.ExportMetricsServiceResponse,
            got.metrics,
        ),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request_type, response_type, sink = kinds[self.path]
            with got.lock:
                got.content_types.add(self.headers["Content-Type"])
                got.authorizations.append(self.headers.get("authorization"))
                sink.append(request_type.FromString(body))
            answer = response_type().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # bound: the port is listening
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", got
    finally:
        server.shutdown()
        server.server_close()


def grpc_server(got: Received, refuse: bool = False) -> tuple[Any, str]:
    def handler(sink: list[Any], response: Any) -> Any:
        def export(request: Any, context: Any) -> Any:
            if refuse:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "collector is full")
            with got.lock:
                sink.append(request)
                got.authorizations.append(dict(context.invocation_metadata()).get("authorization"))
            return response()

        return export

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        Export = staticmethod(handler(got.traces, trace_service_pb2.ExportTraceServiceResponse))

    class Logs(logs_service_pb2_grpc.LogsServiceServicer):
        Export = staticmethod(handler(got.logs, logs_service_pb2.ExportLogsServiceResponse))

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        Export = staticmethod(handler(got.metrics, metrics_service_pb2.ExportMetricsServiceResponse))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture
def grpc_receiver() -> Iterator[tuple[str, Received]]:
    got = Received()
    server, endpoint = grpc_server(got)
    try:
        yield endpoint, got
    finally:
        server.stop(grace=None)


def requests(copies: int) -> list[dict[str, Any]]:
    """The test requests, `copies` times over; the first continues the caller's trace."""
    lines = [json.loads(line) for line in (TESTDATA / "requests.jsonl").read_text().splitlines() if line.strip()]
    out = [dict(r) for _ in range(copies) for r in lines]
    out[0].pop("trace_id", None)
    out[0]["traceparent"] = f"00-{TRACE}-{PARENT}-01"
    return out


def run_cli(endpoint: str, protocol: str, reqs: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [
            str(cli()),
            "eval",
            "--bundle",
            str(REFERENCE_BUNDLE),
            "--otlp-endpoint",
            endpoint,
            "--otlp-protocol",
            protocol,
            "--otlp-service-name",
            "payments-gateway",
            "--otlp-header",
            "Authorization=Bearer t0k3n",
        ],
        input="".join(json.dumps(r) + "\n" for r in reqs),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    return getattr(v, kind)


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in kvs}


def check(got: Received, reqs: list[dict[str, Any]], decisions: list[dict[str, Any]]) -> None:
    spans = [
        (rs, ss, span) for t in got.traces for rs in t.resource_spans for ss in rs.scope_spans for span in ss.spans
    ]
    assert len(spans) == len(decisions)
    for (rs, ss, span), decision, request in zip(spans, decisions, reqs):
        assert attributes(rs.resource.attributes)["service.name"] == "payments-gateway"
        assert ss.scope.name == "agentriage"
        assert span.name == "agentriage.decide"
        assert span.trace_id.hex() == decision["trace_id"]
        assert len(span.span_id) == 8 and span.span_id != bytes(8)
        assert span.start_time_unix_nano <= span.end_time_unix_nano
        assert span.end_time_unix_nano > 1_700_000_000 * 10**9
        assert attributes(span.attributes) == {
            "agentriage.outcome": decision["outcome"],
            "agentriage.decision_id": decision["decision_id"],
            "agentriage.bundle.name": decision["bundle"]["name"],
            "agentriage.bundle.revision": decision["bundle"]["revision"],
            "agentriage.bundle.digest": decision["bundle"]["digest"],
            "agentriage.policies": [r["policy"] for r in decision["reasons"]],
            "agentriage.duration_us": decision["duration_us"],
            "agentriage.action": request["action"]["name"],
            "agentriage.principal.id": request["principal"]["id"],
        }
    # The first continues the caller's trace, under the caller's span.
    first = spans[0][2]
    assert first.trace_id.hex() == TRACE and first.parent_span_id.hex() == PARENT
    for (_, _, span), request in zip(spans, reqs):
        if "traceparent" not in request:
            assert span.parent_span_id == b""

    records = [r for lg in got.logs for rl in lg.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    assert len(records) == len(decisions)
    for record, decision, (_, _, span) in zip(records, decisions, spans):
        assert json.loads(record.body.string_value) == decision
        assert record.trace_id == span.trace_id and record.span_id == span.span_id
        assert record.severity_text == "INFO" and record.severity_number == 9
        assert attributes(record.attributes)["event.name"] == "agentriage.decision"

    [export] = got.metrics
    [metric] = [m for rm in export.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    assert metric.name == "agentriage.decisions"
    assert metric.sum.is_monotonic and metric.sum.aggregation_temporality == 2
    counts = {attributes(p.attributes)["outcome"]: p.as_int for p in metric.sum.data_points}
    for outcome in ("execute", "escalate", "reject"):
        assert counts[outcome] == sum(d["outcome"] == outcome for d in decisions)


@pytest.mark.parametrize("receiver", ["http_receiver", "grpc_receiver"])
def test_the_exporter_speaks_protobuf_over_http_and_grpc(receiver: str, request: pytest.FixtureRequest) -> None:
    endpoint, got = request.getfixturevalue(receiver)
    protocol = "http/protobuf" if receiver == "http_receiver" else "grpc"
    # 300 decisions: two batches, each export larger than HTTP/2's initial
    # flow-control window (64 KiB).
    reqs = requests(43)[:300]
    out = run_cli(endpoint, protocol, reqs)
    assert out.returncode == 0, out.stderr
    decisions = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(decisions) == len(reqs)
    assert {d["outcome"] for d in decisions} == {"execute", "escalate", "reject"}
    assert len(got.traces) == len(got.logs) == 2
    if receiver == "http_receiver":
        assert got.content_types == {"application/x-protobuf"}
    # The header reaches the receiver with every export (gRPC: as metadata).
    assert got.authorizations == ["Bearer t0k3n"] * 5
    check(got, reqs, decisions)


def test_a_grpc_refusal_makes_eval_exit_4_naming_the_status() -> None:
    got = Received()
    server, endpoint = grpc_server(got, refuse=True)
    try:
        out = run_cli(endpoint, "grpc", requests(1)[:1])
    finally:
        server.stop(grace=None)
    assert out.returncode == 4, out.stderr
    assert "gRPC status 8" in out.stderr and "collector is full" in out.stderr, out.stderr
    # The decision is printed anyway.
    assert json.loads(out.stdout)["outcome"] in ("execute", "escalate", "reject")
