"""signalfire's span encoder against real OTLP receivers: what arrives is the SDK's encoding of the scrubbed spans."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

import signalfire
from signalfire._export._otlp_spans import encoding_exporter
from signalfire._scrub._policy import Scrubber
from signalfire._scrub._wire import ScrubbingSpanExporter, scrub_spans

pytestmark = pytest.mark.integration


def _spans() -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("checkout", "1.0")
    for i in range(20):
        with tracer.start_as_current_span(
            "POST /login", kind=SpanKind.SERVER, attributes={"http.route": "/login", "password": f"pw-{i}"}
        ) as span:
            span.add_event("auth", {"authorization": "Bearer abcdefghijklmnopqrstu"})
            span.set_status(Status(StatusCode.ERROR, "token=abcdefghijklmnop expired"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_the_receiver_gets_the_sdks_request_for_the_scrubbed_spans(otlp_server):
    """Over gRPC and HTTP/protobuf the receiver decodes exactly the SDK's message for the scrubbed spans."""
    endpoint = otlp_server.endpoint if otlp_server.protocol == "grpc" else otlp_server.endpoint + "/v1/traces"
    kwargs = {"insecure": True} if otlp_server.protocol == "grpc" else {}
    exporter = encoding_exporter(otlp_server.protocol, endpoint=endpoint, timeout=5.0, **kwargs)
    scrubbing = ScrubbingSpanExporter(exporter, Scrubber())
    spans = _spans()
    try:
        assert scrubbing.export(spans).name == "SUCCESS"
    finally:
        scrubbing.shutdown()
    assert exporter.fast
    assert [export.message for export in otlp_server.receiver.of("traces")] == [
        encode_spans(scrub_spans(Scrubber(), spans))
    ]
    assert b"pw-1" not in otlp_server.receiver.raw()


def test_spans_of_a_running_service_arrive_scrubbed(otlp_server):
    """Through init_observability, a secret attribute arrives as its marker over both protocols."""
    obs = signalfire.init_observability(
        service_name="checkout",
        otlp_endpoint=otlp_server.endpoint,
        otlp_protocol=otlp_server.protocol,
        traces_sampler_arg=1.0,
        metrics_exporter="none",
    )
    with signalfire.span("charge", api_key="sk_live_abcdefghijklmnop", route="/pay"):
        pass
    assert obs.shutdown(timeout=10)
    (_, span), *_ = [item for item in otlp_server.receiver.spans() if item[1].name == "charge"]
    values = {kv.key: kv.value.string_value for kv in span.attributes}
    assert values["api_key"] == "[REDACTED:api_key]"
    assert values["route"] == "/pay"
