"""The server's log record of an exception signalfire already reported builds no second Sentry event; every other
record still does, and after shutdown sentry-sdk's logging integration is as signalfire found it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sentry_sdk
from fastapi import FastAPI
from sentry_sdk.integrations.logging import LoggingIntegration

from signalfire import _errors, _runtime
from signalfire._compat import sentry_sdk as compat
from signalfire._settings import Settings
from signalfire.testing import TEST_DEFAULTS, MemorySentryTransport

UVICORN = logging.getLogger("uvicorn.error")


class CountingTransport(MemorySentryTransport):
    """Keeps envelopes and counts what sentry-sdk built and then discarded (what its client reports tell Sentry)."""

    def __init__(self) -> None:
        super().__init__()
        self.lost: list[tuple[str, Any]] = []

    def record_lost_event(self, reason: str, data_category: Any = None, item: Any = None, *, quantity: int = 1) -> None:
        self.lost.append((reason, data_category))

    def events(self) -> list[dict[str, Any]]:
        return [item.payload.json for envelope in self.snapshot() for item in envelope.items if item.type == "event"]


def make_app() -> FastAPI:
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return app


async def request_that_raises(app: FastAPI) -> BaseException:
    """GET /boom; the exception that escaped the app, as uvicorn's protocol catches it."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        try:
            await client.get("/boom")
        except RuntimeError as exc:
            return exc
    raise AssertionError("the app did not raise")


def log_as_uvicorn(exc: BaseException) -> None:
    """uvicorn.protocols.http.*_impl.RequestResponseCycle.run_asgi's own call."""
    UVICORN.error("Exception in ASGI application\n", exc_info=exc)


@pytest.fixture
def own() -> Iterator[tuple[CountingTransport, FastAPI]]:
    """signalfire's own Sentry client (lean mode: its middleware reports), events kept in memory."""
    transport = CountingTransport()
    obs = _runtime.start(Settings.resolve(**TEST_DEFAULTS), sentry_transport=transport)
    app = make_app()
    _runtime.instrument_app(obs, app)
    yield transport, app
    _runtime.reset()


@pytest.fixture
def app_client() -> Iterator[CountingTransport]:
    """The application's own client (LoggingIntegration, no web integrations), started before signalfire."""
    transport = CountingTransport()
    sentry_sdk.init(
        dsn="http://key@127.0.0.1:9/1",
        transport=transport,
        default_integrations=False,
        integrations=[LoggingIntegration()],
    )
    yield transport
    _runtime.reset()
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


def discarded_errors(transport: CountingTransport) -> list[tuple[str, Any]]:
    return [lost for lost in transport.lost if lost[1] == "error"]


async def test_the_servers_record_of_a_reported_exception_builds_no_event(
    own: tuple[CountingTransport, FastAPI],
) -> None:
    """One event for an unhandled error, and nothing built and discarded for uvicorn's record of it."""
    transport, app = own
    log_as_uvicorn(await request_that_raises(app))
    sentry_sdk.get_client().flush(timeout=5)
    (event,) = transport.events()
    assert event["exception"]["values"][0]["mechanism"]["type"] == "signalfire.asgi"
    assert discarded_errors(transport) == []


async def test_the_same_exception_object_raised_by_a_later_request_is_reported_again() -> None:
    """A cached or module-level exception raised by request after request is one event per request (the mark
    belongs to the request that reported it, and the server's record of it spends it)."""
    transport = CountingTransport()
    obs = _runtime.start(Settings.resolve(**TEST_DEFAULTS), sentry_transport=transport)
    shared = RuntimeError("the same cached failure")
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    @app.get("/boom")
    async def boom() -> None:
        raise shared

    @app.get("/other")
    async def other() -> None:
        raise RuntimeError("a fresh failure")  # between two: sentry-sdk's dedupe drops only a repeat of the last

    async def request(path: str) -> BaseException:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            with pytest.raises(RuntimeError) as raised:
                await client.get(path)
        return raised.value

    _runtime.instrument_app(obs, app)
    try:
        for _ in range(2):
            log_as_uvicorn(await request("/boom"))
            log_as_uvicorn(await request("/other"))
        await request("/boom")  # and without the server's record (an in-process client)
        await request("/other")
        await request("/boom")
        sentry_sdk.get_client().flush(timeout=5)
        messages = [e["exception"]["values"][-1]["value"] for e in transport.events()]
        assert messages.count("the same cached failure") == 4
        assert messages.count("a fresh failure") == 3
        assert discarded_errors(transport) == []
    finally:
        _runtime.reset()


async def test_a_record_of_another_exception_is_still_an_event(own: tuple[CountingTransport, FastAPI]) -> None:
    """Only the reported exception object is filtered: a server record carrying another one reaches Sentry."""
    transport, app = own
    await request_that_raises(app)
    try:
        raise LookupError("an unrelated failure")
    except LookupError as other:
        log_as_uvicorn(other)
    UVICORN.error("Exception in 'lifespan' protocol\n")  # and records without an exception
    sentry_sdk.get_client().flush(timeout=5)
    logged = [e for e in transport.events() if e.get("logger") == "uvicorn.error"]
    assert [e.get("exception", {}).get("values", [{}])[-1].get("type") for e in logged] == ["LookupError", None]


async def test_the_application_client_builds_no_event_for_the_record_either(app_client: CountingTransport) -> None:
    """With the application's own client (its LoggingIntegration), the same: one event, nothing discarded."""
    obs = _runtime.start(Settings.resolve(**{**TEST_DEFAULTS, "sentry_dsn": None}))
    app = make_app()
    _runtime.instrument_app(obs, app)
    log_as_uvicorn(await request_that_raises(app))
    sentry_sdk.get_client().flush(timeout=5)
    assert len(app_client.events()) == 1
    assert discarded_errors(app_client) == []


async def test_after_shutdown_the_application_client_is_as_it_was(app_client: CountingTransport) -> None:
    """Once signalfire shut down, its filter is gone from the app's logging integration: the record is an event."""
    handler = compat.logging_event_handler(sentry_sdk.get_client())
    assert handler is not None
    filters_before = list(handler.filters)
    obs = _runtime.start(Settings.resolve(**{**TEST_DEFAULTS, "sentry_dsn": None}))
    app = make_app()
    _runtime.instrument_app(obs, app)
    exc = await request_that_raises(app)
    assert _errors._reported_filter in handler.filters
    _runtime.shutdown()
    assert handler.filters == filters_before
    log_as_uvicorn(exc)
    sentry_sdk.get_client().flush(timeout=5)
    assert [e.get("logger") for e in app_client.events()] == [None, "uvicorn.error"]


def test_signalfires_own_client_keeps_no_filter_after_shutdown(own: tuple[CountingTransport, FastAPI]) -> None:
    """signalfire's own client: the filter is on its logging integration while it runs, off after shutdown."""
    client = sentry_sdk.get_client()
    handlers = [compat.logging_event_handler(client), compat.logging_breadcrumb_handler(client)]
    assert all(h is not None and _errors._reported_filter in h.filters for h in handlers)
    _runtime.shutdown()
    assert all(h is not None and _errors._reported_filter not in h.filters for h in handlers)


async def test_later_events_carry_the_same_breadcrumbs_as_before(own: tuple[CountingTransport, FastAPI]) -> None:
    """The server's record of the reported error was never a breadcrumb of later events (it belonged to the finished
    request) and is not one now; an unrelated record still is."""
    transport, app = own

    async def one_error() -> None:  # its own context, as uvicorn runs each request in a task of its own
        log_as_uvicorn(await request_that_raises(app))

    await asyncio.create_task(one_error())
    logging.getLogger("shop").warning("stock low")
    sentry_sdk.capture_message("later")
    sentry_sdk.get_client().flush(timeout=5)
    later = transport.events()[-1]
    crumbs = [crumb.get("message") for crumb in (later.get("breadcrumbs") or {}).get("values", [])]
    assert "stock low" in crumbs
    assert not any("Exception in ASGI application" in str(crumb) for crumb in crumbs)


class _Hostile(Exception):
    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no attribute lookups here: {name}")


@pytest.mark.parametrize(
    "exc_info",
    [None, True, (None, None, None), ("not", "a", "tuple of an exception"), (1, 2), (_Hostile, _Hostile(), None)],
)
def test_the_filter_passes_odd_records_and_never_raises(own: tuple[CountingTransport, FastAPI], exc_info: Any) -> None:
    """exc_info as loggers and libraries really pass it, or an exception whose attribute lookups raise: let through."""
    record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "x", None, None)
    record.exc_info = exc_info
    assert _errors._reported_filter(record) is True


async def test_the_source_lines_of_the_apps_frame_are_the_same_on_every_event(
    own: tuple[CountingTransport, FastAPI],
) -> None:
    """The app's frame carries its source lines on the second event too (read once, then remembered)."""
    transport, app = own
    await request_that_raises(app)
    await request_that_raises(app)
    sentry_sdk.get_client().flush(timeout=5)
    first, second = transport.events()
    (own_frame,) = [f for f in first["exception"]["values"][-1]["stacktrace"]["frames"] if f.get("function") == "boom"]
    assert own_frame["context_line"].strip() == 'raise RuntimeError("boom")'
    (again,) = [f for f in second["exception"]["values"][-1]["stacktrace"]["frames"] if f.get("function") == "boom"]
    assert {k: again[k] for k in ("pre_context", "context_line", "post_context")} == {
        k: own_frame[k] for k in ("pre_context", "context_line", "post_context")
    }
