"""Contract of signalfire._compat.starlette: Starlette finds an exception's handler through
``starlette._exception_handler._lookup_exception_handler(exc_handlers, exc)`` once the exception was raised, and
``starlette._utils.is_async_callable`` tells an async handler. If these fail after a Starlette upgrade, signalfire no
longer reports 5xx HTTPExceptions answered by a handler (see src/signalfire/_compat/starlette.py)."""

from __future__ import annotations

import inspect

import httpx
from starlette import _exception_handler, _utils
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


def test_the_lookup_and_the_async_test_exist_with_the_signatures_relied_on() -> None:
    """The private lookup takes (exc_handlers, exc); is_async_callable tells coroutine functions."""
    assert list(inspect.signature(_exception_handler._lookup_exception_handler).parameters) == ["exc_handlers", "exc"]

    async def handler() -> None:
        return None

    assert _utils.is_async_callable(handler)
    assert not _utils.is_async_callable(lambda: None)


async def test_starlette_looks_the_handler_up_through_the_module_function_when_an_exception_is_raised(
    monkeypatch,
) -> None:
    """Replacing the module's lookup changes which handler answers a raised HTTPException (and only then)."""
    original = _exception_handler._lookup_exception_handler
    seen: list[tuple[type, int]] = []

    def lookup(exc_handlers, exc):
        seen.append((type(exc), getattr(exc, "status_code", 0)))
        return original(exc_handlers, exc)

    monkeypatch.setattr(_exception_handler, "_lookup_exception_handler", lookup)

    async def fail(request: Request) -> PlainTextResponse:
        raise HTTPException(503, "down")

    async def ok(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/fail", fail), Route("/ok", ok)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/ok")).status_code == 200
        assert seen == []
        assert (await client.get("/fail")).status_code == 503
    assert seen == [(HTTPException, 503)]
