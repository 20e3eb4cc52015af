"""The access log: one line per HTTP request, and the 500 that still carries the request id.

Used by the ASGI middleware in ``_http.py``; everything that can be decided once (excluded paths, rate, threshold,
the logger) is decided in ``AccessLog.__init__``.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from signalfire import _logging
from signalfire._settings import Settings
from signalfire._web import _url

__all__ = ["AccessLog", "send_error_response"]

_log = logging.getLogger("signalfire")

ACCESS_LOGGER = "signalfire.access"
_ERROR_BODY = b"Internal Server Error"
# connection: close, because the server closes a connection whose app raised (docs/reliability.md, "Keep-alive").
_ERROR_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(_ERROR_BODY)).encode()),
    (b"connection", b"close"),
]


class AccessLog:
    """Writes the access-log line of a finished request, honouring SIGNALFIRE_ACCESS_LOG_SAMPLE_RATE (5xx and requests
    slower than SIGNALFIRE_ACCESS_LOG_SLOW_MS always logged). Excluded paths (SIGNALFIRE_EXCLUDED_PATHS) never reach it:
    the middleware passes them straight through."""

    __slots__ = ("_limit", "_logger", "_rate", "_slow_ms")

    def __init__(self, settings: Settings) -> None:
        # The path is cut where the span's url.path is cut (the attribute value limit) before it is scrubbed: the
        # line's work is bounded as the span's is, and both scrub the same string once (the scrubber's memo).
        self._limit = settings.span_attribute_value_length_limit or settings.attribute_value_length_limit
        self._rate = settings.access_log_sample_rate
        self._slow_ms = settings.access_log_slow_ms
        # structlog's logger, called without its wrapper layers while its chain is signalfire's own (the same line)
        self._logger = _logging.DirectLogger(ACCESS_LOGGER)

    def write(
        self, scope: dict[str, Any], method: str, route: str, status: int, seconds: float, *, path: str | None = None
    ) -> None:
        """Log one request (called inside its span and request-id context, so both ids are on the line); ``path`` is
        the path as the URL policy records it, when the caller has it already."""
        try:
            if path is None:
                path = _url.recorded_path(scope.get("path", ""), scope.get("path_params"))
            if len(path) > self._limit:
                path = path[: self._limit]
            duration_ms = round(seconds * 1000, 2)
            slow = duration_ms >= self._slow_ms
            if status < 500 and not slow and self._rate < 1.0 and random.random() >= self._rate:
                return
            query: bytes = scope.get("query_string", b"")
            if query:
                path = f"{path}?{_url.recorded_query(query.decode('latin-1'))}"
            self._logger.log(
                "error" if status >= 500 else "warning" if slow else "info",
                f"{method} {route} {status}",
                {"method": method, "route": route, "path": path, "status": status, "duration_ms": duration_ms},
            )
        except Exception:  # the access log must never break the response
            _log.debug("signalfire: writing the access log failed", exc_info=True)


async def send_error_response(scope: dict[str, Any], send: Any, request_id_header: tuple[bytes, bytes]) -> None:
    """Answer 500 with the request id for an app that raised before it started its response.

    Starlette's debug mode is left alone: its ServerErrorMiddleware shows the traceback page instead.
    """
    if getattr(scope.get("app"), "debug", False):
        return
    try:
        await send({"type": "http.response.start", "status": 500, "headers": [*_ERROR_HEADERS, request_id_header]})
        await send({"type": "http.response.body", "body": _ERROR_BODY})
    except Exception:  # the client went away; the original exception is what matters
        _log.debug("signalfire: sending the 500 response failed", exc_info=True)
