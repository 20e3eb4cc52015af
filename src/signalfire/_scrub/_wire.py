"""Scrub at the wire: the one policy (:class:`_scrub._policy.Scrubber`) over the whole OpenTelemetry data model.

Applied at the last step before an exporter encodes, on the exporter's thread (never on the request path):

- **spans**: name, attributes, event names and attributes, link attributes, status description, the trace state of
  the span's and its parent's and links' contexts, the resource's and the instrumentation scope's attributes;
- **metric points** of every meter (signalfire's registry and every ``metrics.get_meter(...)`` instrument): point and
  exemplar attributes, descriptions, resource and scope attributes;
- **log records**: body, attributes, event name, resource and scope attributes.

Every copy is built through public constructors (``ReadableSpan``, ``Event``, ``Link``, ``SpanContext``,
``TraceState``, ``Resource``, ``InstrumentationScope``, the metric data classes, ``dataclasses.replace`` on the log
record), never by writing another library's private fields; what has nothing to redact is passed on as the same
object. Statement data (SQLAlchemy's ``[parameters: ...]`` and PostgreSQL's ``DETAIL: Key (...)=(...)`` in database
error messages) is removed from every string as well, whatever the policy says of its shape. Anything that cannot be
scrubbed is dropped and counted (``_drops``), never exported unchecked.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, Status, TraceState

from signalfire._scrub._policy import Scrubber, marker, registry_generation, scrub_attribute

__all__ = [
    "ScrubbingLogExporter",
    "ScrubbingSpanExporter",
    "scrub_log_records",
    "scrub_metrics_data",
    "scrub_span",
    "scrub_spans",
    "strip_sql_literals",
    "strip_statement_data",
    "wire_attribute",
    "wire_text",
]

_log = logging.getLogger("signalfire")
# Where losses are counted: (signal, reason, count). Injected by the caller (_export._drops.dropped for exporters
# the runtime builds), so that this module needs nothing above it.
DropSink = Callable[[str, str, int], None]


def _warn_drop(signal: str, reason: str, count: int) -> None:
    _log.warning("signalfire: %d %s item(s) could not be scrubbed and were dropped (%s)", count, signal, reason)


# --- statement data ---------------------------------------------------------------------------------------------------
# SQLAlchemy's StatementError.__str__ appends "[parameters: <repr of the bound parameters>]" (until the closing
# bracket of the repr at the end of the line); PostgreSQL repeats the offending values in "DETAIL:  Key (col)=(value)".
# Both are linear scans: a literal start, then a class of characters without backtracking.
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*")
_PG_KEY_DETAIL = re.compile(r"(Key \([^)\n]{0,200}\)=\()[^\n]*")
_PARAMETERS_MARKER = f"[parameters: {marker('parameters')}]"


def _replace_key_detail(match: re.Match[str]) -> str:
    return f"{match.group(1)}{marker('parameters')}) ..."


# Inline literal values in SQL: quoted strings (standard and E'' escapes) and numbers not part of a name or a
# placeholder (":1", "$1", "%(n)s" stay). Applied to db.statement / db.query.text of every span at the wire, so that
# no statement leaves with its values whatever recorded it (the SQLAlchemy instrumentation, another library, the app).
_SQL_STRING = re.compile(r"'(?:[^']|'')*'|E'(?:[^'\\]|\\.|'')*'")
_SQL_NUMBER = re.compile(r"(?<![\w$:.%])-?\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b", re.IGNORECASE)
STATEMENT_KEYS = frozenset({"db.statement", "db.query.text"})


def strip_sql_literals(statement: str) -> str:
    """A SQL statement with inline literal values replaced by ``?``."""
    if "'" not in statement and not any(char.isdigit() for char in statement):
        return statement
    return _SQL_NUMBER.sub("?", _SQL_STRING.sub("?", statement))


def strip_statement_data(text: str) -> str:
    """``text`` without the bound parameters a database error message repeats (SQLAlchemy, PostgreSQL)."""
    if "[parameters: " in text:
        text = _SQL_PARAMETERS.sub(_PARAMETERS_MARKER, text)
    if "Key (" in text:
        text = _PG_KEY_DETAIL.sub(_replace_key_detail, text)
    return text


def wire_text(scrubber: Scrubber, text: str) -> str:
    """A string as it leaves the process: scrubbed by the policy, statement data removed."""
    return strip_statement_data(scrubber.scrub_text(text))


def wire_attribute(scrubber: Scrubber, key: Any, value: Any) -> Any:
    """An attribute's value as it leaves the process (see :func:`_scrub._policy.scrub_attribute`), with statement
    data removed from strings; the same object when nothing changed."""
    new = scrub_attribute(scrubber, key, value)
    if isinstance(new, str):
        if key in STATEMENT_KEYS:
            stripped = strip_sql_literals(new)
            new = stripped if stripped != new else new
        if "[parameters: " in new or "Key (" in new:
            return strip_statement_data(new)
    elif isinstance(new, tuple | list) and new and isinstance(new[0], str):
        items = tuple(strip_statement_data(v) if isinstance(v, str) else v for v in new)
        return new if items == tuple(new) else items
    return new


# Attribute keys scrubbed, per policy and known-secret generation: keys are a small repeating set (semantic-convention
# names), scrubbed once each. Keyed by the scrubber's id (not the scrubber: the cache must not keep old policies alive)
# and emptied when a secret is registered.
_KEYS: dict[tuple[int, str], str] = {}
_KEYS_SIZE = 2048
_keys_generation = -1


def _wire_key(scrubber: Scrubber, key: str) -> str:
    global _keys_generation  # noqa: PLW0603 - the cache above is emptied when the registry moves on
    generation = registry_generation()
    if generation != _keys_generation:
        _KEYS.clear()
        _keys_generation = generation
    cached = _KEYS.get((id(scrubber), key))
    if cached is None:
        cached = wire_text(scrubber, key)
        if len(_KEYS) >= _KEYS_SIZE:
            _KEYS.clear()
        if len(key) <= 256:
            _KEYS[(id(scrubber), key)] = cached
    return cached


def _attributes(scrubber: Scrubber, attributes: Any, dropped: int | None = None) -> Any:
    """Scrubbed attributes, or the same object when nothing changed; a copy keeps the count of attributes the SDK
    dropped (``dropped``, or the original's own)."""
    if not attributes:
        return attributes
    result: dict[Any, Any] = {}
    changed = False
    for key, value in attributes.items():
        # a key that itself holds a secret goes out under its scrubbed name
        new_key = _wire_key(scrubber, key) if isinstance(key, str) and len(key) >= 8 else key
        new = wire_attribute(scrubber, key, value)
        if new_key != key or (new is not value and new != value):
            changed = True
        result[new_key] = new
    if not changed:
        return attributes
    return _counted(result, getattr(attributes, "dropped", 0) if dropped is None else dropped)


def _counted(attributes: Any, dropped: int) -> BoundedAttributes:
    """Attributes for a rebuilt span that still say how many the SDK dropped (a plain mapping would say 0)."""
    merged = BoundedAttributes(maxlen=None, attributes=attributes, immutable=True)
    merged.dropped = dropped
    return merged


class _ObjectMemo:
    """Scrubbed copies of objects that repeat across a batch and across batches (resources, scopes), by identity;
    bounded, and holding the original so its id cannot be reused while memoised."""

    __slots__ = ("_entries", "_generation", "_scrub")

    def __init__(self, scrub: Callable[[Any], Any]) -> None:
        self._entries: dict[int, tuple[Any, Any]] = {}
        self._scrub = scrub
        self._generation = registry_generation()

    def get(self, item: Any) -> Any:
        if self._generation != registry_generation():  # a secret registered since: the copies may hold it
            self._entries.clear()
            self._generation = registry_generation()
        entry = self._entries.get(id(item))
        if entry is not None and entry[0] is item:
            return entry[1]
        scrubbed = self._scrub(item)
        if len(self._entries) >= 64:
            self._entries.clear()
        self._entries[id(item)] = (item, scrubbed)
        return scrubbed


def scrub_resource(scrubber: Scrubber, resource: Resource | None) -> Resource | None:
    """The resource with its attributes scrubbed (the same object when nothing changed)."""
    if resource is None:
        return None
    attributes = _attributes(scrubber, resource.attributes)
    if attributes is resource.attributes:
        return resource
    return Resource(dict(attributes), resource.schema_url)


def scrub_scope(scrubber: Scrubber, scope: InstrumentationScope | None) -> InstrumentationScope | None:
    """The instrumentation scope with its name, version and attributes scrubbed (the same object when unchanged)."""
    if scope is None:
        return None
    name = wire_text(scrubber, scope.name) if scope.name else scope.name
    version = wire_text(scrubber, scope.version) if scope.version else scope.version
    attributes = _attributes(scrubber, scope.attributes)
    if name == scope.name and version == scope.version and attributes is scope.attributes:
        return scope
    return InstrumentationScope(name, version, scope.schema_url, dict(attributes) if attributes else None)


def scrub_trace_state(scrubber: Scrubber, state: TraceState | None) -> TraceState | None:
    """The trace state with every member's value scrubbed (the same object when nothing changed)."""
    if not state:
        return state
    pairs = [(key, value, wire_attribute(scrubber, key, value)) for key, value in state.items()]
    if all(new == value for _, value, new in pairs):
        return state
    # a scrubbed value that is not a valid list-member value ("," or "=" in it) becomes the bare marker
    safe = [
        (key, new if isinstance(new, str) and "," not in new and "=" not in new else marker("secret"))
        for key, _, new in pairs
    ]
    return TraceState(safe)


def scrub_context(scrubber: Scrubber, context: SpanContext | None) -> SpanContext | None:
    """The span context with its trace state scrubbed (the same object when nothing changed)."""
    if context is None:
        return None
    state = scrub_trace_state(scrubber, context.trace_state)
    if state is context.trace_state:
        return context
    return SpanContext(context.trace_id, context.span_id, context.is_remote, context.trace_flags, state)


def _events(scrubber: Scrubber, events: Sequence[Event]) -> list[Event] | None:
    """Scrubbed events, or None when none changed."""
    changed = False
    result = []
    for event in events:
        name = wire_text(scrubber, event.name) if event.name else event.name
        attributes = _attributes(scrubber, event.attributes)
        if name != event.name or attributes is not event.attributes:
            changed = True
            result.append(Event(name, attributes, event.timestamp))
        else:
            result.append(event)
    return result if changed else None


def _links(scrubber: Scrubber, links: Sequence[Link]) -> list[Link] | None:
    """Scrubbed links, or None when none changed."""
    changed = False
    result = []
    for link in links:
        context = scrub_context(scrubber, link.context)
        attributes = _attributes(scrubber, link.attributes)
        if context is not link.context or attributes is not link.attributes:
            changed = True
            result.append(Link(context, attributes))  # type: ignore[arg-type]
        else:
            result.append(link)
    return result if changed else None


def _bounded(items: Sequence[Any], dropped: int) -> BoundedList[Any]:
    bounded: BoundedList[Any] = BoundedList(None)
    bounded.extend(items)
    bounded.dropped = dropped
    return bounded


class SpanScrubber:
    """Scrubs finished spans with one policy; resources and scopes are scrubbed once per object."""

    __slots__ = ("_resources", "_scopes", "dropped", "scrubber")

    def __init__(self, scrubber: Scrubber, dropped: DropSink = _warn_drop) -> None:
        self.scrubber = scrubber
        self.dropped = dropped
        self._resources = _ObjectMemo(lambda resource: scrub_resource(scrubber, resource))
        self._scopes = _ObjectMemo(lambda scope: scrub_scope(scrubber, scope))

    def span(self, item: ReadableSpan) -> ReadableSpan:
        """``item`` scrubbed over its whole data model (the same object when nothing changed); may raise."""
        scrubber = self.scrubber
        # ReadableSpan.attributes is a new read-only view on every access: compared with that one view, and the
        # dropped count (which the view does not carry) taken from the span.
        original = item.attributes
        attributes = _attributes(scrubber, original, item.dropped_attributes)
        events = _events(scrubber, item.events)
        links = _links(scrubber, item.links)
        name = wire_text(scrubber, item.name)
        status = item.status
        if status.description:
            description = wire_text(scrubber, status.description)
            if description != status.description:
                status = Status(status.status_code, description)
        context = scrub_context(scrubber, item.context)
        parent = scrub_context(scrubber, item.parent)
        resource = self._resources.get(item.resource)
        scope = self._scopes.get(item.instrumentation_scope) if item.instrumentation_scope is not None else None
        if (
            attributes is original
            and events is None
            and links is None
            and name == item.name
            and status is item.status
            and context is item.context
            and parent is item.parent
            and resource is item.resource
            and scope is item.instrumentation_scope
        ):
            return item
        if attributes is original and item.dropped_attributes:  # unchanged, but the rebuilt span must keep the count
            attributes = _counted(original, item.dropped_attributes)
        return ReadableSpan(
            name=name,
            context=context,
            parent=parent,
            resource=resource,
            attributes=attributes,
            events=_bounded(item.events if events is None else events, item.dropped_events),
            links=_bounded(item.links if links is None else links, item.dropped_links),
            kind=item.kind,
            status=status,
            start_time=item.start_time,
            end_time=item.end_time,
            instrumentation_scope=scope,
        )

    def spans(self, spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
        """Every span scrubbed; a span that cannot be is dropped (never exported unchecked) and counted."""
        scrubbed = []
        for item in spans:
            try:
                scrubbed.append(self.span(item))
            except Exception:  # never export what could not be checked
                _log.debug("signalfire: scrubbing a span failed; dropped", exc_info=True)
                self.dropped("traces", "scrub_failed", 1)
        return scrubbed


def scrub_span(scrubber: Scrubber, item: ReadableSpan) -> ReadableSpan:
    """``item`` scrubbed over its whole data model (the same object when nothing changed); may raise."""
    return SpanScrubber(scrubber).span(item)


def scrub_spans(
    scrubber: Scrubber, spans: Sequence[ReadableSpan], dropped: DropSink = _warn_drop
) -> list[ReadableSpan]:
    """Every span scrubbed; a span that cannot be is dropped (never exported unchecked) and counted."""
    return SpanScrubber(scrubber, dropped).spans(spans)


class ScrubbingSpanExporter(SpanExporter):
    """Wraps a span exporter: every string of every span (see the module docstring) is scrubbed first.

    Finished spans are immutable, so scrubbing happens on the way out, on the batch processor's thread (never on the
    request path); a span with nothing to redact is passed on as it is. An exporter that scrubs while it encodes
    (signalfire's OTLP span exporters, which have a ``scrub_with(scrubber)`` method) is handed the scrubber instead
    and gets the spans as they are.
    """

    def __init__(self, exporter: SpanExporter, scrubber: Scrubber, dropped: DropSink = _warn_drop) -> None:
        self.exporter = exporter
        self.scrubber = scrubber
        self._spans = SpanScrubber(scrubber, dropped)
        scrub_with: Callable[..., None] | None = getattr(exporter, "scrub_with", None)
        self.delegated = scrub_with is not None
        if scrub_with is not None:
            scrub_with(scrubber, dropped)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.delegated:
            return self.exporter.export(spans)
        return self.exporter.export(self._spans.spans(spans))

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)


# --- metrics ----------------------------------------------------------------------------------------------------------
def _point(scrubber: Scrubber, point: Any) -> Any:
    attributes = _attributes(scrubber, point.attributes)
    exemplars = getattr(point, "exemplars", None)
    new_exemplars = exemplars
    if exemplars:
        scrubbed = [
            dataclasses.replace(e, filtered_attributes=new)
            if (new := _attributes(scrubber, e.filtered_attributes)) is not e.filtered_attributes
            else e
            for e in exemplars
        ]
        if any(a is not b for a, b in zip(scrubbed, exemplars, strict=True)):
            new_exemplars = scrubbed
    if attributes is point.attributes and new_exemplars is exemplars:
        return point
    changes: dict[str, Any] = {"attributes": dict(attributes) if attributes else attributes}
    if new_exemplars is not exemplars:
        changes["exemplars"] = new_exemplars
    return dataclasses.replace(point, **changes)


def _metric(scrubber: Scrubber, metric: Any) -> Any:
    data = metric.data
    points = data.data_points
    new_points = [_point(scrubber, point) for point in points]
    description = wire_text(scrubber, metric.description) if metric.description else metric.description
    points_changed = any(a is not b for a, b in zip(new_points, points, strict=True))
    if not points_changed and description == metric.description:
        return metric
    new_data = dataclasses.replace(data, data_points=new_points) if points_changed else data
    return dataclasses.replace(metric, description=description, data=new_data)


def scrub_metrics_data(scrubber: Scrubber, data: Any) -> Any:
    """MetricsData with every point's and exemplar's attributes, every description, resource and scope scrubbed;
    the same object when nothing changed; may raise."""
    resource_metrics = []
    changed = False
    for rm in data.resource_metrics:
        scopes = []
        scopes_changed = False
        for sm in rm.scope_metrics:
            metrics = [_metric(scrubber, metric) for metric in sm.metrics]
            scope = scrub_scope(scrubber, sm.scope)
            if scope is not sm.scope or any(a is not b for a, b in zip(metrics, sm.metrics, strict=True)):
                scopes.append(dataclasses.replace(sm, scope=scope, metrics=metrics))
                scopes_changed = True
            else:
                scopes.append(sm)
        resource = scrub_resource(scrubber, rm.resource)
        if scopes_changed or resource is not rm.resource:
            resource_metrics.append(dataclasses.replace(rm, resource=resource, scope_metrics=scopes))
            changed = True
        else:
            resource_metrics.append(rm)
    return dataclasses.replace(data, resource_metrics=resource_metrics) if changed else data


# --- logs -------------------------------------------------------------------------------------------------------------
def _log_record(scrubber: Scrubber, readable: Any, resources: _ObjectMemo, scopes: _ObjectMemo) -> Any:
    record = readable.log_record
    body = record.body
    new_body = scrubber.scrub(body) if body is not None else body
    if isinstance(new_body, str):
        new_body = strip_statement_data(new_body)
    attributes = _attributes(scrubber, record.attributes)
    event_name = record.event_name
    new_event_name = wire_text(scrubber, event_name) if event_name else event_name
    resource = resources.get(readable.resource) if readable.resource is not None else None
    scope = scopes.get(readable.instrumentation_scope) if readable.instrumentation_scope is not None else None
    body_changed = new_body is not body and new_body != body
    if (
        not body_changed
        and attributes is record.attributes
        and new_event_name == event_name
        and resource is readable.resource
        and scope is readable.instrumentation_scope
    ):
        return readable
    # a copy of the API record (its public fields set on the copy): the original may be read by other processors
    new_record = copy.copy(record)
    new_record.body = new_body
    new_record.attributes = attributes
    new_record.event_name = new_event_name
    return dataclasses.replace(readable, log_record=new_record, resource=resource, instrumentation_scope=scope)


def scrub_log_records(scrubber: Scrubber, batch: Sequence[Any], dropped: DropSink = _warn_drop) -> list[Any]:
    """Every log record scrubbed (body, attributes, event name, resource, scope); one that cannot be is dropped
    and counted."""
    resources = _ObjectMemo(lambda resource: scrub_resource(scrubber, resource))
    scopes = _ObjectMemo(lambda scope: scrub_scope(scrubber, scope))
    scrubbed = []
    for readable in batch:
        try:
            scrubbed.append(_log_record(scrubber, readable, resources, scopes))
        except Exception:
            _log.debug("signalfire: scrubbing a log record failed; dropped", exc_info=True)
            dropped("logs", "scrub_failed", 1)
    return scrubbed


class ScrubbingLogExporter:
    """Wraps a log record exporter (the SDK's ``LogRecordExporter`` interface): every record is scrubbed first."""

    def __init__(self, exporter: Any, scrubber: Scrubber, dropped: DropSink = _warn_drop) -> None:
        self.exporter = exporter
        self.scrubber = scrubber
        self.dropped = dropped

    def export(self, batch: Sequence[Any]) -> Any:
        return self.exporter.export(scrub_log_records(self.scrubber, batch, self.dropped))

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return bool(self.exporter.force_flush(timeout_millis))
