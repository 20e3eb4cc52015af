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

from signalfire._drops import CountingMetricExporter
from signalfire._metrics import metrics as registry
from signalfire._metrics._otel import PeriodicRegistryReader, _RegistryReaderMixin
from signalfire._otlp import address, metric_preferences, otlp_exporter
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
    down. Meters are the API's own proxy meters (``_ProxyMeter``), which re-create their instruments on the provider
    they are pointed at; one per (name, version, schema url, attributes), as the SDK hands out. Pointing happens
    under one lock, so a meter handed out during a re-initialisation cannot end on the old provider.
    """

    def __init__(self, proxy_meter: type) -> None:
        self._proxy_meter = proxy_meter
        self._lock = threading.Lock()
        self._meters: dict[tuple[Any, ...], Any] = {}
        self._current: MeterProvider | None = None

    def get_meter(
        self, name: str, version: str | None = None, schema_url: str | None = None, attributes: Any = None
    ) -> otel_metrics.Meter:
        if name in SILENT_SCOPES:
            return otel_metrics.NoOpMeter(name, version, schema_url)
        key = (name, version, schema_url, _frozen(attributes))
        with self._lock:
            meter = self._meters.get(key)
            if meter is None:
                meter = self._meters[key] = self._proxy_meter(name, version, schema_url, attributes)
                if self._current is not None:
                    meter.on_set_meter_provider(self._current)
            return meter  # type: ignore[no-any-return]

    def delegate_to(self, provider: MeterProvider) -> None:
        with self._lock:
            self._current = provider
            for meter in self._meters.values():
                meter.on_set_meter_provider(provider)


def _frozen(value: Any) -> Any:
    """A hashable stand-in for instrument or scope arguments (attributes, advisory bucket lists)."""
    if isinstance(value, dict):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


_CREATE_METHODS = (
    "create_counter",
    "create_up_down_counter",
    "create_histogram",
    "create_gauge",
    "create_observable_counter",
    "create_observable_up_down_counter",
    "create_observable_gauge",
)


def _following_meter_class() -> type | None:
    """The API's proxy meter, changed to follow every provider it is pointed at, not only the first.

    The API's ``_ProxyMeter`` hands out proxy instruments only until a provider is set, then real ones, which could not
    follow the next. This one keeps handing out proxy instruments, one per instrument identity (as the SDK dedupes:
    code that creates its counter per request must not grow memory), and points each at the current real meter.
    """
    import inspect

    try:
        from opentelemetry.metrics._internal import _ProxyMeter
    except ImportError:  # another API layout: the first provider becomes the global, as before
        return None
    if not all(hasattr(_ProxyMeter, name) for name in ("on_set_meter_provider", *_CREATE_METHODS)):
        return None

    class FollowingMeter(_ProxyMeter):
        def __init__(self, name: str, version: str | None, schema_url: str | None, attributes: Any) -> None:
            super().__init__(name, version=version, schema_url=schema_url)
            self._attributes = attributes
            self._following: Any = None
            self._follow_lock = threading.Lock()  # _ProxyMeter's own lock is taken inside create_*
            self._proxies: dict[tuple[Any, ...], Any] = {}

        def on_set_meter_provider(self, meter_provider: Any) -> None:
            real = meter_provider.get_meter(self._name, self._version, self._schema_url, self._attributes)
            with self._follow_lock:
                self._following = real  # _real_meter stays None: create_* keeps returning proxy instruments
                for instrument in self._proxies.values():
                    instrument.on_meter_set(real)

    def follow(method: str) -> Any:
        signature = inspect.signature(getattr(_ProxyMeter, method))

        def create(self: Any, *args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(self, *args, **kwargs).arguments
            identity = {k: v for k, v in bound.items() if k not in ("self", "callbacks")}
            key = (method, str(identity.get("name", "")).lower(), *(_frozen(v) for v in identity.values()))
            with self._follow_lock:
                proxy = self._proxies.get(key)
                if proxy is None:
                    proxy = self._proxies[key] = getattr(_ProxyMeter, method)(self, *args, **kwargs)
                    if self._following is not None:
                        proxy.on_meter_set(self._following)
                return proxy

        create.__name__ = method
        return create

    for method in _CREATE_METHODS:
        setattr(FollowingMeter, method, follow(method))
    return FollowingMeter


def _delegating_provider() -> _DelegatingMeterProvider | None:
    meter_class = _following_meter_class()
    return _DelegatingMeterProvider(meter_class) if meter_class is not None else None


GLOBAL_PROVIDER = _delegating_provider()


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
            otel_metrics.set_meter_provider(GLOBAL_PROVIDER if GLOBAL_PROVIDER is not None else provider)
            _global_set = True
    if GLOBAL_PROVIDER is not None:
        GLOBAL_PROVIDER.delegate_to(provider)
    return provider
