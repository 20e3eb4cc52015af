"""signalfire: drop-in observability for Python web services.

One call at start-up wires OpenTelemetry traces and metrics (and, as they land, Prometheus, structlog and Sentry),
configured from environment variables::

    import signalfire

    signalfire.init_observability(app)

The public names are listed in ``__all__``; everything in a module whose name starts with ``_`` is private.
"""

from typing import TYPE_CHECKING

from signalfire._errors import add_breadcrumb, capture_exception, capture_message, set_context, set_user
from signalfire._logging import get_logger, logging_processors
from signalfire._metrics import metrics
from signalfire._runtime import Observability, init_observability, shutdown
from signalfire._scrub._policy import register_secret, scrub
from signalfire._settings import ConfigurationError, Settings
from signalfire._tracing import span, traced
from signalfire._version import __version__

if TYPE_CHECKING:
    from signalfire import health
    from signalfire.integrations.fastapi import instrument_fastapi
    from signalfire.integrations.httpx import instrument_httpx, uninstrument_httpx
    from signalfire.integrations.redis import instrument_redis, uninstrument_redis
    from signalfire.integrations.sqlalchemy import instrument_sqlalchemy, uninstrument_sqlalchemy

__all__ = [
    "ConfigurationError",
    "Observability",
    "Settings",
    "__version__",
    "add_breadcrumb",
    "capture_exception",
    "capture_message",
    "get_logger",
    "health",
    "init_observability",
    "instrument_fastapi",
    "instrument_httpx",
    "instrument_redis",
    "instrument_sqlalchemy",
    "logging_processors",
    "metrics",
    "register_secret",
    "scrub",
    "set_context",
    "set_user",
    "shutdown",
    "span",
    "traced",
    "uninstrument_httpx",
    "uninstrument_redis",
    "uninstrument_sqlalchemy",
]

# Public names whose modules are imported on first use, not by ``import signalfire``: a service without health checks
# or without one of these libraries does not pay for them at start-up. name -> module that defines it.
_LAZY = {
    "health": "signalfire.health",
    "instrument_fastapi": "signalfire.integrations.fastapi",
    "instrument_httpx": "signalfire.integrations.httpx",
    "instrument_redis": "signalfire.integrations.redis",
    "instrument_sqlalchemy": "signalfire.integrations.sqlalchemy",
    "uninstrument_httpx": "signalfire.integrations.httpx",
    "uninstrument_redis": "signalfire.integrations.redis",
    "uninstrument_sqlalchemy": "signalfire.integrations.sqlalchemy",
}

# Hidden from type checkers: they take the names from the imports above, and a visible module __getattr__ would make
# them accept any attribute of signalfire, typos included.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        module_name = _LAZY.get(name)
        if module_name is None:
            raise AttributeError(f"module 'signalfire' has no attribute {name!r}")
        import importlib

        module = importlib.import_module(module_name)
        value = module if name == "health" else getattr(module, name)
        globals()[name] = value  # later look-ups find it without coming here again
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
