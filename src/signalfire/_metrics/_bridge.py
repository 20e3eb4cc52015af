"""OpenTelemetry instruments of other libraries (SQLAlchemy, Redis, httpx instrumentations) on /metrics.

A pull reader on the MeterProvider is collected at scrape time and its metrics are rendered as Prometheus families,
named by the same OpenTelemetry-to-Prometheus rules as the registry's, their label values and descriptions scrubbed by
the one policy first. signalfire's own meter is skipped (the
registry exposes those itself), and so is any name the registry already exposes.

Single process only: under PROMETHEUS_MULTIPROC_DIR a scrape would show just the serving worker's share, so there
these metrics leave over OTLP only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.metrics.export import Gauge, Histogram, InMemoryMetricReader, Sum

from signalfire._metrics._otel import scrub_collection
from signalfire._metrics._registry import MetricsRegistry, prometheus_label, prometheus_name

__all__ = ["OtelBridge"]

_log = logging.getLogger("signalfire")
OWN_SCOPE = "signalfire"


class OtelBridge:
    """A prometheus-client collector over an in-memory OpenTelemetry reader."""

    def __init__(self, registry: MetricsRegistry) -> None:
        self.reader = InMemoryMetricReader()
        self._registry = registry
        self._warned = False

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        try:
            data = self.reader.get_metrics_data()
        except Exception:  # a reader after shutdown, or an SDK error: the rest of the scrape goes on
            if not self._warned:
                self._warned = True
                _log.warning("signalfire: reading OpenTelemetry metrics for /metrics failed", exc_info=True)
            return
        if data is None:
            return
        # scrubbed at the wire like every other collection: label values, descriptions (None: dropped and counted)
        data = scrub_collection(data, self._registry)
        if data is None:
            return
        taken = {spec.prometheus_name for spec in self._registry.instruments()}
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                if scope_metrics.scope.name == OWN_SCOPE:
                    continue
                for metric in scope_metrics.metrics:
                    family = _family(metric, taken)
                    if family is not None:
                        yield family


def _family(metric: Any, taken: set[str]) -> Any:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    data = metric.data
    description = metric.description or metric.name
    if isinstance(data, Sum):
        kind = "counter" if data.is_monotonic else "updown_counter"
    elif isinstance(data, Histogram):
        kind = "histogram"
    elif isinstance(data, Gauge):
        kind = "gauge"
    else:  # exponential histograms have no classic Prometheus form
        return None
    name = prometheus_name(metric.name, metric.unit or "", kind)
    # the registry and the process / Python collectors own these names; a second family would break the scrape
    if name in taken or name.startswith(("process_", "python_")):
        return None
    taken.add(name)
    points = list(data.data_points)
    label_names = sorted({key for point in points for key in (point.attributes or {})})
    prom_labels = [prometheus_label(key) for key in label_names]

    def values(point: Any) -> list[str]:
        attributes = point.attributes or {}
        return [str(attributes.get(key, "")) for key in label_names]

    if kind == "counter":
        counter = CounterMetricFamily(name.removesuffix("_total"), description, labels=prom_labels)
        for point in points:
            counter.add_metric(values(point), point.value)
        return counter
    if kind == "histogram":
        histogram = HistogramMetricFamily(name, description, labels=prom_labels)
        for point in points:
            cumulative, buckets = 0, []
            for bound, count in zip([*point.explicit_bounds, math.inf], point.bucket_counts, strict=False):
                cumulative += count
                buckets.append(("+Inf" if math.isinf(bound) else _float_text(bound), cumulative))
            histogram.add_metric(values(point), buckets, point.sum)
        return histogram
    gauge = GaugeMetricFamily(name, description, labels=prom_labels)
    for point in points:
        gauge.add_metric(values(point), point.value)
    return gauge


def _float_text(value: float) -> str:
    return repr(float(value))
