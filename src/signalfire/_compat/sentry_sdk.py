"""sentry-sdk internals signalfire relies on: the client's ``transport`` attribute, read at every send.

sentry-sdk has no public way to add processing *after* an already-initialised client's ``before_send`` (its options
are fixed at ``init()``), and scrubbing must run last, on what the application's own hooks returned. The client sends
every envelope (events, transactions, logs, sessions, check-ins) through ``client.transport.capture_envelope``, so
putting a wrapping :class:`sentry_sdk.transport.Transport` there is the one place that sees all of it. Writing that
attribute is the internal; tests/unit/test_compat_sentry_sdk.py holds sentry-sdk to it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["get_transport", "set_transport"]


def get_transport(client: Any) -> Any:
    """The transport ``client`` sends envelopes through, or None (a client without a DSN has none)."""
    return getattr(client, "transport", None)


def set_transport(client: Any, transport: Any) -> bool:
    """Make ``client`` send every envelope through ``transport``; False when the client has no transport slot."""
    if not hasattr(client, "transport"):
        return False
    client.transport = transport
    return True
