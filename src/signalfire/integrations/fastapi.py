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
    _disable_native_telemetry(app)
    app.add_middleware(_http.ObservabilityMiddleware, settings=obs.settings)
    app._signalfire_instrumented = True


def _disable_native_telemetry(app: Any) -> None:
    """Turn off FastAPI's own OpenTelemetry telemetry (FastAPI >= 0.165) on an app signalfire instruments.

    FastAPI enables it as soon as a global tracer provider is configured, which init_observability() does; left on, it
    would open a second server span (in a second trace), per-operation spans and its own HTTP metrics for every
    request. One owner per signal: signalfire's middleware. ``FastAPI(telemetry=...)`` keeps its config dict by
    reference, so setting the documented keys here takes effect for the running app.
    """
    config = getattr(app, "_telemetry", None)
    if isinstance(config, dict):
        config.update(tracing=False, metrics=False, logs=False)


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
