"""OTLP exporters for every signal, built from a resolved OtlpTarget with every value passed explicitly."""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.sdk.metrics.export import MetricExporter

from signalfire._settings import OtlpTarget, Signal

__all__ = [
    "LazyExporter",
    "LazyMetricExporter",
    "address",
    "build_exporter",
    "metric_preferences",
    "otlp_exporter",
    "refusing",
]

_log = logging.getLogger("signalfire")

# (module, class) of the exporter per protocol and signal; imported only when used.
_EXPORTERS: dict[tuple[str, Signal], tuple[str, str]] = {
    ("grpc", "traces"): ("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", "OTLPSpanExporter"),
    ("grpc", "metrics"): ("opentelemetry.exporter.otlp.proto.grpc.metric_exporter", "OTLPMetricExporter"),
    ("grpc", "logs"): ("opentelemetry.exporter.otlp.proto.grpc._log_exporter", "OTLPLogExporter"),
    ("http/protobuf", "traces"): ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter"),
    ("http/protobuf", "metrics"): ("opentelemetry.exporter.otlp.proto.http.metric_exporter", "OTLPMetricExporter"),
    ("http/protobuf", "logs"): ("opentelemetry.exporter.otlp.proto.http._log_exporter", "OTLPLogExporter"),
}


def otlp_exporter(signal: Signal, target: OtlpTarget, **extra: Any) -> Any:
    """The OTLP exporter of ``signal`` for ``target`` (gRPC or HTTP/protobuf), built at its first export.

    Building one imports its transport (requests and urllib3 for HTTP, grpc for gRPC) and the protobuf modules, about a
    fifth of start-up; a service pays that on the export thread, the first time it has something to send, instead of
    in ``init_observability()``. What can be checked without building it (the exporter package is installed) is
    checked now, so that a missing one is still an error at init; a build that fails later is logged once and every
    batch offered to it is counted as dropped (it returns FAILURE; see ``_drops``). ``extra`` goes to the SDK's
    exporter as it is.
    """
    _check_installed(target.protocol)
    if signal == "metrics":
        return LazyMetricExporter(target, extra)
    return LazyExporter(signal, target, extra)


def build_exporter(signal: Signal, target: OtlpTarget, **extra: Any) -> Any:
    """The SDK's OTLP exporter of ``signal`` for ``target``, built now. The SDK's exporters would otherwise read
    OTEL_* variables themselves, and read OTEL_EXPORTER_OTLP_TIMEOUT as seconds where the specification says
    milliseconds; passing everything keeps Settings the one source. Span exporters write the request body with
    signalfire's encoder (``_otlp_spans``)."""
    import importlib

    kwargs: dict[str, Any] = {"endpoint": target.endpoint, "headers": dict(target.headers), "timeout": target.timeout_s}
    if target.protocol == "grpc":
        import grpc

        kwargs["insecure"] = target.endpoint.startswith("http://")
        kwargs["compression"] = (
            grpc.Compression.Gzip if target.compression == "gzip" else grpc.Compression.NoCompression
        )
    else:
        from opentelemetry.exporter.otlp.proto.http import Compression

        kwargs["compression"] = Compression.Gzip if target.compression == "gzip" else Compression.NoCompression
    if signal == "traces":
        # the SDK's exporter with signalfire's encoder (and the scrubbing) in place of encode_spans()
        from signalfire._export._otlp_spans import encoding_exporter

        return encoding_exporter(target.protocol, **kwargs, **extra)
    module_name, class_name = _EXPORTERS[(target.protocol, signal)]
    exporter_class = getattr(importlib.import_module(module_name), class_name)
    return exporter_class(**kwargs, **extra)


# The distribution that brings each protocol's exporters, by the top-level packages it needs.
_PACKAGES = {
    "grpc": (("grpc", "opentelemetry.exporter.otlp.proto.grpc"), "opentelemetry-exporter-otlp-proto-grpc"),
    "http/protobuf": (("opentelemetry.exporter.otlp.proto.http",), "opentelemetry-exporter-otlp-proto-http"),
}


def _check_installed(protocol: str) -> None:
    """Raise an ImportError naming what to install when ``protocol``'s exporter package is missing (found without
    importing it: ``find_spec`` runs no package's code beyond its parents', which are namespace packages here)."""
    import importlib.util

    modules, distribution = _PACKAGES[protocol]
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ImportError(
                f"OTLP over {protocol} (OTEL_EXPORTER_OTLP_PROTOCOL) needs {module}: pip install {distribution}"
            )


def _failure(signal: Signal) -> Any:
    """The SDK's FAILURE result for ``signal``'s exporters (modules start-up has imported already)."""
    if signal == "traces":
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.FAILURE
    if signal == "metrics":
        from opentelemetry.sdk.metrics.export import MetricExportResult

        return MetricExportResult.FAILURE
    from opentelemetry.sdk._logs.export import LogRecordExportResult

    return LogRecordExportResult.FAILURE


# Every lazy exporter alive, so that a forked child renews their locks. Process-wide, as fork is.
_lazy_exporters: weakref.WeakSet[LazyExporter] = weakref.WeakSet()


def _renew_after_fork() -> None:
    for exporter in list(_lazy_exporters):
        exporter.renew_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_after_fork)


class LazyExporter:
    """Stands in for the SDK's OTLP exporter of one signal until its first ``export()``, which builds it (on the
    thread that exports: the batch processor's worker, or whoever flushes).

    A shutdown before the first export builds nothing (an exit that gives up on a refusing collector imports no
    transport). A span exporter's ``scrub_with`` (``_scrub_wire.ScrubbingSpanExporter`` hands over the scrubber at
    init) is kept and passed on once the exporter is built.
    """

    def __init__(self, signal: Signal, target: OtlpTarget, extra: dict[str, Any]) -> None:
        self.signal: Signal = signal
        self.target = target
        self._extra = extra
        self._lock = threading.Lock()
        self._built: Any = None
        self._failed = False
        self._closed = False
        self._scrub: tuple[Any, ...] | None = None
        if signal == "traces":  # only span exporters scrub while they encode
            self.scrub_with = self._scrub_with
        _lazy_exporters.add(self)

    def renew_after_fork(self) -> None:
        """In a forked child: a fresh lock (a build the parent's export thread had in progress held the old one, and
        that thread does not exist here), so the child's first export builds its own exporter if none was built."""
        self._lock = threading.Lock()

    @property
    def built(self) -> Any:
        """The SDK's exporter once built, else None."""
        return self._built

    def _scrub_with(self, *args: Any) -> None:
        with self._lock:
            self._scrub = args
            built = self._built
        if built is not None:
            built.scrub_with(*args)

    def _exporter(self) -> Any:
        built = self._built
        if built is not None or self._failed or self._closed:
            return built
        with self._lock:
            if self._built is None and not self._failed and not self._closed:
                try:
                    exporter = build_exporter(self.signal, self.target, **self._extra)
                    if self._scrub is not None:
                        exporter.scrub_with(*self._scrub)
                    self._built = exporter
                except Exception:
                    self._failed = True
                    _log.warning(
                        "signalfire: building the OTLP %s exporter for %s failed; every %s batch is dropped (counted "
                        "in signalfire_telemetry_dropped_total)",
                        self.signal,
                        self.target.endpoint,
                        self.signal,
                        exc_info=True,
                    )
            return self._built

    def export(self, batch: Any, *args: Any, **kwargs: Any) -> Any:
        exporter = self._exporter()
        if exporter is None:
            return _failure(self.signal)
        return exporter.export(batch, *args, **kwargs)

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self._closed = True
            built = self._built
        if built is not None:
            built.shutdown(*args, **kwargs)

    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        built = self._built
        return True if built is None else bool(built.force_flush(timeout_millis))


def metric_preferences(
    temporality_preference: str = "cumulative", histogram_aggregation: str = "explicit_bucket_histogram"
) -> dict[str, Any]:
    """``preferred_temporality`` and ``preferred_aggregation`` per instrument class for an OTLP metric exporter, as
    the SDK's OTLP metric exporters derive them from OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE (cumulative,
    delta, lowmemory) and OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION (opentelemetry-exporter-otlp 1.45,
    ``_get_temporality`` and ``_get_aggregation``). Passed explicitly, the SDK reads neither variable itself, and the
    periodic reader, which reads them from its exporter when it is built, has them before the exporter is."""
    from opentelemetry.sdk.metrics import (
        Counter,
        Histogram,
        ObservableCounter,
        ObservableGauge,
        ObservableUpDownCounter,
        UpDownCounter,
    )
    from opentelemetry.sdk.metrics.export import AggregationTemporality
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, ExponentialBucketHistogramAggregation

    cumulative, delta = AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA
    preference = temporality_preference.strip().lower()
    deltas = preference in ("delta", "lowmemory")
    temporality: dict[type, AggregationTemporality] = {
        Counter: delta if deltas else cumulative,
        UpDownCounter: cumulative,
        Histogram: delta if deltas else cumulative,
        ObservableCounter: delta if preference == "delta" else cumulative,
        ObservableUpDownCounter: cumulative,
        ObservableGauge: cumulative,
    }
    exponential = histogram_aggregation.strip().lower() == "base2_exponential_bucket_histogram"
    histogram = ExponentialBucketHistogramAggregation() if exponential else ExplicitBucketHistogramAggregation()
    return {"preferred_temporality": temporality, "preferred_aggregation": {Histogram: histogram}}


class LazyMetricExporter(LazyExporter, MetricExporter):
    """The SDK's OTLP metric exporter, built at its first export; its temporality and aggregation are known before
    (``extra`` carries them, see :func:`metric_preferences`): the periodic reader reads them when it is built."""

    def __init__(self, target: OtlpTarget, extra: dict[str, Any]) -> None:
        extra = {**metric_preferences(), **extra}
        LazyExporter.__init__(self, "metrics", target, extra)
        MetricExporter.__init__(
            self,
            preferred_temporality=extra["preferred_temporality"],
            preferred_aggregation=extra["preferred_aggregation"],
        )

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:  # type: ignore[override]
        return LazyExporter.export(self, metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return LazyExporter.force_flush(self, timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        LazyExporter.shutdown(self, timeout_millis=timeout_millis, **kwargs)


# --- is the collector there? ------------------------------------------------------------------------------------------
# The SDK's exporters retry a refused connection with exponential backoff until their timeout (1.45: the HTTP client in
# opentelemetry.exporter.otlp.common.http treats a connection error as retryable, 6 attempts, 1 s, 2 s, 4 s, ...; the
# gRPC exporter retries UNAVAILABLE the same way). During the run that costs a background thread nothing, but at exit
# it is the whole budget. A refusal is known from one TCP connect, so the exit path asks once, up front.
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REFUSED = frozenset({errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH})


def address(endpoint: str, protocol: str) -> tuple[str, int] | None:
    """The (host, port) an exporter for ``endpoint`` connects to, or None when it cannot be probed directly (a unix
    socket, an unparsable value, or a proxy in between, which the HTTP and gRPC exporters both honour)."""
    try:
        parsed = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        host = parsed.hostname
        if parsed.scheme not in ("http", "https", "grpc", "grpcs") or not host:
            return None
        port = parsed.port or _DEFAULT_PORTS.get(parsed.scheme) or (4317 if protocol == "grpc" else 4318)
        if not _may_have_proxies():
            return host, port
        from urllib.request import getproxies, proxy_bypass  # imports http.client, email, ...: only if needed

        proxies = getproxies()
        scheme = "https" if parsed.scheme in ("https", "grpcs") else "http"
        if (scheme in proxies or "grpc" in proxies) and not proxy_bypass(host):
            return None
    except (ValueError, OSError):
        return None
    return host, port


def _may_have_proxies() -> bool:
    """False when ``urllib.request.getproxies()`` is known to find none without importing it: on Linux and the other
    Unixes it reads only ``*_proxy`` environment variables (macOS and Windows also ask the system)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return any(name[-6:].lower() == "_proxy" for name in os.environ)


def refusing(addresses: Iterable[tuple[str, int]], timeout: float) -> set[tuple[str, int]]:
    """Of ``addresses``, those that refuse a TCP connection (or have no route), each tried once, all at the same
    time, for at most ``timeout`` seconds. One that does not answer within the timeout is not counted as refusing:
    it may be slow, and the flush that follows is bounded anyway."""
    found: set[tuple[str, int]] = set()
    lock = threading.Lock()

    def probe(target: tuple[str, int]) -> None:
        try:
            with socket.create_connection(target, timeout=timeout):
                return
        except OSError as error:
            if error.errno in _REFUSED or isinstance(error, ConnectionRefusedError | socket.gaierror):
                with lock:
                    found.add(target)

    threads = [
        threading.Thread(target=probe, args=(target,), name="signalfire-probe", daemon=True)
        for target in set(addresses)
    ]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with lock:
        return set(found)
