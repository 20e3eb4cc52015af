"""The metric registry: declared instruments, their cardinality guard, and the binding to both backends.

An :class:`Instrument` is declared once (at import, by the catalog or by the application) and lives as long as the
process. ``install()`` binds every instrument to the backends of one ``init_observability()``: a prometheus-client
metric in the registry signalfire owns (or the multiprocess files) and an OpenTelemetry instrument on the
MeterProvider. Re-initialising rebinds; nothing is ever registered on prometheus-client's global REGISTRY.

Recording resolves the label values to a cached :class:`_Child` (one dict lookup once warm) that holds the
prometheus-client child and the OpenTelemetry attributes, so a warm record costs about one raw prometheus-client call.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

from signalfire._compat import opentelemetry as compat
from signalfire._hex_ids import hex_ids
from signalfire._scrub import _policy as _scrub

__all__ = [
    "KINDS",
    "Instrument",
    "InstrumentSpec",
    "MetricsRegistry",
    "prometheus_name",
]

_log = logging.getLogger("signalfire")

Kind = Literal["counter", "histogram", "updown_counter", "gauge", "observable_gauge"]
KINDS: tuple[str, ...] = ("counter", "histogram", "updown_counter", "gauge", "observable_gauge")
OVERFLOW_VALUE = "__overflow__"
OTHER_VALUE = "__other__"
# The OpenTelemetry specification's attribute for the one series that absorbs values beyond the cardinality limit.
OTEL_OVERFLOW_ATTRIBUTES: Mapping[str, Any] = MappingProxyType({"otel.metric.overflow": True})
MULTIPROCESS_MODES = (
    "all",
    "liveall",
    "min",
    "livemin",
    "max",
    "livemax",
    "sum",
    "livesum",
    "mostrecent",
    "livemostrecent",
)

# OpenTelemetry unit -> Prometheus suffix, as the OpenTelemetry-to-Prometheus compatibility specification maps them.
_UNIT_WORDS = {
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "min": "minutes",
    "h": "hours",
    "d": "days",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "%": "percent",
}
_OTEL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-/]{0,254}$")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_INVALID_PROM = re.compile(r"[^A-Za-z0-9_]+")


def _prom_unit(unit: str, kind: str) -> str:
    if not unit or (unit.startswith("{") and unit.endswith("}")):
        return ""
    if unit == "1":
        return "ratio" if kind in ("gauge", "observable_gauge") else ""
    word = _UNIT_WORDS.get(unit)
    if word is None:
        # "{packet}/s" -> "per_second"; anything else is sanitized as it is
        base, _, per = unit.partition("/")
        base_word = "" if base.startswith("{") else _UNIT_WORDS.get(base, base)
        per_word = _UNIT_WORDS.get(per, per).rstrip("s") if per else ""
        word = "_per_".join(w for w in (base_word, per_word) if w) if per_word else base_word
    return _INVALID_PROM.sub("_", word).strip("_").lower()


def prometheus_name(name: str, unit: str, kind: str, prefix: str = "") -> str:
    """The Prometheus name of an OpenTelemetry instrument: ``http.server.request.duration`` with unit ``s`` is
    ``http_server_request_duration_seconds``; counters end in ``_total``; ``prefix`` goes first."""
    base = _INVALID_PROM.sub("_", name).strip("_")
    if prefix:
        base = f"{prefix}_{base}"
    if kind == "counter":
        base = base.removesuffix("_total")
    suffix = _prom_unit(unit, kind)
    if suffix and not base.endswith("_" + suffix):
        base = f"{base}_{suffix}"
    return f"{base}_total" if kind == "counter" else base


def prometheus_label(name: str) -> str:
    """``http.route`` -> ``http_route``."""
    return _INVALID_PROM.sub("_", name)


@dataclass(frozen=True)
class InstrumentSpec:
    """One declared instrument, as ``metrics.instruments()`` lists it for dashboards and alert rules.

    ``name`` is the declared OpenTelemetry name, ``otel_name`` the name OTLP carries (with SIGNALFIRE_METRICS_PREFIX
    for business instruments: ``tvl.payments.processed``), ``prometheus_name`` the exposed name with unit suffix,
    ``_total`` for counters and the prefix. ``prometheus_labels`` are ``labels`` as exposed (``http.route`` ->
    ``http_route``). For histograms the count is ``<prometheus_name>_count``.
    """

    name: str
    kind: Kind
    unit: str
    description: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] | None
    category: str
    business: bool
    prometheus_name: str
    prometheus_labels: tuple[str, ...]
    allowed_values: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    multiprocess_mode: str = "livesum"
    otel_name: str = ""

    def prefixed(self, prefix: str) -> InstrumentSpec:
        """The spec as exposed with a namespace prefix (only business instruments take it)."""
        if not self.business or not prefix:
            return self
        return replace(
            self,
            prometheus_name=prometheus_name(self.name, self.unit, self.kind, prefix),
            otel_name=f"{prefix}.{self.name}",
        )


class Backend:
    """What one ``init_observability()`` binds instruments to; built by ``signalfire._metrics.install``."""

    def __init__(
        self,
        *,
        max_series: int,
        prefix: str,
        prometheus: Any = None,
        otel: bool = False,
        exemplars: bool = False,
    ) -> None:
        self.max_series = max_series
        self.prefix = prefix
        self.prometheus = prometheus  # signalfire._metrics._prometheus.PrometheusBackend
        self.otel = otel  # OpenTelemetry readers collect the registry (OTLP, console, tests)
        self.exemplars = exemplars


_current_span = compat.current_span_reader()


# (span, its exemplar labels): the metrics recorded while one request is handled share one span, and formatting a
# 128-bit trace id costs more than the observation itself. One tuple, replaced whole, so threads never see half.
_last_exemplar: tuple[Any, dict[str, str] | None] = (None, None)


def span_exemplar(span: Any) -> dict[str, str] | None:
    """Exemplar labels (trace_id, span_id) of a sampled span, else None."""
    global _last_exemplar  # noqa: PLW0603
    last = _last_exemplar
    if last[0] is span:
        return last[1]
    context = span.get_span_context()
    exemplar = None
    if context.trace_flags & 1:
        ids = hex_ids(context)  # the request's log lines name the same span: formatted once
        exemplar = {"trace_id": ids[1], "span_id": ids[2]}
    _last_exemplar = (span, exemplar)
    return exemplar


def _sampled_exemplar() -> dict[str, str] | None:
    span = _current_span()
    return None if span is None else span_exemplar(span)


class _Child:
    """One series of one instrument: the prometheus-client child, and the state OpenTelemetry reads at collection.

    ``otel`` says whether anything reads that state (OTLP, console or test readers): then ``value`` (counters,
    up-down counters, gauges) or the bucket counts (histograms) are kept here, under ``lock``, and
    :mod:`signalfire._metrics._otel` turns them into data points when a reader collects. No OpenTelemetry SDK code
    runs per measurement: an SDK ``record()`` (attribute hashing, view matching, an exemplar reservoir, once per
    reader) cost ten times the prometheus-client call.
    """

    __slots__ = ("attrs", "inst", "lock", "otel", "prom", "started_ns", "value")

    def __init__(self, inst: Instrument, prom: Any, otel: bool, attrs: Mapping[str, Any]) -> None:
        self.inst = inst
        self.prom = prom
        self.otel = otel
        self.attrs = attrs
        self.value: float = 0  # an int while every amount is an int: OTLP carries it as_int, as the SDK would
        self.lock = threading.Lock()
        self.started_ns = time.time_ns()

    def add(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        self.inst._misuse("add")

    def record(self, value: float, exemplar: dict[str, str] | None = None) -> None:
        self.inst._misuse("record")

    def set(self, value: float) -> None:
        self.inst._misuse("set")


class _NoopChild(_Child):
    __slots__ = ()

    def add(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        return

    def record(self, value: float, exemplar: dict[str, str] | None = None) -> None:
        return

    def set(self, value: float) -> None:
        return


class _CounterChild(_Child):
    __slots__ = ()

    def add(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        try:
            if not amount >= 0:  # also NaN
                self.inst._reject("negative_or_nan", f"a counter only goes up; {amount!r} was dropped")
                return
            prom = self.prom
            if prom is not None:
                if exemplar is None and self.inst._exemplars:
                    exemplar = _sampled_exemplar()
                prom.inc(amount, exemplar)
            if self.otel:
                with self.lock:
                    self.value += amount
        except Exception as exc:
            self.inst._failed(exc)


class _HistogramChild(_Child):
    """``counts[i]`` counts values in (bounds[i-1], bounds[i]] (OpenTelemetry's explicit buckets: upper bound
    inclusive, as Prometheus's ``le``); ``exemplars[i]`` is the last sampled measurement of bucket i."""

    __slots__ = ("bounds", "counts", "exemplars", "max", "min", "sum")

    def __init__(self, inst: Instrument, prom: Any, otel: bool, attrs: Mapping[str, Any]) -> None:
        super().__init__(inst, prom, otel, attrs)
        self.bounds = inst._bounds
        self.counts = [0] * (len(self.bounds) + 1)
        self.exemplars: list[tuple[float, int, dict[str, str]] | None] = [None] * len(self.counts)
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def record(self, value: float, exemplar: dict[str, str] | None = None) -> None:
        try:
            if value != value:  # NaN poisons a histogram's sum for ever  # noqa: PLR0124
                self.inst._reject("negative_or_nan", "NaN was dropped")
                return
            if exemplar is None and self.inst._exemplars:
                exemplar = _sampled_exemplar()
            prom = self.prom
            if prom is not None:
                prom.observe(value, exemplar if self.inst._prom_exemplars else None)
            if self.otel:
                bucket = bisect_left(self.bounds, value)
                with self.lock:
                    self.counts[bucket] += 1
                    self.sum += value
                    self.min = min(self.min, value)
                    self.max = max(self.max, value)
                    if exemplar:
                        self.exemplars[bucket] = (value, time.time_ns(), exemplar)
        except Exception as exc:
            self.inst._failed(exc)


class _UpDownChild(_Child):
    __slots__ = ()

    def add(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        try:
            prom = self.prom
            if prom is not None:
                prom.inc(amount)
            if self.otel:
                with self.lock:
                    self.value += amount
        except Exception as exc:
            self.inst._failed(exc)


class _GaugeChild(_Child):
    """A gauge keeps its last value; OpenTelemetry reads it through an observable gauge callback at collection."""

    __slots__ = ()

    def set(self, value: float) -> None:
        try:
            self.value = float(value)  # one store: no lock needed
            prom = self.prom
            if prom is not None:
                prom.set(value)
        except Exception as exc:
            self.inst._failed(exc)


_CHILD_CLASSES: dict[str, type[_Child]] = {
    "counter": _CounterChild,
    "histogram": _HistogramChild,
    "updown_counter": _UpDownChild,
    "gauge": _GaugeChild,
    "observable_gauge": _GaugeChild,
}

Callback = Callable[[], Any]


class Instrument:
    """A declared instrument. Record with ``add`` (counters, up-down counters), ``record`` (histograms) or ``set``
    (gauges); label values are keyword arguments named as declared (``**{"http.route": ...}`` for dotted names).

    Recording never raises: an undeclared label is dropped, a value outside ``allowed_values`` becomes
    ``__other__``, a label set beyond SIGNALFIRE_METRICS_MAX_SERIES goes to the ``__overflow__`` series; each is
    counted in ``signalfire_metrics_labels_rejected_total`` / ``signalfire_metrics_series_overflow_total`` and warned
    about once.

    Example::

        cancelled = signalfire.metrics.declare("bookings.cancelled", "counter", labels=("reason",))
        cancelled.add(1, reason="no_show")
    """

    __slots__ = (
        "_bound",
        "_bounds",
        "_cache",
        "_callbacks",
        "_exemplars",
        "_exposed",
        "_from_callbacks",
        "_label_set",
        "_lock",
        "_max",
        "_noop",
        "_otel",
        "_overflow",
        "_prom",
        "_prom_exemplars",
        "_registry",
        "_series",
        "_warned",
        "spec",
    )

    def __init__(self, spec: InstrumentSpec, registry: MetricsRegistry) -> None:
        self.spec = spec
        self._registry = registry
        self._label_set = frozenset(spec.labels)
        self._lock = threading.Lock()
        self._callbacks: list[Callback] = []
        self._warned: set[str] = set()
        self._noop = _NoopChild(self, None, False, {})
        self._bound = False
        self._prom: Any = None
        self._otel = False
        self._exposed = spec
        # OpenTelemetry's explicit bucket boundaries; the SDK's defaults when none are declared
        self._bounds: tuple[float, ...] = spec.buckets or _OTEL_DEFAULT_BOUNDS
        self._exemplars = False  # look up the current span's exemplar for a measurement
        self._prom_exemplars = False  # and give it to prometheus-client
        self._max = 0
        self._cache: dict[tuple[Any, ...], _Child] = {}
        self._series: dict[tuple[str, ...], _Child] = {}
        self._overflow: _Child | None = None
        self._from_callbacks: set[tuple[str, ...]] = set()

    def __repr__(self) -> str:
        return f"<Instrument {self.spec.kind} {self.spec.name!r} labels={self.spec.labels}>"

    # --- public recording API ------------------------------------------------------------------------------------
    def add(self, amount: float = 1, **labels: Any) -> None:
        """Add ``amount`` (counters: >= 0; up-down counters: any sign) to the series of ``labels``."""
        try:
            self._child(self._key(labels)).add(amount)
        except Exception as exc:
            self._failed(exc)

    def record(self, value: float, **labels: Any) -> None:
        """Record one measurement into a histogram (seconds for durations)."""
        try:
            self._child(self._key(labels)).record(value)
        except Exception as exc:
            self._failed(exc)

    observe = record

    def set(self, value: float, **labels: Any) -> None:
        """Set a gauge's current value for ``labels``."""
        try:
            self._child(self._key(labels)).set(value)
        except Exception as exc:
            self._failed(exc)

    def observe_with(self, callback: Callback) -> Callable[[], None]:
        """Read this gauge from ``callback`` at every scrape and OTLP collection; returns a function that stops it.

        The callback returns a number (no labels), or ``(value, {label: value})`` pairs, one per series. A series it
        stops returning disappears. A callback that raises is logged once and counted; the scrape goes on.
        """
        with self._lock:
            self._callbacks.append(callback)

        def stop() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return stop

    # --- resolution and the guard --------------------------------------------------------------------------------
    def _key(self, labels: Mapping[str, Any]) -> tuple[Any, ...]:
        if labels and not self._label_set.issuperset(labels):
            for name in labels:
                if name not in self._label_set:
                    self._reject("undeclared_label", f"label {name!r} is not declared (declared: {self.spec.labels})")
        return tuple([labels.get(name, "") for name in self.spec.labels])

    def _child(self, key: tuple[Any, ...]) -> _Child:
        child = self._cache.get(key)
        if child is None:
            child = self._resolve(key)
        return child

    def _resolve(self, key: tuple[Any, ...]) -> _Child:
        if not self._bound:
            return self._noop
        with self._lock:
            child = self._cache.get(key)
            if child is not None:
                return child
            canonical = self._canonical(key)
            child = self._series.get(canonical)
            if child is None:
                if len(self._series) >= self._max:
                    return self._overflow_child()
                child = self._make_child(canonical, key)
                self._series[canonical] = child
            # The raw-key cache is bounded too: distinct disallowed values all map to __other__ but are distinct keys.
            if len(self._cache) < 2 * self._max:
                self._cache[key] = child
            return child

    def _canonical(self, key: tuple[Any, ...]) -> tuple[str, ...]:
        values = []
        allowed = self.spec.allowed_values
        for name, raw in zip(self.spec.labels, key, strict=True):
            value = raw if isinstance(raw, str) else _label_text(raw)
            permitted = allowed.get(name)
            if permitted is not None and value not in permitted:
                self._reject("disallowed_value", f"value {value[:64]!r} of label {name!r} is not allowed")
                value = OTHER_VALUE
            elif permitted is None and value:
                # A label value taken from input may hold a secret, and /metrics and OTLP carry it verbatim: the one
                # scrubber runs here, once per new series (never per measurement: the series is cached).
                scrubbed = _scrub.active().scrub_text(value)
                if scrubbed != value:
                    self._reject("scrubbed_value", f"a value of label {name!r} held a secret; it was redacted")
                    value = scrubbed
            values.append(value)
        return tuple(values)

    def _make_child(self, canonical: tuple[str, ...], raw: tuple[Any, ...]) -> _Child:
        prom = self._prom
        if prom is not None and canonical:
            prom = prom.labels(*canonical)
        attrs: dict[str, Any] = {}
        for name, value, original in zip(self.spec.labels, canonical, raw, strict=True):
            if value == "":  # Prometheus reads an empty label as an absent one; OpenTelemetry leaves it out
                continue
            # OpenTelemetry keeps numbers typed (http.response.status_code is an int in the conventions)
            keep = isinstance(original, (int, float)) and not isinstance(original, bool) and value != OTHER_VALUE
            attrs[name] = original if keep else value
        cls = _CHILD_CLASSES[self.spec.kind]
        return cls(self, prom, self._otel, MappingProxyType(attrs))

    def _overflow_child(self) -> _Child:
        self._registry._count_overflow(self)
        if self._overflow is None:
            if "overflow" not in self._warned:
                self._warned.add("overflow")
                _log.warning(
                    "signalfire: metric %s reached %d label sets (SIGNALFIRE_METRICS_MAX_SERIES); further label sets "
                    "are recorded in one series labelled %s. A label probably carries unbounded values (ids, paths).",
                    self.spec.name,
                    self._max,
                    OVERFLOW_VALUE,
                )
            canonical = tuple(OVERFLOW_VALUE for _ in self.spec.labels)
            child = self._make_child(canonical, canonical)
            child.attrs = OTEL_OVERFLOW_ATTRIBUTES
            self._overflow = child
        return self._overflow

    # --- problems: counted, warned once, never raised ------------------------------------------------------------
    def _reject(self, reason: str, message: str) -> None:
        self._registry._count_rejected(self, reason)
        if reason not in self._warned:
            self._warned.add(reason)
            _log.warning("signalfire: metric %s: %s (warned once; counted)", self.spec.name, message)

    def _misuse(self, operation: str) -> None:
        self._reject("wrong_operation", f"{operation}() does not apply to a {self.spec.kind}")

    def _failed(self, exc: BaseException) -> None:
        self._registry.record_dropped("metrics", "error")
        if "error" not in self._warned:
            self._warned.add("error")
            _log.warning("signalfire: recording metric %s failed: %r (warned once)", self.spec.name, exc)

    # --- binding -------------------------------------------------------------------------------------------------
    def _unbind(self) -> None:
        self._from_callbacks = set()
        self._bound = False
        self._prom = None
        self._otel = False
        self._exemplars = False
        self._prom_exemplars = False
        self._max = 0
        self._cache = {}
        self._series = {}
        self._overflow = None

    def _bind(self, backend: Backend) -> None:
        with self._lock:
            self._unbind()
            spec = self.spec.prefixed(backend.prefix)
            self._exposed = spec
            try:
                if backend.prometheus is not None:
                    self._prom = backend.prometheus.create(spec)
            except Exception as exc:  # e.g. a name prometheus-client's own collectors already use: never fail init
                _log.warning("signalfire: metric %s cannot be exposed: %s", spec.name, exc)
                self._registry.record_dropped("metrics", "instrument_rejected")
            self._otel = backend.otel
            exemplar_kind = spec.kind in ("counter", "histogram")
            self._prom_exemplars = self._prom is not None and backend.exemplars and exemplar_kind
            # OpenTelemetry readers get the last sampled measurement per histogram bucket, as the SDK's default
            # (trace-based filter, aligned-bucket reservoir) would keep
            self._exemplars = self._prom_exemplars or (self._otel and spec.kind == "histogram")
            self._max = backend.max_series
            self._warned.discard("overflow")
            # with neither Prometheus nor OTLP there is nothing to record into: stay on the no-op path
            self._bound = self._prom is not None or self._otel

    # --- gauges --------------------------------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Run the callbacks and store what they return; series a callback no longer returns are removed."""
        if not self._bound or not (self._callbacks or self._from_callbacks):
            return
        seen: set[tuple[str, ...]] = set()
        for callback in list(self._callbacks):
            try:
                result = callback()
                for value, labels in _observations(result):
                    key = self._key(labels)
                    child = self._child(key)
                    child.set(value)
                    seen.add(self._canonical(key))
            except Exception as exc:
                self._registry.record_dropped("metrics", "callback_error")
                if "callback" not in self._warned:
                    self._warned.add("callback")
                    _log.warning("signalfire: the callback of metric %s failed: %r (warned once)", self.spec.name, exc)
                return  # keep the last values rather than dropping every series on a transient failure
        with self._lock:
            # only series a callback produced before and no longer does; values set directly (set_db_pool) stay
            gone = self._from_callbacks - seen
            self._from_callbacks = seen
            for canonical in gone:
                removed = self._series.pop(canonical, self._noop)
                if removed.prom is not None and canonical:
                    # in multiprocess mode the value stays in this worker's file: zero it before forgetting it
                    removed.prom.set(0)
                    with contextlib.suppress(KeyError):
                        self._prom.remove(*canonical)
            if gone:
                self._cache = {}

    def _children(self) -> list[_Child]:
        """Every live series (the overflow one included), gauges refreshed from their callbacks first."""
        self._refresh()
        with self._lock:
            children = list(self._series.values())
            if self._overflow is not None:
                children.append(self._overflow)
        return children


def _label_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _observations(result: Any) -> Iterator[tuple[float, Mapping[str, Any]]]:
    if result is None:
        return
    if isinstance(result, (int, float)):
        yield float(result), {}
        return
    for item in result:
        value = getattr(item, "value", None)
        if value is not None and hasattr(item, "attributes"):  # an opentelemetry Observation
            yield float(value), dict(item.attributes or {})
        else:
            number, labels = item
            yield float(number), labels


class MetricsRegistry:
    """The registry of declared instruments; ``signalfire.metrics`` is the one instance.

    ``instruments()`` lists every declared instrument (the predefined catalog first, then the application's own), which
    is what ``signalfire dashboards`` and ``signalfire alerts`` generate from.
    """

    def __init__(self) -> None:
        self._instruments: dict[str, Instrument] = {}
        self._lock = threading.RLock()
        _registries.add(self)
        self._backend: Backend | None = None
        self._prefix = ""
        self._overflow_counter: Instrument | None = None
        self._rejected_counter: Instrument | None = None
        self._dropped_counter: Instrument | None = None

    # --- declaration ---------------------------------------------------------------------------------------------
    def declare(
        self,
        name: str,
        kind: str,
        *,
        unit: str = "",
        description: str = "",
        labels: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
        allowed_values: Mapping[str, Iterable[str]] | None = None,
        category: str = "custom",
        business: bool | None = None,
        multiprocess_mode: str | None = None,
        callback: Callback | None = None,
    ) -> Instrument:
        """Declare an instrument (or return the identical one declared before) and return it.

        ``name`` is the OpenTelemetry name (``bookings.cancelled``); the Prometheus name adds the unit suffix,
        ``_total`` for counters and SIGNALFIRE_METRICS_PREFIX (your own instruments are business instruments unless
        ``business=False``). ``unit`` follows UCUM as OpenTelemetry does: ``s`` for durations (always seconds),
        ``By`` for bytes, ``{request}`` for a count. ``allowed_values`` bounds a label to a set of values; others are
        recorded as ``__other__``. ``multiprocess_mode`` says how a gauge is combined across workers under
        PROMETHEUS_MULTIPROC_DIR (default: ``livesum`` for up-down counters, ``livemax`` for gauges).

        Declaring the same name again with a different definition raises ``ValueError`` (at declaration, never when
        recording).

        Example::

            from signalfire import metrics

            cancelled = metrics.declare(
                "bookings.cancelled", "counter", unit="{booking}", description="Bookings cancelled, by reason.",
                labels=("reason",), allowed_values={"reason": {"no_show", "customer", "weather"}},
            )
            cancelled.add(1, reason="weather")
        """
        spec = self._spec(
            name,
            kind,
            unit=unit,
            description=description,
            labels=labels,
            buckets=buckets,
            allowed_values=allowed_values,
            category=category,
            business=(category not in _INFRA_CATEGORIES) if business is None else business,
            multiprocess_mode=multiprocess_mode,
        )
        with self._lock:
            existing = self._instruments.get(name)
            if existing is not None:
                if existing.spec != spec:
                    raise ValueError(
                        f"metric {name!r} is already declared differently: {existing.spec} (new: {spec}); "
                        "use another name"
                    )
                inst = existing
            else:
                clash = [i for i in self._instruments.values() if i.spec.prometheus_name == spec.prometheus_name]
                if clash:
                    raise ValueError(f"metric {name!r} would be exposed as {spec.prometheus_name}, like {clash[0]}")
                inst = Instrument(spec, self)
                self._instruments[name] = inst
                if self._backend is not None:
                    inst._bind(self._backend)
            if callback is not None and callback not in inst._callbacks:
                inst.observe_with(callback)
            return inst

    def _spec(
        self,
        name: str,
        kind: str,
        *,
        unit: str,
        description: str,
        labels: Sequence[str],
        buckets: Sequence[float] | None,
        allowed_values: Mapping[str, Iterable[str]] | None,
        category: str,
        business: bool,
        multiprocess_mode: str | None,
    ) -> InstrumentSpec:
        if not isinstance(name, str) or not _OTEL_NAME.match(name):
            raise ValueError(
                f"metric name {name!r} is not accepted: expected letters, digits, '.', '_', '-' or '/' starting with "
                "a letter, e.g. 'bookings.cancelled'"
            )
        if kind not in KINDS:
            raise ValueError(f"metric kind {kind!r} is not accepted: expected one of {', '.join(KINDS)}")
        labels = tuple(labels)
        for label in labels:
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                raise ValueError(f"label name {label!r} of {name!r} is not accepted: expected e.g. 'reason'")
        prom_labels = tuple(prometheus_label(label) for label in labels)
        if len(set(prom_labels)) != len(prom_labels):
            raise ValueError(f"labels of {name!r} repeat: {labels}")
        if kind == "histogram" and "le" in prom_labels:
            raise ValueError(f"a histogram cannot have a label named 'le' ({name!r})")
        frozen_buckets: tuple[float, ...] | None = None
        if kind == "histogram":
            chosen = tuple(float(b) for b in (buckets or _default_buckets(unit)))
            if not chosen or list(chosen) != sorted(set(chosen)) or not all(math.isfinite(b) for b in chosen):
                raise ValueError(f"buckets of {name!r} must be finite, increasing and not empty: {buckets}")
            frozen_buckets = chosen
        elif buckets is not None:
            raise ValueError(f"buckets apply to histograms only, not to the {kind} {name!r}")
        allowed: dict[str, frozenset[str]] = {}
        for label, values in (allowed_values or {}).items():
            if label not in labels:
                raise ValueError(f"allowed_values names {label!r}, which is not a label of {name!r}")
            allowed[label] = frozenset(_label_text(v) for v in values)
        mode = multiprocess_mode or ("livesum" if kind == "updown_counter" else "livemax")
        if mode not in MULTIPROCESS_MODES:
            raise ValueError(f"multiprocess_mode {mode!r} is not accepted: expected one of {MULTIPROCESS_MODES}")
        return InstrumentSpec(
            name=name,
            kind=kind,  # type: ignore[arg-type]
            unit=unit,
            description=description or name,
            labels=labels,
            buckets=frozen_buckets,
            category=category,
            business=business,
            prometheus_name=prometheus_name(name, unit, kind),
            prometheus_labels=prom_labels,
            otel_name=name,
            allowed_values=MappingProxyType(allowed),
            multiprocess_mode=mode,
        )

    # --- introspection -------------------------------------------------------------------------------------------
    def instruments(self, prefix: str | None = None) -> list[InstrumentSpec]:
        """Every declared instrument, in declaration order (catalog first), as frozen :class:`InstrumentSpec`.

        ``prefix`` is the namespace applied to business instruments; None means the one in force
        (SIGNALFIRE_METRICS_PREFIX of the running instance, else none).

        >>> from signalfire import metrics
        >>> [s.prometheus_name for s in metrics.instruments() if s.name == "http.server.request.duration"]
        ['http_server_request_duration_seconds']
        """
        chosen = self._prefix if prefix is None else prefix.rstrip("_")
        with self._lock:
            return [inst.spec.prefixed(chosen) for inst in self._instruments.values()]

    def get(self, name: str) -> Instrument:
        """The instrument declared as ``name`` (OpenTelemetry name); KeyError if there is none."""
        return self._instruments[name]

    def __contains__(self, name: object) -> bool:
        return name in self._instruments

    def lookup(self, name: str) -> Instrument | None:
        """The instrument whose OpenTelemetry or (prefixed) Prometheus name is ``name``, else None."""
        found = self._instruments.get(name)
        if found is not None:
            return found
        for inst in self._instruments.values():
            spec = inst.spec.prefixed(self._prefix)
            base = spec.prometheus_name
            if name in (base, spec.otel_name, base.removesuffix("_total")):
                return inst
        return None

    # --- binding -------------------------------------------------------------------------------------------------
    def _bind(self, backend: Backend) -> None:
        with self._lock:
            self._backend = backend
            self._prefix = backend.prefix
            for inst in self._instruments.values():
                inst._bind(backend)

    def _unbind(self, backend: Backend | None = None) -> None:
        with self._lock:
            if backend is not None and backend is not self._backend:
                return
            self._backend = None
            # The namespace was the instance's (SIGNALFIRE_METRICS_PREFIX): with none running, none is in force.
            self._prefix = ""
            for inst in self._instruments.values():
                with inst._lock:
                    inst._unbind()

    def _reset_locks_after_fork(self) -> None:
        # A lock another thread of the parent (the metric reader's) held at fork would stay locked in the child.
        self._lock = threading.RLock()
        for inst in self._instruments.values():
            inst._lock = threading.Lock()
            for child in [*inst._series.values(), *([inst._overflow] if inst._overflow else [])]:
                child.lock = threading.Lock()

    def _bound_instruments(self) -> list[Instrument]:
        with self._lock:
            return [inst for inst in self._instruments.values() if inst._bound]

    def _refresh_gauges(self) -> None:
        for inst in list(self._instruments.values()):
            if inst._callbacks or inst._from_callbacks:
                inst._refresh()

    # --- self-observability --------------------------------------------------------------------------------------
    def record_dropped(self, signal: str, reason: str, count: int = 1) -> None:
        """Count telemetry that was lost: ``signalfire_telemetry_dropped_total{signal, reason}``.

        ``signal`` is traces, metrics, logs or errors; ``reason`` a short word (``queue_full``, ``export_failed``).

        Example::

            signalfire.metrics.record_dropped("traces", "queue_full", count=12)
        """
        counter = self._dropped_counter
        if counter is not None and count > 0:
            try:
                counter._child((signal, reason)).add(count)
            except Exception:  # the counter of failures must not fail
                _log.debug("signalfire: counting dropped telemetry failed", exc_info=True)

    def _count_overflow(self, inst: Instrument) -> None:
        counter = self._overflow_counter
        if counter is not None and counter is not inst:
            counter._child((inst.spec.name,)).add(1)

    def _count_rejected(self, inst: Instrument, reason: str) -> None:
        counter = self._rejected_counter
        if counter is not None and counter is not inst:
            counter._child((inst.spec.name, reason)).add(1)


# Process-wide: every registry alive, for the after-fork hook (a lock held at fork stays held in the child).
_registries: weakref.WeakSet[MetricsRegistry] = weakref.WeakSet()


def _reset_locks_after_fork() -> None:
    for registry in list(_registries):
        registry._reset_locks_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks_after_fork)

# Instruments of these categories follow shared conventions (OpenTelemetry semantic conventions, signalfire's own) and
# never take the application's namespace prefix.
_INFRA_CATEGORIES = frozenset({"http", "db", "cache", "ai", "runtime", "signalfire"})

# The OpenTelemetry SDK's default explicit bucket boundaries.
_OTEL_DEFAULT_BOUNDS = (0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1e3, 2.5e3, 5e3, 7.5e3, 1e4)

# OpenTelemetry's semantic-convention boundaries for HTTP durations, in seconds.
HTTP_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def _default_buckets(unit: str) -> tuple[float, ...]:
    if unit == "s":
        return HTTP_DURATION_BUCKETS
    if unit == "ms":
        return tuple(b * 1000 for b in HTTP_DURATION_BUCKETS)
    # a size or amount: powers of four from 1 to about 16 million
    return tuple(float(4**i) for i in range(13))
