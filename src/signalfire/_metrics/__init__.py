"""Metrics: the registry and its catalog (``metrics``), the Prometheus and OpenTelemetry backends, HTTP RED.

``install(settings, obs, push=...)`` binds every declared instrument to this instance's backends; other components
use only the small functions below: ``metrics`` (the registry), ``record_dropped``, ``http_server`` (the
middleware's recorder) and ``exposition`` (the ASGI endpoint and its path).
"""

from __future__ import annotations

import time
from typing import Any

from signalfire._export import _drops
from signalfire._metrics import _prometheus
from signalfire._metrics._bridge import OtelBridge
from signalfire._metrics._catalog import Metrics
from signalfire._metrics._registry import Backend, Instrument, InstrumentSpec, span_exemplar
from signalfire._settings import Settings
from signalfire._web import _url

__all__ = [
    "HttpServerMetrics",
    "Instrument",
    "InstrumentSpec",
    "Metrics",
    "exposition",
    "http_server",
    "install",
    "metrics",
    "otel_bridge",
    "prometheus_enabled",
    "record_dropped",
]

metrics = Metrics()


def record_dropped(signal: str, reason: str, count: int = 1) -> None:
    """Count lost telemetry in ``signalfire_telemetry_dropped_total{signal, reason}``; never raises."""
    metrics.record_dropped(signal, reason, count)


class HttpServerMetrics:
    """What the ASGI middleware calls per request: ``start`` before the app, ``finish`` after it.

    Everything per-request is a dict lookup on pre-bound children; ``start`` returns None while the registry is not
    bound, and then ``finish`` is not called. Excluded paths (SIGNALFIRE_EXCLUDED_PATHS) and the exposition path never
    get here: the middleware handles them before anything is recorded.
    """

    __slots__ = ("_active", "_duration")

    def __init__(self, registry: Metrics) -> None:
        self._duration: Instrument = registry.http_server_duration
        self._active: Instrument = registry.http_server_active

    def start(self, method: str, scheme: str) -> tuple[tuple[str, str], Any, float] | None:
        """``method`` as the middleware normalised it (a known method or ``_OTHER``), ``scheme`` the URL scheme."""
        if not self._duration._bound:
            return None
        active = self._active._child((method, scheme))
        active.add(1)
        return (method, scheme), active, time.perf_counter()

    def finish(
        self,
        state: tuple[tuple[str, str], Any, float],
        route: str,
        status_code: int,
        error_type: str | None,
        span: Any,
        *,
        protocol_version: str = "",
    ) -> None:
        """``route`` is the template, ``""`` when no route matched (the point then has no ``http.route``)."""
        (method, scheme), active, started = state
        elapsed = time.perf_counter() - started
        try:
            active.add(-1)
            if error_type is None:
                error_type = _url.error_type_of_status(status_code)
            # {} (not None) tells the child not to look the span up again
            exemplar = (span_exemplar(span) or {}) if self._duration._exemplars else {}
            key = (method, route, status_code, error_type or "", scheme, protocol_version)
            self._duration._child(key).record(elapsed, exemplar)
        except Exception as exc:
            self._duration._failed(exc)


http_server = HttpServerMetrics(metrics)


def prometheus_enabled(settings: Settings) -> bool:
    """Prometheus is served unless SIGNALFIRE_METRICS_PROMETHEUS=false, or OTEL_METRICS_EXPORTER lists exporters
    without ``prometheus``."""
    if settings.metrics_prometheus is not None:
        return settings.metrics_prometheus
    explicit = settings.metrics_exporter
    return explicit is None or "prometheus" in explicit


def exposition(settings: Settings) -> tuple[str, Any] | None:
    """(path, ASGI endpoint) of the Prometheus exposition on an instrumented app, or None when it is off."""
    if not settings.active or not prometheus_enabled(settings):
        return None
    return settings.metrics_path, _prometheus.asgi_endpoint


def otel_bridge(settings: Settings) -> OtelBridge | None:
    """The reader that puts other libraries' OpenTelemetry metrics on /metrics (single process with Prometheus on);
    it must be given to the MeterProvider when it is built, then to ``install``."""
    if not settings.active or not prometheus_enabled(settings) or settings.prometheus_multiproc_dir is not None:
        return None
    return OtelBridge(metrics)


def install(settings: Settings, obs: Any, *, push: bool, bridge: OtelBridge | None = None) -> None:
    """Bind the registry to this instance: Prometheus (unless disabled) and, when ``push``, the state the readers
    of ``obs.meter_provider`` collect for OTLP, console and tests (see ``_otel``)."""
    prometheus = _prometheus.PrometheusBackend(settings, metrics) if prometheus_enabled(settings) else None
    if prometheus is not None and bridge is not None:
        prometheus.exposition.register(bridge)
    backend = Backend(
        max_series=settings.metrics_max_series,
        prefix=settings.metrics_prefix or "",
        prometheus=prometheus,
        otel=push and obs.meter_provider is not None,
        # prometheus-client keeps no exemplars in multiprocess mode; skip the work
        exemplars=prometheus is not None and not prometheus.multiprocess,
    )
    metrics._bind(backend)
    _drops.set_sink(record_dropped)
    _prometheus.activate(prometheus)
    if prometheus is not None:
        prometheus.start(settings.metrics_host, settings.metrics_port)

    def close(timeout: float) -> None:
        if prometheus is not None:
            prometheus.close(timeout)
            if _prometheus.current() is prometheus:
                _prometheus.activate(None)
        metrics._unbind(backend)

    obs.on_shutdown("metrics registry", close)
