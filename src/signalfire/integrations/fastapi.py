"""FastAPI / Starlette: one plain ASGI middleware per app (never BaseHTTPMiddleware, which costs far more)."""

from __future__ import annotations

from typing import Any

from signalfire import _http

__all__ = ["install", "instrument_fastapi"]


def _require_starlette() -> None:
    try:
        import starlette  # noqa: F401
    except ImportError as exc:
        raise ImportError('instrument_fastapi() needs starlette: pip install "signalfire[fastapi]"') from exc


def install(obs: Any, app: Any) -> None:
    """Wrap ``app`` (FastAPI or Starlette) in signalfire's ASGI middleware, once."""
    _require_starlette()
    if getattr(app, "_signalfire_instrumented", False):
        return
    app.add_middleware(_http.ObservabilityMiddleware, settings=obs.settings)
    app._signalfire_instrumented = True


def instrument_fastapi(app: Any) -> None:
    """Instrument a FastAPI or Starlette app with the running signalfire instance.

    ``init_observability(app)`` does this for you; call it yourself for apps created after init. Instrumenting the same
    app twice does nothing the second time.

    Example::

        app = FastAPI()
        signalfire.init_observability()
        signalfire.instrument_fastapi(app)
    """
    from signalfire import _runtime

    running = _runtime.current()
    if running is None:
        raise RuntimeError("instrument_fastapi() needs signalfire.init_observability() to run first")
    _runtime.instrument_app(running, app)
