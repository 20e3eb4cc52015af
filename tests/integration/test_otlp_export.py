"""Spans and metrics reach a real OTLP receiver on loopback, over gRPC and over HTTP/protobuf."""

from __future__ import annotations

import pytest

import signalfire

pytestmark = pytest.mark.integration


def _init(server, **extra):
    return signalfire.init_observability(
        service_name="checkout",
        service_version="1.4.2",
        environment="staging",
        otlp_endpoint=server.endpoint,
        otlp_protocol=server.protocol,
        otlp_headers={"x-api-key": "k-123", "x-team": "payments"},
        resource_attributes={"team": "payments"},
        traces_sampler_arg=1.0,
        bsp_schedule_delay_ms=60_000,  # nothing leaves before shutdown: shutdown() must deliver the queue
        metric_export_interval_ms=60_000,
        **extra,
    )


def test_spans_arrive_with_resource_headers_and_links(otlp_server):
    """Parent and child arrive with the resource attributes, the configured headers and their link intact."""
    obs = _init(otlp_server)
    with signalfire.span("charge_card", payment_id="p-1"), signalfire.span("call_stripe"):
        pass
    assert obs.shutdown(timeout=10)

    spans = {span.name: (resource, span) for resource, span in otlp_server.receiver.spans()}
    assert set(spans) == {"charge_card", "call_stripe"}
    resource, parent = spans["charge_card"]
    _, child = spans["call_stripe"]
    assert child.parent_span_id == parent.span_id
    assert child.trace_id == parent.trace_id
    assert resource["service.name"] == "checkout"
    assert resource["service.version"] == "1.4.2"
    assert resource["deployment.environment.name"] == "staging"
    assert resource["team"] == "payments"
    assert len(resource["service.instance.id"]) == 36
    headers = otlp_server.receiver.of("traces")[0].headers
    assert headers["x-api-key"] == "k-123"
    assert headers["x-team"] == "payments"


def test_metrics_arrive_over_otlp(otlp_server):
    """A counter recorded through the meter provider arrives with its name, unit and attributes."""
    obs = _init(otlp_server)
    counter = obs.meter_provider.get_meter("test").create_counter("orders.created", unit="{order}")
    counter.add(3, {"source": "web"})
    assert obs.shutdown(timeout=10)
    metrics = [m for _, m in otlp_server.receiver.metrics() if m.name == "orders.created"]
    assert metrics
    point = metrics[-1].sum.data_points[0]
    assert point.as_int == 3
    assert metrics[-1].unit == "{order}"
    assert point.attributes[0].key == "source"


def test_shutdown_delivers_every_queued_span(otlp_server):
    """500 spans queued behind a long batch delay all arrive when shutdown() runs."""
    obs = _init(otlp_server)
    for i in range(500):
        with signalfire.span("job", index=i):
            pass
    assert obs.shutdown(timeout=10)
    assert len(otlp_server.receiver.spans()) == 500


def test_unreachable_endpoint_never_reaches_the_caller():
    """With nothing listening, spans are dropped quietly and shutdown() still returns within its timeout."""
    signalfire.init_observability(
        otlp_endpoint="http://127.0.0.1:9", otlp_timeout_ms=200, traces_sampler_arg=1.0, environment="production"
    )
    for _ in range(10):
        with signalfire.span("lost"):
            pass
    signalfire.shutdown(timeout=2)
