"""structlog internals signalfire relies on, in one place; pinned by tests/unit/test_compat_structlog.py.

The log pipeline skips structlog's ``merge_contextvars`` (a walk over every context variable of the current context)
for every line of an application that never called ``bind_contextvars``. Whether it did is read from structlog's
registry of the context variables it created: ``structlog.contextvars._CONTEXT_VARS`` (structlog 24 and 25), a dict
that only grows.
"""

from __future__ import annotations

from typing import Any

__all__ = ["bound_context_variables"]


def bound_context_variables() -> dict[str, Any] | None:
    """structlog's registry of the context variables ``bind_contextvars()`` created; empty while nothing was ever
    bound. None on another layout: then the caller merges the context variables for every line (always correct)."""
    import structlog.contextvars

    registry = getattr(structlog.contextvars, "_CONTEXT_VARS", None)
    return registry if isinstance(registry, dict) else None
