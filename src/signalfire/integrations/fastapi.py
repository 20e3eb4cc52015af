"""FastAPI / Starlette: signalfire's plain ASGI middleware, placed outside Starlette's ServerErrorMiddleware.

``app.add_middleware`` would put it inside ServerErrorMiddleware, where it never sees the 500 response an unhandled
exception becomes (nor can it add the request id to it). Like opentelemetry-instrumentation-fastapi, signalfire wraps
the app's ``build_middleware_stack`` instead, so the middleware is the outermost layer whenever Starlette (re)builds
the stack: init may run before or after routes and middleware are added, and even after the app has started.
"""

from __future__ import annotations

import logging
from typing import Any

from signalfire import _http

__all__ = ["install", "instrument_fastapi", "uninstall"]

_log = logging.getLogger("signalfire")
_INSTALLED = "_signalfire_installed"


def _require_starlette() -> None:
    try:
        import starlette  # noqa: F401
    except ImportError as exc:
        raise ImportError('instrument_fastapi() needs starlette: pip install "signalfire[fastapi]"') from exc


class _Installed:
    """What install() left on an app: the original stack builder and the middlewares built since."""

    __slots__ = ("built", "original", "settings")

    def __init__(self, original: Any, settings: Any) -> None:
        self.original = original
        self.settings = settings
        self.built: list[_http.ObservabilityMiddleware] = []


def install(obs: Any, app: Any) -> None:
    """Make signalfire's ASGI middleware the outermost layer of ``app`` (FastAPI or Starlette), once.

    Installing again (a new ``init_observability()`` after ``shutdown()``) keeps the middleware in place and gives it
    the new settings, so the app's own middleware instances are not rebuilt.
    """
    _require_starlette()
    installed: _Installed | None = getattr(app, _INSTALLED, None)
    if installed is not None:
        installed.settings = obs.settings
        for middleware in installed.built:
            middleware.configure(obs.settings)
        return
    installed = _Installed(app.build_middleware_stack, obs.settings)

    def build_middleware_stack() -> Any:
        stack = installed.original()
        foreign = any(type(layer).__name__ == "OpenTelemetryMiddleware" for layer in _http.iter_middlewares(stack))
        if foreign:
            _log.warning(
                "signalfire: %s is also instrumented by OpenTelemetry's FastAPIInstrumentor; its server span is kept "
                "and signalfire adds none (remove FastAPIInstrumentor to get signalfire's span)",
                type(app).__name__,
            )
        middleware = _http.ObservabilityMiddleware(stack, installed.settings, spans=not foreign)
        installed.built = [middleware]
        return middleware

    setattr(app, _INSTALLED, installed)
    app.build_middleware_stack = build_middleware_stack
    # A stack Starlette already built (the app has served a request) is rebuilt with us outside on the next request.
    app.middleware_stack = None
    _disable_native_telemetry(app)


def uninstall(app: Any) -> None:
    """Remove signalfire's middleware from ``app``; the next request runs the app's own stack."""
    installed: _Installed | None = getattr(app, _INSTALLED, None)
    if installed is None:
        return
    app.build_middleware_stack = installed.original
    delattr(app, _INSTALLED)
    app.middleware_stack = None


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
    app twice does nothing the second time. Requests to SIGNALFIRE_EXCLUDED_PATHS (default ``/health*,/metrics``) and
    OTEL_PYTHON_FASTAPI_EXCLUDED_URLS get no span, no metric and no access-log line.

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
