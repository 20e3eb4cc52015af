"""Integrations with frameworks and client libraries, each imported at the point of use.

SQLAlchemy, Redis and httpx are traced by the OpenTelemetry contrib instrumentations, configured with signalfire's
providers and extended (statement sanitising and scrubbing, duration metrics); FastAPI/Starlette by signalfire's own
ASGI middleware (``_web/_http.py``). ``install()`` runs from ``init_observability()`` and instruments each library of
SIGNALFIRE_AUTO_INSTRUMENT that is installed (at once if imported, else when first imported); ``shutdown()`` undoes
it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from signalfire import _instance
from signalfire._compat import opentelemetry as compat

if TYPE_CHECKING:
    from signalfire._runtime import Observability
    from signalfire._settings import Settings

__all__ = [
    "ClientInstrumentation",
    "DurationRecorder",
    "available",
    "install",
    "require",
    "running",
    "sanitize_sql",
    "scrub_text",
]

_log = logging.getLogger("signalfire")

# The OpenTelemetry instrumentation each integration needs beside the library itself.
_REQUIREMENTS = {
    "sqlalchemy": ("sqlalchemy", "opentelemetry.instrumentation.sqlalchemy"),
    "redis": ("redis", "opentelemetry.instrumentation.redis"),
    "httpx": ("httpx", "opentelemetry.instrumentation.httpx"),
}


def require(module: str, function: str, extra: str) -> None:
    """Raise an ImportError naming the extra when ``module`` (a library or its instrumentation) is missing."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f'{function}() needs {module}: pip install "signalfire[{extra}]"') from exc


def available(name: str) -> bool:
    """True when the library and its OpenTelemetry instrumentation are both installed."""
    try:
        return all(importlib.util.find_spec(module) is not None for module in _REQUIREMENTS[name])
    except (ImportError, ValueError):
        return False


def running(function: str) -> Observability:
    """The running signalfire instance, or a RuntimeError saying init_observability() must come first (for the
    public ``instrument_*()`` functions, which the application calls after init)."""
    obs = _instance.current()
    if obs is None or not obs.active:
        raise RuntimeError(f"{function}() needs signalfire.init_observability() to run first")
    return obs


def install(settings: Settings, obs: Observability) -> None:
    """Instrument, globally, each library of SIGNALFIRE_AUTO_INSTRUMENT that is installed; undone at shutdown.

    A library the application has imported already is instrumented now; one it has not is instrumented when it is
    first imported (a post-import hook), so init does not pay for importing libraries the service never uses.
    """
    from signalfire.integrations import _fastapi_native

    _fastapi_native.install(settings)  # FastAPI's native telemetry under signalfire's providers (no import of FastAPI)
    for name in settings.auto_instrument:
        if not available(name):
            continue
        if name in sys.modules:
            _instrument(name, obs)
        elif name not in _hooked:
            _hooked.add(name)
            from signalfire._imports import when_imported

            when_imported(name, _on_import)


# Process-wide: libraries with a post-import hook registered (hooks cannot be removed: they check the running instance
# instead).
_hooked: set[str] = set()


def _on_import(module: Any) -> None:
    name = module.__name__
    obs = _instance.current()  # the instance running when the library is imported, maybe not the one that hooked it
    if obs is not None and obs.active and name in obs.settings.auto_instrument:
        _instrument(name, obs)


def _instrument(name: str, obs: Observability) -> None:
    try:
        importlib.import_module(f"signalfire.integrations.{name}").install(obs)
    except Exception:  # a broken third-party instrumentation must not stop the service from starting
        _log.warning("signalfire: instrumenting %s failed; it is not traced", name, exc_info=True)


# --- statement hygiene ----------------------------------------------------------------------------------------------
# Inline literals in SQL text (parameters are already placeholders): quoted strings, then numbers that are not part
# of an identifier or a placeholder ($1, :p1, %(name)s).
_MAX_STATEMENT = 4096


def scrub_text(text: str) -> str:
    """``text`` through the shared scrubber (signalfire.scrub's policy); unchanged if the scrubber fails."""
    from signalfire._scrub import _policy as _scrub

    try:
        return _scrub.active().scrub_text(text)
    except Exception:  # the scrubber never raises, but a query must not pay for a bug in it
        return text


def sanitize_sql(statement: str) -> str:
    """A SQL statement with inline literal values replaced by ``?``, scrubbed, and at most 4096 characters."""
    from signalfire._scrub._wire import strip_sql_literals

    sanitized = strip_sql_literals(statement)
    if len(sanitized) > _MAX_STATEMENT:
        sanitized = sanitized[: _MAX_STATEMENT - 3] + "..."
    return scrub_text(sanitized)


# --- duration metrics -----------------------------------------------------------------------------------------------
class ClientInstrumentation:
    """What signalfire instrumented of one library through a contrib instrumentor: the whole library, or clients one by
    one, and how to undo exactly that.

    The httpx and Redis instrumentors share this shape (``instrument()``/``uninstrument()`` for the library,
    ``instrument_client()``/``uninstrument_client()`` for one client). A library the application instrumented itself is
    left alone, and so is its uninstrumenting.
    """

    def __init__(self, name: str, instrumentor: str) -> None:
        self.name = name
        self._module, _, self._class = instrumentor.rpartition(".")
        self._lock = threading.Lock()
        self._library = False
        self._clients: list[Any] = []

    def _instrumentor(self) -> Any:
        return getattr(importlib.import_module(self._module), self._class)

    def library(self, obs: Observability, **options: Any) -> None:
        """Instrument every client of the library, once."""
        with self._lock:
            if self._library:
                return
            instrumentor = self._instrumentor()()
            if instrumentor.is_instrumented_by_opentelemetry:
                _log.info("signalfire: %s is already instrumented by OpenTelemetry; signalfire leaves it", self.name)
                return
            instrumentor.instrument(**options)
            self._library = True
        obs.on_shutdown(self.name, lambda _timeout: self.undo())

    def client(self, obs: Observability, client: Any, **options: Any) -> None:
        """Instrument one client, unless the whole library or the client itself already is."""
        with self._lock:
            if self._library or compat.client_instrumented(client):
                return
            self._instrumentor().instrument_client(client, **options)
            self._clients.append(client)
        obs.on_shutdown(self.name, lambda _timeout: self.undo(client))

    def undo(self, client: Any = None) -> None:
        """Uninstrument ``client``, or, without one, everything this object instrumented."""
        instrumentor = self._instrumentor()
        with self._lock:
            if client is not None:
                if any(each is client for each in self._clients):
                    instrumentor.uninstrument_client(client)
                    self._clients = [each for each in self._clients if each is not client]
                return
            if self._library:
                instrumentor().uninstrument()
                self._library = False
            for each in self._clients:
                instrumentor.uninstrument_client(each)
            self._clients = []


class DurationRecorder:
    """Records query and command durations in the registry's ``db.client.operation.duration``; never raises."""

    __slots__ = ("record_db_query",)

    record_db_query: Callable[..., None]

    def __init__(self, _obs: Observability, _scope: str) -> None:
        from signalfire._metrics import metrics

        self.record_db_query = metrics.record_db_query

    def record(self, system: str, operation: str, table: str | None, duration_s: float) -> None:
        """One operation: by system (db.system.name), operation and table (empty when there is none)."""
        self.record_db_query(operation, table or "", duration_s, system=system)


def now() -> float:
    """A monotonic clock reading in seconds (perf_counter)."""
    return time.perf_counter()
