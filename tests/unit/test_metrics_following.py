"""The following meters behind signalfire's global meter provider, on real SDK MeterProviders (public API only)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData

from signalfire._metrics._following import FollowingMeter, frozen


def _provider() -> tuple[MeterProvider, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return MeterProvider(metric_readers=[reader]), reader


def _points(data: MetricsData | None, name: str) -> list[Any]:
    assert data is not None
    return [
        point
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def test_every_synchronous_kind_records_into_the_provider_it_was_last_pointed_at() -> None:
    meter = FollowingMeter("shop", "1.0", None, None)
    counter = meter.create_counter("shop.orders")
    updown = meter.create_up_down_counter("shop.open")
    histogram = meter.create_histogram("shop.latency", unit="s", explicit_bucket_boundaries_advisory=[0.1, 1.0])
    gauge = meter.create_gauge("shop.temperature")
    for instrument in (counter, updown):
        instrument.add(5)  # before any provider: recorded nowhere, and no error
    first, first_reader = _provider()
    meter.point_at(first)
    counter.add(1, {"k": "v"})
    updown.add(-2)
    histogram.record(0.5)
    gauge.set(21.5)
    data = first_reader.get_metrics_data()
    assert [p.value for p in _points(data, "shop.orders")] == [1]
    assert [p.value for p in _points(data, "shop.open")] == [-2]
    assert [list(p.bucket_counts) for p in _points(data, "shop.latency")] == [
        [0, 1, 0]
    ]  # the advisory buckets reach the SDK
    assert [p.value for p in _points(data, "shop.temperature")] == [21.5]
    second, second_reader = _provider()
    meter.point_at(second)
    first.shutdown()
    counter.add(3)
    assert [p.value for p in _points(second_reader.get_metrics_data(), "shop.orders")] == [3]
    second.shutdown()


def test_observable_callbacks_move_with_the_provider() -> None:
    calls: list[str] = []

    def observe(options: CallbackOptions) -> list[Observation]:
        calls.append("called")
        return [Observation(7)]

    meter = FollowingMeter("shop", None, None, None)
    meter.create_observable_gauge("shop.queue", callbacks=[observe])
    meter.create_observable_counter("shop.total", callbacks=[observe])
    meter.create_observable_up_down_counter("shop.level", callbacks=[observe])
    first, first_reader = _provider()
    meter.point_at(first)
    assert [p.value for p in _points(first_reader.get_metrics_data(), "shop.queue")] == [7]
    second, second_reader = _provider()
    meter.point_at(second)
    first.shutdown()
    data = second_reader.get_metrics_data()
    assert [p.value for p in _points(data, "shop.queue")] == [7]
    assert [p.value for p in _points(data, "shop.total")] == [7]
    assert [p.value for p in _points(data, "shop.level")] == [7]
    second.shutdown()


def test_an_instrument_created_after_the_provider_is_set_records_at_once() -> None:
    provider, reader = _provider()
    meter = FollowingMeter("shop", None, None, {"team": "payments"})
    meter.point_at(provider)
    meter.create_counter("late.counter").add(2)
    data = reader.get_metrics_data()
    assert [p.value for p in _points(data, "late.counter")] == [2]
    assert data is not None
    assert data.resource_metrics[0].scope_metrics[0].scope.attributes == {"team": "payments"}
    provider.shutdown()


def test_the_same_identity_is_one_instrument_whatever_the_name_case() -> None:
    meter = FollowingMeter("shop", None, None, None)
    first = meter.create_histogram("shop.Latency", unit="s")
    assert meter.create_histogram("shop.latency", unit="s") is first
    assert meter.create_histogram("shop.latency", unit="ms") is not first
    assert meter.create_counter("shop.latency") is not first
    assert len(meter.instruments) == 3


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
        max_leaves=10,
    )
)
def test_frozen_makes_any_argument_hashable_and_stable(value: Any) -> None:
    assert hash(frozen(value)) == hash(frozen(value))


@pytest.mark.parametrize("bad", [[{1, 2}], {"a": bytearray(b"x")}])
def test_frozen_accepts_unhashable_leaves(bad: Any) -> None:
    assert hash(frozen(bad)) == hash(frozen(bad))


def test_an_instrument_a_new_provider_refuses_records_nothing_and_breaks_nothing() -> None:
    """The SDK raises on an invalid instrument name; pointing at the next provider must not raise for it."""

    class Refusing(MeterProvider):
        def get_meter(self, *args: Any, **kwargs: Any) -> Any:
            meter = super().get_meter(*args, **kwargs)

            class Refuse:
                def __getattr__(self, name: str) -> Any:
                    if name.startswith("create_"):
                        raise ValueError("refused")
                    return getattr(meter, name)

            return Refuse()

    meter = FollowingMeter("shop", None, None, None)
    counter = meter.create_counter("shop.orders")
    refusing = Refusing()
    meter.point_at(refusing)  # no exception
    counter.add(1)  # recorded nowhere, no exception
    provider, reader = _provider()
    meter.point_at(provider)
    counter.add(2)
    assert [p.value for p in _points(reader.get_metrics_data(), "shop.orders")] == [2]
    provider.shutdown()
    refusing.shutdown()
