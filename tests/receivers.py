"""Real receivers on loopback for integration tests: an OTLP receiver (gRPC and HTTP/protobuf) decoding the
opentelemetry-proto messages, with the request headers of every export."""

from __future__ import annotations

import gzip
import json
import socket
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
    # Seconds each export waits before it is answered: a slow backend.
    delay: float = 0.0

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

    def raw(self) -> bytes:
        """Every export as protobuf bytes (string fields byte for byte as sent): what leak checks search."""
        with self.lock:
            return b"\n".join(e.message.SerializeToString() for e in self.exports)

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
        if self.receiver.delay:
            time.sleep(self.receiver.delay)
        if self.receiver.fail_with is not None:
            context.abort(self.receiver.fail_with(), "simulated failure")
        headers = dict(context.invocation_metadata())
        self.receiver.record(self.signal, request, headers)
        return RESPONSES[self.signal]()


class GrpcOtlpServer:
    """An OTLP/gRPC receiver on 127.0.0.1; ``endpoint`` is what OTEL_EXPORTER_OTLP_ENDPOINT takes."""

    def __init__(self, receiver: OtlpReceiver | None = None, port: int = 0) -> None:
        self.receiver = receiver or OtlpReceiver()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Servicer(self.receiver, "traces"), self.server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Servicer(self.receiver, "metrics"), self.server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Servicer(self.receiver, "logs"), self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> GrpcOtlpServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)


class HttpOtlpServer:
    """An OTLP/HTTP (protobuf) receiver on 127.0.0.1 serving /v1/traces, /v1/metrics and /v1/logs."""

    def __init__(self, receiver: OtlpReceiver | None = None, port: int = 0) -> None:
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
                if receiver_ref.delay:
                    time.sleep(receiver_ref.delay)
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

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
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


# --- Sentry ingest ----------------------------------------------------------------------------------------------------
@dataclass
class SentryEnvelope:
    """One envelope as received: its header, its (item header, payload bytes) pairs and the raw decompressed bytes."""

    path: str
    headers: dict[str, str]
    header: dict[str, Any]
    items: list[tuple[dict[str, Any], bytes]]
    raw: bytes

    def payloads(self, item_type: str) -> list[dict[str, Any]]:
        """The JSON payloads of the items of one type (event, transaction, session, client_report, ...)."""
        return [json.loads(payload) for header, payload in self.items if header.get("type") == item_type]


def parse_envelope(data: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    """Parse Sentry's envelope format: a JSON header line, then item header lines each followed by its payload
    (``length`` bytes when the item header says so, else up to the next newline)."""
    header_line, _, rest = data.partition(b"\n")
    header = json.loads(header_line) if header_line.strip() else {}
    items: list[tuple[dict[str, Any], bytes]] = []
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        if not item_line.strip():
            continue
        item_header = json.loads(item_line)
        length = item_header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:]
            if rest.startswith(b"\n"):
                rest = rest[1:]
        items.append((item_header, payload))
    return header, items


class SentryIngestServer:
    """A Sentry ingest endpoint on 127.0.0.1: POST /api/<project>/envelope/ (and legacy /store/), gunzipped and parsed.

    ``dsn`` is the DSN that makes the real sentry-sdk transport send here.
    """

    def __init__(self) -> None:
        self.envelopes: list[SentryEnvelope] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding in ("br", "deflate"):
                    self.send_response(415)
                    self.end_headers()
                    return
                parts = self.path.split("?", 1)[0].strip("/").split("/")
                if len(parts) != 3 or parts[0] != "api" or parts[2] not in ("envelope", "store"):
                    self.send_response(404)
                    self.end_headers()
                    return
                if parts[2] == "store":  # the legacy endpoint takes one bare event
                    header, items = {}, [({"type": "event"}, body)]
                else:
                    header, items = parse_envelope(body)
                envelope = SentryEnvelope(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, header, items, body
                )
                with owner.lock:
                    owner.envelopes.append(envelope)
                reply = json.dumps({"id": header.get("event_id")}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.dsn = f"http://public@127.0.0.1:{self.port}/1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def received(self) -> list[SentryEnvelope]:
        with self.lock:
            return list(self.envelopes)

    def events(self) -> list[dict[str, Any]]:
        """Every error/message event received, oldest first."""
        return [event for envelope in self.received() for event in envelope.payloads("event")]

    def raw(self) -> bytes:
        """Everything received, decompressed, concatenated: what a leak check searches."""
        return b"\n".join(envelope.raw for envelope in self.received())

    def wait_for_events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if len(events) >= count:
                return events
            time.sleep(0.02)
        return self.events()

    def __enter__(self) -> SentryIngestServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class BlackHoleServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers: a backend that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections.append(conn)  # held open, never read from or written to

    def __enter__(self) -> BlackHoleServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(2)
        for conn in self.connections:
            conn.close()
        self.sock.close()


def free_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
