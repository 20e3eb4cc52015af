"""OpenTelemetry internals signalfire relies on, in one place; pinned by tests/unit/test_compat_opentelemetry.py.

The OTLP span exporters (``signalfire._export._otlp_spans``) send request bodies written by signalfire's encoder, which
scrubs while it encodes. They reach into the SDK's exporters at two points:

- OTLP/HTTP (1.45 layout): ``export()`` is the SDK's, sending bytes through ``_client.export(bytes)`` behind the
  size check (``_common._is_request_too_large``) and the exporter's ``_metrics``;
- OTLP/gRPC: the SDK's ``_export()`` serialises through ``_translate_data()`` and (re)creates its client from
  ``_stub(_channel)``; a stub with an identity serializer sends the encoder's bytes as they are.

Privacy fails closed: when a check below says the layout is unknown, the exporter takes the SDK's own encoder on
spans scrubbed by the public path (``signalfire._scrub._wire``), never unscrubbed spans.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from opentelemetry.attributes import BoundedAttributes

# The synchronous gauge's ABC: the metrics API (1.23+) exports it from ``opentelemetry.metrics`` only as ``_Gauge``.
from opentelemetry.metrics import _Gauge as Gauge
from opentelemetry.sdk.util import BoundedList

__all__ = [
    "Gauge",
    "SpanParts",
    "batch_queue_length",
    "client_instrumented",
    "current_span_reader",
    "exporter_preferences",
    "grpc_layout_known",
    "grpc_send_bytes",
    "http_layout_known",
    "http_send",
    "provider_resource",
    "span_parts",
    "suppress_instrumentation_keys",
    "wrap_batch_drops",
]


def http_layout_known(exporter: Any) -> bool:
    """True when ``exporter`` (an SDK OTLPSpanExporter over HTTP) has the members :func:`http_send` uses."""
    try:
        from opentelemetry.exporter.otlp.proto.http._common import (  # noqa: F401
            RequestPayloadTooLargeError,
            _is_request_too_large,
        )
        from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE  # noqa: F401
    except ImportError:
        return False
    return all(hasattr(exporter, name) for name in ("_client", "_metrics", "_max_request_size", "_shutdown"))


def http_send(exporter: Any, count: int, serialise: Callable[[], bytes], log: Any) -> bool:
    """The SDK's OTLPSpanExporter.export() (1.45) with its serialisation replaced by ``serialise()``: True when the
    batch was delivered. ``log`` is the SDK's logger, so that its rate limiting applies."""
    from opentelemetry.exporter.otlp.proto.http._common import RequestPayloadTooLargeError, _is_request_too_large
    from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

    if exporter._shutdown:
        log.warning("Exporter already shutdown, ignoring batch")
        return False
    with exporter._metrics.export_operation(count) as outcome:
        try:
            data = serialise()
        except Exception as error:
            log.error("Failed to encode span batch: %s", error)
            outcome.error = error
            return False
        if _is_request_too_large(data, exporter._max_request_size):
            log.warning(
                "Dropping span batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                len(data),
                exporter._max_request_size,
            )
            outcome.error = RequestPayloadTooLargeError(
                f"Serialized span request size {len(data)} bytes exceeds max_request_size "
                f"{exporter._max_request_size} bytes."
            )
            return False
        sent = exporter._client.export(data)
        if not sent.success:
            outcome.error = sent.error
            outcome.error_attrs = (
                {HTTP_RESPONSE_STATUS_CODE: sent.status_code} if sent.status_code is not None else None
            )
            return False
    return True


def grpc_layout_known(exporter_class: type) -> bool:
    """True when the SDK's gRPC exporter serialises through ``_translate_data`` in ``_export`` (so that an override
    of it sees every batch) and keeps its client in ``_stub`` / ``_channel`` / ``_client``."""
    export = getattr(exporter_class, "_export", None)
    code = getattr(export, "__code__", None)
    if code is None or "_translate_data" not in code.co_names or not hasattr(exporter_class, "_translate_data"):
        return False
    return all(name in code.co_names for name in ("_client",))


def _identity(data: bytes) -> bytes:
    return data


class _BytesTraceStub:
    """The SDK's TraceServiceStub, sending a request already serialised."""

    def __init__(self, channel: Any) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        self.Export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=_identity,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )


def grpc_send_bytes(exporter: Any) -> bool:
    """Make ``exporter`` (an instance of signalfire's subclass of the SDK's gRPC span exporter) send the bytes its
    ``_translate_data`` returns as they are; False (nothing changed) when its layout is unknown."""
    if not (grpc_layout_known(type(exporter)) and all(hasattr(exporter, n) for n in ("_stub", "_channel", "_client"))):
        return False
    # The SDK re-creates the client from _stub whenever it reconnects.
    exporter._stub = _BytesTraceStub
    exporter._client = _BytesTraceStub(exporter._channel)
    return True


# --- opentelemetry-instrumentation-sqlalchemy -------------------------------------------------------------------------
# signalfire builds the contrib EngineTracer per engine (its instrumentor instruments once per process, and signalfire
# instruments each engine at its first connection). What of it is private: the class-level list of registered
# listeners (a subclass gets its own, so removing signalfire's never touches a separate SQLAlchemyInstrumentor's), and
# the connection-usage counter's two adders (an engine instrumented with connections open starts from the pool's
# counts instead of going below zero).
SQLALCHEMY_TRACER_MEMBERS = (
    "_remove_event_listener_params",
    "_add_used_to_connection_usage",
    "_add_idle_to_connection_usage",
    "remove_all_event_listeners",
)


# How the subclass names spans: contrib names them "{first word} {database}" and sets db.operation to the same, so a
# SQLite span is "SELECT /srv/app/data.db" (a file path in every span name and operation). The database semantic
# conventions name a span "{db.operation.name} {target}" (or the query summary) with a low-cardinality target and set
# db.operation(.name) to the operation alone. Both members are private; without them the engine is traced the
# contrib way, and the contract test says so.
SQLALCHEMY_NAMING_MEMBERS = ("_operation_name", "_set_db_client_span_attributes")
# What the database "name" of a SQLite URL is: a file path (or ":memory:"), not a namespace; left out of attributes.
_PATH_ATTRIBUTES = ("db.name", "db.namespace")


def sqlalchemy_tracer_class(summary: Any = None) -> type | None:
    """A subclass of the contrib ``EngineTracer`` with its own listener list, or None when the members it relies on
    are not there (the caller then leaves the engine untraced and says so).

    ``summary(statement) -> str | None`` (the query's "{operation} {table}"), when given, names each span (instead
    of contrib's "{operation} {database}"); db.operation is then the operation alone, and a SQLite engine's file path
    is not recorded as the database name."""
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    if not all(hasattr(EngineTracer, name) for name in SQLALCHEMY_TRACER_MEMBERS):
        return None

    class OwnListenersEngineTracer(EngineTracer):
        """The contrib EngineTracer; its listeners are kept apart from every other EngineTracer's."""

        _remove_event_listener_params: list[Any] = []  # noqa: RUF012 - the contrib base class's design

    if summary is None or not all(hasattr(EngineTracer, name) for name in SQLALCHEMY_NAMING_MEMBERS):
        return OwnListenersEngineTracer

    class NamingEngineTracer(OwnListenersEngineTracer):
        """... and spans named by the semantic conventions, with no database file path."""

        def _operation_name(self, db_name: Any, statement: Any) -> str:
            # contrib uses this for the span name and for db.operation: the operation alone (its first word) is
            # right for db.operation; the span is renamed with the query summary below, once it has its attributes
            base: Any = super()
            name: str = base._operation_name(None, statement)
            return name

        def _set_db_client_span_attributes(self, span: Any, statement: Any, db_name: Any, attrs: Any) -> None:
            if self.vendor == "sqlite":
                attrs = {key: value for key, value in attrs.items() if key not in _PATH_ATTRIBUTES}
            super()._set_db_client_span_attributes(span, statement, None, attrs)
            try:
                name = summary(statement) if isinstance(statement, str) else None
            except Exception:  # the contrib name stays
                name = None
            if name:
                span.update_name(name)

    return NamingEngineTracer


def sqlalchemy_start_usage(tracer: Any, used: int, idle: int) -> None:
    """Start the tracer's connection-usage counter from the pool's current counts."""
    if used:
        tracer._add_used_to_connection_usage(used)
    if idle:
        tracer._add_idle_to_connection_usage(idle)


def sqlalchemy_remove_engine(tracer_class: Any, engine: Any) -> None:
    """Remove the listeners ``tracer_class``'s tracers registered on ``engine`` (through SQLAlchemy's public
    ``event.remove``)."""
    from sqlalchemy import event

    params = tracer_class._remove_event_listener_params
    for item in [p for p in params if p[0]() is engine]:
        if event.contains(engine, item[1], item[2]):
            event.remove(engine, item[1], item[2])
        params.remove(item)


def sqlalchemy_remove_all(tracer_class: Any) -> None:
    """Remove every listener ``tracer_class``'s tracers registered."""
    tracer_class.remove_all_event_listeners()


class SpanParts(NamedTuple):
    """What the encoder reads of a finished span, each as the public property gives it (attributes as a mapping)."""

    name: str
    context: Any
    kind: Any
    parent: Any
    start_time: int | None
    end_time: int | None
    attributes: Any
    dropped_attributes: int
    events: Sequence[Any]
    dropped_events: int
    links: Sequence[Any]
    dropped_links: int
    status: Any
    resource: Any
    instrumentation_scope: Any


_EMPTY: Sequence[Any] = ()
_new_parts = tuple.__new__


def span_parts(span: Any) -> SpanParts:
    """A finished span's fields for reading, in one call: read from the instance's own fields when the span is the
    SDK's ``ReadableSpan`` (or its ``_Span``) of the 1.x layout, else through the public properties.

    Each public property is a Python call, ``attributes`` wraps ``BoundedAttributes`` in a ``MappingProxyType`` whose
    ``items()`` calls ``__getitem__`` in Python per item, and ``events``/``links`` copy their ``BoundedList`` under its
    lock even when empty: read that way, the fifteen fields cost about a fifth of the encoder's work per span. Here the
    attributes are the dict inside ``BoundedAttributes`` (``_dict``), an empty ``BoundedList`` (``_dq``) is not copied
    and a non-empty one is read through its public iteration. Nothing is written.
    """
    if type(span) not in (_span_types or _sdk_span_types()):
        return _public_parts(span)
    try:
        fields = span.__dict__
        attributes = fields["_attributes"]
        events = fields["_events"]
        links = fields["_links"]
        if type(attributes) is BoundedAttributes and type(inner := attributes.__dict__["_dict"]) is dict:
            mapping, dropped_attributes = inner, attributes.dropped
        else:
            mapping, dropped_attributes = span.attributes, span.dropped_attributes
        if type(events) is BoundedList and not events.__dict__["_dq"]:
            event_items, dropped_events = _EMPTY, events.dropped
        else:
            event_items, dropped_events = _bounded_items(events)
        if type(links) is BoundedList and not links.__dict__["_dq"]:
            link_items, dropped_links = _EMPTY, links.dropped
        else:
            link_items, dropped_links = _bounded_items(links)
        return _new_parts(  # the tuple built in C: SpanParts(...) is a Python call with fifteen arguments
            SpanParts,
            (
                fields["_name"],
                fields["_context"],
                fields["_kind"],
                fields["_parent"],
                fields["_start_time"],
                fields["_end_time"],
                mapping,
                dropped_attributes,
                event_items,
                dropped_events,
                link_items,
                dropped_links,
                fields["_status"],
                fields["_resource"],
                fields["_instrumentation_scope"],
            ),
        )
    except (AttributeError, KeyError):  # another layout of the same classes: the public properties
        return _public_parts(span)


def _bounded_items(items: Any) -> tuple[Sequence[Any], int]:
    """Events or links as a sequence and the count the SDK dropped, as the properties give them."""
    if type(items) is BoundedList:
        return tuple(items), items.dropped
    return (tuple(items) if items else _EMPTY), 0


def _public_parts(span: Any) -> SpanParts:
    return SpanParts(
        span.name,
        span.get_span_context(),
        span.kind,
        span.parent,
        span.start_time,
        span.end_time,
        span.attributes,
        span.dropped_attributes,
        span.events,
        span.dropped_events,
        span.links,
        span.dropped_links,
        span.status,
        span.resource,
        span.instrumentation_scope,
    )


_span_types: tuple[type, ...] = ()


def _sdk_span_types() -> tuple[type, ...]:
    global _span_types  # noqa: PLW0603 - resolved once, on the exporter's first span
    if not _span_types:
        from opentelemetry.sdk.trace import ReadableSpan, _Span

        _span_types = (ReadableSpan, _Span)
    return _span_types


# --- the current span, read cheaply (per log line and per counter add) ------------------------------------------------
def _public_current_span() -> Any:
    from opentelemetry import trace

    span = trace.get_current_span()
    return None if span is trace.INVALID_SPAN else span


def current_span_reader() -> Callable[[], Any]:
    """A function returning the current context's span, or None when the context holds none.

    Fast path (API 1.45 layout): the context variable the API's runtime context keeps (``_RUNTIME_CONTEXT`` a
    ``ContextVarsRuntimeContext`` with ``_current_context``) read with the span key (``trace.propagation._SPAN_KEY``),
    a third of ``get_current_span()``'s cost. Any other layout: ``get_current_span()``, the public API."""
    try:
        from opentelemetry.context import _RUNTIME_CONTEXT
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
        from opentelemetry.trace.propagation import _SPAN_KEY

        variable = getattr(_RUNTIME_CONTEXT, "_current_context", None)
    except ImportError:
        return _public_current_span
    if not isinstance(_RUNTIME_CONTEXT, ContextVarsRuntimeContext) or variable is None or not hasattr(variable, "get"):
        return _public_current_span
    get = variable.get
    key = _SPAN_KEY

    def read() -> Any:
        return get().get(key)

    return read


# --- the SDK's batch processors (BatchSpanProcessor, BatchLogRecordProcessor; SDK 1.44-1.45 layout) ------------------
def _batch(processor: Any) -> Any:
    batch = getattr(processor, "_batch_processor", None)
    if batch is None or not hasattr(batch, "_queue") or getattr(batch, "_metrics", None) is None:
        return None
    return batch


def wrap_batch_drops(processor: Any, wrap: Callable[[Any], Any]) -> Any | None:
    """Put ``wrap(metrics)`` in place of the batch processor's processor-metrics object, the one object it tells about
    each item it drops (``_batch_processor._metrics.drop_items``); returns the batch processor, or None on another
    layout (the loss is then bounded, only not counted). Writing the SDK's own field is the only way: the SDK makes its
    processor metrics public only when OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED is set, and then as OpenTelemetry
    metrics, not as a hook. ``wrap`` must pass every call through."""
    batch = _batch(processor)
    if batch is None:
        return None
    inner = batch._metrics
    if getattr(inner, "signalfire_wrapped", False):
        return batch
    batch._metrics = wrap(inner)
    return batch


def batch_queue_length(batch: Any) -> int:
    """How many items a batch processor (as returned by :func:`wrap_batch_drops`) still holds in its queue."""
    return len(batch._queue)


# --- metric exporters -------------------------------------------------------------------------------------------------
def exporter_preferences(exporter: Any) -> tuple[Any, Any]:
    """A MetricExporter's preferred temporality and aggregation, as its constructor stored them (the SDK's reader reads
    the same private fields; there is no public getter)."""
    return exporter._preferred_temporality, exporter._preferred_aggregation


# --- instrumentation suppression --------------------------------------------------------------------------------------
def suppress_instrumentation_keys() -> tuple[Any, ...]:
    """The context keys that turn OpenTelemetry's instrumentations off, as contrib's ``suppress_instrumentation()``
    sets them: the API's ``context._SUPPRESS_INSTRUMENTATION_KEY`` (what instrumentations check) and the plain string
    key older ones read. The public context manager lives in opentelemetry-instrumentation, which signalfire does not
    require; health checks need the keys in a context built once."""
    from opentelemetry import context

    key = getattr(context, "_SUPPRESS_INSTRUMENTATION_KEY", None)
    return ("suppress_instrumentation",) if key is None else (key, "suppress_instrumentation")


# --- a MeterProvider's resource, and contrib's mark on an instrumented client -----------------------------------------
def provider_resource(provider: Any) -> Any:
    """The resource a MeterProvider holds now (``_sdk_config.resource``: after a fork the SDK gives the child its own
    service.instance.id), or None on another layout (the caller keeps the resource it was given)."""
    return getattr(getattr(provider, "_sdk_config", None), "resource", None)


def client_instrumented(client: Any) -> bool:
    """Whether contrib's ``instrument_client()`` (httpx, redis) already instrumented ``client``: the instrumentations
    mark it with ``_is_instrumented_by_opentelemetry``; with no mark, False (signalfire then instruments it, which the
    instrumentations themselves refuse to do twice)."""
    return bool(getattr(client, "_is_instrumented_by_opentelemetry", False))
