"""Real receivers on loopback for integration tests: an OTLP receiver (gRPC and HTTP/protobuf) decoding the
opentelemetry-proto messages, with the request headers of every export."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

REQUESTS = {
    "traces": trace_service_pb2.ExportTraceServiceRequest,
    "metrics": metrics_service_pb2.ExportMetricsServiceRequest,
    "logs": logs_service_pb2.ExportLogsServiceRequest,
}
RESPONSES = {
    "traces": trace_service_pb2.ExportTraceServiceResponse,
    "metrics": metrics_service_pb2.ExportMetricsServiceResponse,
    "logs": logs_service_pb2.ExportLogsServiceResponse,
}


def any_value(value: AnyValue) -> Any:
    """A protobuf AnyValue as a Python value."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


def attributes(pairs: Any) -> dict[str, Any]:
    """Repeated KeyValue as a dict."""
    return {kv.key: any_value(kv.value) for kv in pairs if isinstance(kv, KeyValue)}


@dataclass
class Export:
    """One export request as received: the signal, the decoded message and the request headers."""

    signal: str
    message: Any
    headers: dict[str, str]


@dataclass
class OtlpReceiver:
    """Collects every export it receives; ``spans()`` and ``metrics()`` flatten them."""

    exports: list[Export] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set to a callable returning an HTTP status / grpc StatusCode to simulate a failing backend.
    fail_with: Callable[[], Any] | None = None

    def record(self, signal: str, message: Any, headers: dict[str, str]) -> None:
        with self.lock:
            self.exports.append(Export(signal, message, headers))

    def of(self, signal: str) -> list[Export]:
        with self.lock:
            return [e for e in self.exports if e.signal == signal]

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """Every received span with its resource attributes: (resource, span)."""
        found = []
        for export in self.of("traces"):
            for resource_spans in export.message.resource_spans:
                resource = attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    found.extend((resource, s) for s in scope_spans.spans)
        return found

    def metrics(self) -> list[tuple[dict[str, Any], Any]]:
        """Every received metric with its resource attributes: (resource, metric)."""
        found = []
        for export in self.of("metrics"):
            for resource_metrics in export.message.resource_metrics:
                resource = attributes(resource_metrics.resource.attributes)
                for scope_metrics in resource_metrics.scope_metrics:
                    found.extend((resource, m) for m in scope_metrics.metrics)
        return found

    def logs(self) -> list[tuple[dict[str, Any], Any]]:
        """Every received log record with its resource attributes: (resource, record)."""
        found = []
        for export in self.of("logs"):
            for resource_logs in export.message.resource_logs:
                resource = attributes(resource_logs.resource.attributes)
                for scope_logs in resource_logs.scope_logs:
                    found.extend((resource, r) for r in scope_logs.log_records)
        return found

    def wait_for(self, predicate: Callable[[OtlpReceiver], bool], timeout: float = 10.0) -> bool:
        """Poll until ``predicate(self)`` holds or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.05)
        return predicate(self)


class _Servicer(
    trace_service_pb2_grpc.TraceServiceServicer,
    metrics_service_pb2_grpc.MetricsServiceServicer,
    logs_service_pb2_grpc.LogsServiceServicer,
):
    def __init__(self, receiver: OtlpReceiver, signal: str) -> None:
        self.receiver = receiver
        self.signal = signal

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        if self.receiver.fail_with is not None:
            context.abort(self.receiver.fail_with(), "simulated failure")
        headers = dict(context.invocation_metadata())
        self.receiver.record(self.signal, request, headers)
        return RESPONSES[self.signal]()


class GrpcOtlpServer:
    """An OTLP/gRPC receiver on 127.0.0.1; ``endpoint`` is what OTEL_EXPORTER_OTLP_ENDPOINT takes."""

    def __init__(self, receiver: OtlpReceiver | None = None) -> None:
        self.receiver = receiver or OtlpReceiver()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Servicer(self.receiver, "traces"), self.server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Servicer(self.receiver, "metrics"), self.server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Servicer(self.receiver, "logs"), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> GrpcOtlpServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)


class HttpOtlpServer:
    """An OTLP/HTTP (protobuf) receiver on 127.0.0.1 serving /v1/traces, /v1/metrics and /v1/logs."""

    def __init__(self, receiver: OtlpReceiver | None = None) -> None:
        self.receiver = receiver or OtlpReceiver()
        receiver_ref = self.receiver

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                signal = self.path.rstrip("/").rsplit("/", 1)[-1]
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if signal not in REQUESTS:
                    self.send_response(404)
                    self.end_headers()
                    return
                if receiver_ref.fail_with is not None:
                    self.send_response(int(receiver_ref.fail_with()))
                    self.end_headers()
                    return
                message = REQUESTS[signal]()
                message.ParseFromString(body)
                receiver_ref.record(signal, message, {k.lower(): v for k, v in self.headers.items()})
                payload = RESPONSES[signal]().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpOtlpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
