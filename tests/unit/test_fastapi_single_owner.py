"""One tracing owner: FastAPI's own native telemetry is turned off on apps signalfire instruments."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from opentelemetry.trace import SpanKind

import signalfire


async def test_one_server_span_per_request(telemetry):
    """A request to an instrumented FastAPI app yields exactly one server span, named by the route template."""
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    signalfire.instrument_fastapi(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get("/items/7")
    assert response.status_code == 200
    server_spans = [s for s in telemetry.spans if s.kind is SpanKind.SERVER]
    assert [s.name for s in server_spans] == ["GET /items/{item_id}"]
    assert len(telemetry.spans) == 1
