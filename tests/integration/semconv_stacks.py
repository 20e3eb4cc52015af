"""One HTTP stack of the semantic-convention parity test, alone in its process, its attributes written as JSON.

``python -m tests.integration.semconv_stacks signalfire|contrib|fastapi OUTPUT``: builds the same FastAPI app,
instruments it with signalfire, opentelemetry-instrumentation-fastapi (the caller sets
OTEL_SEMCONV_STABILITY_OPT_IN=http) or FastAPI's native telemetry, each with its own in-memory providers, drives the
requests of :data:`REQUESTS` through it in-process, and writes the server spans and the HTTP server metric points to
OUTPUT. One process per stack keeps the three isolated: OpenTelemetry's semantic-convention mode and FastAPI's
telemetry are decided once per process.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
from fastapi import FastAPI, Request

# (name, method, path, headers, body, client): what each request exercises.
REQUESTS: list[tuple[str, str, str, dict[str, str], bytes | None, tuple[str, int]]] = [
    ("path parameter", "GET", "/items/42", {}, None, ("192.0.2.10", 50123)),
    ("query string", "GET", "/items/7?page=2&sig=abcdef", {}, None, ("192.0.2.10", 50124)),
    ("user agent", "GET", "/items/8", {"user-agent": "parity-test/1.0"}, None, ("192.0.2.10", 50125)),
    ("404 unmatched", "GET", "/nowhere/at/all", {}, None, ("192.0.2.10", 50126)),
    ("500", "GET", "/boom", {}, None, ("192.0.2.10", 50127)),
    ("POST with body", "POST", "/items", {"content-type": "application/json"}, b'{"name": "lamp"}',
     ("192.0.2.10", 50128)),
    (
        "forwarded headers",
        "GET",
        "/items/9",
        {"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https", "forwarded": "for=203.0.113.7;proto=https"},
        None,
        ("203.0.113.7", 0),  # what uvicorn --proxy-headers puts in the scope: the client's address, no port
    ),
]  # fmt: skip
METRICS = ("http.server.request.duration", "http.server.active_requests")


def build_app(**options: Any) -> FastAPI:
    app = FastAPI(**options)

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.post("/items")
    async def create_item(request: Request) -> dict[str, Any]:
        return dict(await request.json())

    @app.get("/boom")
    async def boom() -> None:
        json.loads("{not json")  # json.decoder.JSONDecodeError: a non-builtin exception class

    return app


async def drive(app: Any) -> None:
    for _name, method, path, headers, body, client in REQUESTS:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as http:
            await http.request(method, path, headers=headers, content=body)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _spans(spans: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": span.name,
            "kind": span.kind.name,
            "attributes": {k: _plain(v) for k, v in span.attributes.items()},
            "status": span.status.status_code.name,
            "scope": span.instrumentation_scope.name,
            "schema_url": span.instrumentation_scope.schema_url,
        }
        for span in spans
        if span.kind.name == "SERVER"
    ]


def _points(data: Any) -> list[dict[str, Any]]:
    found = []
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name in METRICS:
                    for point in metric.data.data_points:
                        found.append(
                            {
                                "metric": metric.name,
                                "attributes": dict(point.attributes),
                                "scope": scope_metrics.scope.name,
                                "schema_url": scope_metrics.scope.schema_url or scope_metrics.schema_url,
                            }
                        )
    return found


def _sdk() -> tuple[Any, Any, Any, Any]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider, MeterProvider(metric_readers=[reader]), exporter, reader


def run(stack: str) -> dict[str, Any]:
    if stack == "signalfire":
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from signalfire import _runtime, instrument_fastapi
        from signalfire._metrics import metrics as registry
        from signalfire._metrics._otel import InMemoryRegistryReader
        from signalfire._settings import Settings
        from signalfire.testing import TEST_DEFAULTS

        exporter, reader = InMemorySpanExporter(), InMemoryRegistryReader(registry)
        options = {**TEST_DEFAULTS, "sentry_dsn": None, "access_log": False}
        obs = _runtime.start(Settings.resolve(**options), span_exporters=[exporter], metric_readers=[reader])
        app = build_app()
        instrument_fastapi(app)
        asyncio.run(drive(app))
        obs.force_flush()
        result = {"spans": _spans(exporter.get_finished_spans()), "points": _points(reader.get_metrics_data())}
        obs.shutdown()
        return result
    tracer_provider, meter_provider, exporter, reader = _sdk()
    if stack == "contrib":
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        app = build_app()
        FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider, meter_provider=meter_provider)
    elif stack == "fastapi":
        telemetry = {
            "tracer_provider": tracer_provider,
            "meter_provider": meter_provider,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        }
        app = build_app(telemetry=telemetry)
    else:
        raise SystemExit(f"unknown stack {stack!r}")
    asyncio.run(drive(app))
    return {"spans": _spans(exporter.get_finished_spans()), "points": _points(reader.get_metrics_data())}


if __name__ == "__main__":
    result = run(sys.argv[1])
    with open(sys.argv[2], "w", encoding="utf-8") as output:  # stdout carries the stack's own log lines
        json.dump(result, output, indent=1, sort_keys=True)
