"""FastAPI / Starlette: signalfire's plain ASGI middleware, placed outside Starlette's ServerErrorMiddleware.

``app.add_middleware`` would put it inside ServerErrorMiddleware, where it never sees the 500 response an unhandled
exception becomes (nor can it add the request id to it). Like opentelemetry-instrumentation-fastapi, signalfire wraps
the app's ``build_middleware_stack`` instead, so the middleware is the outermost layer whenever Starlette (re)builds
the stack: init may run before or after routes and middleware are added, and even after the app has started.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from signalfire import _instance
from signalfire._web import _http

if TYPE_CHECKING:
    from signalfire._runtime import Observability

__all__ = ["install", "instrument_app", "instrument_fastapi", "uninstall"]

_log = logging.getLogger("signalfire")
_INSTALLED = "_signalfire_installed"


def _require_starlette() -> None:
    try:
        import starlette  # noqa: F401
    except ImportError as exc:
        raise ImportError('instrument_fastapi() needs starlette: pip install "signalfire[fastapi]"') from exc


class _Installed:
    """What install() left on an app: the original stack builder, the middlewares built since, and the instance that
    instrumented it last (its settings; its ``note_owner`` for what the build finds; its lifespan flush)."""

    __slots__ = ("built", "obs", "original")

    def __init__(self, original: Any, obs: Observability) -> None:
        self.original = original
        self.obs = obs
        self.built: list[_http.ObservabilityMiddleware] = []

    def note(self, signal: str, found: str, action: str) -> None:
        self.obs.note_owner(signal, found, action)


def install(obs: Observability, app: Any) -> None:
    """Make signalfire's ASGI middleware the outermost layer of ``app`` (FastAPI or Starlette), once.

    Installing again (a new ``init_observability()`` after ``shutdown()``) keeps the middleware in place and gives it
    the new settings, so the app's own middleware instances are not rebuilt. FastAPI's native telemetry needs nothing
    here: the tracer and meter it gets from signalfire's providers record nothing (see ``_fastapi_native``).
    """
    _require_starlette()
    installed: _Installed | None = getattr(app, _INSTALLED, None)
    if installed is not None:
        installed.obs = obs
        for middleware in installed.built:
            middleware.configure(obs.settings)
            middleware.instance = obs
        return
    installed = _Installed(app.build_middleware_stack, obs)
    # The stack is built at the first request, when every route and middleware has been added: conflicts are judged
    # then. The closure holds the app weakly: signalfire must not keep an app alive that the application dropped.
    app_ref = weakref.ref(app)
    app_name = type(app).__name__

    def build_middleware_stack() -> Any:
        stack = installed.original()
        target = app_ref()
        foreign = any(type(layer).__name__ == "OpenTelemetryMiddleware" for layer in _http.iter_middlewares(stack))
        settings = installed.obs.settings
        if foreign:
            _log.warning(
                "signalfire: %s is also instrumented by OpenTelemetry's FastAPIInstrumentor; its server span is kept "
                "and signalfire adds none (remove FastAPIInstrumentor to get signalfire's span)",
                app_name,
            )
            installed.note(
                "traces",
                f"OpenTelemetry's FastAPIInstrumentor on {app_name}",
                "kept: its server span is the request's span, signalfire adds none (FastAPI's native telemetry "
                "stands aside for it too); signalfire records the HTTP metrics",
            )
        from signalfire import health

        serve_metrics = settings.metrics_on_app
        if serve_metrics and target is not None and health.serves_path(target, settings.metrics_path):
            serve_metrics = False
            _log.warning(
                "signalfire: %s already serves %s; signalfire leaves it to the app and does not answer it (set "
                "SIGNALFIRE_METRICS_PATH, or SIGNALFIRE_METRICS_PORT with SIGNALFIRE_METRICS_ON_APP=false)",
                app_name,
                settings.metrics_path,
            )
            installed.note(
                "routes",
                f"{app_name}'s own {settings.metrics_path}",
                "kept: signalfire's Prometheus exposition is not served there (SIGNALFIRE_METRICS_PATH moves it, "
                "SIGNALFIRE_METRICS_PORT serves it on its own port)",
            )
        if target is not None:
            health.yield_to_app(target, installed.note)
        middleware = _http.ObservabilityMiddleware(
            stack,
            settings,
            spans=not foreign,
            serve_metrics=serve_metrics,
            instance=installed.obs,
            running=_instance.current,
        )
        installed.built = [middleware]
        return middleware

    setattr(app, _INSTALLED, installed)
    app.build_middleware_stack = build_middleware_stack
    # A stack Starlette already built (the app has served a request) is rebuilt with us outside on the next request.
    app.middleware_stack = None


def uninstall(app: Any) -> None:
    """Remove signalfire's middleware from ``app``; the next request runs the app's own stack."""
    installed: _Installed | None = getattr(app, _INSTALLED, None)
    if installed is None:
        return
    app.build_middleware_stack = installed.original
    delattr(app, _INSTALLED)
    app.middleware_stack = None


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
    running = _instance.current()
    if running is None:
        raise RuntimeError("instrument_fastapi() needs signalfire.init_observability() to run first")
    instrument_app(running, app)


def instrument_app(obs: Observability, app: Any, health_checks: Iterable[Any] | None = None) -> None:
    """Instrument an ASGI app for ``obs`` and add its health endpoints, once per handle; health_checks given again
    replace the app's checks."""
    seen = not obs._first_sight(app)
    if seen and health_checks is None:
        return
    if obs.settings.health_enabled:
        from signalfire import health

        health.install(obs, app, health_checks)
    elif health_checks:
        _log.warning("signalfire: SIGNALFIRE_HEALTH_ENABLED=false, so the health_checks given are not served")
    if seen or not obs.active:
        return
    install(obs, app)
