"""Sentry in the request path (lean mode, the default): signalfire's middleware reports unhandled errors itself, and
set_user/set_context/add_breadcrumb inside a request belong to that request's events only."""

from __future__ import annotations

import logging
import os
from typing import Any

import httpx
import pytest
import sentry_sdk
from fastapi import FastAPI, HTTPException, Request

import signalfire
from signalfire import _errors
from signalfire._settings import Settings
from signalfire.testing import Telemetry

TOKEN = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.sig-AbC123xyz"


def make_app(seen_scopes: list[Any]) -> FastAPI:
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    @app.get("/ok")
    async def ok() -> dict[str, str]:
        seen_scopes.append(sentry_sdk.get_isolation_scope())
        return {"ok": "yes"}

    @app.get("/plain")
    async def plain() -> dict[str, str]:
        return {"ok": "yes"}

    @app.post("/orders/{order_id}")
    async def order(order_id: str, request: Request) -> None:
        await request.json()
        signalfire.set_user(order_id, plan="pro")
        signalfire.set_context("order", {"id": order_id})
        signalfire.add_breadcrumb(f"loaded {order_id}", category="orders")
        raise RuntimeError(f"order {order_id} is inconsistent")

    @app.get("/anonymous")
    async def anonymous() -> None:
        raise LookupError("no user here")

    @app.get("/sync/{order_id}")
    def sync_order(order_id: str) -> None:  # runs in a worker thread on a copy of the request's context
        signalfire.set_user(order_id)
        signalfire.set_context("order", {"id": order_id})
        signalfire.add_breadcrumb("sync step", category="orders")
        raise ValueError("sync failure")

    @app.get("/logged/{order_id}")
    async def logged(order_id: str) -> None:
        logging.getLogger("shop.orders").warning("stock low for %s", order_id)
        raise RuntimeError("out of stock")

    @app.get("/status/{status}")
    async def status(status: int) -> None:
        raise HTTPException(status_code=status, detail="answer")

    return app


@pytest.fixture
def seen_scopes() -> list[Any]:
    return []


@pytest.fixture
def app(telemetry: Telemetry, seen_scopes: list[Any]) -> FastAPI:
    application = make_app(seen_scopes)
    signalfire.instrument_fastapi(application)
    return application


async def call(app: FastAPI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        return await client.request(method, path, **kwargs)


def server_span(telemetry: Telemetry, name: str) -> Any:
    (span,) = [s for s in telemetry.spans if s.name == name]
    return span


def test_lean_mode_enables_no_sentry_web_or_query_integration(telemetry: Telemetry) -> None:
    """By default sentry-sdk runs without its ASGI/Starlette/FastAPI, SQLAlchemy, Redis and httpx integrations."""
    enabled = set(sentry_sdk.get_client().integrations)
    assert not enabled & {"asgi", "starlette", "fastapi", "sqlalchemy", "redis", "httpx"}
    assert {"logging", "dedupe", "atexit"} <= enabled


def test_asgi_integration_setting_restores_sentry_integrations(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGNALFIRE_SENTRY_ASGI_INTEGRATION=true gives sentry-sdk its Starlette and FastAPI integrations back."""
    monkeypatch.setenv("SIGNALFIRE_SENTRY_ASGI_INTEGRATION", "true")
    options = _errors.sentry_options(Settings.resolve(sentry_dsn="https://k@o1.ingest.io/7"))
    assert {type(i).__name__ for i in options["integrations"]} == {"StarletteIntegration", "FastApiIntegration"}
    assert "auto_enabling_integrations" not in options


async def test_request_without_error_forks_no_sentry_scope(app: FastAPI, seen_scopes: list[Any]) -> None:
    """A request that does not fail runs on the process's Sentry isolation scope: sentry-sdk does no work for it."""
    assert (await call(app, "GET", "/ok")).status_code == 200
    assert seen_scopes == [sentry_sdk.get_isolation_scope()]


_PROBE = """
import asyncio, json, sys
from fastapi import FastAPI
import signalfire
from signalfire import _runtime
from signalfire._settings import Settings
from signalfire.testing import MemorySentryTransport
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

settings = Settings.resolve(sentry_dsn="http://public@127.0.0.1:9/1", sentry_asgi_integration=sys.argv[1] == "true",
                            traces_sampler_arg=1.0, traces_exporter="none", metrics_exporter="none",
                            handle_sigterm=False)
obs = _runtime.start(settings, span_exporters=[InMemorySpanExporter()], sentry_transport=MemorySentryTransport())
app = FastAPI()
_runtime.instrument_app(obs, app)

@app.get("/plain")
async def plain() -> dict:
    return {"ok": "yes"}

scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
         "path": "/plain", "raw_path": b"/plain", "root_path": "", "query_string": b"",
         "headers": [(b"host", b"shop.test")], "client": ("127.0.0.1", 50000), "server": ("shop.test", 80)}
called, sent = [], []

async def receive():
    return {"type": "http.request", "body": b"", "more_body": False}

async def send(message):
    sent.append(message)

def profile(frame, event, arg):
    if event == "call" and "sentry_sdk" in frame.f_code.co_filename:
        called.append(frame.f_code.co_filename + ":" + frame.f_code.co_name)

async def main():
    await app(dict(scope), receive, send)  # warm-up: lazy imports and first-request set-up
    sys.setprofile(profile)
    try:
        await app(dict(scope), receive, send)
    finally:
        sys.setprofile(None)

asyncio.run(main())
obs.shutdown(timeout=1.0)
print(json.dumps({"status": sent[-2]["status"], "called": called}))
"""


@pytest.mark.parametrize(("asgi_integration", "expect_calls"), [(False, False), (True, True)])
def test_request_without_error_calls_no_sentry_sdk_code(asgi_integration: bool, expect_calls: bool) -> None:
    """A request that does not fail runs no sentry-sdk function at all in lean mode (no scope fork, session or
    transaction); with SIGNALFIRE_SENTRY_ASGI_INTEGRATION=true it does. Each in a fresh process, since sentry-sdk's
    integrations patch Starlette for the life of a process."""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(asgi_integration).lower()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 200
    assert bool(result["called"]) is expect_calls, result["called"][:5]


async def test_unhandled_error_event_carries_request_context_without_body(app: FastAPI, telemetry: Telemetry) -> None:
    """An unhandled error: one event with method, URL without query, scrubbed query and headers, route, request id,
    user/context/breadcrumb of the request, the server span's trace link; no body; the span has the event id."""
    response = await call(
        app,
        "POST",
        "/orders/o-7",
        params={"token": TOKEN, "page": "2"},
        json={"card": "4111 1111 1111 1111"},
        headers={"authorization": BEARER, "x-request-id": "req-42"},
    )
    assert response.status_code == 500
    (event,) = telemetry.sentry_events
    request = event["request"]
    assert (request["method"], request["url"]) == ("POST", "http://shop.test/orders/o-7")
    assert "page=2" in request["query_string"]
    assert TOKEN not in request["query_string"]
    assert request["headers"]["authorization"] == "[REDACTED:authorization]"
    assert "data" not in request
    assert event["tags"]["request_id"] == "req-42"
    assert event["tags"]["http.route"] == event["transaction"] == "/orders/{order_id}"
    assert event["tags"]["http.request.method"] == "POST"
    assert event["user"] == {"id": "o-7", "plan": "pro"}
    assert event["contexts"]["order"] == {"id": "o-7"}
    assert [c["message"] for c in event["breadcrumbs"]["values"] if c.get("category") == "orders"] == ["loaded o-7"]
    assert event["exception"]["values"][-1]["mechanism"]["handled"] is False
    span = server_span(telemetry, "POST /orders/{order_id}")
    assert event["contexts"]["trace"]["trace_id"] == f"{span.context.trace_id:032x}"
    assert event["contexts"]["trace"]["span_id"] == f"{span.context.span_id:016x}"
    assert span.attributes["sentry.event_id"] == event["event_id"]


async def test_only_the_applications_own_frames_carry_locals(app: FastAPI, telemetry: Telemetry) -> None:
    """The endpoint's frame has its local variables and source lines; Starlette's, FastAPI's, asyncio's and
    signalfire's have neither (they hold the ASGI scope and cost most of an event's serialisation)."""
    await call(app, "POST", "/orders/o-7", json={})
    (event,) = telemetry.sentry_events
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    with_locals = [f["function"] for f in frames if f.get("vars")]
    assert with_locals == ["order"]
    (endpoint,) = [f for f in frames if f["function"] == "order"]
    assert endpoint["vars"]["order_id"] == "'o-7'"
    assert "raise RuntimeError" in endpoint["context_line"]
    assert [f["function"] for f in frames if f.get("context_line")] == ["order"]
    libraries = [f for f in frames if "site-packages" in (f.get("abs_path") or "") or "signalfire" in f["module"]]
    assert len(libraries) > 5, "the traceback runs through the framework"
    assert all("vars" not in f for f in libraries)


async def test_request_user_does_not_reach_the_next_request_or_the_process(app: FastAPI, telemetry: Telemetry) -> None:
    """User, context and breadcrumbs set in one request are absent from the next request's event and from events
    sent outside any request afterwards, even when both requests run in the same task."""
    await call(app, "POST", "/orders/o-1", json={})
    await call(app, "GET", "/anonymous")
    signalfire.capture_message("after the requests")
    first, second, outside = telemetry.sentry_events
    assert first["user"]["id"] == "o-1"
    for event in (second, outside):
        assert "user" not in event, event.get("user")
        assert "order" not in event.get("contexts", {})
        assert not [c for c in (event.get("breadcrumbs") or {}).get("values", []) if c.get("category") == "orders"]


async def test_sync_endpoint_user_context_and_breadcrumbs_reach_its_event(app: FastAPI, telemetry: Telemetry) -> None:
    """set_user/set_context/add_breadcrumb in a sync endpoint (run in a worker thread) reach the request's event."""
    assert (await call(app, "GET", "/sync/o-3")).status_code == 500
    (event,) = telemetry.sentry_events
    assert event["user"]["id"] == "o-3"
    assert event["contexts"]["order"] == {"id": "o-3"}
    assert "sync step" in [c["message"] for c in event["breadcrumbs"]["values"]]


async def test_5xx_http_exception_reported_once_4xx_not(app: FastAPI, telemetry: Telemetry) -> None:
    """HTTPException(503) answered by Starlette's handler is reported once with its route; 404 and 422 are not."""
    assert (await call(app, "GET", "/status/404")).status_code == 404
    assert (await call(app, "GET", "/status/not-a-number")).status_code == 422
    assert (await call(app, "GET", "/status/503")).status_code == 503
    (event,) = telemetry.sentry_events
    assert event["exception"]["values"][-1]["type"] == "HTTPException"
    assert event["tags"]["http.route"] == "/status/{status}"
    assert event["request"]["url"] == "http://shop.test/status/503"


async def test_error_reported_by_the_middleware_is_not_sent_again(app: FastAPI, telemetry: Telemetry) -> None:
    """An exception the middleware reported is not sent a second time when the server logs or reports it again."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        with pytest.raises(LookupError) as raised:
            await client.get("/anonymous")
    sentry_sdk.capture_exception(raised.value)  # what a server's error log handler would do
    assert len(telemetry.sentry_events) == 1


async def test_log_breadcrumbs_of_a_request_stay_with_that_request(app: FastAPI, telemetry: Telemetry) -> None:
    """A log record written during a request is a breadcrumb of that request's event, not of the next request's."""
    await call(app, "GET", "/logged/o-5")
    await call(app, "GET", "/anonymous")
    first, second = telemetry.sentry_events

    def messages(event: dict[str, Any]) -> list[str]:
        return [c.get("message", "") for c in (event.get("breadcrumbs") or {}).get("values", [])]

    assert "stock low for o-5" in messages(first)
    assert "stock low for o-5" not in messages(second)


def test_shutdown_forgets_the_process_user(telemetry: Telemetry) -> None:
    """A user set outside any request is forgotten by shutdown(): the next init's events do not carry it."""
    from signalfire import _runtime

    signalfire.set_user(42)
    telemetry.obs.shutdown()  # closes Sentry from a worker thread
    telemetry.obs = _runtime.start(telemetry.settings, sentry_transport=telemetry._sentry)
    signalfire.capture_message("after restart")
    (event,) = telemetry.sentry_events
    assert "user" not in event


async def test_failing_report_never_reaches_the_app(
    app: FastAPI, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If building or sending the report raises, the app's own exception propagates unchanged and nothing is sent."""

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("sentry bug")

    monkeypatch.setattr(sentry_sdk, "capture_event", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        with pytest.raises(LookupError, match="no user here"):
            await client.get("/anonymous")
    assert telemetry.sentry_events == []
