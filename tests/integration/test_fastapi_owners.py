"""One owner per signal when the application set something up before signalfire: Logfire, a global tracer provider of
its own, FASTAPI_OTEL_AUTO_CONFIGURE. Against the real packages; a global provider can be set only once per process,
so those cases run in a fresh interpreter each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.receivers import HttpOtlpServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

try:
    import fastapi.telemetry  # noqa: F401  - FastAPI >= 0.142

    NATIVE = True
except ImportError:
    NATIVE = False

# Three requests to an app signalfire instruments; prints every span both pipelines finished, and the owners.
REQUESTS = """
    import asyncio
    import json

    import httpx
    from fastapi import FastAPI
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from signalfire import _runtime
    from signalfire._settings import Settings

    ours = InMemorySpanExporter()
    app = FastAPI()


    @app.get("/items/{item_id}")
    async def item(item_id: int):
        return {"id": item_id}


    obs = _runtime.start(
        Settings.resolve(traces_exporter="none", metrics_exporter="none", environment="test", handle_sigterm=False),
        app=app,
        span_exporters=[ours],
    )


    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            for _ in range(3):
                assert (await client.get("/items/1")).status_code == 200


    asyncio.run(main())
    obs.force_flush()
    spans = [("ours", s.instrumentation_scope.name, s.kind.name) for s in ours.get_finished_spans()]
    spans += [("theirs", s.instrumentation_scope.name, s.kind.name) for s in theirs.get_finished_spans()]
    print(json.dumps({"spans": spans, "owners": [o.as_dict() for o in obs.owners]}))
    obs.shutdown()
"""

LOGFIRE_FIRST = """
    import logfire
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    theirs = InMemorySpanExporter()
    logfire.configure(
        send_to_logfire=False, console=False, additional_span_processors=[SimpleSpanProcessor(theirs)]
    )
"""

PROVIDER_FIRST = """
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    theirs = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(theirs))
    trace.set_tracer_provider(provider)
"""


def _run(setup: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SIGNALFIRE_", "SENTRY_", "FASTAPI_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    code = textwrap.dedent(setup) + textwrap.dedent(REQUESTS)
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _server_spans(found: dict) -> list[tuple[str, str]]:
    return [(pipeline, scope) for pipeline, scope, kind in found["spans"] if kind == "SERVER"]


@pytest.mark.skipif(not NATIVE, reason="FastAPI < 0.142 has no native telemetry")
def test_logfire_configured_first_owns_the_request_span_and_signalfire_adds_none():
    """logfire.configure() before init: FastAPI's native telemetry traces each request through Logfire's providers,
    signalfire adds no second server span, and the owners report names Logfire."""
    found = _run(LOGFIRE_FIRST)
    assert _server_spans(found) == [("theirs", "fastapi")] * 3
    assert any(o["signal"] == "traces" and "Logfire" in o["found"] for o in found["owners"])


@pytest.mark.skipif(not NATIVE, reason="FastAPI < 0.142 has no native telemetry")
def test_a_global_tracer_provider_set_first_keeps_one_span_per_request():
    """A global tracer provider of the application's own: one server span per request (FastAPI's, through it), none
    of signalfire's beside it, and the report says the provider was kept."""
    found = _run(PROVIDER_FIRST)
    assert _server_spans(found) == [("theirs", "fastapi")] * 3
    owner = next(o for o in found["owners"] if o["signal"] == "traces" and "global tracer provider" in o["found"])
    assert owner["action"].startswith("kept")


def test_without_a_foreign_provider_signalfire_owns_the_span():
    """The same three requests with nothing set up first: three server spans, all signalfire's."""
    setup = """
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        theirs = InMemorySpanExporter()
    """
    found = _run(setup)
    assert _server_spans(found) == [("ours", "signalfire.http")] * 3


@pytest.mark.skipif(not NATIVE, reason="FastAPI < 0.142 has no native telemetry")
async def test_fastapi_auto_configure_exports_each_span_once(monkeypatch):
    """FASTAPI_OTEL_AUTO_CONFIGURE=true with an OTLP endpoint: FastAPI cannot add its exporters to signalfire's
    providers, so the receiver gets each request's span once, and its HTTP metric from signalfire only."""
    import asyncio

    import httpx
    from fastapi import FastAPI

    import signalfire

    with HttpOtlpServer() as server:
        monkeypatch.setenv("FASTAPI_OTEL_AUTO_CONFIGURE", "true")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp")
        app = FastAPI()

        @app.get("/items/{item_id}")
        async def item(item_id: int):
            return {"id": item_id}

        obs = signalfire.init_observability(app, handle_sigterm=False)
        assert any(o.found == "FASTAPI_OTEL_AUTO_CONFIGURE=true" for o in obs.owners)
        # The lifespan runs: FastAPI's exporter set-up happens at its start-up.
        incoming: asyncio.Queue = asyncio.Queue()
        outgoing: asyncio.Queue = asyncio.Queue()
        await incoming.put({"type": "lifespan.startup"})
        lifespan = asyncio.create_task(
            app({"type": "lifespan", "asgi": {"version": "3.0"}}, incoming.get, outgoing.put)
        )
        assert (await outgoing.get())["type"] == "lifespan.startup.complete"
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            for _ in range(3):
                assert (await client.get("/items/1")).status_code == 200
        await incoming.put({"type": "lifespan.shutdown"})
        assert (await outgoing.get())["type"] == "lifespan.shutdown.complete"
        await lifespan
        signalfire.shutdown()
        server_spans = [span for _, span in server.receiver.spans() if span.kind == 2]  # SPAN_KIND_SERVER
        assert len(server_spans) == 3
        durations = []
        for export in server.receiver.of("metrics"):
            for resource_metrics in export.message.resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    durations += [
                        scope_metrics.scope.name
                        for metric in scope_metrics.metrics
                        if metric.name == "http.server.request.duration"
                    ]
        assert set(durations) == {"signalfire"}
