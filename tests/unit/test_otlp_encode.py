"""signalfire's OTLP span encoder against the SDK's: the same request, byte for byte, with the same scrubbing."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from signalfire._export import _otlp_encode
from signalfire._export._otlp_encode import SpanEncoder
from signalfire._export._otlp_spans import encoding_exporter
from signalfire._scrub import _policy as _scrub
from signalfire._scrub._policy import GeneratedId, Scrubber
from signalfire._scrub._wire import ScrubbingSpanExporter, scrub_spans

CORPUS = json.loads((Path(__file__).parent.parent / "data" / "secrets.json").read_text())["secrets"]
RESOURCE = Resource.create({"service.name": "checkout", "service.version": "1.4.2", "team": "payments"})
SCOPE = InstrumentationScope("signalfire", "0.1.0", "https://opentelemetry.io/schemas/1.26.0", {"lib": "x"})


def sdk_request(spans: list[ReadableSpan], scrubber: Scrubber | None) -> ExportTraceServiceRequest:
    """What the SDK's encoder sends for ``spans`` after ScrubbingSpanExporter's scrubbing."""
    return encode_spans(scrub_spans(scrubber, spans) if scrubber is not None else spans)


def assert_same_request(spans: list[ReadableSpan], scrubber: Scrubber | None = None) -> bytes:
    """Our bytes decode to the SDK's message and equal its serialisation."""
    ours = SpanEncoder(scrubber).encode(spans)
    expected = sdk_request(spans, scrubber)
    assert ours == expected.SerializeToString()
    assert ExportTraceServiceRequest.FromString(ours) == expected
    return ours


def context(trace_id: int = 0x0AF7651916CD43DD8448EB211C80319C, span_id: int = 0xB7AD6B7169203331, **kw: Any):
    return SpanContext(trace_id, span_id, is_remote=kw.pop("is_remote", False), trace_flags=TraceFlags(1), **kw)


def make_span(name: str = "GET /items/{item_id}", **kw: Any) -> ReadableSpan:
    kw.setdefault("context", context())
    kw.setdefault("resource", RESOURCE)
    kw.setdefault("instrumentation_scope", SCOPE)
    kw.setdefault("start_time", 1_700_000_000_000_000_000)
    kw.setdefault("end_time", 1_700_000_000_250_000_000)
    return ReadableSpan(name, **kw)


def recorded_spans() -> list[ReadableSpan]:
    """Server-like spans recorded by a real SDK tracer provider: parent, child, an event and an error."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("signalfire", "0.1.0")
    for i in range(3):
        with tracer.start_as_current_span(
            "GET /items/{item_id}",
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": "GET",
                "http.route": "/items/{item_id}",
                "url.path": f"/items/{i}",
                "http.response.status_code": 200,
                "url.query": "page=2&access_token=abcdefghijklmnopqrstuvwx",
            },
        ) as span:
            span.add_event("cache miss", {"key": f"item:{i}", "hit": False})
            with tracer.start_as_current_span("SELECT items") as child:
                child.set_status(Status(StatusCode.ERROR, "password=hunter2 rejected"))
    provider.shutdown()
    return list(memory.get_finished_spans())


# --- the same bytes as the SDK ---------------------------------------------------------------------------------------
def test_recorded_spans_encode_as_the_sdk_encodes_them():
    """Spans recorded by the SDK encode to the SDK's request for the scrubbed spans, byte for byte."""
    assert_same_request(recorded_spans(), Scrubber())


def test_every_span_field_is_encoded():
    """Kind, parent (remote), trace state, events, links, status, dropped counts and every value type survive."""
    attributes = BoundedAttributes(
        maxlen=None,
        attributes={
            "s": "text",
            "empty": "",
            "t": True,
            "f": False,
            "i": -42,
            "zero": 0,
            "big": 2**63 - 1,
            "d": 2.5,
            "neg_zero": -0.0,
            "strs": ("a", "b"),
            "ints": (1, -2, 3),
            "floats": (1.5, float("inf")),
            "bools": (True, False),
            "none_in_seq": ("a", None),
            "empty_seq": (),
        },
    )
    attributes.dropped = 3
    events = BoundedList(4)
    events.extend(
        [Event("e1", {"k": "v", "n": 1}, timestamp=5), Event("e2", timestamp=6), Event("", {"x": 1.0}, timestamp=0)]
    )
    events.dropped = 2
    links = BoundedList(4)
    links.extend(
        [
            Link(context(0x1, 0x2, is_remote=True), {"link.kind": "follows"}),
            Link(context(0x3, 0x4, trace_state=TraceState([("vendor", "v1")]))),
        ]
    )
    links.dropped = 1
    span = make_span(
        context=context(trace_state=TraceState([("a", "1"), ("b", "2")])),
        parent=context(span_id=0x1234, is_remote=True),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        events=events,
        links=links,
        status=Status(StatusCode.ERROR, "boom"),
    )
    assert_same_request([span], Scrubber())


@pytest.mark.parametrize("kind", list(SpanKind))
def test_every_span_kind(kind):
    """Each span kind maps to the protobuf enum the SDK uses."""
    assert_same_request([make_span(kind=kind, parent=context(span_id=7))], Scrubber())


@pytest.mark.parametrize(
    "status",
    [Status(StatusCode.UNSET), Status(StatusCode.OK), Status(StatusCode.ERROR), Status(StatusCode.ERROR, "bad")],
)
def test_every_status(status):
    """Status codes with and without a description."""
    assert_same_request([make_span(status=status)], Scrubber())


def test_values_only_hand_built_spans_hold():
    """Bytes, mappings, lists and bytearrays (possible in hand-built spans) encode as the SDK encodes them."""
    attributes = {
        "raw": b"\x00\xffbytes",
        "nested": {"a": 1, "b": ["x", {"c": None}]},
        "list": ["x", "y"],
        "ba": bytearray(b"ab"),
        "none": None,
    }
    assert_same_request([make_span(attributes=attributes)], None)


def test_values_the_sdk_cannot_encode_are_left_out_like_the_sdk():
    """An int beyond int64 or an unknown object drops that attribute only, as in the SDK."""
    attributes = {"ok": 1, "huge": 2**64, "obj": object(), "seq": (1, 2**70), "after": "kept"}
    ours = assert_same_request([make_span(attributes=attributes)], None)
    keys = [
        kv.key for kv in ExportTraceServiceRequest.FromString(ours).resource_spans[0].scope_spans[0].spans[0].attributes
    ]
    assert keys == ["ok", "after"]


def test_spans_without_scope_resource_schema_or_times():
    """A span without a scope, with a bare resource and without start/end times."""
    span = make_span(instrumentation_scope=None, resource=Resource({}), start_time=None, end_time=None)
    assert_same_request([span], Scrubber())


def test_several_resources_and_scopes_group_like_the_sdk():
    """Resources and scopes group by equality in first-seen order, distinct-but-equal objects included."""
    other_resource = Resource({"service.name": "other"}, schema_url="https://example.com/schema")
    equal_resource = Resource(dict(RESOURCE.attributes), RESOURCE.schema_url)
    other_scope = InstrumentationScope("db", None)
    equal_scope = InstrumentationScope(SCOPE.name, SCOPE.version, SCOPE.schema_url, {"lib": "x"})
    spans = [
        make_span("a"),
        make_span("b", resource=other_resource),
        make_span("c", instrumentation_scope=other_scope),
        make_span("d", resource=equal_resource, instrumentation_scope=equal_scope),
        make_span("e", resource=other_resource, instrumentation_scope=None),
        make_span("f", resource=equal_resource, instrumentation_scope=other_scope),
    ]
    ours = assert_same_request(spans, Scrubber())
    assert len(ExportTraceServiceRequest.FromString(ours).resource_spans) == 2


def test_a_batch_is_encoded_the_same_twice():
    """The memoised resource, scopes, names and attributes give the same bytes on the next batch."""
    spans = recorded_spans()
    encoder = SpanEncoder(Scrubber())
    first = encoder.encode(spans)
    assert encoder.encode(spans) == first == sdk_request(spans, Scrubber()).SerializeToString()


def test_an_empty_batch():
    """No spans: an empty request."""
    assert SpanEncoder(Scrubber()).encode([]) == b""


def test_without_a_scrubber_the_spans_are_encoded_as_they_are():
    """scrubber=None: the SDK's request for the unscrubbed spans."""
    assert_same_request([make_span(attributes={"password": "hunter2"})], None)


# --- differential, generated -----------------------------------------------------------------------------------------
KEYS = st.sampled_from(
    ["http.route", "url.full", "password", "api_key", "Authorization", "token_count", "user.email", "db.statement"]
) | st.text(min_size=1, max_size=12)
SECRETS = st.sampled_from([entry["text"] for entry in CORPUS])
TEXT = st.text(max_size=40) | SECRETS | st.sampled_from(["GET", "/items/{item_id}", "", "Bearer abcdefghijklmnop"])
SCALARS = TEXT | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.floats(allow_nan=False)
VALUES = SCALARS | st.lists(TEXT, max_size=4).map(tuple) | st.lists(st.integers(-5, 5), max_size=4).map(tuple)
ATTRIBUTES = st.dictionaries(KEYS, VALUES, max_size=6)
IDS = st.integers(min_value=1, max_value=2**64 - 1)


@st.composite
def spans(draw: st.DrawFn) -> ReadableSpan:
    events = [
        Event(draw(TEXT), BoundedAttributes(attributes=draw(ATTRIBUTES), immutable=True), timestamp=draw(IDS))
        for _ in range(draw(st.integers(0, 2)))
    ]
    links = [
        Link(context(draw(IDS), draw(IDS), is_remote=draw(st.booleans())), draw(ATTRIBUTES))
        for _ in range(draw(st.integers(0, 2)))
    ]
    return make_span(
        draw(TEXT),
        context=context(draw(IDS), draw(IDS)),
        parent=draw(st.none() | st.builds(lambda s, r: context(span_id=s, is_remote=r), IDS, st.booleans())),
        kind=draw(st.sampled_from(list(SpanKind))),
        attributes=BoundedAttributes(attributes=draw(ATTRIBUTES), immutable=True),
        events=events,
        links=links,
        status=Status(draw(st.sampled_from(list(StatusCode))), draw(st.none() | TEXT)),
        resource=draw(st.sampled_from([RESOURCE, Resource({"service.name": "x"})])),
        instrumentation_scope=draw(st.sampled_from([SCOPE, None, InstrumentationScope("db")])),
        start_time=draw(IDS),
        end_time=draw(IDS),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(spans(), max_size=5), st.booleans())
def test_generated_spans_encode_as_the_sdk_encodes_them(batch, emails):
    """Any batch of spans gives the SDK's request for the scrubbed spans, also the second time (cached)."""
    scrubber = Scrubber(emails=emails)
    encoder = SpanEncoder(scrubber)
    expected = sdk_request(batch, scrubber).SerializeToString()
    assert encoder.encode(batch) == expected
    assert encoder.encode(batch) == expected


# --- scrubbing ---------------------------------------------------------------------------------------------------
def leaked_fragments(secret: str, rendered: bytes, width: int = 6) -> list[str]:
    return [secret[i : i + width] for i in range(len(secret) - width + 1) if secret[i : i + width].encode() in rendered]


@pytest.mark.parametrize("entry", CORPUS, ids=[e["kind"] for e in CORPUS])
def test_no_corpus_secret_reaches_the_request(entry):
    """A secret in a span name, attribute, event attribute or status description is not in the bytes, twice over."""
    text = entry["text"]
    span = make_span(
        text,
        attributes={"note": text, "list": (text, "ok")},
        events=[Event("log", {"message": text})],
        status=Status(StatusCode.ERROR, text),
    )
    encoder = SpanEncoder(Scrubber())
    for _ in range(2):  # the second batch comes from the cache
        assert leaked_fragments(entry["secret"], encoder.encode([span])) == []


def test_sensitive_keys_are_redacted_whole():
    """A value under a sensitive key arrives as the marker; an empty one stays empty; a number is a count, not a
    secret (issue 17: numbers under sensitive-sounding keys keep their value unless they are cards)."""
    span = make_span(attributes={"password": "hunter2", "api_key": "k-12345", "token": "", "token_n": 3})
    request = ExportTraceServiceRequest.FromString(SpanEncoder(Scrubber()).encode([span]))
    values = {kv.key: kv.value for kv in request.resource_spans[0].scope_spans[0].spans[0].attributes}
    assert values["password"].string_value == "[REDACTED:password]"
    assert values["api_key"].string_value == "[REDACTED:api_key]"
    assert values["token"].string_value == ""
    assert values["token_n"].int_value == 3


class CountingScrubber(Scrubber):
    """A scrubber that counts the strings it is asked to scrub."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def scrub_text(self, text: str, **kwargs: Any) -> str:
        self.seen.append(text)
        return super().scrub_text(text, **kwargs)


def test_repeated_values_are_scrubbed_once():
    """A (key, value) pair repeated across spans and batches is scrubbed once; unique values every time."""
    scrubber = CountingScrubber()
    encoder = SpanEncoder(scrubber)
    for batch in range(2):
        encoder.encode(
            [make_span(attributes={"http.route": "/items/{item_id}", "id": f"{batch}-{i}"}) for i in range(50)]
        )
    assert scrubber.seen.count("/items/{item_id}") == 1
    assert scrubber.seen.count("GET /items/{item_id}") == 1  # the span name
    # the ids (resource and scope strings are scrubbed once per object besides)
    assert len([text for text in scrubber.seen if re.fullmatch(r"\d-\d+", text)]) == 100


def test_long_values_are_not_cached():
    """A string longer than the cache's limit is scrubbed every time and never kept."""
    scrubber = CountingScrubber()
    encoder = SpanEncoder(scrubber)
    long_value = "x" * (_otlp_encode.KV_CACHE_MAX_STRING + 1)
    encoder.encode([make_span(attributes={"v": long_value})] * 3)
    assert scrubber.seen.count(long_value) == 3
    assert not any(long_value in key for key in encoder._kv_cache)


def test_the_cache_is_bounded():
    """Unique values never grow the attribute cache past its bound."""
    encoder = SpanEncoder(Scrubber())
    for start in range(0, 3 * _otlp_encode.KV_CACHE_SIZE, 512):
        encoder.encode([make_span(attributes={"id": n}) for n in range(start, start + 512)])
        assert len(encoder._kv_cache) <= _otlp_encode.KV_CACHE_SIZE


def test_equal_values_of_different_types_are_cached_apart():
    """True, 1 and 1.0 under one key are three values (not one cache entry)."""
    spans = [make_span(attributes={"v": value}) for value in (1, True, 1.0, 0, False, -0.0, 0.0)]
    assert_same_request(spans, Scrubber())


def test_nan_attributes_are_encoded():
    """NaN (never equal to itself, so never cached) is encoded as the SDK encodes it."""
    ours = SpanEncoder(Scrubber()).encode([make_span(attributes={"v": math.nan})])
    assert ours == sdk_request([make_span(attributes={"v": math.nan})], Scrubber()).SerializeToString()


# --- the exporters ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_the_sdk_members_the_exporters_rely_on_are_there(protocol):
    """The exporters' fast path is on with the installed SDK (an SDK that moves its internals fails here)."""
    endpoint = "http://127.0.0.1:4318/v1/traces" if protocol != "grpc" else "http://127.0.0.1:4317"
    exporter = encoding_exporter(protocol, endpoint=endpoint, timeout=1.0)
    try:
        assert exporter.fast
    finally:
        exporter.shutdown()


def test_the_http_exporter_is_the_sdks_export_with_our_bytes(monkeypatch):
    """The HTTP exporter hands the SDK's client exactly the encoder's bytes."""
    exporter = encoding_exporter("http/protobuf", endpoint="http://127.0.0.1:9/v1/traces", timeout=1.0)
    ScrubbingSpanExporter(exporter, Scrubber())
    sent: list[bytes] = []

    class Sent:
        success, error, status_code = True, None, 200

    monkeypatch.setattr(exporter._client, "export", lambda data: sent.append(data) or Sent())
    spans = recorded_spans()
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert sent == [sdk_request(spans, Scrubber()).SerializeToString()]


def test_an_encoder_failure_falls_back_to_the_sdk_encoder(monkeypatch):
    """When the encoder raises, the batch is sent through the SDK's encoder (scrubbed) and the fallback counted."""
    exporter = encoding_exporter("http/protobuf", endpoint="http://127.0.0.1:9/v1/traces", timeout=1.0)
    ScrubbingSpanExporter(exporter, Scrubber())
    sent: list[bytes] = []

    class Sent:
        success, error, status_code = True, None, 200

    def broken(self: SpanEncoder, spans: Any) -> bytes:
        raise RuntimeError("encoder bug")

    monkeypatch.setattr(exporter._client, "export", lambda data: sent.append(data) or Sent())
    monkeypatch.setattr(SpanEncoder, "encode", broken)
    spans = recorded_spans()
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert exporter.encoder_fallbacks == 1
    assert sent == [sdk_request(spans, Scrubber()).SerializePartialToString()]


def test_scrubbing_exporter_hands_its_scrubber_to_an_encoding_exporter():
    """Wrapped around an encoding exporter, the scrubbing exporter delegates; its scrubber is the encoder's."""
    exporter = encoding_exporter("http/protobuf", endpoint="http://127.0.0.1:9/v1/traces", timeout=1.0)
    scrubber = Scrubber()
    try:
        wrapper = ScrubbingSpanExporter(exporter, scrubber)
        assert wrapper.delegated
        assert exporter._encoder.scrubber is scrubber
    finally:
        exporter.shutdown()


class Memory(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def test_scrubbing_exporter_still_scrubs_for_other_exporters():
    """Around any other exporter (console, in-memory) the spans are scrubbed before they are handed on."""
    memory = Memory()
    ScrubbingSpanExporter(memory, Scrubber()).export([make_span(attributes={"password": "hunter2"})])
    assert memory.spans[0].attributes["password"] == "[REDACTED:password]"


def test_a_secret_registered_after_encoding_is_redacted_from_then_on():
    """The encoder's caches of scrubbed names, attributes and resources are emptied when a secret is registered."""
    secret = "registered-later-8f3a9c"
    span = make_span(f"GET {secret}", attributes={"note": secret}, resource=Resource.create({"repo": secret}))
    encoder = SpanEncoder(Scrubber())
    assert secret.encode() in encoder.encode([span])
    try:
        _scrub.register_secret_values(secret)
        assert secret.encode() not in encoder.encode([span])
        assert secret.encode() not in encode_spans(scrub_spans(Scrubber(), [span])).SerializeToString()
    finally:
        _scrub._forget_registered()


def test_generated_request_ids_encode_as_the_sdk_encodes_their_scrubbed_spans():
    """A request id signalfire generated: the bytes are the SDK's for the same spans scrubbed on the public path,
    under a plain key, a sensitive key, a statement key, with a known secret inside and past the attribute limit;
    none of them enters the attribute cache."""
    scrubber = Scrubber(secret_values=["deadbeefcafe"], attribute_limit=40)
    ids = [GeneratedId(os.urandom(16).hex()) for _ in range(3)] + [GeneratedId("00deadbeefcafe00" + "1" * 16)]
    keys = ["request.id", "session_token", "db.statement", "x"]
    spans = [make_span(attributes={key: value}) for key in keys for value in ids]
    spans.append(make_span(attributes={"request.id": GeneratedId("f" * 48)}))  # cut at the limit: a plain str then
    encoder = SpanEncoder(scrubber)
    for _ in range(2):
        ours = encoder.encode(spans)
        assert ours == sdk_request(spans, scrubber).SerializeToString()
    assert b"deadbeefcafe" not in ours
    assert not any(type(cache_key[2]) is GeneratedId for cache_key in encoder._kv_cache)


def test_a_span_rebuilt_for_its_events_keeps_the_count_of_dropped_attributes():
    """The public path rebuilds a span whose event lost a secret; its own attributes unchanged, the count the SDK
    dropped still goes out (it went out as 0), so both paths send the same request."""
    provider = TracerProvider(span_limits=SpanLimits(max_attributes=1))
    span = provider.get_tracer("t").start_span("n", attributes={"a": 1, "b": 2})
    span.add_event("e", {"password": "hunter22"})
    span.end()
    readable = span._readable_span()
    (scrubbed,) = scrub_spans(Scrubber(), [readable])
    assert scrubbed is not readable
    assert scrubbed.dropped_attributes == readable.dropped_attributes == 1
    assert_same_request([readable], Scrubber())
