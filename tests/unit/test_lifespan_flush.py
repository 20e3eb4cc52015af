"""Lifespan shutdown flushes: what finished requests produced is exported before the server hears shutdown complete."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import signalfire
from signalfire import _runtime
from signalfire._settings import Settings
from signalfire.testing import TEST_DEFAULTS


class OrderedExporter(SpanExporter):
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.events.extend(f"exported {s.name}" for s in spans)
        return SpanExportResult.SUCCESS


async def test_spans_are_exported_before_lifespan_shutdown_completes():
    """With a 60 s batch delay, a span still queued is exported before lifespan.shutdown.complete is sent."""
    events: list[str] = []
    settings = Settings.resolve(**{**TEST_DEFAULTS, "bsp_schedule_delay_ms": 60_000, "sentry_dsn": None})
    app = FastAPI()
    _runtime.start(settings, app=app, span_exporters=[OrderedExporter(events)])
    with signalfire.span("finished-request-work"):
        pass
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> dict[str, str]:
        return inbox.pop(0)

    async def send(message: dict[str, str]) -> None:
        events.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert events == ["lifespan.startup.complete", "exported finished-request-work", "lifespan.shutdown.complete"]


class HeldExporter(SpanExporter):
    """An exporter whose export waits for ``go`` (at most 10 s): a collector that answers only when told."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.go = threading.Event()
        self.exported: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.go.wait(10)
        self.exported.extend(s.name for s in spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.go.set()


async def _lifespan(app: FastAPI, during_shutdown: Any = None) -> list[str]:
    """Run the app's lifespan (startup, then shutdown); ``during_shutdown`` runs on the loop meanwhile."""
    sent: list[str] = []
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> dict[str, str]:
        return inbox.pop(0)

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])

    task = asyncio.ensure_future(during_shutdown()) if during_shutdown is not None else None
    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    if task is not None:
        await task
    return sent


async def test_the_lifespan_flush_leaves_the_event_loop_running():
    """While the flush waits on the exporter, other coroutines on the loop run (the flush is on a thread)."""
    exporter = HeldExporter()
    settings = Settings.resolve(**{**TEST_DEFAULTS, "bsp_schedule_delay_ms": 60_000, "sentry_dsn": None})
    app = FastAPI()
    _runtime.start(settings, app=app, span_exporters=[exporter])
    with signalfire.span("finished-request-work"):
        pass

    async def meanwhile() -> None:
        # the exporter is entered from the flush thread; this coroutine can only see it if the loop is free
        while not exporter.entered.is_set():
            await asyncio.sleep(0.01)
        exporter.go.set()

    sent = await _lifespan(app, meanwhile)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert exporter.exported == ["finished-request-work"]


async def test_the_lifespan_flush_ends_within_the_budget_when_the_exporter_hangs():
    """An exporter that never answers holds lifespan shutdown for the budget only, not for its own timeout."""
    exporter = HeldExporter()
    overrides = {"bsp_schedule_delay_ms": 60_000, "sentry_dsn": None, "shutdown_timeout_s": 0.5}
    app = FastAPI()
    obs = _runtime.start(Settings.resolve(**{**TEST_DEFAULTS, **overrides}), app=app, span_exporters=[exporter])
    with signalfire.span("stuck"):
        pass
    try:
        sent = await _lifespan(app)
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert exporter.entered.is_set()
        assert not exporter.go.is_set()  # completed while the export still hung
        assert obs.active  # a lifespan shutdown without SIGTERM only flushes: the app may serve again
    finally:
        exporter.go.set()


def test_one_budget_is_shared_by_the_lifespan_flush_and_shutdown():
    """After a lifespan flush spent the whole budget, shutdown() has nothing left to spend: the two together take
    about one budget, not two."""
    budget = 3.0
    exporter = HeldExporter()
    overrides = {"bsp_schedule_delay_ms": 60_000, "sentry_dsn": None, "shutdown_timeout_s": budget}
    app = FastAPI()
    obs = _runtime.start(Settings.resolve(**{**TEST_DEFAULTS, **overrides}), app=app, span_exporters=[exporter])
    with signalfire.span("stuck"):
        pass
    try:
        started = time.monotonic()
        asyncio.run(_lifespan(app))
        assert obs.shutdown() is False
        total = time.monotonic() - started
        # one budget, and half a budget of slack for a busy machine; two budgets would be 2.0
        assert total / budget < 1.5
    finally:
        exporter.go.set()


async def test_the_lifespan_flush_follows_the_instance_that_instrumented_the_app_last():
    """The middleware flushes the instance handed to it: after a replacing init with the same app, the new one."""
    first: list[str] = []
    second: list[str] = []
    app = FastAPI()
    base = {**TEST_DEFAULTS, "bsp_schedule_delay_ms": 60_000, "sentry_dsn": None}
    _runtime.start(Settings.resolve(**base), app=app, span_exporters=[OrderedExporter(first)])
    app.build_middleware_stack()  # the middleware exists before the replacement, as in a server that already served
    _runtime.start(
        Settings.resolve(**{**base, "service_name": "replaced"}),
        app=app,
        replace=True,
        span_exporters=[OrderedExporter(second)],
    )
    with signalfire.span("after-replacement"):
        pass
    sent = await _lifespan(app)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert second == ["exported after-replacement"]
    assert first == []


async def test_the_lifespan_of_an_app_whose_instance_was_shut_down_passes_through():
    """Once the instance that instrumented the app is shut down, lifespan messages reach the server unchanged."""
    app = FastAPI()
    obs = _runtime.start(Settings.resolve(**{**TEST_DEFAULTS, "sentry_dsn": None}), app=app)
    app.build_middleware_stack()
    obs.shutdown()
    assert await _lifespan(app) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_after_a_reinitialisation_without_the_app_the_lifespan_flushes_the_running_instance():
    """init with the app, shutdown, init again without it (a fixture, a reload): the app's lifespan shutdown flushes
    the instance running now, as its SIGTERM and exit hooks do."""
    second: list[str] = []
    app = FastAPI()
    base = {**TEST_DEFAULTS, "bsp_schedule_delay_ms": 60_000, "sentry_dsn": None}
    _runtime.start(Settings.resolve(**base), app=app).shutdown()
    app.build_middleware_stack()
    _runtime.start(Settings.resolve(**base), span_exporters=[OrderedExporter(second)])
    with signalfire.span("after-reinit"):
        pass
    assert await _lifespan(app) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert second == ["exported after-reinit"]
