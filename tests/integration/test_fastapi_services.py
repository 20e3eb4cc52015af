"""FastAPI services under a real uvicorn on loopback, each in its own process, exporting to a real OTLP receiver."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.receivers import HttpOtlpServer
from tests.servers import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SERVER_KIND = 2  # opentelemetry.proto.trace.v1.Span.SpanKind.SPAN_KIND_SERVER
CLIENT_KIND = 3


class Service:
    """A uvicorn process serving ``module:app`` on 127.0.0.1; ``stop()`` sends SIGTERM and returns its output."""

    def __init__(self, module: str, receiver: HttpOtlpServer, name: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SIGNALFIRE_", "SENTRY_"))}
        environment.update(
            PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT), environment.get("PYTHONPATH", "")]),
            OTEL_SERVICE_NAME=name,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_TRACES_SAMPLER_ARG="1.0",
            ENVIRONMENT="production",
            **env,
        )
        command = [sys.executable, "-m", "uvicorn", module, "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{module} exited: {self.process.communicate()[0]}")
            try:
                httpx.get(f"{self.url}/health", timeout=0.5)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{module} did not start within 30 s")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            output, _ = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        return output


@pytest.fixture
def receiver() -> Iterator[HttpOtlpServer]:
    with HttpOtlpServer() as server:
        yield server


def _spans(receiver: HttpOtlpServer, service: str) -> list[Any]:
    return [span for resource, span in receiver.receiver.spans() if resource.get("service.name") == service]


def test_a_call_from_one_service_to_another_is_one_trace(receiver: HttpOtlpServer) -> None:
    """frontend -> backend over httpx: one trace, backend's server span a child of frontend's client span, and the
    log lines of both services carry that trace id."""
    backend = Service("tests.integration.apps.services:app", receiver, "backend", SERVICE_ROLE="backend")
    try:
        frontend = Service(
            "tests.integration.apps.services:app",
            receiver,
            "frontend",
            SERVICE_ROLE="frontend",
            BACKEND_URL=backend.url,
        )
        try:
            response = httpx.get(f"{frontend.url}/checkout/o-17", timeout=10)
        finally:
            frontend_output = frontend.stop()
    finally:
        backend_output = backend.stop()
    assert response.json() == {"order": "o-17", "stock": {"item": "o-17", "available": 3}}
    (front_server,) = [s for s in _spans(receiver, "frontend") if s.kind == SERVER_KIND]
    (front_client,) = [s for s in _spans(receiver, "frontend") if s.kind == CLIENT_KIND]
    (back_server,) = [s for s in _spans(receiver, "backend") if s.kind == SERVER_KIND]
    assert front_server.name == "GET /checkout/{order_id}"
    assert back_server.name == "GET /stock/{item_id}"
    assert front_client.trace_id == front_server.trace_id == back_server.trace_id
    assert front_client.parent_span_id == front_server.span_id
    assert back_server.parent_span_id == front_client.span_id
    trace_id = front_server.trace_id.hex()
    assert any(trace_id in line and "frontend handling" in line for line in frontend_output.splitlines())
    assert any(trace_id in line and "backend looking up" in line for line in backend_output.splitlines())


def test_router_mount_stream_and_websocket_under_uvicorn(receiver: HttpOtlpServer) -> None:
    """Router, mounted sub-app, streaming, WebSocket and lifespan work and get correct route templates."""
    import websockets.asyncio.client

    service = Service("tests.integration.apps.shapes:app", receiver, "shapes")
    try:
        with httpx.Client(base_url=service.url, timeout=10) as client:
            assert client.get("/api/users/5").json() == {"id": 5}
            assert client.get("/admin/reports/9").json() == {"report": 9}
            assert client.get("/stream").text == "".join(f"line {i}\n" for i in range(5))
            assert client.get("/nowhere").status_code == 404
            assert client.get("/lifespan").json() == {"started": True}

        async def talk() -> str:
            async with websockets.asyncio.client.connect(f"ws://127.0.0.1:{service.port}/ws") as ws:
                await ws.send("hi")
                return str(await ws.recv())

        assert asyncio.run(talk()) == "echo: hi"
    finally:
        output = service.stop()
    assert "Traceback" not in output, output
    names = sorted(s.name for s in _spans(receiver, "shapes") if s.kind == SERVER_KIND)
    assert names == [
        "GET",
        "GET /admin/reports/{report_id}",
        "GET /api/users/{user_id}",
        "GET /lifespan",
        "GET /stream",
    ]
