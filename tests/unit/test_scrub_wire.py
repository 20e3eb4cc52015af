"""Scrub at the wire: every string of the OTLP model (spans, metric points of every meter, log records) leaves
scrubbed by the one policy, on the public path and in signalfire's encoder alike."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from signalfire._export._otlp_encode import SpanEncoder
from signalfire._metrics._otel import InMemoryRegistryReader
from signalfire._metrics._registry import MetricsRegistry
from signalfire._scrub._policy import Scrubber
from signalfire._scrub._wire import (
    ScrubbingLogExporter,
    ScrubbingSpanExporter,
    scrub_spans,
    strip_statement_data,
    wire_attribute,
)

SECRETS = json.loads((Path(__file__).parents[1] / "data" / "secrets.json").read_text())["secrets"]
PASSWORD = "Zq8-wire-secret-Pw"
URL = f"https://deploy:{PASSWORD}@git.example.com/app.git"
JWT = next(entry["secret"] for entry in SECRETS if entry["kind"] == "jwt_hs256")


def context(span_id: int = 0xB7AD6B7169203331, state: TraceState | None = None) -> SpanContext:
    return SpanContext(0x0AF7651916CD43DD8448EB211C80319C, span_id, False, TraceFlags(1), state)


def secret_span() -> ReadableSpan:
    """A span with a secret in every string field of the model."""
    return ReadableSpan(
        f"login token={JWT}",
        context=context(state=TraceState([("vendor", JWT), ("token", PASSWORD)])),
        parent=context(0x1111111111111111),
        resource=Resource({"service.name": "shop", "vcs.repository.url.full": URL}),
        attributes={"note": f"Bearer {JWT}", "password": PASSWORD, "order.count": 3},
        events=[Event(f"retry with {URL}", {"detail": f"api_key={PASSWORD}"}, 1)],
        links=[Link(context(0x2222222222222222), {"origin": URL})],
        kind=SpanKind.SERVER,
        status=Status(StatusCode.ERROR, f"failed: password={PASSWORD}"),
        start_time=1,
        end_time=2,
        instrumentation_scope=InstrumentationScope("lib", "1.0", None, {"repo": URL}),
    )


def test_public_path_scrubs_every_field() -> None:
    """Names, event names and attributes, links, status, tracestate, resource and scope leave scrubbed."""
    (span,) = scrub_spans(Scrubber(), [secret_span()])
    data = encode_spans([span]).SerializeToString() + repr(span.context.trace_state).encode()
    assert PASSWORD.encode() not in data
    assert JWT.encode() not in data
    assert span.attributes["order.count"] == 3
    assert span.resource.attributes["service.name"] == "shop"


def test_encoder_scrubs_every_field_as_the_public_path() -> None:
    """signalfire's encoder sends exactly what the SDK's encoder sends for the publicly scrubbed span."""
    ours = SpanEncoder(Scrubber()).encode([secret_span()])
    assert ours == encode_spans(scrub_spans(Scrubber(), [secret_span()])).SerializeToString()
    assert PASSWORD.encode() not in ours


def test_a_span_without_secrets_is_passed_on_as_is() -> None:
    """Nothing to redact: the same object goes to the exporter (no copy per span)."""
    span = ReadableSpan("GET /items/{id}", context=context(), attributes={"http.route": "/items/{id}"})
    assert scrub_spans(Scrubber(), [span])[0] is span


def test_a_span_that_cannot_be_scrubbed_is_dropped_and_counted() -> None:
    """Fail closed: an unscrubbable span is never exported; the injected sink counts it."""
    losses: list[tuple[str, str, int]] = []

    class Broken(ReadableSpan):
        @property
        def name(self) -> str:
            raise RuntimeError("boom")

    sent: list[Any] = []

    class Memory(ScrubbingSpanExporter):
        pass

    exporter = ScrubbingSpanExporter(
        type("M", (), {"export": lambda self, spans: sent.extend(spans)})(),  # type: ignore[arg-type]
        Scrubber(),
        lambda *loss: losses.append(loss),
    )
    exporter.export([Broken("x", context=context())])
    assert sent == []
    assert losses == [("traces", "scrub_failed", 1)]


def test_metric_points_of_every_meter_are_scrubbed() -> None:
    """An instrument from any meter (not signalfire's registry) leaves with scrubbed attributes and description."""
    reader = InMemoryRegistryReader(MetricsRegistry())
    provider = MeterProvider(metric_readers=[reader], resource=Resource({"repo": URL}))
    meter = provider.get_meter("some.library")
    counter = meter.create_counter("calls", description=f"calls with token={PASSWORD}")
    counter.add(1, {"target": URL, "tenant": "acme", "attempt": 2})
    data = reader.get_metrics_data()
    provider.shutdown()
    text = repr(data)
    assert PASSWORD not in text
    assert "acme" in text
    point = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points[0]
    assert point.attributes["attempt"] == 2


def test_log_records_are_scrubbed_at_the_wire() -> None:
    """Body, attributes and resource of an OTLP log record leave scrubbed."""
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource({"repo": URL}), shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(ScrubbingLogExporter(memory, Scrubber())))
    handler_logger = provider.get_logger("app")
    from opentelemetry._logs import LogRecord

    handler_logger.emit(LogRecord(body=f"connect {URL}", attributes={"dsn": URL, "count": 4}))
    provider.shutdown()
    (record,) = memory.get_finished_logs()
    assert PASSWORD not in repr(record.log_record.body) + repr(dict(record.log_record.attributes or {}))
    assert PASSWORD not in repr(record.resource.attributes)
    assert record.log_record.attributes["count"] == 4


@pytest.mark.parametrize(
    ("message", "kept"),
    [
        (
            '(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "u_email"\n'
            "DETAIL:  Key (email)=(ann.secret@example.com) already exists.\n"
            "[SQL: INSERT INTO users (email) VALUES (%(email)s)]\n"
            "[parameters: {'email': 'ann.secret@example.com'}]\n"
            "(Background on this error at: https://sqlalche.me/e/20/gkpj)",
            ["INSERT INTO users (email) VALUES (%(email)s)", "Key (email)=", "u_email"],
        ),
    ],
)
def test_statement_data_is_stripped_from_error_messages(message: str, kept: list[str]) -> None:
    """A database error's bound parameters never leave; the statement with placeholders does."""
    stripped = strip_statement_data(message)
    assert "ann.secret" not in stripped
    assert all(part in stripped for part in kept)


def test_statements_leave_without_inline_literals() -> None:
    """db.statement of any span has its inline values replaced by ?, placeholders kept."""
    value = wire_attribute(Scrubber(), "db.statement", "SELECT * FROM u WHERE email = 'a@b.c' AND id = :id LIMIT 5")
    assert value == "SELECT * FROM u WHERE email = ? AND id = :id LIMIT ?"


def test_no_warning_is_logged_for_clean_data(caplog: pytest.LogCaptureFixture) -> None:
    """Scrubbing clean spans logs nothing."""
    with caplog.at_level(logging.DEBUG, "signalfire"):
        scrub_spans(Scrubber(), [ReadableSpan("ok", context=context())])
    assert caplog.records == []
