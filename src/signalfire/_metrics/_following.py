"""Meters that follow whichever MeterProvider signalfire's running instance has, written on the public metrics API.

The OpenTelemetry global meter provider can be set only once per process. signalfire sets it to a delegating provider
whose meters and instruments stay the same objects across re-initialisations (tests, reloads) and record into the
provider of the instance running now. Each instrument is created once per identity, as the SDK dedupes (code that
creates its counter per request must not grow memory), and re-created on every provider it is pointed at.

Only public API types are used (``opentelemetry.metrics.Meter`` and the instrument ABCs; the synchronous gauge's ABC,
which the API exports as ``_Gauge``, comes through ``_compat``), so nothing here depends on the API's proxy classes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import metrics as otel_metrics
from opentelemetry.context import Context
from opentelemetry.metrics import (
    CallbackT,
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.util.types import Attributes

from signalfire._compat.opentelemetry import Gauge

__all__ = ["FollowingMeter", "frozen"]

_log = logging.getLogger("signalfire")


class _Nothing:
    """The real instrument before any provider: measurements go nowhere, as with the API's own proxies."""

    def add(self, *args: Any, **kwargs: Any) -> None:
        pass

    record = set = add


_NOTHING = _Nothing()


def frozen(value: Any) -> Any:
    """A hashable stand-in for instrument or scope arguments (attributes, advisory bucket lists)."""
    if isinstance(value, dict):
        return tuple(sorted((str(k), frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(frozen(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


class _Follows:
    """What every following instrument has: how to create its real instrument on a meter, and the current one."""

    # Not __slots__: the instrument ABCs have no slots, so a subclass would get a __dict__ anyway.
    def __init__(self, create: Callable[[otel_metrics.Meter], Any]) -> None:
        self.follow_create = create
        self.real: Any = _NOTHING

    def point_at(self, meter: otel_metrics.Meter) -> None:
        # An instrument the new provider refuses (the SDK raises on an invalid name, to whoever created it) records
        # nothing there: a re-initialisation must not fail on what the application got wrong earlier.
        try:
            self.real = self.follow_create(meter)
        except Exception:
            self.real = _NOTHING
            _log.debug("signalfire: an instrument could not be re-created on the new meter provider", exc_info=True)


class _FollowingCounter(_Follows, Counter):
    def add(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self.real.add(amount, attributes, context)


class _FollowingUpDownCounter(_Follows, UpDownCounter):
    def add(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self.real.add(amount, attributes, context)


class _FollowingHistogram(_Follows, Histogram):
    def record(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self.real.record(amount, attributes, context)


class _FollowingGauge(_Follows, Gauge):
    def set(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self.real.set(amount, attributes, context)


class _FollowingObservableCounter(_Follows, ObservableCounter):
    pass


class _FollowingObservableUpDownCounter(_Follows, ObservableUpDownCounter):
    pass


class _FollowingObservableGauge(_Follows, ObservableGauge):
    pass


class FollowingMeter(otel_metrics.Meter):
    """A meter whose instruments record into the real meter of the provider it was last pointed at.

    Before any provider, instruments record nothing (as the API's own proxies). Observable instruments are created
    again, with the same callbacks, on every provider; the previous provider, shut down, stops calling them.
    """

    def __init__(self, name: str, version: str | None, schema_url: str | None, attributes: Any) -> None:
        super().__init__(name, version=version, schema_url=schema_url)
        self.scope_attributes = attributes
        self.follow_lock = threading.Lock()
        self.real_meter: otel_metrics.Meter | None = None
        self.instruments: dict[tuple[Any, ...], _Follows] = {}

    def point_at(self, provider: otel_metrics.MeterProvider) -> None:
        real = provider.get_meter(self.name, self.version, self.schema_url, self.scope_attributes)
        with self.follow_lock:
            self.real_meter = real
            for instrument in self.instruments.values():
                instrument.point_at(real)

    def _instrument(self, kind: type[_Follows], key: tuple[Any, ...], create: Callable[[Any], Any]) -> Any:
        identity = (kind, str(key[0]).lower(), *(frozen(part) for part in key[1:]))
        with self.follow_lock:
            instrument = self.instruments.get(identity)
            if instrument is None:
                instrument = self.instruments[identity] = kind(create)
                if self.real_meter is not None:
                    instrument.point_at(self.real_meter)
            return instrument

    def create_counter(self, name: str, unit: str = "", description: str = "") -> Counter:
        return self._instrument(  # type: ignore[no-any-return]
            _FollowingCounter, (name, unit, description), lambda m: m.create_counter(name, unit, description)
        )

    def create_up_down_counter(self, name: str, unit: str = "", description: str = "") -> UpDownCounter:
        return self._instrument(  # type: ignore[no-any-return]
            _FollowingUpDownCounter,
            (name, unit, description),
            lambda m: m.create_up_down_counter(name, unit, description),
        )

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> Histogram:
        buckets = explicit_bucket_boundaries_advisory
        return self._instrument(  # type: ignore[no-any-return]
            _FollowingHistogram,
            (name, unit, description, buckets),
            lambda m: m.create_histogram(name, unit, description, explicit_bucket_boundaries_advisory=buckets),
        )

    def create_gauge(self, name: str, unit: str = "", description: str = "") -> Gauge:
        return self._instrument(  # type: ignore[no-any-return]
            _FollowingGauge, (name, unit, description), lambda m: m.create_gauge(name, unit, description)
        )

    def create_observable_counter(
        self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> ObservableCounter:
        return self._instrument(  # type: ignore[no-any-return]
            _FollowingObservableCounter,
            (name, unit, description),
            lambda m: m.create_observable_counter(name, callbacks, unit, description),
        )

    def create_observable_up_down_counter(
        self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> ObservableUpDownCounter:
        return self._instrument(  # type: ignore[no-any-return]
            _FollowingObservableUpDownCounter,
            (name, unit, description),
            lambda m: m.create_observable_up_down_counter(name, callbacks, unit, description),
        )

    def create_observable_gauge(
        self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> ObservableGauge:
        # As the SDK: the first creation's callbacks are the instrument's; a second creation returns it unchanged.
        return self._instrument(  # type: ignore[no-any-return]
            _FollowingObservableGauge,
            (name, unit, description),
            lambda m: m.create_observable_gauge(name, callbacks, unit, description),
        )
