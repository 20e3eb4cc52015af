"""signalfire: drop-in observability for Python web services.

One call at start-up wires OpenTelemetry traces and metrics (and, as they land, Prometheus, structlog and Sentry),
configured from environment variables::

    import signalfire

    signalfire.init_observability(app)

The public names are listed in ``__all__``; everything in a module whose name starts with ``_`` is private.
"""

from signalfire import health
from signalfire._errors import add_breadcrumb, capture_exception, capture_message, set_context, set_user
from signalfire._logging import get_logger
from signalfire._metrics import metrics
from signalfire._runtime import Observability, init_observability, shutdown
from signalfire._scrub import scrub
from signalfire._settings import ConfigurationError, Settings
from signalfire._tracing import span, traced
from signalfire._version import __version__
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
    "metrics",
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
