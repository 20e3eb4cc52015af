"""httpx against a real HTTP server on loopback: client spans, traceparent injection, uninstrument."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.trace import SpanKind

import signalfire
from signalfire.testing import Telemetry

pytestmark = pytest.mark.integration


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo_url() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that answers every GET with the request headers as JSON."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _client_spans(telemetry: Telemetry) -> list[Any]:
    return [s for s in telemetry.spans if s.kind is SpanKind.CLIENT]


def test_httpx_client_gets_a_span_and_sends_traceparent(telemetry: Telemetry, echo_url: str) -> None:
    """A sync httpx request inside a span: a CLIENT span, and the request carries that span's traceparent."""
    with signalfire.span("outer"), httpx.Client() as client:
        sent = client.get(f"{echo_url}/x").json()
    (client_span,) = _client_spans(telemetry)
    trace_id = format(client_span.context.trace_id, "032x")
    span_id = format(client_span.context.span_id, "016x")
    assert sent["traceparent"].startswith(f"00-{trace_id}-{span_id}-")


async def test_async_httpx_client_gets_a_span(telemetry: Telemetry, echo_url: str) -> None:
    """An httpx.AsyncClient request produces a CLIENT span with the stable HTTP client attributes."""
    async with httpx.AsyncClient() as client:
        await client.get(f"{echo_url}/y")
    (client_span,) = _client_spans(telemetry)
    attributes = client_span.attributes
    assert attributes.get("http.response.status_code", attributes.get("http.status_code")) == 200


def test_uninstrument_httpx_stops_client_spans(telemetry: Telemetry, echo_url: str) -> None:
    """After uninstrument_httpx() new clients make no spans; instrument_httpx() brings them back."""
    signalfire.uninstrument_httpx()
    with httpx.Client() as client:
        client.get(f"{echo_url}/z")
    assert _client_spans(telemetry) == []
    signalfire.instrument_httpx()
    with httpx.Client() as client:
        client.get(f"{echo_url}/z")
    assert len(_client_spans(telemetry)) == 1


@pytest.mark.signalfire_settings(auto_instrument="none")
def test_auto_instrument_none_leaves_httpx_alone(telemetry: Telemetry, echo_url: str) -> None:
    """SIGNALFIRE_AUTO_INSTRUMENT=none: httpx is not traced until instrument_httpx(client)."""
    with httpx.Client() as plain:
        plain.get(f"{echo_url}/a")
    client = httpx.Client()
    signalfire.instrument_httpx(client)
    with client:
        client.get(f"{echo_url}/b")
    assert [s.attributes.get("url.full", s.attributes.get("http.url")) for s in _client_spans(telemetry)] == [
        f"{echo_url}/b"
    ]


def test_httpx_instrumented_by_the_application_is_left_alone() -> None:
    """If the app ran HTTPXClientInstrumentor itself, signalfire neither re-instruments nor uninstruments it."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument()
    try:
        signalfire.init_observability(traces_exporter="none", metrics_exporter="none", handle_sigterm=False)
        signalfire.shutdown()
        assert instrumentor.is_instrumented_by_opentelemetry
    finally:
        instrumentor.uninstrument()
