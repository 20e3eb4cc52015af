"""A traceback's text, as ``traceback.format_exception`` gives it, with each frame's lines formatted once per process.

A request that raises has its traceback formatted twice by signalfire (the server span's ``exception`` event when the
request ends, the log line's ``exception`` field when the server logs it), and the same error from the same code
repeats the same frames request after request. Formatting a frame (its source line, and in Python 3.11+ the
``^^^^`` markers, found by parsing the line) is most of the cost, and depends only on the frame's location and source
line; so each frame's text is kept, bounded, and the traceback is only walked and joined. The output is the standard
library's, character for character (tests/unit/test_traceback_text.py compares them).
"""

from __future__ import annotations

import traceback
from types import TracebackType
from typing import Any

__all__ = ["format_exception"]

# Process-wide: a frame's text depends only on its location and source line. Bounded: a service has few error sites,
# and past the bound frames are formatted as the standard library does (nothing is evicted, nothing grows).
_MAX_FRAMES = 4096
_frames: dict[tuple[Any, ...], str] = {}


class _Stack(traceback.StackSummary):
    """A StackSummary whose frames' text is looked up before it is formatted (frames without locals only)."""

    def format_frame_summary(self, frame_summary: traceback.FrameSummary, **options: Any) -> str:
        # ``options``: what newer Pythons pass (3.13's ``colorize``), handed on and part of the key.
        if frame_summary.locals is not None:
            return str(super().format_frame_summary(frame_summary, **options))
        key = (
            frame_summary.filename,
            frame_summary.lineno,
            getattr(frame_summary, "end_lineno", None),
            getattr(frame_summary, "colno", None),
            getattr(frame_summary, "end_colno", None),
            frame_summary.name,
            frame_summary.line,
            tuple(sorted(options.items())),
        )
        text = _frames.get(key)
        if text is None:
            text = str(super().format_frame_summary(frame_summary, **options))
            if len(_frames) < _MAX_FRAMES:
                _frames[key] = text
        return text


def format_exception(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> str:
    """``"".join(traceback.format_exception(exc_type, exc, tb))``: the exception, its traceback, its causes, contexts
    and group members, in the standard library's words. Should this module's use of ``StackSummary`` fail on a
    Python it was not written for, the standard library formats the traceback itself."""
    try:
        return _format(exc_type, exc, tb)
    except Exception:
        return "".join(traceback.format_exception(exc_type, exc, tb))


def _format(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> str:
    summary = traceback.TracebackException(exc_type, exc, tb, compact=True)
    pending: list[traceback.TracebackException | None] = [summary]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.stack = _Stack(current.stack)  # (StackSummary.from_list makes a plain StackSummary)
        pending.extend([current.__cause__, current.__context__, *(getattr(current, "exceptions", None) or ())])
    return "".join(summary.format())
