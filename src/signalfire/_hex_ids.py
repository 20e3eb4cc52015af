"""A span context's ids as lowercase hex text, formatted once per span context.

A request's log lines (``trace_id``, ``span_id``, ``trace_flags``) and its duration exemplar (``trace_id``,
``span_id``) name the same span; formatting a 128-bit id costs more than looking it up, so the last context's text is
kept here, one entry replaced whole (a thread never sees one context's trace id paired with another's span id).
"""

from __future__ import annotations

from typing import Any

__all__ = ["hex_ids"]

_last: tuple[Any, str, str, str] = (None, "", "", "")


def hex_ids(context: Any) -> tuple[Any, str, str, str]:
    """``(context, trace id, span id, trace flags)``, the ids as 32, 16 and 2 lowercase hex digits."""
    global _last  # noqa: PLW0603 - a one-entry cache, replaced whole
    last = _last
    if last[0] is not context:
        last = (context, f"{context.trace_id:032x}", f"{context.span_id:016x}", f"{context.trace_flags:02x}")
        _last = last
    return last
