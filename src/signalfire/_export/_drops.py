"""Dropped telemetry, counted and warned about: ``signalfire_telemetry_dropped_total{signal, reason}``.

The SDKs drop data in a few places and mostly say so in a log line per item, or not at all. This module makes every
such loss visible the same way, at the cost of nothing on the request path:

- ``queue_full``: a batch processor's queue was full when a span or log record ended (counted through the SDK's own
  processor-metrics hook, which it calls exactly when it drops);
- ``export_failed``: an exporter returned FAILURE or raised (the wrapper counts the batch and never raises);
- ``shutdown_timeout``: still queued or in flight when ``shutdown()``'s budget ran out;
- ``collector_unreachable``: given up at exit because the collector refused the connection (not retried);
- ``network_error``, ``queue_overflow``, ``ratelimit_backoff``, ...: Sentry events its transport reports lost.

Each (signal, reason) is warned about at most once a minute (the warning carries the count since the last one), and the
SDK's own per-item and per-batch warnings are suppressed or rate-limited the same way. During an exit (see
:func:`begin_exit_report`) nothing is warned about one by one: what is lost is summed up in one warning line at the
end, and the SDK's own retry and failure lines are silenced.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from signalfire._compat import opentelemetry as compat

__all__ = [
    "SILENCED_AT_EXIT",
    "CountingLogExporter",
    "CountingMetricExporter",
    "CountingSpanExporter",
    "begin_exit_report",
    "count_pending",
    "count_points",
    "dropped",
    "end_exit_report",
    "exporters",
    "not_flushed",
    "reset",
    "set_sink",
    "unsilence",
    "watch_batch_processor",
    "watch_sentry_transport",
]

_log = logging.getLogger("signalfire")

# One warning per (signal, reason) per this many seconds.
WARN_INTERVAL_S = 60.0

# Process-wide: one lock for the one accounting of losses below (exporter threads, the app and the exit hooks).
_lock = threading.Lock()

# The ancestors of every OpenTelemetry exporter's and SDK processor's logger, and the connection pool sentry-sdk's
# transport retries through. While an exit is in progress their retry, "transient error" and "failed to export" lines
# say, once per batch, what the exit's one warning line sums up: their level is raised for that time (each module
# logger without a level of its own inherits it).
SILENCED_AT_EXIT = ("opentelemetry.exporter", "opentelemetry.sdk", "urllib3.connectionpool")


def _not_counted(signal: str, reason: str, count: int) -> None:
    """The sink until the metric registry is installed: losses are still warned about, only not counted."""


class _Losses:
    """All this module knows, in one place (under ``_lock``): where losses are counted, when each was last warned
    about, the exit in progress, and the exporters and batch processors of the running instance.

    There is one (``_losses``): this module is called from everywhere (the scrubber, exporter threads, the SDK's
    hooks) with nothing in hand, so the running instance's parts are handed in (the sink by ``_metrics.install()``,
    the wrappers and processors as they are built) and :func:`count_pending` forgets them at its shutdown.
    :func:`reset` starts it afresh.
    """

    __slots__ = ("count", "exit", "exited", "exporters", "last_warned", "silenced", "unwarned", "watched")

    def __init__(self) -> None:
        # The metric registry's record_dropped, handed in by _metrics.install() (so that this module, which the
        # scrubber and the exporters call, imports nothing of _metrics).
        self.count: Callable[[str, str, int], None] = _not_counted
        # One warning per (signal, reason) per WARN_INTERVAL_S: when it was given, and what was lost since.
        self.last_warned: dict[tuple[str, str], float] = {}
        self.unwarned: dict[tuple[str, str], int] = {}
        # What is lost while an exit is in progress, by (signal, reason); None when no exit is.
        self.exit: dict[tuple[str, str], int] | None = None
        # The SILENCED_AT_EXIT loggers and the levels they had, while silenced.
        self.silenced: list[tuple[logging.Logger, int]] = []
        # True once the final exit has given its line: later losses (log records written after it) are counted only.
        self.exited = False
        # The batch processors of the running instance (signal, processor, its counting exporter), weakly.
        self.watched: list[tuple[str, weakref.ref[Any], weakref.ref[Any] | None]] = []
        # Every counting exporter wrapper alive (the exit path abandons those whose collector is gone).
        self.exporters: weakref.WeakSet[_Counting] = weakref.WeakSet()

    def forget_warnings(self) -> None:
        self.last_warned.clear()
        self.unwarned.clear()
        self.exit = None


_losses = _Losses()


def set_sink(count: Callable[[str, str, int], None] | None) -> None:
    """Count every loss with ``count(signal, reason, count)`` from now on (None: stop counting)."""
    _losses.count = count if count is not None else _not_counted


def dropped(signal: str, reason: str, count: int = 1, *, warn: bool = True) -> None:
    """Count ``count`` lost items of ``signal`` for ``reason`` and warn (rate-limited); never raises.

    ``warn=False`` for a caller that gives its own, more specific warning.
    """
    if count <= 0:
        return
    losses = _losses
    try:
        losses.count(signal, reason, count)
        key = (signal, reason)
        with _lock:
            if losses.exit is not None:  # summed up in the exit's one warning line
                losses.exit[key] = losses.exit.get(key, 0) + count
                return
            if losses.exited:  # after the exit's line (the process is going away): counted only
                return
        if not warn:
            return
        now = time.monotonic()
        with _lock:
            pending = losses.unwarned.get(key, 0) + count
            last = losses.last_warned.get(key)
            if last is not None and now - last < WARN_INTERVAL_S:
                losses.unwarned[key] = pending
                return
            losses.last_warned[key] = now
            losses.unwarned[key] = 0
        # Logged outside the lock: the log pipeline may export, fail and come back here.
        _log.warning(
            "signalfire: dropped %d %s (%s)%s; counted in signalfire_telemetry_dropped_total",
            pending,
            signal,
            reason,
            "" if last is None else " since the last warning",
        )
    except Exception:  # counting a loss must not become a failure of its own
        _log.debug("signalfire: counting dropped telemetry failed", exc_info=True)


def not_flushed(signals: Sequence[str], endpoints: Sequence[str]) -> None:
    """Warn (once a minute) that a flush left ``signals`` queued because their collector refuses connections."""
    key = ("+".join(sorted(signals)), "not_flushed")
    now = time.monotonic()
    with _lock:
        last = _losses.last_warned.get(key)
        if last is not None and now - last < WARN_INTERVAL_S:
            return
        _losses.last_warned[key] = now
    _log.warning(
        "signalfire: the collector at %s refuses connections; %s not flushed at lifespan shutdown (kept queued, "
        "not retried now)",
        ", ".join(endpoints),
        ", ".join(sorted(signals)),
        extra={"unreachable": list(endpoints), "signals": sorted(signals)},
    )


def unsilence() -> None:
    """Give the SDK's loggers back the levels they had before an exit silenced them, and warn about losses again
    (a new instance starts)."""
    with _lock:
        _losses.exited = False
        levels = list(_losses.silenced)
        _losses.silenced.clear()
    for logger, level in reversed(levels):
        logger.setLevel(level)


def reset() -> None:
    """Forget when each warning was last given and any exit in progress, and give the SDK's loggers their levels back
    (the fresh start of a test: ``_runtime.reset()``). Where losses are counted stays as installed."""
    with _lock:
        _losses.forget_warnings()
    unsilence()


# --- at exit: one line ------------------------------------------------------------------------------------------------
def begin_exit_report() -> None:
    """From now on sum what is lost (instead of warning about each loss) and silence the SDK's exporter lines, until
    :func:`end_exit_report`. Idempotent: every hook of one exit shares the sum."""
    with _lock:
        if _losses.exit is not None:
            return
        _losses.exit = {}
        for name in SILENCED_AT_EXIT:
            logger = logging.getLogger(name)
            _losses.silenced.append((logger, logger.level))
            logger.setLevel(logging.CRITICAL)


def end_exit_report(*, restore: bool = True, **context: Any) -> dict[tuple[str, str], int]:
    """Log one structured warning for everything lost since :func:`begin_exit_report` (nothing when nothing was),
    through signalfire's log pipeline, and return the sums. ``restore=False`` (the process is exiting) keeps the SDK's
    lines silenced: a thread still stuck on a dead backend would otherwise print them on the way out. ``context``
    becomes fields of the line."""
    with _lock:
        lost = dict(_losses.exit or {})
        started = _losses.exit is not None
        _losses.exit = None
        levels = list(_losses.silenced) if restore else []
        if restore:
            _losses.silenced.clear()
        else:
            _losses.exited = True
    for logger, level in reversed(levels):
        logger.setLevel(level)
    if not started or not (lost or context.get("budget_exhausted")):
        return lost
    try:
        by_signal: dict[str, dict[str, int]] = {}
        for (signal, reason), count in sorted(lost.items()):
            by_signal.setdefault(signal, {})[reason] = count
        summary = ", ".join(
            f"{sum(reasons.values())} {signal} ({', '.join(sorted(reasons))})" for signal, reasons in by_signal.items()
        )
        _log.warning(
            "signalfire: telemetry lost at shutdown: %s; counted in signalfire_telemetry_dropped_total",
            summary or "nothing counted, but the flush did not finish in time",
            extra={"dropped": by_signal, **context},
        )
    except Exception:
        _log.debug("signalfire: reporting the telemetry lost at shutdown failed", exc_info=True)
    return lost


# --- exporter wrappers ------------------------------------------------------------------------------------------------
class _Counting:
    """What the three wrappers share: the signal, the endpoint it exports to (None: not an OTLP exporter built from
    settings), the batch in flight, "closed" (losses already counted) and "abandoned" (given up at exit)."""

    signal = ""
    exporter: Any

    def __init__(self, endpoint: tuple[str, int] | None = None) -> None:
        self.in_flight = 0
        self.closed = False
        self.endpoint = endpoint
        # The reason every batch from now on is dropped without being offered to the exporter (None: exporting).
        self.abandoned: str | None = None
        with _lock:
            _losses.exporters.add(self)

    def abandon(self, reason: str) -> None:
        """Give up exporting, at once: every later batch is counted as dropped for ``reason`` without being sent, and
        the exporter is shut down, which stops a retry loop in progress (its backoff waits on the shutdown event in
        both the HTTP and the gRPC exporters of opentelemetry-exporter-otlp)."""
        if self.abandoned is not None:
            return
        self.abandoned = reason
        try:
            self._close_exporter()
        except Exception:
            _log.debug("signalfire: closing the %s exporter failed", self.signal, exc_info=True)

    def _close_exporter(self) -> None:
        self.exporter.shutdown()

    def _export(self, batch_size: int, call: Callable[[], Any], failure: Any, success: Any) -> Any:
        if self.abandoned is not None:
            if not self.closed:
                dropped(self.signal, self.abandoned, batch_size)
            return failure
        self.in_flight = batch_size
        try:
            result = call()
        except Exception:  # an exporter's exception must never reach the SDK's worker thread or the app
            _log.debug("signalfire: exporting %s raised", self.signal, exc_info=True)
            result = failure
        finally:
            self.in_flight = 0
        # Compared by name: the gRPC and HTTP log exporters return different (deprecated and current) result enums.
        if getattr(result, "name", None) != success.name and not self.closed:
            dropped(self.signal, self.abandoned or "export_failed", batch_size)
        return result

    def _shutdown_once(self, close: Callable[[], Any]) -> None:
        if self.abandoned is not None:  # already shut down when it was abandoned
            return
        self.abandoned = "shutdown"
        try:
            close()
        except Exception:
            _log.debug("signalfire: closing the %s exporter failed", self.signal, exc_info=True)


class CountingSpanExporter(_Counting, SpanExporter):
    """Wraps a span exporter: a failed batch is counted as dropped, an exception becomes FAILURE."""

    signal = "traces"

    def __init__(self, exporter: SpanExporter, endpoint: tuple[str, int] | None = None) -> None:
        super().__init__(endpoint)
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result: SpanExportResult = self._export(
            len(spans), lambda: self.exporter.export(spans), SpanExportResult.FAILURE, SpanExportResult.SUCCESS
        )
        return result

    def shutdown(self) -> None:
        self._shutdown_once(self.exporter.shutdown)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        try:
            return bool(self.exporter.force_flush(timeout_millis))
        except Exception:
            return False


class CountingLogExporter(_Counting, LogRecordExporter):
    """Wraps an OTLP log exporter (the SDK's LogExporter interface) the same way."""

    signal = "logs"

    def __init__(self, exporter: Any, endpoint: tuple[str, int] | None = None) -> None:
        super().__init__(endpoint)
        self.exporter = exporter

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        result: LogRecordExportResult = self._export(
            len(batch),
            lambda: self.exporter.export(batch),
            LogRecordExportResult.FAILURE,
            LogRecordExportResult.SUCCESS,
        )
        return result

    def shutdown(self) -> None:
        self._shutdown_once(self.exporter.shutdown)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        try:
            return bool(self.exporter.force_flush(timeout_millis))
        except Exception:
            return False


class CountingMetricExporter(_Counting, MetricExporter):
    """Wraps a metric exporter: the data points of a failed export are counted as dropped."""

    signal = "metrics"

    def __init__(self, exporter: MetricExporter, endpoint: tuple[str, int] | None = None) -> None:
        _Counting.__init__(self, endpoint)
        temporality, aggregation = compat.exporter_preferences(exporter)
        MetricExporter.__init__(self, preferred_temporality=temporality, preferred_aggregation=aggregation)
        self.exporter = exporter

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        result: MetricExportResult = self._export(
            count_points(metrics_data),
            lambda: self.exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs),
            MetricExportResult.FAILURE,
            MetricExportResult.SUCCESS,
        )
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        try:
            return bool(self.exporter.force_flush(timeout_millis))
        except Exception:
            return False

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._shutdown_once(lambda: self.exporter.shutdown(timeout_millis=timeout_millis, **kwargs))


def count_points(metrics_data: MetricsData) -> int:
    """How many data points a collection holds (1 when it cannot be read: something was lost, say so)."""
    try:
        return sum(
            len(metric.data.data_points)
            for resource in metrics_data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        )
    except Exception:
        return 1


# --- batch processors: queue full, and what is left at shutdown -------------------------------------------------------
class _ProcessorMetrics:
    """Stands in for the SDK's processor-metrics object, which the batch processor calls when it drops an item.

    Every call passes through unchanged: the methods' signatures differ between SDK releases (1.44's
    ``finish_items(count, error)`` and ``drop_items(count)``, 1.45's ``finish_items(count)`` and
    ``drop_items(count, error_type)``), so nothing here may assume one of them.
    """

    signalfire_wrapped = True  # what _compat.opentelemetry.wrap_batch_drops checks, so a processor is wrapped once

    def __init__(self, inner: Any, signal: str) -> None:
        self.inner = inner
        self.signal = signal

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def drop_items(self, count: int, *args: Any, **kwargs: Any) -> None:
        try:
            self.inner.drop_items(count, *args, **kwargs)
        finally:
            reason = args[0] if args else kwargs.get("error_type", "queue_full")
            dropped(self.signal, str(reason), count)


class _SdkNoise(logging.Filter):
    """The SDK warns once per dropped item and once per failed batch: drops are counted and warned about here instead,
    and any other message of these loggers is let through at most once a minute."""

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[tuple[str, object], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Queue full, dropping"):
            return False
        key = (record.name, record.msg)
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < WARN_INTERVAL_S:
            return False
        self._last[key] = now
        return True


_NOISY_LOGGERS = (
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    # "String attribute value exceeds max length ..., truncating." once per long value: a request with a long header
    # would otherwise write a warning line (and a Sentry breadcrumb) each time
    "opentelemetry.attributes",
)
# Process-wide: the filter on the SDK's own loggers (which are the process's), attached once.
_noise_filter = _SdkNoise()


def exporters() -> list[_Counting]:
    """Every counting exporter wrapper alive (the exit path abandons those whose collector is gone)."""
    with _lock:
        return list(_losses.exporters)


def quiet_sdk_loggers() -> None:
    """Attach the rate-limiting filter to the SDK's exporter loggers (once per process)."""
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if _noise_filter not in logger.filters:
            logger.addFilter(_noise_filter)


def watch_batch_processor(processor: Any, signal: str, exporter: _Counting | None = None) -> None:
    """Count what ``processor`` (a BatchSpanProcessor or BatchLogRecordProcessor) drops because its queue is full,
    and remember it so that :func:`count_pending` can count what it still holds at shutdown."""
    batch = compat.wrap_batch_drops(processor, lambda inner: _ProcessorMetrics(inner, signal))
    if batch is None:
        # Another SDK version: the loss is still bounded, only not counted.
        _log.debug("signalfire: cannot watch the %s batch processor's queue", signal)
        return
    with _lock:
        watched = _losses.watched
        watched[:] = [item for item in watched if item[1]() is not None]
        watched.append((signal, weakref.ref(batch), weakref.ref(exporter) if exporter is not None else None))
    quiet_sdk_loggers()


def count_pending(reason: str = "shutdown_timeout") -> int:
    """Count as dropped whatever the watched processors still hold (queued or in flight); returns the total.

    Called at the end of ``shutdown()``: after a clean shutdown nothing is left; after its budget ran out, what is left
    is abandoned (a flush thread still blocked on a dead backend may yet deliver some of it, so this errs towards
    counting a loss).
    """
    total = 0
    with _lock:
        # Every watched processor belongs to the instance being shut down: a re-initialisation builds the new one
        # only after the old one's shutdown has returned.
        watched = list(_losses.watched)
        _losses.watched.clear()
    for signal, batch_ref, exporter_ref in watched:
        batch = batch_ref()
        exporter = exporter_ref() if exporter_ref is not None else None
        count = 0
        try:
            if batch is not None:
                count += compat.batch_queue_length(batch)
            if exporter is not None:
                count += exporter.in_flight
                exporter.closed = True  # a late failure of that batch is already counted here
        except Exception:
            continue
        if count:
            dropped(signal, reason, count)
            total += count
    return total


# --- Sentry -----------------------------------------------------------------------------------------------------------
# Losses, as opposed to decisions (before_send, sampling, event processors): these are counted.
_SENTRY_LOSSES = frozenset(
    {"network_error", "queue_overflow", "ratelimit_backoff", "send_error", "internal_sdk_error", "backpressure"}
)


def watch_sentry_transport(transport: Any) -> None:
    """Count the error events sentry-sdk's transport reports lost (its client-report hook, ``record_lost_event``)."""
    original = getattr(transport, "record_lost_event", None)
    if original is None or getattr(original, "_signalfire", False):
        return

    def record_lost_event(reason: str, data_category: Any = None, item: Any = None, *, quantity: int = 1) -> None:
        try:
            category = item.data_category if item is not None else data_category
            if reason in _SENTRY_LOSSES and category == "error":
                dropped("errors", reason, 1 if item is not None else quantity)
        except Exception:
            _log.debug("signalfire: counting a lost Sentry event failed", exc_info=True)
        original(reason, data_category, item, quantity=quantity)

    record_lost_event._signalfire = True  # type: ignore[attr-defined]
    transport.record_lost_event = record_lost_event
