"""sentry-sdk internals signalfire relies on: the client's ``transport`` attribute, read at every send, and the
handler through which the logging integration turns a log record into an event.

sentry-sdk has no public way to add processing *after* an already-initialised client's ``before_send`` (its options
are fixed at ``init()``), and scrubbing must run last, on what the application's own hooks returned. The client sends
every envelope (events, transactions, logs, sessions, check-ins) through ``client.transport.capture_envelope``, so
putting a wrapping :class:`sentry_sdk.transport.Transport` there is the one place that sees all of it. Writing that
attribute is the internal; tests/unit/test_compat_sentry_sdk.py holds sentry-sdk to it.

sentry-sdk's LoggingIntegration (a default integration) patches ``logging.Logger.callHandlers``: after a record's own
handlers ran, the client's integration passes it to ``_handle_record``, which calls ``handle()`` of its EventHandler
(the integration's ``_handler``, ERROR and above) and of its BreadcrumbHandler. ``logging.Handler.handle`` applies the
handler's filters first; only a record they let through is formatted and becomes an event
(``event_from_exception``: every frame walked, then the scope applied and the event serialised). A filter on that
handler, added and removed with the public ``addFilter``/``removeFilter``, is so the one way to keep a record from
becoming an event before the work is done, for one client only (``ignore_logger`` is process-wide and names a whole
logger). Reading ``_handler`` (and ``_breadcrumb_handler``, the same for breadcrumbs) is the internal, read only; the
contract test pins that the handlers are there, that they are the ones the integration sends events and breadcrumbs
through, and that their filters run before the record is formatted or the event built.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["get_transport", "logging_breadcrumb_handler", "logging_event_handler", "set_transport"]


def get_transport(client: Any) -> Any:
    """The transport ``client`` sends envelopes through, or None (a client without a DSN has none)."""
    return getattr(client, "transport", None)


def set_transport(client: Any, transport: Any) -> bool:
    """Make ``client`` send every envelope through ``transport``; False when the client has no transport slot."""
    if not hasattr(client, "transport"):
        return False
    client.transport = transport
    return True


def logging_event_handler(client: Any) -> logging.Handler | None:
    """The handler through which ``client``'s LoggingIntegration makes events of log records, or None (no logging
    integration, or one made with ``event_level=None``). Its filters run before a record is formatted or an event
    built."""
    get_integration = getattr(client, "get_integration", None)
    integration = get_integration("logging") if callable(get_integration) else None
    handler = getattr(integration, "_handler", None)
    return handler if isinstance(handler, logging.Handler) else None


def logging_breadcrumb_handler(client: Any) -> logging.Handler | None:
    """The handler through which ``client``'s LoggingIntegration makes breadcrumbs of log records, or None (no logging
    integration, or one made with ``level=None``). Its filters run before a record is formatted."""
    get_integration = getattr(client, "get_integration", None)
    integration = get_integration("logging") if callable(get_integration) else None
    handler = getattr(integration, "_breadcrumb_handler", None)
    return handler if isinstance(handler, logging.Handler) else None
