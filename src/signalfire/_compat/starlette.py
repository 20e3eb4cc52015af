"""What signalfire relies on of Starlette's exception-handler lookup (starlette 1.7 to 1.10 at least).

Starlette's ``ExceptionMiddleware`` answers an ``HTTPException`` with the handler that the private function
``starlette._exception_handler._lookup_exception_handler(exc_handlers, exc)`` returns; the exception never reaches an
outer middleware. signalfire reports a 5xx ``HTTPException`` to Sentry by wrapping that lookup: it runs only once an
exception was raised, so a request without an error pays nothing. ``starlette._utils.is_async_callable`` tells whether
the handler found must be awaited. tests/unit/test_compat_starlette.py pins both; if they move, 5xx HTTPExceptions
answered by a handler go unreported (one warning), nothing else changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["wrap_exception_handler_lookup"]

_lock = threading.Lock()
# Process-wide: Starlette's class is patched once per process (the wrapper checks signalfire's state when it runs).
_wrapped = False


def wrap_exception_handler_lookup(wrap: Callable[[Any, Exception, bool], Any]) -> bool:
    """Make Starlette run ``wrap(handler, exc, is_async)`` (or what it returns) in place of every handler it finds
    for an exception; once per process. False when this Starlette has no such lookup (nothing is changed then)."""
    global _wrapped  # noqa: PLW0603 - a process-wide patch, applied once
    with _lock:
        if _wrapped:
            return True
        try:
            from starlette import _exception_handler as module
            from starlette._utils import is_async_callable

            original = module._lookup_exception_handler
        except Exception:
            return False

        def lookup(exc_handlers: Any, exc: Exception) -> Any:
            handler = original(exc_handlers, exc)
            if handler is None:
                return None
            return wrap(handler, exc, is_async_callable(handler))

        module._lookup_exception_handler = lookup
        _wrapped = True
        return True
