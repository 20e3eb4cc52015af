"""Contract of signalfire._compat.uvicorn: how uvicorn's Server handles SIGTERM while it serves.

signalfire chains its SIGTERM handler in front of uvicorn's and relies on uvicorn restoring the handler it replaced
and re-raising the signal once it has drained. If one of these fails after a uvicorn upgrade, SIGTERM handling under
uvicorn must be revisited (see src/signalfire/_compat/uvicorn.py)."""

from __future__ import annotations

import signal
from types import FrameType

import pytest
import uvicorn

from signalfire._compat.uvicorn import is_server_exit_handler


async def _app(scope: object, receive: object, send: object) -> None:  # pragma: no cover - never served
    return None


def _server() -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(_app, lifespan="off"))


def test_the_handler_uvicorn_installs_while_serving_is_recognised() -> None:
    """Inside capture_signals(), SIGTERM's handler is the server's bound handle_exit, installed with signal.signal."""
    server = _server()
    with server.capture_signals():
        handler = signal.getsignal(signal.SIGTERM)
        assert is_server_exit_handler(handler)
        assert getattr(handler, "__self__", None) is server


def test_handle_exit_only_asks_the_server_to_exit() -> None:
    """handle_exit sets should_exit (the server then drains and runs lifespan shutdown); it does not exit itself."""
    server = _server()
    server.handle_exit(signal.SIGTERM, None)
    assert server.should_exit is True
    assert server.force_exit is False


def test_uvicorn_restores_the_previous_handler_and_raises_the_signal_again() -> None:
    """After serving, the handler uvicorn replaced is back and receives the SIGTERM uvicorn caught."""
    received: list[int] = []

    def previous(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    original = signal.signal(signal.SIGTERM, previous)
    try:
        server = _server()
        with server.capture_signals():
            handler = signal.getsignal(signal.SIGTERM)
            assert callable(handler)
            handler(signal.SIGTERM, None)  # as if the signal arrived while serving
            assert received == []
        assert signal.getsignal(signal.SIGTERM) is previous
        assert received == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, original)


@pytest.mark.parametrize("handler", [signal.SIG_DFL, signal.SIG_IGN, None, print, lambda s, f: None])
def test_other_handlers_are_not_uvicorns(handler: object) -> None:
    """Default, ignored, absent and plain callables are not taken for uvicorn's handler."""
    assert is_server_exit_handler(handler) is False


@pytest.mark.usefixtures("logging_module_as_it_was")
def test_uvicorn_logging_config_handlers_are_recognised_as_the_servers():
    """uvicorn's LOGGING_CONFIG builds StreamHandlers with uvicorn.logging formatters; a file handler is not its."""
    import logging
    import logging.config

    from uvicorn.config import LOGGING_CONFIG

    from signalfire._compat import uvicorn as compat_uvicorn

    logging.config.dictConfig(LOGGING_CONFIG)
    handlers = logging.getLogger("uvicorn").handlers + logging.getLogger("uvicorn.access").handlers
    assert len(handlers) == 2
    assert all(compat_uvicorn.is_server_log_handler(h) for h in handlers)
    assert not compat_uvicorn.is_server_log_handler(logging.StreamHandler())


def test_an_application_console_handler_with_uvicorns_formatter_is_not_uvicorns():
    """A console handler of the application's own (its own name) using uvicorn's DefaultFormatter stays the app's."""
    import logging

    from uvicorn.logging import DefaultFormatter

    from signalfire._compat import uvicorn as compat_uvicorn

    handler = logging.StreamHandler()
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
    handler.name = "console"
    assert not compat_uvicorn.is_server_log_handler(handler)
    handler.name = "default"  # the name uvicorn's LOGGING_CONFIG gives it
    assert compat_uvicorn.is_server_log_handler(handler)
