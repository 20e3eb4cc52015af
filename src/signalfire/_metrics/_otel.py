"""signalfire's instruments as OpenTelemetry metrics, produced when a reader collects.

Recording keeps each series' state in the registry (a value, or histogram bucket counts) and runs no OpenTelemetry
SDK code; the readers signalfire builds (the OTLP and console push readers, the test fixture's in-memory reader) add
the registry's metrics to what the SDK collected from other instruments, in a scope named ``signalfire``. The SDK has
no observable histogram, so a reader is the one place where pre-aggregated histograms can enter its pipeline.

Temporality follows the reader's preference (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE for OTLP): cumulative
series start when the series was first recorded; delta series report the change since the reader's previous
collection (a series that did not change is left out, as the SDK leaves out a synchronous series without
measurements). Whatever a reader collects, from every meter, is scrubbed at the wire before its exporter sees
it (``scrub_collection``). Exemplars are the last sampled measurement of each histogram bucket since the previous
collection.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import weakref
from typing import Any

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    NumberDataPoint,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from signalfire._compat import opentelemetry as compat
from signalfire._export._drops import count_points
from signalfire._metrics._registry import Instrument, MetricsRegistry, _Child, _HistogramChild
from signalfire._scrub import _policy as _scrub
from signalfire._scrub._wire import scrub_metrics_data

# The semantic-conventions schema the registry's instruments follow; the same value as _web._url.SCHEMA_URL (the
# server span's tracer), written here so the metrics package does not import the request path's module.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"

__all__ = ["InMemoryRegistryReader", "PeriodicRegistryReader", "RegistryCollection"]

_log = logging.getLogger("signalfire")
DELTA, CUMULATIVE = AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE
# Process-wide: every collection alive, whichever instance made it, for the after-fork hook (locks renewed in a child).
_collections: weakref.WeakSet[RegistryCollection] = weakref.WeakSet()
_KIND_CLASS_NAME = {"counter": "Counter", "updown_counter": "UpDownCounter", "histogram": "Histogram"}


class RegistryCollection:
    """What one reader remembers between collections: the previous values (for delta) and collection time."""

    def __init__(self, registry: MetricsRegistry, temporality: dict[str, AggregationTemporality]) -> None:
        self._registry = registry
        self._temporality = temporality  # by instrument kind; cumulative where absent
        self._previous: dict[_Child, Any] = {}
        self._last_ns = time.time_ns()
        self._lock = threading.Lock()
        self._scope = InstrumentationScope("signalfire", schema_url=SCHEMA_URL)
        _collections.add(self)

    def scope_metrics(self) -> ScopeMetrics | None:
        """The registry's metrics now, or None when it is not bound for OpenTelemetry or has no series; never raises
        (the SDK's periodic reader thread would die, and every later export with it)."""
        try:
            return self._scope_metrics()
        except Exception:
            self._registry.record_dropped("metrics", "collect_failed")
            _log.warning("signalfire: collecting signalfire's metrics for OpenTelemetry failed", exc_info=True)
            return None

    def _scope_metrics(self) -> ScopeMetrics | None:
        with self._lock:
            now = time.time_ns()
            previous, self._previous = self._previous, {}
            since, self._last_ns = self._last_ns, now
            metrics = []
            for inst in self._registry._bound_instruments():
                if not inst._otel:
                    continue
                metric = self._metric(inst, now, since, previous)
                if metric is not None:
                    metrics.append(metric)
        if not metrics:
            return None
        return ScopeMetrics(scope=self._scope, metrics=metrics, schema_url=SCHEMA_URL)

    def _metric(self, inst: Instrument, now: int, since: int, previous: dict[_Child, Any]) -> Metric | None:
        spec = inst._exposed
        kind = spec.kind
        temporality = self._temporality.get(kind, CUMULATIVE)
        data: Any
        points: list[Any]
        if kind == "histogram":
            points = [p for c in inst._children() if (p := self._histogram(c, now, since, temporality, previous))]
            data = HistogramData(data_points=points, aggregation_temporality=temporality)
        elif kind in ("counter", "updown_counter"):
            points = [n for c in inst._children() if (n := self._sum(c, now, since, temporality, previous))]
            data = Sum(data_points=points, aggregation_temporality=temporality, is_monotonic=kind == "counter")
        else:
            # a gauge has no start time (as the SDK's last-value aggregation)
            points = [NumberDataPoint(dict(c.attrs), None, now, c.value) for c in inst._children()]  # type: ignore[arg-type]
            data = Gauge(data_points=points)
        if not points:
            return None
        return Metric(name=spec.otel_name or spec.name, description=spec.description, unit=spec.unit, data=data)

    def _sum(
        self, child: _Child, now: int, since: int, temporality: AggregationTemporality, previous: dict[_Child, Any]
    ) -> NumberDataPoint | None:
        value = child.value
        self._previous[child] = value
        if temporality is CUMULATIVE:
            return NumberDataPoint(dict(child.attrs), child.started_ns, now, value)
        before = previous.get(child, 0)
        if value == before:
            return None
        return NumberDataPoint(dict(child.attrs), max(since, child.started_ns), now, value - before)

    def _histogram(
        self,
        child: _Child,
        now: int,
        since: int,
        temporality: AggregationTemporality,
        previous: dict[_Child, Any],
    ) -> HistogramDataPoint | None:
        assert isinstance(child, _HistogramChild)
        with child.lock:
            counts, total = list(child.counts), child.sum
            low, high = child.min, child.max
            recent = [e for e in child.exemplars if e is not None and e[1] > since]
        self._previous[child] = (counts, total)
        start = child.started_ns
        if temporality is DELTA:
            before_counts, before_total = previous.get(child, (None, 0.0))
            if before_counts is not None:
                counts = [a - b for a, b in zip(counts, before_counts, strict=True)]
                total -= before_total
            start = max(since, start)
            # the series keeps its extremes since it started, not per interval: a delta point leaves them unset
            low = high = None  # type: ignore[assignment]
        count = sum(counts)
        if not count:
            return None
        exemplars = [_exemplar(value, at, labels) for value, at, labels in recent]
        return HistogramDataPoint(
            attributes=dict(child.attrs),
            start_time_unix_nano=start,
            time_unix_nano=now,
            count=count,
            sum=total,
            bucket_counts=counts,
            explicit_bounds=list(child.bounds),
            min=low,
            max=high,
            exemplars=exemplars,
        )


def _exemplar(value: float, at: int, labels: dict[str, str]) -> Exemplar:
    return Exemplar(
        filtered_attributes=None,
        value=value,
        time_unix_nano=at,
        span_id=int(labels["span_id"], 16) if "span_id" in labels else None,
        trace_id=int(labels["trace_id"], 16) if "trace_id" in labels else None,
    )


def scrub_collection(data: MetricsData, registry: MetricsRegistry | None) -> MetricsData | None:
    """What a reader collected, every meter's points scrubbed at the wire by the running policy (attributes of
    points and exemplars, descriptions, resource and scope); None (dropped, counted, one warning) when it cannot be
    scrubbed: never exported unchecked."""
    try:
        scrubbed: MetricsData = scrub_metrics_data(_scrub.active(), data)
    except Exception:
        if registry is not None:
            registry.record_dropped("metrics", "scrub_failed", count_points(data))
        _warn_scrub_failed()
        return None
    return scrubbed


# Process-wide: one warning per process (functools.cache runs it once), with the first failure's traceback.
@functools.cache
def _warn_scrub_failed() -> None:
    _log.warning("signalfire: scrubbing collected metrics failed; the collection was dropped", exc_info=True)


def _reset_locks_after_fork() -> None:
    # A lock the parent's collecting thread held at fork would stay locked in the child for ever.
    for collection in list(_collections):
        collection._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks_after_fork)


class _RegistryReaderMixin:
    """Adds the registry's scope to every collection of a MetricReader (see the module docstring)."""

    resource: Resource | None = None  # set by the MeterProvider's builder: for a collection the SDK had nothing for
    _provider: Any = None
    _registry_collection: RegistryCollection | None = None
    _delivered: threading.local | None = None

    def _init_registry(self, registry: MetricsRegistry) -> None:
        # The temporality the reader resolved from its preference (and the exporter's), which it keeps by the SDK's
        # concrete instrument classes (_Counter, ...): read by class name, cumulative where it does not say.
        by_class = getattr(self, "_instrument_class_temporality", {})
        by_name = {cls.__name__.lstrip("_"): temporality for cls, temporality in by_class.items()}
        temporality = {kind: by_name[name] for kind, name in _KIND_CLASS_NAME.items() if name in by_name}
        self._registry_collection = RegistryCollection(registry, temporality)
        self._delivered = threading.local()

    # MetricReader.collect is marked final; the SDK's own collection still runs unchanged (super().collect), this
    # override only delivers the registry when the SDK had nothing to deliver (it then never calls _receive_metrics).
    # tests/unit/test_metrics_otel.py pins both paths against the installed SDK.
    def collect(self, timeout_millis: float = 10_000) -> None:
        delivered, collection = self._delivered, self._registry_collection
        if delivered is None or collection is None:  # a collection during the SDK's __init__
            super().collect(timeout_millis=timeout_millis)  # type: ignore[misc]
            return
        delivered.value = False
        super().collect(timeout_millis=timeout_millis)  # type: ignore[misc]
        resource = self._current_resource()
        if not delivered.value and resource is not None:
            # the SDK had nothing of its own to collect: deliver the registry's metrics alone
            scope = collection.scope_metrics()
            if scope is not None:
                data = scrub_collection(MetricsData([ResourceMetrics(resource, [scope], "")]), collection._registry)
                if data is not None:
                    super()._receive_metrics(data, timeout_millis=timeout_millis)  # type: ignore[misc]

    def _set_meter_provider(self, meter_provider: Any) -> None:
        self._provider = meter_provider
        super()._set_meter_provider(meter_provider)  # type: ignore[misc]

    def _current_resource(self) -> Resource | None:
        """The provider's resource as it is now: after a fork the SDK gives the child its own service.instance.id."""
        resource = compat.provider_resource(self._provider)
        return resource if isinstance(resource, Resource) else self.resource

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        collection = self._registry_collection
        if self._delivered is not None:
            self._delivered.value = True
        scope = collection.scope_metrics() if collection is not None else None
        if scope is not None:
            first, *rest = metrics_data.resource_metrics
            first = ResourceMetrics(first.resource, [*first.scope_metrics, scope], first.schema_url)
            metrics_data = MetricsData([first, *rest])
        scrubbed = scrub_collection(metrics_data, collection._registry if collection is not None else None)
        if scrubbed is not None:
            super()._receive_metrics(scrubbed, timeout_millis=timeout_millis, **kwargs)  # type: ignore[misc]


class PeriodicRegistryReader(_RegistryReaderMixin, PeriodicExportingMetricReader):  # type: ignore[misc]
    """The SDK's periodic push reader, with signalfire's registry in every export."""

    def __init__(self, registry: MetricsRegistry, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_registry(registry)


class InMemoryRegistryReader(_RegistryReaderMixin, InMemoryMetricReader):  # type: ignore[misc]
    """The SDK's in-memory reader (tests), with signalfire's registry in what ``get_metrics_data()`` returns."""

    def __init__(self, registry: MetricsRegistry, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_registry(registry)
