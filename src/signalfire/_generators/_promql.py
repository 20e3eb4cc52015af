"""PromQL built from the metric registry, shared by the dashboards and the alert rules.

Both generators ask this module for the same few *roles* (the HTTP request-duration histogram, the job-failure
counter, ...) instead of spelling metric names, so a renamed instrument changes every panel and rule at once and no
query can drift from what ``/metrics`` exposes. A role the registry does not declare resolves to None and the panel or
rule that needs it is left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "Catalog",
    "InstrumentSpec",
    "Query",
    "duration_seconds",
    "le_matcher",
    "prom_labels",
    "state_label",
]


class InstrumentSpec(Protocol):
    """What the generators read from one entry of ``signalfire.metrics.instruments()``."""

    @property
    def name(self) -> str: ...
    @property
    def prometheus_name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def labels(self) -> Sequence[str]: ...
    @property
    def buckets(self) -> Sequence[float] | None: ...
    @property
    def category(self) -> str: ...
    @property
    def business(self) -> bool: ...


COUNTER_KINDS = frozenset({"counter"})
HISTOGRAM_KINDS = frozenset({"histogram"})
LEVEL_KINDS = frozenset({"gauge", "observable_gauge", "updown_counter"})

_DURATION = re.compile(r"^(\d+)([smhdw])$")


def duration_seconds(value: str) -> int:
    """Seconds in a Prometheus duration of one unit (``30s``, ``5m``, ``1h``, ``3d``), or ValueError."""
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a duration: expected a whole number and one of s, m, h, d, w (e.g. 5m)")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]


def le_matcher(bound: float) -> str:
    """A ``le`` matcher selecting the bucket whose upper bound is ``bound`` however the exporter formats it."""
    # prometheus-client renders bucket bounds as Python floats ("1.0", "0.25"); Prometheus 3 normalises them to "1".
    # A regex accepting both keeps the query right on either side of that change.
    as_float = repr(float(bound))
    forms = {as_float}
    if as_float.endswith(".0"):
        forms.add(as_float[:-2])
    return 'le=~"' + "|".join(re.escape(f).replace("\\", "\\\\") for f in sorted(forms)) + '"'


@dataclass(frozen=True, slots=True)
class Query:
    """Builds vector selectors with the caller's fixed matchers (``job="checkout"`` or ``job=~"$job"``) applied."""

    matchers: str = ""

    def sel(self, metric: str, *extra: str) -> str:
        """``metric{matchers,extra...}``; just ``metric`` when there is nothing to match."""
        parts = [m for m in (self.matchers, *extra) if m]
        return f"{metric}{{{','.join(parts)}}}" if parts else metric

    def rate(self, metric: str, window: str, *extra: str, by: Sequence[str] = ()) -> str:
        """``sum by (by) (rate(metric{...}[window]))``."""
        return f"{_sum(by)}(rate({self.sel(metric, *extra)}[{window}]))"

    def increase(self, metric: str, window: str, *extra: str, by: Sequence[str] = ()) -> str:
        """``sum by (by) (increase(metric{...}[window]))``."""
        return f"{_sum(by)}(increase({self.sel(metric, *extra)}[{window}]))"

    def level(self, metric: str, *extra: str, by: Sequence[str] = ()) -> str:
        """``sum by (by) (metric{...})`` for gauges and up-down counters."""
        return f"{_sum(by)}({self.sel(metric, *extra)})"

    def quantile(self, q: float, histogram: str, window: str, *extra: str, by: Sequence[str] = ()) -> str:
        """``histogram_quantile(q, sum by (le, by) (rate(histogram_bucket{...}[window])))``."""
        return (
            f"histogram_quantile({q}, {_sum(['le', *by])}(rate({self.sel(histogram + '_bucket', *extra)}[{window}])))"
        )


def _sum(by: Iterable[str]) -> str:
    labels = list(by)
    return f"sum by ({', '.join(labels)}) " if labels else "sum"


_INVALID_LABEL = re.compile(r"[^A-Za-z0-9_]+")


def prom_labels(spec: InstrumentSpec) -> list[str]:
    """The instrument's label names as exposed to Prometheus (``http.route`` is ``http_route``)."""
    return [_INVALID_LABEL.sub("_", label) for label in spec.labels]


def _label(spec: InstrumentSpec | None, *words: str) -> str | None:
    """The first declared label whose name contains one of ``words`` (in the order given), as exposed."""
    if spec is None:
        return None
    for word in words:
        for label in prom_labels(spec):
            if word in label:
                return label
    return None


@dataclass(frozen=True, slots=True)
class Catalog:
    """The roles the dashboards and alerts need, looked up once in a registry's instruments."""

    instruments: tuple[InstrumentSpec, ...]

    @classmethod
    def of(cls, instruments: Iterable[InstrumentSpec]) -> Catalog:
        """A catalog over the given specs, in registry order."""
        return cls(tuple(instruments))

    def find(self, category: str, kinds: frozenset[str], *words: str) -> InstrumentSpec | None:
        """The first instrument of ``category`` and one of ``kinds`` whose name contains every word, or None."""
        for spec in self.instruments:
            if spec.category == category and spec.kind in kinds and all(w in spec.name for w in words):
                return spec
        return None

    def business(self) -> tuple[InstrumentSpec, ...]:
        """Every business instrument (predefined and the application's own), in registry order."""
        return tuple(s for s in self.instruments if s.business)

    # --- HTTP ------------------------------------------------------------------------------------------------------
    @property
    def http_duration(self) -> InstrumentSpec | None:
        """The server request-duration histogram, in seconds."""
        return self.find("http", HISTOGRAM_KINDS, "duration")

    @property
    def http_in_flight(self) -> InstrumentSpec | None:
        """Requests being served right now."""
        return self.find("http", LEVEL_KINDS)

    @property
    def http_status_label(self) -> str | None:
        """The label carrying the response status code."""
        return _label(self.http_duration, "status")

    @property
    def http_route_label(self) -> str | None:
        """The label carrying the route template."""
        return _label(self.http_duration, "route")

    # --- database and cache ----------------------------------------------------------------------------------------
    @property
    def db_duration(self) -> InstrumentSpec | None:
        """The database query-duration histogram."""
        return self.find("db", HISTOGRAM_KINDS)

    @property
    def db_connections(self) -> InstrumentSpec | None:
        """Pool connections with a state label (active/used and idle)."""
        return self.find("db", LEVEL_KINDS)

    @property
    def cache_hits(self) -> InstrumentSpec | None:
        """Cache hits."""
        return self.find("cache", COUNTER_KINDS, "hit")

    @property
    def cache_misses(self) -> InstrumentSpec | None:
        """Cache misses."""
        return self.find("cache", COUNTER_KINDS, "miss")

    # --- jobs ------------------------------------------------------------------------------------------------------
    @property
    def jobs_processed(self) -> InstrumentSpec | None:
        """Jobs processed, by type and status."""
        return self.find("jobs", COUNTER_KINDS, "processed") or self.find("jobs", COUNTER_KINDS)

    @property
    def job_failures(self) -> InstrumentSpec | None:
        """Job failures, by reason."""
        return self.find("jobs", COUNTER_KINDS, "fail")

    @property
    def job_duration(self) -> InstrumentSpec | None:
        """The job-duration histogram."""
        return self.find("jobs", HISTOGRAM_KINDS)

    @property
    def queue_depth(self) -> InstrumentSpec | None:
        """Queue depth by state (waiting, active, failed)."""
        return self.find("jobs", LEVEL_KINDS)

    # --- payments --------------------------------------------------------------------------------------------------
    @property
    def payment_failures(self) -> InstrumentSpec | None:
        """Failed payments, by reason."""
        return self.find("payments", COUNTER_KINDS, "fail")


def state_label(spec: InstrumentSpec | None) -> str | None:
    """The label naming a state (``state``, ``status``) on a level or counter instrument."""
    return _label(spec, "state", "status")
