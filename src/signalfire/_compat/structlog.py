"""structlog internals signalfire relies on, in one place; pinned by tests/unit/test_compat_structlog.py.

The log pipeline skips structlog's ``merge_contextvars`` (a walk over every context variable of the current context)
for every line of an application that never called ``bind_contextvars``. Whether it did is read from structlog's
registry of the context variables it created: ``structlog.contextvars._CONTEXT_VARS`` (structlog 24 and 25), a dict
that only grows.

An application whose structlog chain ends in ``structlog.stdlib.ProcessorFormatter.wrap_for_formatter`` hands the
standard library records whose ``msg`` is the event dict and which carry ``_logger`` and ``_name`` (the ``extra``
that function returns, which ``ProcessorFormatter.format`` looks for): :func:`wrapped_event_dict` finds it the same way,
so signalfire's handler renders the fields rather than the dict's ``str()``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["bound_context_variables", "wrapped_event_dict"]


def bound_context_variables() -> dict[str, Any] | None:
    """structlog's registry of the context variables ``bind_contextvars()`` created; empty while nothing was ever
    bound. None on another layout: then the caller merges the context variables for every line (always correct)."""
    import structlog.contextvars

    registry = getattr(structlog.contextvars, "_CONTEXT_VARS", None)
    return registry if isinstance(registry, dict) else None


def wrapped_event_dict(record: Any) -> dict[str, Any] | None:
    """The event dict of a record made by structlog's ``ProcessorFormatter.wrap_for_formatter``, else None."""
    message = getattr(record, "msg", None)
    if isinstance(message, dict) and hasattr(record, "_logger") and hasattr(record, "_name"):
        return message
    return None
