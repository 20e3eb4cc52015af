"""signalfire's instruments reach OpenTelemetry readers at collection, with no SDK code per measurement."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import Counter, Histogram
from opentelemetry.sdk.metrics._internal.measurement_consumer import SynchronousMeasurementConsumer
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricsData

import signalfire
from signalfire import _runtime
from signalfire._metrics import metrics
from signalfire._metrics._otel import InMemoryRegistryReader
from signalfire._settings import Settings
from signalfire.testing import TEST_DEFAULTS

DELTA = AggregationTemporality.DELTA


@pytest.fixture(autouse=True)
def _forget_test_instruments() -> Iterator[None]:
    before = dict(metrics._instruments)
    yield
    _runtime.shutdown()
    metrics._instruments.clear()
    metrics._instruments.update(before)


def start(reader: InMemoryRegistryReader, **overrides: Any) -> _runtime.Observability:
    _runtime.shutdown()
    settings = Settings.resolve(**{**TEST_DEFAULTS, "sentry_dsn": None, **overrides})
    return _runtime.start(settings, span_exporters=[], metric_readers=[reader])


def points(data: MetricsData | None, name: str) -> list[Any]:
    found: list[Any] = []
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            found += [p for m in scope_metrics.metrics if m.name == name for p in m.data.data_points]
    return found


def test_registry_metrics_arrive_when_the_sdk_has_nothing_of_its_own() -> None:
    """A collection with no SDK instrument still delivers the registry, in one resource, scope ``signalfire``."""
    reader = InMemoryRegistryReader(metrics)
    start(reader)
    metrics.record_cache_hit("user")
    data = reader.get_metrics_data()
    assert data is not None
    assert len(data.resource_metrics) == 1
    scopes = [s.scope.name for s in data.resource_metrics[0].scope_metrics]
    assert scopes == ["signalfire"]
    assert data.resource_metrics[0].resource.attributes["service.name"] == "unknown_service:python"


def test_registry_and_sdk_instruments_share_one_collection() -> None:
    """An application's own OpenTelemetry counter and signalfire's instruments come in the same export."""
    reader = InMemoryRegistryReader(metrics)
    obs = start(reader)
    assert obs.meter_provider is not None
    obs.meter_provider.get_meter("app").create_counter("app.widgets").add(3)
    cancelled = metrics.declare("bookings.cancelled", "counter", labels=("reason",))
    cancelled.add(2, reason="no_show")
    data = reader.get_metrics_data()
    assert [p.value for p in points(data, "app.widgets")] == [3]
    (point,) = points(data, "bookings.cancelled")
    assert (point.value, dict(point.attributes)) == (2, {"reason": "no_show"})
    assert data is not None
    assert len(data.resource_metrics) == 1


def test_histogram_points_follow_opentelemetry_bucket_semantics() -> None:
    """Bucket i counts values in (bound[i-1], bound[i]]; count, sum, min and max are the recorded values'."""
    reader = InMemoryRegistryReader(metrics)
    start(reader)
    latency = metrics.declare("queue.wait", "histogram", unit="s", buckets=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 1.0, 3.0):
        latency.record(value)
    (point,) = points(reader.get_metrics_data(), "queue.wait")
    assert list(point.explicit_bounds) == [0.1, 1.0]
    assert list(point.bucket_counts) == [2, 2, 1]
    assert (point.count, point.min, point.max) == (5, 0.05, 3.0)
    assert math.isclose(point.sum, 4.65)


def test_histogram_exemplar_carries_the_sampled_span() -> None:
    """A measurement inside a sampled span is kept as its bucket's exemplar, with the span's trace and span ids."""
    reader = InMemoryRegistryReader(metrics)
    start(reader, traces_exporter="none")
    latency = metrics.declare("queue.wait", "histogram", unit="s", buckets=(1.0,))
    with signalfire.span("work") as span:
        latency.record(0.5)
        context = span.get_span_context()
    (point,) = points(reader.get_metrics_data(), "queue.wait")
    (exemplar,) = point.exemplars
    assert (exemplar.value, exemplar.trace_id, exemplar.span_id) == (0.5, context.trace_id, context.span_id)
    (again,) = points(reader.get_metrics_data(), "queue.wait")
    assert again.exemplars == [], "an exemplar is reported in the collection after it was recorded only"


def test_delta_readers_get_the_change_since_their_last_collection() -> None:
    """With delta temporality, counters and histograms report increments; an unchanged series is left out."""
    reader = InMemoryRegistryReader(metrics, preferred_temporality={Counter: DELTA, Histogram: DELTA})
    start(reader)
    jobs = metrics.declare("jobs.done", "counter", labels=("queue",))
    wait = metrics.declare("jobs.wait", "histogram", unit="s", buckets=(1.0,))
    jobs.add(5, queue="a")
    wait.record(0.5)
    first = reader.get_metrics_data()
    jobs.add(2, queue="a")
    jobs.add(1, queue="b")
    second = reader.get_metrics_data()
    assert [p.value for p in points(first, "jobs.done")] == [5]
    assert {p.attributes["queue"]: p.value for p in points(second, "jobs.done")} == {"a": 2, "b": 1}
    assert points(second, "jobs.wait") == [], "no measurement since the last collection"
    (waited,) = points(first, "jobs.wait")
    assert (waited.count, waited.min, waited.max) == (1, None, None), "extremes are not kept per interval"
    (counted,) = points(first, "jobs.done")
    (later,) = [p for p in points(second, "jobs.done") if p.attributes["queue"] == "a"]
    assert later.start_time_unix_nano >= counted.time_unix_nano


def test_cumulative_series_keep_their_start_time() -> None:
    """Cumulative points of one series share the start time of the series and grow."""
    reader = InMemoryRegistryReader(metrics)
    start(reader)
    jobs = metrics.declare("jobs.done", "counter")
    jobs.add(1)
    (first,) = points(reader.get_metrics_data(), "jobs.done")
    jobs.add(1)
    (second,) = points(reader.get_metrics_data(), "jobs.done")
    assert (first.value, second.value) == (1, 2)
    assert first.start_time_unix_nano == second.start_time_unix_nano < second.time_unix_nano


def test_gauges_and_up_down_counters_are_read_at_collection() -> None:
    """A gauge's last value and an up-down counter's running total arrive as they stand at collection."""
    reader = InMemoryRegistryReader(metrics)
    start(reader)
    depth = metrics.declare("queue.depth", "gauge", labels=("queue",))
    inflight = metrics.declare("jobs.inflight", "updown_counter")
    depth.set(7, queue="a")
    inflight.add(3)
    inflight.add(-1)
    data = reader.get_metrics_data()
    assert [(p.value, p.start_time_unix_nano) for p in points(data, "queue.depth")] == [(7.0, None)]
    assert [p.value for p in points(data, "jobs.inflight")] == [2]


def test_recording_runs_no_opentelemetry_sdk_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    """Helpers and the HTTP recorder never call the SDK's measurement pipeline: the cost is paid at collection."""
    calls: list[object] = []
    monkeypatch.setattr(SynchronousMeasurementConsumer, "consume_measurement", lambda self, m: calls.append(m))
    reader = InMemoryRegistryReader(metrics)
    start(reader)
    metrics.record_cache_hit("user")
    metrics.record_payment(amount=10.0, currency="EUR", status="succeeded")
    metrics.http_server_duration.record(0.2, **{"http.request.method": "GET", "http.route": "/x"})
    assert calls == []
    assert points(reader.get_metrics_data(), "http.server.request.duration")


def test_meters_obtained_before_a_reinitialisation_record_into_the_new_provider() -> None:
    """An application meter from the OpenTelemetry global, taken under one init, reaches the readers of the next."""
    from opentelemetry import metrics as otel_metrics

    from signalfire._metrics import _provider

    assert otel_metrics.get_meter_provider() is _provider.GLOBAL_PROVIDER
    first = InMemoryRegistryReader(metrics)
    start(first)
    widgets = otel_metrics.get_meter("shop").create_counter("shop.widgets")
    widgets.add(1)
    assert [p.value for p in points(first.get_metrics_data(), "shop.widgets")] == [1]
    second = InMemoryRegistryReader(metrics)
    start(second)  # shuts the first instance down, then starts anew
    widgets.add(2)
    assert [p.value for p in points(second.get_metrics_data(), "shop.widgets")] == [2]
    assert otel_metrics.get_meter("shop") is otel_metrics.get_meter("shop"), "one meter per name, as the SDK"


def test_an_instrument_created_again_is_the_same_one() -> None:
    """Creating a counter per call (safe with the SDK) returns one instrument: no proxy piles up per call."""
    from opentelemetry import metrics as otel_metrics

    start(InMemoryRegistryReader(metrics))
    meter = otel_metrics.get_meter("shop")
    first = meter.create_counter("shop.orders", unit="{order}")
    assert all(meter.create_counter("shop.orders", unit="{order}") is first for _ in range(100))
    assert meter.create_counter("shop.orders", unit="{order}", description="other") is not first


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_worker_exports_the_registry_under_its_own_instance_id() -> None:
    """After fork the child's registry metrics carry the child's service.instance.id, not the parent's."""
    reader = InMemoryRegistryReader(metrics)
    start(reader)
    metrics.record_cache_hit("user")
    parent_id = _instance_id(reader.get_metrics_data())
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its instance id and leave without running the parent's exit handlers
        try:
            os.write(write_end, str(_instance_id(reader.get_metrics_data())).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_id = pipe.read()
    os.waitpid(pid, 0)
    assert child_id
    assert child_id != str(parent_id)


def _instance_id(data: MetricsData | None) -> object:
    assert data is not None
    return data.resource_metrics[0].resource.attributes["service.instance.id"]
