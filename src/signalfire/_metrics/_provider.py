"""The OpenTelemetry MeterProvider and its push readers (OTLP, console), built from Settings."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from opentelemetry import metrics as otel_metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource

from signalfire._drops import CountingMetricExporter
from signalfire._metrics import metrics as registry
from signalfire._metrics._otel import PeriodicRegistryReader, _RegistryReaderMixin
from signalfire._otlp import otlp_exporter
from signalfire._settings import Settings

__all__ = ["build_readers", "install"]

_log = logging.getLogger("signalfire")
_global_lock = threading.Lock()
_global_set = False


def build_readers(settings: Settings) -> list[MetricReader]:
    """Periodic push readers for the exporters OTEL_METRICS_EXPORTER and the endpoints select; each carries
    signalfire's registry as well as the SDK's instruments."""
    readers: list[MetricReader] = []
    for name in settings.exporters("metrics"):
        exporter: MetricExporter | None = None
        if name == "otlp":
            target = settings.otlp_target("metrics")
            exporter = CountingMetricExporter(otlp_exporter("metrics", target)) if target is not None else None
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


def install(
    settings: Settings,
    resource: Resource,
    *,
    readers: Sequence[MetricReader] = (),
    views: Sequence[View] = (),
) -> MeterProvider:
    """Build the MeterProvider with the settings' push readers plus ``readers`` (Prometheus, tests).

    The OpenTelemetry global meter provider is set to the first provider built in the process (it can be set only
    once). signalfire's own instruments always use the provider returned here, so re-initialising re-binds them.
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
            otel_metrics.set_meter_provider(provider)
            _global_set = True
    return provider
