"""Contract of signalfire._compat.opentelemetry: the SDK internals the OTLP span exporters rely on are there, and
when they are not, spans still leave scrubbed (privacy fails closed)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as grpc_sdk
from opentelemetry.exporter.otlp.proto.http import trace_exporter as http_sdk
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

from signalfire._compat import opentelemetry as compat
from signalfire._export._otlp_spans import encoding_exporter
from signalfire._scrub._policy import Scrubber
from signalfire._scrub._wire import ScrubbingSpanExporter

SECRET = "password=Wire-Compat-Pw-991"


def test_http_exporter_layout_is_the_one_http_send_uses() -> None:
    """OTLPSpanExporter (HTTP) has _client, _metrics, _max_request_size, _shutdown and _common's size check."""
    exporter = http_sdk.OTLPSpanExporter(endpoint="http://127.0.0.1:4318/v1/traces", timeout=1)
    try:
        assert compat.http_layout_known(exporter)
    finally:
        exporter.shutdown()


def test_grpc_exporter_serialises_through_translate_data() -> None:
    """The SDK's gRPC _export() calls _translate_data and keeps its client in _stub/_channel/_client."""
    assert compat.grpc_layout_known(grpc_sdk.OTLPSpanExporter)
    exporter = grpc_sdk.OTLPSpanExporter(endpoint="http://127.0.0.1:4317", insecure=True, timeout=1)
    try:
        assert all(hasattr(exporter, name) for name in ("_stub", "_channel", "_client"))
    finally:
        exporter.shutdown()


def test_an_unknown_grpc_layout_is_detected() -> None:
    """A class whose _export does not serialise through _translate_data is not taken for the known layout."""

    class Other:
        def _export(self, data: Any) -> Any:
            return self._client.Export(request=data)  # type: ignore[attr-defined]

    assert not compat.grpc_layout_known(Other)


def test_without_the_fast_path_the_grpc_exporter_sends_scrubbed_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: with the layout unknown, the SDK's own path receives spans the public path scrubbed."""
    monkeypatch.setattr(compat, "grpc_layout_known", lambda _cls: False)
    exporter = encoding_exporter("grpc", endpoint="http://127.0.0.1:4317", insecure=True, timeout=1)
    seen: list[Any] = []
    monkeypatch.setattr(grpc_sdk.OTLPSpanExporter, "export", lambda self, spans: seen.extend(spans))
    try:
        assert not exporter.fast
        ScrubbingSpanExporter(exporter, Scrubber())
        context = SpanContext(1, 2, False, TraceFlags(1))
        exporter.export([ReadableSpan(f"login {SECRET}", context=context)])
    finally:
        monkeypatch.undo()
        exporter.shutdown()
    assert [span.name for span in seen] == ["login password=[REDACTED:password]"]


def test_without_the_fast_path_the_http_exporter_sends_scrubbed_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: with the HTTP layout unknown, the SDK's export() receives spans the public path scrubbed."""
    monkeypatch.setattr(compat, "http_layout_known", lambda _exporter: False)
    exporter = encoding_exporter("http/protobuf", endpoint="http://127.0.0.1:4318/v1/traces", timeout=1)
    seen: list[Any] = []
    monkeypatch.setattr(http_sdk.OTLPSpanExporter, "export", lambda self, spans: seen.extend(spans))
    try:
        assert not exporter.fast
        ScrubbingSpanExporter(exporter, Scrubber())
        exporter.export([ReadableSpan(f"login {SECRET}", context=SpanContext(1, 2, False, TraceFlags(1)))])
    finally:
        monkeypatch.undo()
        exporter.shutdown()
    assert [span.name for span in seen] == ["login password=[REDACTED:password]"]


def test_the_sqlalchemy_engine_tracer_members_are_there() -> None:
    """The contrib EngineTracer keeps its listeners in a class-level list and has the two usage adders."""
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    for name in compat.SQLALCHEMY_TRACER_MEMBERS:
        assert hasattr(EngineTracer, name), name
    tracer_class = compat.sqlalchemy_tracer_class()
    assert tracer_class is not None
    assert tracer_class._remove_event_listener_params is not EngineTracer._remove_event_listener_params


def test_an_unknown_engine_tracer_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the members, no tracer class: the engine is measured, not traced (and nothing raises)."""
    from opentelemetry.instrumentation.sqlalchemy import engine

    monkeypatch.delattr(engine.EngineTracer, "_add_used_to_connection_usage")
    assert compat.sqlalchemy_tracer_class() is None


def test_the_engine_tracer_naming_members_are_there_and_name_spans_by_the_summary(tmp_path: Any) -> None:
    """contrib's EngineTracer names spans and sets db.operation through _operation_name and sets attributes through
    _set_db_client_span_attributes: with a summary, the subclass names spans by it and drops a SQLite file path."""
    import sqlalchemy
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    for name in compat.SQLALCHEMY_NAMING_MEMBERS:
        assert hasattr(EngineTracer, name), name
    tracer_class = compat.sqlalchemy_tracer_class(lambda statement: "SELECT things")
    assert tracer_class is not None
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/x.db")
    tracer_class(provider.get_tracer("t"), engine, MeterProvider().get_meter("t").create_up_down_counter("u"))
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1").all()
    finally:
        compat.sqlalchemy_remove_all(tracer_class)
        engine.dispose()
    (span,) = exporter.get_finished_spans()
    assert span.name == "SELECT things"
    assert span.attributes is not None
    assert span.attributes["db.operation"] == "SELECT"
    assert str(tmp_path) not in repr(dict(span.attributes))


def test_an_engine_tracer_registers_and_removes_its_listeners_on_one_engine() -> None:
    """The subclass's listeners are registered on the engine and removed from it alone."""
    import sqlalchemy
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    tracer_class = compat.sqlalchemy_tracer_class()
    assert tracer_class is not None
    one, two = sqlalchemy.create_engine("sqlite://"), sqlalchemy.create_engine("sqlite://")
    usage = MeterProvider().get_meter("t").create_up_down_counter("u")
    tracer = TracerProvider().get_tracer("t")
    for engine in (one, two):
        tracer_class(tracer, engine, usage)
    compat.sqlalchemy_start_usage(tracer_class(tracer, one, usage), 1, 1)
    compat.sqlalchemy_remove_engine(tracer_class, one)
    assert not sqlalchemy.event.contains(one, "handle_error", _handle_error())
    assert sqlalchemy.event.contains(two, "handle_error", _handle_error())
    compat.sqlalchemy_remove_all(tracer_class)
    assert not sqlalchemy.event.contains(two, "handle_error", _handle_error())


def _handle_error() -> Any:
    from opentelemetry.instrumentation.sqlalchemy.engine import _handle_error

    return _handle_error


def _public(span: Any) -> tuple[Any, ...]:
    """Every field span_parts gives, read through the public properties (attributes as a plain dict)."""
    return (
        span.name, span.get_span_context(), span.kind, span.parent, span.start_time, span.end_time,
        dict(span.attributes), span.dropped_attributes, tuple(span.events), span.dropped_events, tuple(span.links),
        span.dropped_links, span.status, span.resource, span.instrumentation_scope,
    )  # fmt: skip


def _read(parts: compat.SpanParts) -> tuple[Any, ...]:
    return (*parts[:6], dict(parts.attributes), *parts[7:])


def test_a_finished_sdk_span_is_read_from_its_own_fields_as_the_properties_give_them() -> None:
    """span_parts reads the SDK span's fields (the dict inside BoundedAttributes, the BoundedLists' deques) and gives
    what the public properties give: with events, links, dropped counts and a parent, and with none of them."""
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider
    from opentelemetry.trace import Link, set_span_in_context

    tracer = TracerProvider(span_limits=SpanLimits(max_attributes=3, max_events=1, max_links=1)).get_tracer("t")
    plain = tracer.start_span("plain", attributes={"http.route": "/x", "n": 1, "t": ("a",)})
    plain.end()
    link_to = SpanContext(1, 2, False, TraceFlags(1))
    full = tracer.start_span(
        "full",
        context=set_span_in_context(plain),
        attributes={"a": 1, "b": 2, "c": 3, "d": 4},
        links=[Link(link_to, {"k": "v"}), Link(link_to)],
    )
    full.add_event("one", {"x": 1})
    full.add_event("two")
    full.end()
    for span in (plain, full, full._readable_span()):  # the _Span itself and the ReadableSpan the processors get
        parts = compat.span_parts(span)
        assert type(parts.attributes) is dict  # the SDK's own dict, not the MappingProxyType over the mix-in
        assert _read(parts) == _public(span)
    assert compat.span_parts(full).dropped_attributes == 1
    assert compat.span_parts(full).dropped_events == 1
    assert compat.span_parts(full).dropped_links == 1


def test_a_span_of_another_layout_is_read_through_the_public_properties() -> None:
    """A ReadableSpan built with plain mappings and sequences, or any other type, gives its public fields."""
    span = ReadableSpan(
        "s", context=SpanContext(1, 2, False, TraceFlags(1)), attributes={"k": "v"}, events=(), links=()
    )
    assert _read(compat.span_parts(span)) == _public(span)

    class Foreign(ReadableSpan):
        pass

    foreign = Foreign("f", context=SpanContext(1, 3, False, TraceFlags(1)), attributes={"k": "v"})
    assert _read(compat.span_parts(foreign)) == _public(foreign)


def test_the_current_span_reader_sees_what_the_public_api_sees() -> None:
    """The fast reader returns the span get_current_span() returns, and None where the context holds none."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    read = compat.current_span_reader()
    assert read is not compat._public_current_span, "API layout changed: the current-span fast path is off"
    assert read() is None
    tracer = TracerProvider().get_tracer("contract")
    with tracer.start_as_current_span("outer") as span:
        assert read() is span is trace.get_current_span()
    assert read() is None
    assert compat._public_current_span() is None


def test_the_batch_processors_have_the_drop_hook_and_queue_signalfire_wraps() -> None:
    """BatchSpanProcessor and BatchLogRecordProcessor keep _batch_processor with _metrics.drop_items and _queue; a
    wrapped hook sees every dropped item and passes the call through; wrapping twice wraps once."""
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, InMemoryLogRecordExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    class Hook:
        signalfire_wrapped = True

        def __init__(self, inner: Any) -> None:
            self.inner, self.dropped = inner, 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def drop_items(self, count: int, *args: Any, **kwargs: Any) -> None:
            self.dropped += count
            self.inner.drop_items(count, *args, **kwargs)

    for processor in (
        BatchSpanProcessor(
            InMemorySpanExporter(), max_queue_size=1, schedule_delay_millis=60_000, max_export_batch_size=1
        ),
        BatchLogRecordProcessor(
            InMemoryLogRecordExporter(), max_queue_size=1, schedule_delay_millis=60_000, max_export_batch_size=1
        ),
    ):
        try:
            hooks: list[Hook] = []

            def wrap(inner: Any, made: list[Hook] = hooks) -> Hook:
                made.append(Hook(inner))
                return made[-1]

            batch = compat.wrap_batch_drops(processor, wrap)
            assert batch is not None, f"{type(processor).__name__} changed layout: queue-full drops go uncounted"
            assert compat.wrap_batch_drops(processor, wrap) is batch
            assert len(hooks) == 1
            assert compat.batch_queue_length(batch) == 0
            for _ in range(3):
                batch.emit(object())  # the queue holds one; the next two are dropped through the hook
            assert compat.batch_queue_length(batch) == 1
            assert hooks[0].dropped == 2
        finally:
            processor.shutdown()


def test_a_processor_of_another_layout_is_not_wrapped() -> None:
    assert compat.wrap_batch_drops(object(), lambda inner: inner) is None


def test_exporter_preferences_are_what_the_exporter_was_built_with() -> None:
    from opentelemetry.sdk.metrics import Counter
    from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricExporter

    class Exporter(MetricExporter):
        def export(self, *args: Any, **kwargs: Any) -> Any: ...
        def force_flush(self, timeout_millis: float = 0) -> bool:
            return True

        def shutdown(self, *args: Any, **kwargs: Any) -> None: ...

    exporter = Exporter(preferred_temporality={Counter: AggregationTemporality.DELTA})
    temporality, aggregation = compat.exporter_preferences(exporter)
    assert temporality[Counter] is AggregationTemporality.DELTA
    assert aggregation is None  # nothing given: the SDK keeps None and its reader picks the default


def test_the_suppression_keys_turn_contrib_instrumentation_off() -> None:
    """A context holding the keys is one in which contrib's is_instrumentation_enabled() says no, as under its own
    suppress_instrumentation()."""
    from opentelemetry import context
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled, suppress_instrumentation

    keys = compat.suppress_instrumentation_keys()
    assert len(keys) == 2, "the API no longer has _SUPPRESS_INSTRUMENTATION_KEY: health checks may be traced"
    quiet = context.Context()
    for key in keys:
        quiet = context.set_value(key, True, quiet)
    token = context.attach(quiet)
    try:
        assert not is_instrumentation_enabled()
    finally:
        context.detach(token)
    assert is_instrumentation_enabled()
    with suppress_instrumentation():
        assert all(context.get_value(key) is True for key in keys)


def test_the_gauge_abc_is_what_the_sdk_hands_out() -> None:
    """opentelemetry.metrics._Gauge is the ABC of the SDK's synchronous gauge (the following meter subclasses it)."""
    from opentelemetry.sdk.metrics import MeterProvider

    provider = MeterProvider()
    try:
        assert isinstance(provider.get_meter("contract").create_gauge("contract.gauge"), compat.Gauge)
    finally:
        provider.shutdown()


def test_a_meter_providers_resource_is_where_the_reader_looks() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create({"service.name": "contract"})
    provider = MeterProvider(resource=resource)
    try:
        assert compat.provider_resource(provider) is resource, "MeterProvider moved _sdk_config.resource"
    finally:
        provider.shutdown()
    assert compat.provider_resource(object()) is None


def test_contribs_mark_on_an_instrumented_client_is_read() -> None:
    """HTTPXClientInstrumentor.instrument_client() marks the client; uninstrument_client() clears the mark."""
    import httpx
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    client = httpx.Client()
    try:
        assert not compat.client_instrumented(client)
        HTTPXClientInstrumentor.instrument_client(client)
        assert compat.client_instrumented(client), "contrib no longer marks instrumented clients"
        HTTPXClientInstrumentor.uninstrument_client(client)
        assert not compat.client_instrumented(client)
    finally:
        client.close()
