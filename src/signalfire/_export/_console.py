"""The development span tree: finished traces printed to the terminal, nested, with durations and key attributes.

It is a SpanExporter behind the ordinary BatchSpanProcessor, so printing never happens on the request path. Spans are
held per trace until the trace's local root ends; the number of traces held is bounded.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Sequence
from typing import IO, Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

__all__ = ["SpanTreeExporter", "render_tree"]

# Attributes worth a glance in a terminal; everything else stays in the exported span.
KEY_ATTRIBUTES = (
    "http.response.status_code",
    "db.system",
    "db.system.name",
    "db.operation",
    "db.operation.name",
    "db.statement",
    "db.query.text",
    "server.address",
    "url.full",
    "error.type",
)
MAX_PENDING_TRACES = 1_000
MAX_ATTRIBUTE_CHARS = 60

_DIM = "\033[2m"
_RED = "\033[31m"
_RESET = "\033[0m"


class SpanTreeExporter(SpanExporter):
    """Print each finished trace as an indented tree on ``stream`` (stderr by default)."""

    def __init__(self, stream: IO[str] | None = None, *, color: bool | None = None) -> None:
        self._stream = stream
        self._color = color
        self._pending: OrderedDict[int, list[ReadableSpan]] = OrderedDict()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            return self._export(spans)
        except Exception:  # a closed or broken terminal stream: the tree is lost, nothing else is
            return SpanExportResult.FAILURE

    def _export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        stream = self._stream or sys.stderr
        color = self._color if self._color is not None else stream.isatty()
        for finished in spans:
            if finished.context is None:
                continue
            trace_id = finished.context.trace_id
            self._pending.setdefault(trace_id, []).append(finished)
            if finished.parent is None or finished.parent.is_remote:
                stream.write(render_tree(self._pending.pop(trace_id), color=color))
        while len(self._pending) > MAX_PENDING_TRACES:
            self._pending.popitem(last=False)
        stream.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._pending.clear()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _duration_ms(item: ReadableSpan) -> float:
    if item.start_time is None or item.end_time is None:
        return 0.0
    return (item.end_time - item.start_time) / 1e6


def _describe(item: ReadableSpan, color: bool) -> str:
    parts = [f"{item.name}  {_duration_ms(item):.1f} ms"]
    attributes: Any = item.attributes or {}
    for key in KEY_ATTRIBUTES:
        if key in attributes:
            value = str(attributes[key])
            if len(value) > MAX_ATTRIBUTE_CHARS:
                value = value[: MAX_ATTRIBUTE_CHARS - 1] + "…"
            parts.append(f"{key}={value}")
    line = "  ".join(parts)
    if item.status.status_code is StatusCode.ERROR:
        line += f"  ERROR {item.status.description or ''}".rstrip()
        return f"{_RED}{line}{_RESET}" if color else line
    return line


def render_tree(spans: Sequence[ReadableSpan], *, color: bool = False) -> str:
    """Render the spans of one trace as a tree, children in start order, with the trace id on the first line."""
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    children: dict[int | None, list[ReadableSpan]] = {}
    for item in spans:
        parent = item.parent.span_id if item.parent is not None and item.parent.span_id in by_id else None
        children.setdefault(parent, []).append(item)
    for group in children.values():
        group.sort(key=lambda s: s.start_time or 0)

    lines: list[str] = []

    def walk(item: ReadableSpan, prefix: str, last: bool, root: bool) -> None:
        branch = "" if root else ("└─ " if last else "├─ ")
        lines.append(prefix + branch + _describe(item, color))
        kids = children.get(item.context.span_id if item.context else None, [])
        deeper = prefix if root else prefix + ("   " if last else "│  ")
        for index, kid in enumerate(kids):
            walk(kid, deeper, index == len(kids) - 1, False)

    for root_span in children.get(None, []):
        trace_id = format(root_span.context.trace_id, "032x") if root_span.context else "?"
        header = f"trace {trace_id}"
        lines.append(f"{_DIM}{header}{_RESET}" if color else header)
        walk(root_span, "  ", True, True)
    return "\n".join(lines) + "\n"
