"""Tracing micro-benchmarks: ``traced`` and ``span`` against the raw OpenTelemetry calls; span export cost.

Every recording case runs against the same SDK provider (signalfire's, 100% sampling, a BatchSpanProcessor feeding an
exporter that drops spans), so a ratio isolates the wrapper. The export cases send a batch of 512 server-like spans
to the loopback OTLP receiver whose URL is in OTEL_EXPORTER_OTLP_ENDPOINT.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from benchmarks._harness import Pair

EXPORT_BATCH = 512


class _DropExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _init() -> Any:
    from signalfire import _runtime
    from signalfire._settings import Settings

    settings = Settings.resolve(environment="production", traces_sampler_arg=1.0, service_name="bench")
    return _runtime.start(settings, span_exporters=[_DropExporter()])


def _sdk_tracer() -> Any:
    obs = _init()
    return obs.tracer_provider.get_tracer("bench")


def plain_call() -> Callable[[], object]:
    def work() -> None:
        return None

    return work


def traced_off() -> Callable[[], object]:
    import signalfire

    @signalfire.traced
    def work() -> None:
        return None

    return work


def raw_start_as_current_span() -> Callable[[], object]:
    tracer = _sdk_tracer()

    def work() -> None:
        with tracer.start_as_current_span("work"):
            return None

    return work


def traced() -> Callable[[], object]:
    import signalfire

    _init()

    @signalfire.traced
    def work() -> None:
        return None

    return work


def raw_start_as_current_span_async() -> Callable[[], object]:
    tracer = _sdk_tracer()

    async def work() -> None:
        with tracer.start_as_current_span("work"):
            return None

    return work


def traced_async() -> Callable[[], object]:
    import signalfire

    _init()

    @signalfire.traced
    async def work() -> None:
        return None

    return work


def span_context_manager() -> Callable[[], object]:
    import signalfire

    _init()

    def work() -> None:
        with signalfire.span("work"):
            return None

    return work


def raw_start_end() -> Callable[[], object]:
    tracer = _sdk_tracer()

    def work() -> None:
        tracer.start_span("work").end()

    return work


def _server_spans() -> list[ReadableSpan]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    for i in range(EXPORT_BATCH):
        span = tracer.start_span(
            "GET /items/{item_id}",
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": "GET",
                "url.path": f"/items/{i}",
                "url.scheme": "http",
                "http.route": "/items/{item_id}",
                "http.response.status_code": 200,
                "request.id": f"{i:032x}",
            },
        )
        span.end()
    return list(memory.get_finished_spans())


def _realistic_spans(kind: str) -> list[ReadableSpan]:
    """Spans of realistic shape, values varying per span as in production (ids, paths, client ports, user agents):
    ``server``, a FastAPI server span with the 15 attributes signalfire's middleware records and one exception-free
    event-less body; ``db``, a PostgreSQL client span as the SQLAlchemy instrumentation records it."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    memory = InMemorySpanExporter()
    resource = Resource.create(
        {"service.name": "shop", "service.version": "1.4.2", "deployment.environment.name": "prod"}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("signalfire.http", "0.1.0")
    agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
    for i in range(EXPORT_BATCH):
        if kind == "server":
            name, span_kind = "GET /items/{item_id}", SpanKind.SERVER
            attributes: dict[str, Any] = {
                "http.request.method": "GET",
                "url.scheme": "https",
                "url.path": f"/items/{4815 + i}",
                "url.query": f"page={i % 7}&sort=price",
                "http.route": "/items/{item_id}",
                "http.response.status_code": 200,
                "server.address": "shop.example.com",
                "server.port": 443,
                "client.address": f"203.0.113.{i % 250}",
                "client.port": 40000 + i,
                "network.protocol.version": "1.1",
                "user_agent.original": f"{agent} {i % 13}",
                "request.id": f"{i:032x}",
                "http.request.body.size": 0,
                "http.response.body.size": 412 + i % 50,
            }
        else:
            name, span_kind = "SELECT shop", SpanKind.CLIENT
            attributes = {
                "db.system.name": "postgresql",
                "db.namespace": "shop",
                "db.operation.name": "SELECT",
                "db.collection.name": "items",
                "db.query.text": "SELECT items.id, items.name, items.price FROM items WHERE items.id = %(id_1)s",
                "server.address": "db.internal",
                "server.port": 5432,
                "network.peer.address": "10.0.3.7",
                "network.peer.port": 5432,
            }
        tracer.start_span(name, kind=span_kind, attributes=attributes).end()
    return list(memory.get_finished_spans())


def _sdk_encode(kind: str) -> Callable[[], Callable[[], object]]:
    def setup() -> Callable[[], object]:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        spans = _realistic_spans(kind)
        return lambda: encode_spans(spans).SerializeToString()

    return setup


def _signalfire_export(kind: str) -> Callable[[], Callable[[], object]]:
    def setup() -> Callable[[], object]:
        """What signalfire's span exporter does per batch before the transport: scrub at the wire and encode."""
        from signalfire._export._otlp_encode import SpanEncoder
        from signalfire._scrub._policy import Scrubber

        spans = _realistic_spans(kind)
        encoder = SpanEncoder(Scrubber())
        return lambda: encoder.encode(spans)

    return setup


def otlp_http_export() -> Callable[[], object]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    spans = _server_spans()
    exporter = OTLPSpanExporter(endpoint=os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces")
    return lambda: exporter.export(spans)


def otlp_encode() -> Callable[[], object]:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    spans = _server_spans()
    return lambda: encode_spans(spans).SerializeToString()


def signalfire_http_export() -> Callable[[], object]:
    from signalfire._export._otlp_spans import encoding_exporter
    from signalfire._scrub._policy import Scrubber
    from signalfire._scrub._wire import ScrubbingSpanExporter

    spans = _server_spans()
    endpoint = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    exporter = ScrubbingSpanExporter(encoding_exporter("http/protobuf", endpoint=endpoint), Scrubber())
    return lambda: exporter.export(spans)


def signalfire_encode() -> Callable[[], object]:
    """signalfire's encoder, scrubbing included (the SDK's row above does not scrub)."""
    from signalfire._export._otlp_encode import SpanEncoder
    from signalfire._scrub._policy import Scrubber

    spans = _server_spans()
    encoder = SpanEncoder(Scrubber())
    return lambda: encoder.encode(spans)


def sdk_scrub_encode() -> Callable[[], object]:
    """What signalfire did before its encoder: ScrubbingSpanExporter's scrubbing, then the SDK's encoder."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from signalfire._scrub._policy import Scrubber
    from signalfire._scrub._wire import scrub_spans

    spans = _server_spans()
    scrubber = Scrubber()
    return lambda: encode_spans(scrub_spans(scrubber, spans)).SerializeToString()


CASES: dict[str, Callable[[], Callable[[], object]]] = {
    "plain_call": plain_call,
    "traced_off": traced_off,
    "raw_start_as_current_span": raw_start_as_current_span,
    "traced": traced,
    "raw_start_as_current_span_async": raw_start_as_current_span_async,
    "traced_async": traced_async,
    "span_context_manager": span_context_manager,
    "raw_start_end": raw_start_end,
    "otlp_http_export": otlp_http_export,
    "otlp_encode": otlp_encode,
    "signalfire_http_export": signalfire_http_export,
    "signalfire_encode": signalfire_encode,
    "sdk_scrub_encode": sdk_scrub_encode,
    "sdk_encode_server15": _sdk_encode("server"),
    "signalfire_export_server15": _signalfire_export("server"),
    "sdk_encode_db": _sdk_encode("db"),
    "signalfire_export_db": _signalfire_export("db"),
}
_BATCH_CASES = (
    "otlp_http_export",
    "otlp_encode",
    "signalfire_http_export",
    "signalfire_encode",
    "sdk_scrub_encode",
    "sdk_encode_server15",
    "signalfire_export_server15",
    "sdk_encode_db",
    "signalfire_export_db",
)
DIVISORS = dict.fromkeys(_BATCH_CASES, EXPORT_BATCH)
# Export cases are slow per call; the runner uses this many calls instead of its default.
NUMBERS = dict.fromkeys(_BATCH_CASES, 20)

PAIRS = [
    Pair("traced (sync) / raw start_as_current_span", "traced", "raw_start_as_current_span", 1.15, True),
    Pair("traced (async) / raw start_as_current_span", "traced_async", "raw_start_as_current_span_async", 1.15, True),
    Pair("span() / raw start_as_current_span", "span_context_manager", "raw_start_as_current_span", 1.15, True),
    Pair("traced, not initialised / plain call", "traced_off", "plain_call"),
    Pair("OTLP/HTTP export per span / start+end of a span", "otlp_http_export", "raw_start_end"),
    Pair("OTLP protobuf encoding per span / start+end of a span", "otlp_encode", "raw_start_end"),
    Pair("signalfire OTLP/HTTP export per span (scrubbed) / SDK's", "signalfire_http_export", "otlp_http_export"),
    Pair("signalfire OTLP encoding per span (scrubbed) / SDK's (unscrubbed)", "signalfire_encode", "otlp_encode"),
    Pair("signalfire OTLP encoding per span (scrubbed) / scrub + SDK's", "signalfire_encode", "sdk_scrub_encode"),
    Pair(
        "signalfire per-span export (scrub at the wire + own encoder) / SDK encode_spans (unscrubbed): "
        "server span, 15 attributes",
        "signalfire_export_server15",
        "sdk_encode_server15",
        None,
        True,
    ),
    Pair(
        "signalfire per-span export (scrub at the wire + own encoder) / SDK encode_spans (unscrubbed): DB span",
        "signalfire_export_db",
        "sdk_encode_db",
        None,
        True,
    ),
]


def teardown() -> None:
    import signalfire

    signalfire.shutdown()
