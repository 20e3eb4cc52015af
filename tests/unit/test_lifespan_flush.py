"""Lifespan shutdown flushes: what finished requests produced is exported before the server hears shutdown complete."""

from __future__ import annotations

from collections.abc import Sequence

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
