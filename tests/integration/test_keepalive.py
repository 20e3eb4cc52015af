"""Keep-alive survives unhandled errors: under a real uvicorn, the 500 of an unhandled error says connection: close."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from benchmarks.bench_keepalive import error_pairs
from fastapi import FastAPI
from fastapi.responses import JSONResponse

import signalfire
from tests.integration.reliability_server import serve


def test_no_connection_reset_after_unhandled_errors(tmp_path: Path) -> None:
    """50 "error, then next request" pairs on one keep-alive connection: 0 resets, every 500 says connection: close."""
    with serve(tmp_path) as server:
        result = error_pairs(server.port, 50)
    assert result.resets == 0
    assert result.close_headers == 50


def _test_client(app: FastAPI, **options: Any) -> Any:
    # Starlette 1.x warns that its TestClient wants httpx2; what matters here is what the client raises and returns.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    return TestClient(app, **options)


def _failing_app() -> FastAPI:
    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/answered")
    async def answered() -> JSONResponse:
        return JSONResponse({"error": "dependency down"}, status_code=500)

    return app


@pytest.mark.usefixtures("telemetry")
def test_testclient_raise_server_exceptions_still_raises() -> None:
    """TestClient(raise_server_exceptions=True) still sees the app's own exception, as without signalfire."""
    app = _failing_app()
    signalfire.instrument_fastapi(app)
    with pytest.raises(RuntimeError, match="boom"), _test_client(app, raise_server_exceptions=True) as client:
        client.get("/boom")


@pytest.mark.usefixtures("telemetry")
def test_testclient_without_raising_gets_the_500_with_connection_close() -> None:
    """With raise_server_exceptions=False the client gets the 500, its request id, and connection: close."""
    app = _failing_app()
    signalfire.instrument_fastapi(app)
    with _test_client(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert response.headers["connection"] == "close"
    assert len(response.headers["x-request-id"]) == 32


@pytest.mark.usefixtures("telemetry")
def test_a_500_the_app_returns_keeps_the_connection() -> None:
    """Only unhandled errors close the connection: a 500 the app answers itself has no connection: close."""
    app = _failing_app()
    signalfire.instrument_fastapi(app)
    with _test_client(app) as client:
        response = client.get("/answered")
    assert response.status_code == 500
    assert response.json() == {"error": "dependency down"}
    assert "connection" not in response.headers


async def test_the_500_signalfire_sends_itself_says_connection_close(telemetry: Any) -> None:
    """An ASGI app that raises before answering: signalfire's own 500 carries connection: close and the request id."""
    from signalfire._web._http import ObservabilityMiddleware

    async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("no answer")

    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/x", "raw_path": b"/x", "query_string": b"", "root_path": "", "headers": [(b"host", b"t")],
        "client": ("127.0.0.1", 5000), "server": ("t", 80),
    }  # fmt: skip
    with pytest.raises(RuntimeError):
        await ObservabilityMiddleware(raw_app, telemetry.settings)(scope, receive, send)
    start = messages[0]
    assert start["status"] == 500
    assert (b"connection", b"close") in start["headers"]
    assert any(name == b"x-request-id" for name, _ in start["headers"])
