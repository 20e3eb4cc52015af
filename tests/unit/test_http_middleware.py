"""The ASGI middleware: server span name, semantic-convention attributes, errors, disconnects, exclusions, dedup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, WebSocket
from fastapi.responses import StreamingResponse
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import signalfire
from signalfire.testing import Telemetry

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def _get(app: Any, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path, **kwargs)


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise ValueError("kaput")

    return app


def _server_spans(telemetry: Telemetry) -> list[Any]:
    return [s for s in telemetry.spans if s.kind is SpanKind.SERVER]


async def test_server_span_is_named_by_method_and_route_template(telemetry: Telemetry) -> None:
    """GET /items/3 gives one SERVER span "GET /items/{item_id}" with http.route set."""
    app = _app()
    signalfire.instrument_fastapi(app)
    await _get(app, "/items/3")
    (span,) = _server_spans(telemetry)
    assert span.name == "GET /items/{item_id}"
    assert span.attributes["http.route"] == "/items/{item_id}"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["url.path"] == "/items/3"


async def test_attributes_match_opentelemetry_fastapi_instrumentation(telemetry: Telemetry, monkeypatch) -> None:
    """The stable HTTP semconv attributes equal those of opentelemetry-instrumentation-fastapi for one request."""
    from opentelemetry.instrumentation._semconv import _OpenTelemetrySemanticConventionStability
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    monkeypatch.setattr(_OpenTelemetrySemanticConventionStability, "_initialized", False)
    reference_spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(reference_spans))
    reference_app = _app()
    FastAPIInstrumentor.instrument_app(
        reference_app, tracer_provider=provider, meter_provider=NoOpMeterProvider(), exclude_spans=["send", "receive"]
    )
    ours = _app()
    signalfire.instrument_fastapi(ours)
    try:
        request = {"headers": [(b"host", b"testserver"), (b"user-agent", b"probe/1.0")], "query_string": b"q=x+y"}
        await _call(reference_app, "/items/3", [], **request)
        await _call(ours, "/items/3", [], **request)
    finally:
        FastAPIInstrumentor.uninstrument_app(reference_app)
        monkeypatch.setattr(_OpenTelemetrySemanticConventionStability, "_initialized", False)
    (reference,) = [s for s in reference_spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    (span,) = _server_spans(telemetry)
    stable = {
        "http.request.method",
        "http.request.method_original",
        "http.response.status_code",
        "http.route",
        "url.scheme",
        "url.path",
        "url.query",
        "server.address",
        "server.port",
        "client.address",
        "client.port",
        "network.protocol.version",
        "user_agent.original",
        "error.type",
    }
    expected = {k: v for k, v in reference.attributes.items() if k in stable}
    got = {k: v for k, v in span.attributes.items() if k in stable}
    assert got == expected
    assert span.name == reference.name


async def test_traceparent_and_baggage_are_continued(telemetry: Telemetry) -> None:
    """An incoming W3C traceparent makes the server span its child; baggage reaches the handler's context."""
    from opentelemetry import baggage

    seen: dict[str, Any] = {}
    app = FastAPI()

    @app.get("/b")
    async def handler() -> str:
        seen["tenant"] = baggage.get_baggage("tenant")
        return "ok"

    signalfire.instrument_fastapi(app)
    await _get(app, "/b", headers={"traceparent": TRACEPARENT, "baggage": "tenant=acme"})
    (span,) = _server_spans(telemetry)
    assert format(span.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    assert seen["tenant"] == "acme"


async def test_unhandled_exception_gives_500_and_an_error_span_with_the_exception(telemetry: Telemetry) -> None:
    """A handler that raises: the client gets 500, the span is ERROR with the exception event and error.type."""
    app = _app()
    signalfire.instrument_fastapi(app)
    response = await _get(app, "/boom")
    assert response.status_code == 500
    assert "x-request-id" in response.headers
    (span,) = _server_spans(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["http.response.status_code"] == 500
    assert span.attributes["error.type"] == "ValueError"
    assert [e.attributes["exception.message"] for e in span.events if e.name == "exception"] == ["kaput"]


async def test_an_exception_whose_str_raises_reaches_the_server_unchanged(telemetry: Telemetry) -> None:
    """An application exception whose __str__ raises is still the one the server sees; the span is ERROR."""

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    app = FastAPI()

    @app.get("/unprintable")
    async def unprintable() -> None:
        raise Unprintable

    signalfire.instrument_fastapi(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with pytest.raises(Unprintable):
            await client.get("/unprintable")
    (span,) = _server_spans(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"].endswith("Unprintable")


async def test_404_is_not_an_error_and_has_no_route(telemetry: Telemetry) -> None:
    """An unmatched path: span named by the method only, no http.route, status unset (4xx is the client's)."""
    app = _app()
    signalfire.instrument_fastapi(app)
    await _get(app, "/nowhere/42")
    (span,) = _server_spans(telemetry)
    assert span.name == "GET"
    assert "http.route" not in span.attributes
    assert span.status.status_code is StatusCode.UNSET


async def test_init_before_routes_are_added_sees_them(telemetry: Telemetry) -> None:
    """Routes and routers added after instrumenting get their templates, prefixes included."""
    app = FastAPI()
    signalfire.instrument_fastapi(app)
    router = APIRouter(prefix="/api")
    nested = APIRouter(prefix="/v2")

    @nested.get("/users/{user_id}")
    async def user(user_id: int) -> int:
        return user_id

    router.include_router(nested)
    app.include_router(router)
    await _get(app, "/api/v2/users/7")
    (span,) = _server_spans(telemetry)
    assert span.name == "GET /api/v2/users/{user_id}"


async def test_instrumenting_after_the_app_served_requests_takes_effect(telemetry: Telemetry) -> None:
    """An app that already built its middleware stack is instrumented from the next request on."""
    app = _app()
    await _get(app, "/items/1")
    signalfire.instrument_fastapi(app)
    await _get(app, "/items/2")
    assert [s.attributes["url.path"] for s in _server_spans(telemetry)] == ["/items/2"]


async def test_mounted_sub_apps_get_the_mount_prefix(telemetry: Telemetry) -> None:
    """Routes of a mounted FastAPI and a mounted Starlette app are labelled with the mount prefix."""
    app = FastAPI()
    sub = FastAPI()

    @sub.get("/things/{thing_id}")
    async def thing(thing_id: int) -> int:
        return thing_id

    app.mount("/sub", sub)
    app.mount("/star", Starlette(routes=[Route("/p/{q}", lambda _request: PlainTextResponse("p"))]))
    signalfire.instrument_fastapi(app)
    await _get(app, "/sub/things/3")
    await _get(app, "/star/p/1")
    assert [s.name for s in _server_spans(telemetry)] == ["GET /sub/things/{thing_id}", "GET /star/p/{q}"]


async def test_instrumenting_twice_gives_one_span(telemetry: Telemetry) -> None:
    """init_observability(app) plus instrument_fastapi(app), and an instrumented sub-app: one server span each."""
    app = _app()
    sub = FastAPI()

    @sub.get("/x")
    async def x() -> str:
        return "x"

    app.mount("/sub", sub)
    signalfire.init_observability(app, **telemetry.settings.model_dump())
    signalfire.instrument_fastapi(app)
    signalfire.instrument_fastapi(sub)
    await _get(app, "/items/1")
    await _get(app, "/sub/x")
    assert [s.name for s in _server_spans(telemetry)] == ["GET /items/{item_id}", "GET /sub/x"]


async def test_opentelemetry_fastapi_instrumentor_too_gives_one_server_span(telemetry: Telemetry) -> None:
    """With OpenTelemetry's FastAPIInstrumentor also on the app, there is still one server span per request."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    app = _app()
    signalfire.instrument_fastapi(app)
    FastAPIInstrumentor.instrument_app(app, exclude_spans=["send", "receive"])
    try:
        await _get(app, "/items/1")
    finally:
        FastAPIInstrumentor.uninstrument_app(app)
    assert len(_server_spans(telemetry)) == 1


@pytest.mark.parametrize("path", ["/health", "/healthz", "/health/ready", "/metrics"])
async def test_default_excluded_paths_get_no_span(telemetry: Telemetry, path: str) -> None:
    """/health* and /metrics are not traced by default."""
    app = FastAPI()
    app.add_api_route(path, lambda: "ok")
    signalfire.instrument_fastapi(app)
    response = await _get(app, path)
    assert response.status_code == 200
    assert _server_spans(telemetry) == []


@pytest.mark.signalfire_settings(excluded_paths="/internal*", excluded_urls="ping$,/skip/[0-9]+")
async def test_configured_excluded_paths_replace_the_default_and_otel_patterns_add(telemetry: Telemetry) -> None:
    """SIGNALFIRE_EXCLUDED_PATHS replaces the default; OTEL_PYTHON_FASTAPI_EXCLUDED_URLS regexes exclude too."""
    app = FastAPI()
    for path in ("/internal/x", "/ping", "/skip/12", "/health", "/kept"):
        app.add_api_route(path, lambda: "ok")
    signalfire.instrument_fastapi(app)
    for path in ("/internal/x", "/ping", "/skip/12", "/health", "/kept"):
        await _get(app, path)
    assert sorted(s.attributes["url.path"] for s in _server_spans(telemetry)) == ["/health", "/kept"]


async def test_request_id_is_kept_or_generated(telemetry: Telemetry) -> None:
    """A sane incoming X-Request-ID is echoed and recorded; a missing one is generated."""
    app = _app()
    signalfire.instrument_fastapi(app)
    given = await _get(app, "/items/1", headers={"x-request-id": "req-123"})
    generated = await _get(app, "/items/2")
    assert given.headers["x-request-id"] == "req-123"
    assert len(generated.headers["x-request-id"]) == 32
    assert [s.attributes["request.id"] for s in _server_spans(telemetry)] == [
        "req-123",
        generated.headers["x-request-id"],
    ]


async def _call(
    app: Any,
    path: str,
    messages: list[dict[str, Any]],
    disconnect_after: int | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    query_string: bytes = b"",
    spec_version: str = "2.3",
    send_fails_after: int | None = None,
) -> None:
    """Drive one raw ASGI request; with ``disconnect_after`` the client goes away after that many body chunks."""
    received: list[dict[str, Any]] = []
    body_chunks = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not received:
            received.append({})
            return {"type": "http.request", "body": b"", "more_body": False}
        await body_chunks.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if send_fails_after is not None and len(messages) > send_fails_after:
            raise OSError("client went away")  # what uvicorn raises (ClientDisconnected) once the peer is gone
        messages.append(message)
        chunks = sum(1 for m in messages if m["type"] == "http.response.body")
        if disconnect_after is not None and chunks >= disconnect_after:
            body_chunks.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": spec_version},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
        "root_path": "",
        "headers": headers or [(b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)


def _streaming_app(chunks: int, pause: float) -> FastAPI:
    app = FastAPI()

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            for i in range(chunks):
                await asyncio.sleep(pause)
                yield f"chunk {i}\n".encode()

        return StreamingResponse(body())

    return app


async def test_streaming_response_span_ends_after_the_last_byte(telemetry: Telemetry) -> None:
    """A streamed response's span ends after its last chunk was sent, not when the handler returned."""
    app = _streaming_app(chunks=3, pause=0.02)
    signalfire.instrument_fastapi(app)
    messages: list[dict[str, Any]] = []
    await _call(app, "/stream", messages)
    (span,) = _server_spans(telemetry)
    assert span.name == "GET /stream"
    assert b"".join(m.get("body", b"") for m in messages) == b"chunk 0\nchunk 1\nchunk 2\n"
    assert span.end_time - span.start_time >= 3 * 0.02 * 1e9


async def test_client_disconnect_mid_stream_is_recorded_as_499(telemetry: Telemetry) -> None:
    """A client that goes away during a streamed response: the span says 499 and is not an error."""
    app = _streaming_app(chunks=50, pause=0.01)
    signalfire.instrument_fastapi(app)
    messages: list[dict[str, Any]] = []
    await _call(app, "/stream", messages, disconnect_after=2)
    (span,) = _server_spans(telemetry)
    assert span.attributes["http.response.status_code"] == 499
    assert span.status.status_code is StatusCode.UNSET
    assert len([m for m in messages if m["type"] == "http.response.body"]) < 50


async def test_websocket_passes_through(telemetry: Telemetry) -> None:
    """A WebSocket endpoint on an instrumented app still accepts, echoes and closes."""
    app = FastAPI()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    signalfire.instrument_fastapi(app)
    inbox = [{"type": "websocket.connect"}, {"type": "websocket.receive", "text": "hi"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/ws", "raw_path": b"/ws", "query_string": b"", "root_path": "",
             "headers": [], "scheme": "ws", "subprotocols": [], "asgi": {"version": "3.0"}}  # fmt: skip
    await app(scope, receive, send)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[1]["text"] == "hi"


async def test_after_shutdown_the_app_serves_without_spans(telemetry: Telemetry) -> None:
    """Once signalfire is shut down, requests still succeed and produce nothing."""
    app = _app()
    signalfire.instrument_fastapi(app)
    telemetry.obs.shutdown()
    response = await _get(app, "/items/5")
    assert response.json() == {"id": 5}


async def test_secrets_in_the_query_string_are_scrubbed(telemetry: Telemetry) -> None:
    """url.query keeps ordinary parameters as sent and replaces the value of a sensitive one."""
    app = _app()
    signalfire.instrument_fastapi(app)
    await _get(app, "/items/1?page=2&access_token=s3cr3t-v4lue")
    (span,) = _server_spans(telemetry)
    assert span.attributes["url.query"].startswith("page=2&access_token=[REDACTED")
    telemetry.assert_no_secrets(["s3cr3t-v4lue"])


@pytest.mark.signalfire_settings(request_id_header="X-Correlation-ID")
async def test_request_id_header_name_is_configurable(telemetry: Telemetry) -> None:
    """SIGNALFIRE_REQUEST_ID_HEADER names the header read and echoed."""
    app = _app()
    signalfire.instrument_fastapi(app)
    response = await _get(app, "/items/1", headers={"x-correlation-id": "corr-9"})
    assert response.headers["x-correlation-id"] == "corr-9"
    assert _server_spans(telemetry)[0].attributes["request.id"] == "corr-9"


async def test_send_failing_after_disconnect_is_499_not_an_error(telemetry: Telemetry) -> None:
    """ASGI 2.4 servers raise on send to a gone client: the span says 499, UNSET status, no exception event."""
    from starlette.requests import ClientDisconnect

    app = _streaming_app(chunks=50, pause=0.001)
    signalfire.instrument_fastapi(app)
    with pytest.raises(ClientDisconnect):
        await _call(app, "/stream", [], spec_version="2.4", send_fails_after=3)
    (span,) = _server_spans(telemetry)
    assert span.attributes["http.response.status_code"] == 499
    assert span.status.status_code is StatusCode.UNSET
    assert [e.name for e in span.events] == []


def test_excluded_paths_write_no_access_line() -> None:
    """The rendered log output has an access line for /items/1 and none for the excluded /health."""
    import os
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    code = """
        import asyncio, httpx, signalfire
        from fastapi import FastAPI
        app = FastAPI()
        app.add_api_route("/items/{item_id}", lambda item_id: {"id": item_id})
        app.add_api_route("/health", lambda: {"ok": True})
        signalfire.init_observability(app, traces_exporter="none", metrics_exporter="none", handle_sigterm=False)
        async def main():
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                await client.get("/health")
                await client.get("/items/1")
        asyncio.run(main())
        signalfire.shutdown()
    """
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SIGNALFIRE_", "SENTRY_"))}
    env.update(PYTHONPATH=str(root / "src"), ENVIRONMENT="production")
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    access = [line for line in (result.stdout + result.stderr).splitlines() if '"logger":"signalfire.access"' in line]
    assert len(access) == 1
    assert '"path":"/items/1"' in access[0]


async def test_excluded_paths_record_no_metric(telemetry: Telemetry) -> None:
    """/health is not counted in http.server.request.duration; /items/{item_id} is."""
    app = _app()
    app.add_api_route("/health", lambda: "ok")
    signalfire.instrument_fastapi(app)
    await _get(app, "/health")
    await _get(app, "/items/1")
    routes = [dict(p.attributes).get("http.route") for p in telemetry.metric_points("http.server.request.duration")]
    assert routes == ["/items/{item_id}"]
