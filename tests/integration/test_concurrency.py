"""500 concurrent requests against a real uvicorn, each awaiting and calling into the thread pool between log lines:
every line carries its own request's trace_id and request_id, and nothing carries over to a later request."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.reliability_server import serve
from tests.receivers import HttpOtlpServer, OtlpReceiver, attributes

pytestmark = pytest.mark.integration

CONCURRENT = 500
STEPS = {"start", "thread", "inner", "end"}


async def _burst(url: str, request_ids: list[str]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CONCURRENT, max_keepalive_connections=CONCURRENT)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        return await asyncio.gather(
            *(client.get(f"{url}/mixed/{n}", headers={"X-Request-ID": rid}) for n, rid in enumerate(request_ids))
        )


def _server_spans(receiver: OtlpReceiver) -> dict[str, Any]:
    return {str(attributes(span.attributes)["request.id"]): span for _, span in receiver.spans() if span.kind == 2}


def test_concurrent_requests_keep_their_own_context(tmp_path: Path) -> None:
    """Every log line of 500 interleaved requests has the trace_id of its request's server span and its request id."""
    receiver = OtlpReceiver()
    with HttpOtlpServer(receiver) as otlp:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
        with serve(tmp_path, **env) as server:
            request_ids = [uuid.uuid4().hex for _ in range(CONCURRENT)]
            responses = asyncio.run(_burst(server.url, request_ids))
            assert [r.status_code for r in responses] == [200] * CONCURRENT
            assert [r.headers["x-request-id"] for r in responses] == request_ids
            # Then requests without an id: each gets a fresh one, never a previous request's.
            later = [httpx.get(f"{server.url}/mixed/{CONCURRENT + i}", timeout=30) for i in range(20)]
            later_ids = [r.headers["x-request-id"] for r in later]
            server.stop()
            lines = server.log_lines()

    assert len(set(later_ids)) == 20
    assert not set(later_ids) & set(request_ids)
    spans = _server_spans(receiver)
    by_request: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        if line.get("event") == "mixed step":
            by_request[str(line.get("request_id"))].append(line)

    missing = set(request_ids + later_ids) - set(spans)
    assert not missing, f"{len(missing)} requests without their server span (or with a changed request.id)"
    for n, request_id in enumerate(request_ids + later_ids):
        span = spans[request_id]
        trace_id = span.trace_id.hex()
        own = by_request.pop(request_id)
        assert {line["step"] for line in own} == STEPS, own
        assert {line["n"] for line in own} == {n}, f"request {n} logged another request's lines"
        assert {line["trace_id"] for line in own} == {trace_id}, f"request {n} logged under another trace"
    assert not by_request, f"log lines with no request of their own: {list(by_request)[:5]}"
