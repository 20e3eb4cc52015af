"""The OpenTelemetry MeterProvider and its push readers (OTLP, console), built from Settings."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry import metrics as otel_metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader
from opentelemetry.sdk.metrics.view import DropAggregation, View
from opentelemetry.sdk.resources import Resource

from signalfire._export._drops import CountingMetricExporter
from signalfire._export._otlp import address, metric_preferences, otlp_exporter
from signalfire._metrics import metrics as registry
from signalfire._metrics._following import FollowingMeter, frozen
from signalfire._metrics._otel import PeriodicRegistryReader, _RegistryReaderMixin
from signalfire._settings import Settings

__all__ = ["build_readers", "install"]

_log = logging.getLogger("signalfire")
_global_lock = threading.Lock()
_global_set = False
# Instrumentation scopes whose instruments record nothing while the global is signalfire's: FastAPI's native telemetry
# ("fastapi") would duplicate signalfire's HTTP metrics (see integrations/_fastapi_native.py).
SILENT_SCOPES: set[str] = set()


class _DelegatingMeterProvider(otel_metrics.MeterProvider):
    """The process-wide meter provider: every meter it hands out, before or after any ``init_observability()``,
    records into the provider of the current one.

    The OpenTelemetry global can be set only once per process, so without this a re-initialisation (tests, reloads)
    would leave every meter obtained earlier (the application's, its instrumentations') on a provider that was shut
    down. Its meters (``_following.FollowingMeter``) re-create their instruments on the provider they are pointed at;
    one meter per (name, version, schema url, attributes), as the SDK hands out. Pointing happens under one lock, so a
    meter handed out during a re-initialisation cannot end on the old provider.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._meters: dict[tuple[Any, ...], FollowingMeter] = {}
        self._current: MeterProvider | None = None

    def get_meter(
        self, name: str, version: str | None = None, schema_url: str | None = None, attributes: Any = None
    ) -> otel_metrics.Meter:
        if name in SILENT_SCOPES:
            return otel_metrics.NoOpMeter(name, version, schema_url)
        key = (name, version, schema_url, frozen(attributes))
        with self._lock:
            meter = self._meters.get(key)
            if meter is None:
                meter = self._meters[key] = FollowingMeter(name, version, schema_url, attributes)
                if self._current is not None:
                    meter.point_at(self._current)
            return meter

    def delegate_to(self, provider: MeterProvider) -> None:
        with self._lock:
            self._current = provider
            for meter in self._meters.values():
                meter.point_at(provider)


GLOBAL_PROVIDER = _DelegatingMeterProvider()


def build_readers(settings: Settings) -> list[MetricReader]:
    """Periodic push readers for the exporters OTEL_METRICS_EXPORTER and the endpoints select; each carries
    signalfire's registry as well as the SDK's instruments."""
    readers: list[MetricReader] = []
    for name in settings.exporters("metrics"):
        exporter: MetricExporter | None = None
        if name == "otlp":
            target = settings.otlp_target("metrics")
            if target is not None:
                # built at its first export (see _otlp.otlp_exporter); the reader needs its preferences now
                preferences = metric_preferences(
                    settings.otlp_metrics_temporality_preference, settings.otlp_metrics_default_histogram_aggregation
                )
                exporter = CountingMetricExporter(
                    otlp_exporter("metrics", target, **preferences), endpoint=address(target.endpoint, target.protocol)
                )
        elif name == "console":
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

            exporter = ConsoleMetricExporter()
        if exporter is not None:
            readers.append(
                PeriodicRegistryReader(
                    registry,
                    exporter,
                    export_interval_millis=settings.metric_export_interval_ms,
                    export_timeout_millis=settings.metric_export_timeout_ms,
                )
            )
    return readers


# Meters of OpenTelemetry's ASGI/FastAPI instrumentations: when an app is also instrumented with FastAPIInstrumentor
# (its server span is kept, see integrations/fastapi.py), signalfire still records the HTTP server metrics, so the
# instrumentor's own http.server.* instruments on signalfire's providers would count every request twice.
_DUPLICATE_HTTP_METERS = ("opentelemetry.instrumentation.asgi", "opentelemetry.instrumentation.fastapi")


def single_owner_views() -> list[View]:
    """Views that drop the HTTP server instruments of OpenTelemetry's FastAPI/ASGI instrumentations (signalfire
    records the same metrics, by the same conventions, once)."""
    return [
        View(meter_name=meter, instrument_name="http.server.*", aggregation=DropAggregation())
        for meter in _DUPLICATE_HTTP_METERS
    ]


def install(
    settings: Settings,
    resource: Resource,
    *,
    readers: Sequence[MetricReader] = (),
    views: Sequence[View] = (),
) -> MeterProvider:
    """Build the MeterProvider with the settings' push readers plus ``readers`` (Prometheus, tests).

    The OpenTelemetry global meter provider is set once, to a delegating provider that follows the provider built
    here (see _DelegatingMeterProvider); signalfire's own instruments are read by this provider's readers.
    """
    global _global_set  # noqa: PLW0603 - the process-wide fact "the global is set" lives here
    all_readers = [*build_readers(settings), *readers]
    for reader in all_readers:
        if isinstance(reader, _RegistryReaderMixin):
            reader.resource = resource
    provider = MeterProvider(
        resource=resource,
        metric_readers=all_readers,
        views=list(views),
        shutdown_on_exit=False,
    )
    with _global_lock:
        if not _global_set:
            otel_metrics.set_meter_provider(GLOBAL_PROVIDER)
            _global_set = True
    GLOBAL_PROVIDER.delegate_to(provider)
    return provider
