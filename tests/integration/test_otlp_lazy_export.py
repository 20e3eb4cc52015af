"""An OTLP exporter built at its first export delivers to a real receiver like one built at init."""

from __future__ import annotations

import pytest

import signalfire
from signalfire._export import _drops

pytestmark = pytest.mark.integration


def _lazy(before: list[object]) -> list[object]:
    """The OTLP exporter in each counting wrapper made since ``before`` (under the scrubbing wrapper, if any)."""
    return [getattr(c.exporter, "exporter", c.exporter) for c in _drops.exporters() if c not in before]


def test_spans_and_metrics_arrive_through_exporters_built_at_first_export(otlp_server):
    """After init no exporter is built; the flush at shutdown builds each and delivers spans and metrics."""
    before: list[object] = list(_drops.exporters())
    obs = signalfire.init_observability(
        service_name="checkout",
        environment="production",
        otlp_endpoint=otlp_server.endpoint,
        otlp_protocol=otlp_server.protocol,
        traces_sampler_arg=1.0,
        bsp_schedule_delay_ms=60_000,
        metric_export_interval_ms=60_000,
        handle_sigterm=False,
    )
    exporters = _lazy(before)
    assert len(exporters) == 2
    assert all(exporter.built is None for exporter in exporters)  # type: ignore[attr-defined]
    with signalfire.span("charge_card"):
        pass
    obs.meter_provider.get_meter("test").create_counter("orders.created").add(2)
    assert obs.shutdown(timeout=10)
    assert [span.name for _, span in otlp_server.receiver.spans()] == ["charge_card"]
    assert [m.name for _, m in otlp_server.receiver.metrics() if m.name == "orders.created"]
    assert all(exporter.built is not None for exporter in exporters)  # type: ignore[attr-defined]
