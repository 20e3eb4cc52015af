"""Dropped telemetry is counted in signalfire_telemetry_dropped_total{signal, reason} and warned about once a minute."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import signalfire
from signalfire import _runtime
from signalfire._export import _drops
from signalfire._metrics import metrics
from signalfire._metrics._otel import InMemoryRegistryReader
from signalfire._settings import Settings
from signalfire.testing import TEST_DEFAULTS, Telemetry

DROPPED = "signalfire.telemetry.dropped"


class _Failing(SpanExporter):
    def __init__(self, *, raise_: bool = False) -> None:
        self.raise_ = raise_
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        if self.raise_:
            raise ConnectionError("collector gone")
        return SpanExportResult.FAILURE


class _Blocking(SpanExporter):
    """An exporter that hangs until released, like a collector that accepts and never answers."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(30)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def _start(exporter: SpanExporter, **overrides: object) -> Telemetry:
    """signalfire with ``exporter`` for spans and an in-memory metric reader (the dropped counter is read there)."""
    _runtime.shutdown()
    settings = Settings.resolve(**{**TEST_DEFAULTS, "sentry_dsn": None, **overrides})
    reader = InMemoryRegistryReader(metrics)
    obs = _runtime.start(settings, span_exporters=[exporter], metric_readers=[reader])
    return Telemetry(obs, InMemorySpanExporter(), reader, None)


def test_failed_export_counts_the_batch() -> None:
    """An exporter returning FAILURE has its whole batch counted as traces/export_failed."""
    telemetry = _start(_Failing())
    try:
        for i in range(5):
            with signalfire.span(f"op{i}"):
                pass
        telemetry.obs.force_flush(5)
        assert telemetry.metric_value(DROPPED, signal="traces", reason="export_failed") == 5
    finally:
        telemetry.obs.shutdown()


def test_raising_exporter_is_counted_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    """An exporter that raises is counted as export_failed; nothing reaches the caller or the SDK's error log."""
    telemetry = _start(_Failing(raise_=True))
    try:
        with caplog.at_level(logging.DEBUG):
            with signalfire.span("op"):
                pass
            telemetry.obs.force_flush(5)
        assert telemetry.metric_value(DROPPED, signal="traces", reason="export_failed") == 1
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        telemetry.obs.shutdown()


def test_queue_full_is_counted_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    """With the exporter stuck and a queue of 4, every further span is counted as queue_full, with one warning."""
    blocking = _Blocking()
    telemetry = _start(blocking, bsp_max_queue_size=4, bsp_max_export_batch_size=1, bsp_schedule_delay_ms=1)
    try:
        with signalfire.span("first"):
            pass
        assert blocking.entered.wait(5)  # the worker holds "first"; the queue is empty and bounded at 4
        with caplog.at_level(logging.WARNING):
            for i in range(100):
                with signalfire.span(f"op{i}"):
                    pass
        assert telemetry.metric_value(DROPPED, signal="traces", reason="queue_full") == 96
        warnings = [r.getMessage() for r in caplog.records if "queue_full" in r.getMessage()]
        assert warnings == ["signalfire: dropped 1 traces (queue_full); counted in signalfire_telemetry_dropped_total"]
        assert not [r for r in caplog.records if r.getMessage().startswith("Queue full")]
    finally:
        blocking.release.set()
        telemetry.obs.shutdown()


def test_warning_repeats_after_the_interval_with_the_count(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a minute the next drop warns again, carrying how many were dropped since the last warning."""
    now = [1000.0]
    monkeypatch.setattr(_drops.time, "monotonic", lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="signalfire"):
        _drops.dropped("logs", "export_failed", 3)
        _drops.dropped("logs", "export_failed", 4)
        now[0] += _drops.WARN_INTERVAL_S
        _drops.dropped("logs", "export_failed", 5)
    messages = [r.getMessage() for r in caplog.records if "export_failed" in r.getMessage()]
    assert messages == [
        "signalfire: dropped 3 logs (export_failed); counted in signalfire_telemetry_dropped_total",
        "signalfire: dropped 9 logs (export_failed) since the last warning; counted in "
        "signalfire_telemetry_dropped_total",
    ]


def test_shutdown_with_a_stuck_exporter_returns_in_time_and_counts_what_is_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """shutdown(1 s) with a hung exporter returns False within its budget and warns the pending spans as lost."""
    blocking = _Blocking()
    obs = _start(blocking, bsp_max_export_batch_size=1, bsp_schedule_delay_ms=1).obs
    try:
        with signalfire.span("held"):
            pass
        assert blocking.entered.wait(5)
        for i in range(10):
            with signalfire.span(f"queued{i}"):
                pass
        with caplog.at_level(logging.WARNING, logger="signalfire"):
            started = time.monotonic()
            assert obs.shutdown(timeout=1.0) is False
            elapsed = time.monotonic() - started
        assert elapsed < 5  # the budget, with slack for a loaded machine: not the exporter's 30 s
        lost = [r.getMessage() for r in caplog.records if "shutdown_timeout" in r.getMessage()]
        # One line for the exit. The held span is not among them: giving up shuts the exporter down, which (as the
        # SDK's exporters stop their retry loop) released the hung export, and it succeeded.
        assert lost == [
            "signalfire: telemetry lost at shutdown: 10 traces (shutdown_timeout); counted in "
            "signalfire_telemetry_dropped_total"
        ]
    finally:
        blocking.release.set()


def test_clean_shutdown_counts_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """A shutdown that exports everything reports no loss."""
    memory = InMemorySpanExporter()
    obs = _start(memory).obs
    with signalfire.span("op"):
        pass
    with caplog.at_level(logging.WARNING, logger="signalfire"):
        assert obs.shutdown(timeout=5) is True
    assert [s.name for s in memory.get_finished_spans()] == ["op"]
    assert not [r for r in caplog.records if "dropped" in r.getMessage()]


class _Transport:
    def __init__(self) -> None:
        self.seen: list[tuple[str, object, object, int]] = []

    def record_lost_event(self, reason: str, data_category: object = None, item: object = None, *, quantity: int = 1):
        self.seen.append((reason, data_category, item, quantity))


def test_sentry_losses_are_counted_decisions_are_not(telemetry: Telemetry) -> None:
    """A Sentry event lost to the network is counted; one dropped by before_send (a decision) is not."""
    transport = _Transport()
    _drops.watch_sentry_transport(transport)
    transport.record_lost_event("network_error", data_category="error")
    transport.record_lost_event("queue_overflow", "error")
    transport.record_lost_event("before_send", data_category="error")
    transport.record_lost_event("network_error", data_category="session")
    assert telemetry.metric_value(DROPPED, signal="errors", reason="network_error") == 1
    assert telemetry.metric_value(DROPPED, signal="errors", reason="queue_overflow") == 1
    assert len(transport.seen) == 4  # sentry-sdk's own client reports still see every loss


def test_sentry_transport_is_watched_once() -> None:
    """Watching a transport twice does not count a loss twice."""
    transport = _Transport()
    _drops.watch_sentry_transport(transport)
    first = transport.record_lost_event
    _drops.watch_sentry_transport(transport)
    assert transport.record_lost_event is first


@pytest.mark.signalfire_settings(attribute_value_length_limit=16, attribute_count_limit=3)
def test_span_limits_bound_attributes(telemetry: Telemetry) -> None:
    """OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT and OTEL_ATTRIBUTE_COUNT_LIMIT cap what a span keeps."""
    with signalfire.span("op", a="x" * 1000, b=1, c=2, d=3, e=4):
        pass
    attributes = telemetry.span("op").attributes or {}
    assert len(attributes) == 3
    assert all(len(v) <= 16 for v in attributes.values() if isinstance(v, str))


def test_default_value_length_limit_is_4096(telemetry: Telemetry) -> None:
    """Without configuration an attribute value is cut at 4096 characters, never kept unbounded."""
    with signalfire.span("op", big="y" * 100_000):
        pass
    assert telemetry.span("op").attributes["big"] == "y" * 4096


def test_span_specific_limits_win(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT overrides the general limit for spans."""
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100")
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "10")
    from signalfire._tracing import build_span_limits

    limits = build_span_limits(Settings.resolve())
    assert limits.max_span_attribute_length == 10
    assert limits.max_attribute_length == 100


def test_limit_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    """A zero or non-numeric limit is rejected naming the variable."""
    monkeypatch.setenv("OTEL_ATTRIBUTE_COUNT_LIMIT", "zero")
    with pytest.raises(signalfire.ConfigurationError, match="OTEL_ATTRIBUTE_COUNT_LIMIT"):
        Settings.resolve()


def test_reset_gives_the_rate_limited_warnings_again(caplog: pytest.LogCaptureFixture) -> None:
    """_runtime.reset(), the fixture's reset, forgets when each loss was warned about: the next one warns at once."""
    with caplog.at_level(logging.WARNING, logger="signalfire"):
        _drops.dropped("logs", "export_failed", 1)
        _drops.dropped("logs", "export_failed", 1)
        _runtime.reset()
        _drops.dropped("logs", "export_failed", 2)
    messages = [r.getMessage() for r in caplog.records if "export_failed" in r.getMessage()]
    assert messages == [
        "signalfire: dropped 1 logs (export_failed); counted in signalfire_telemetry_dropped_total",
        "signalfire: dropped 2 logs (export_failed); counted in signalfire_telemetry_dropped_total",
    ]
