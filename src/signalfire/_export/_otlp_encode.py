"""OTLP trace encoding by hand: ``ExportTraceServiceRequest`` bytes straight from finished spans, scrubbed on the way.

The SDK's encoder builds a protobuf message object per span, per attribute and per value and then serialises the
tree; that costs more than creating and ending the span. Here the wire format is written directly (varints,
length-delimited fields, fixed64 times), and what repeats across spans is encoded once:

- the resource and each instrumentation scope, memoised per object;
- each scalar attribute ``(key, value)`` (route, method, status code, server address, ...), memoised *after
  scrubbing* in a bounded cache that belongs to one :class:`SpanEncoder`, hence to one scrubber policy: the scrubber
  runs on a pair once per cache entry, not once per span; values that never repeat (ids, urls) are scrubbed every time;
- span names, scrubbed once per distinct name.

What the collector receives is exactly what ``encode_spans()`` of the scrubbed spans would send (the same message,
byte for byte; tests/unit/test_otlp_encode.py proves it differentially), including the SDK's quirks: an attribute
whose value cannot be encoded is left out, resources and scopes are grouped by equality in first-seen order, links
carry no trace state. The scrubbing is :mod:`signalfire._scrub._wire`'s, over the whole model: span and event names,
span, event and link attributes (keys included), status descriptions, the trace state, resource and scope attributes.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanKind, StatusCode

from signalfire._compat.opentelemetry import SpanParts, span_parts
from signalfire._scrub._policy import GeneratedId, Scrubber, registry_generation
from signalfire._scrub._wire import (
    STATEMENT_KEYS,
    scrub_resource,
    scrub_scope,
    scrub_trace_state,
    strip_statement_data,
    wire_attribute,
    wire_text,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext, TraceState

__all__ = ["SpanEncoder"]

_log = logging.getLogger("signalfire")

# Bounds of the memo caches: cleared whole when full (cheap, and a burst of unique values cannot grow them).
KV_CACHE_SIZE = 4096
KV_CACHE_MAX_STRING = 256  # longer strings are encoded (and scrubbed) each time, never kept
NAME_CACHE_SIZE = 1024
OBJECT_MEMO_SIZE = 64

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64_MASK = (1 << 64) - 1
_SMALL_VARINTS = [bytes((n,)) for n in range(128)]
_pack_double = struct.Struct("<d").pack
_pack_fixed64 = struct.Struct("<Q").pack

# Span kinds as the SDK maps them (the protobuf enum is the SDK's value + 1), with the field tag (6, varint).
_KIND_FIELD = {
    SpanKind.INTERNAL: b"\x30\x01",
    SpanKind.SERVER: b"\x30\x02",
    SpanKind.CLIENT: b"\x30\x03",
    SpanKind.PRODUCER: b"\x30\x04",
    SpanKind.CONSUMER: b"\x30\x05",
}
# Span.flags (field 16, fixed32): SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, plus _IS_REMOTE_MASK for a remote parent.
_FLAGS_LOCAL = b"\x85\x01\x00\x01\x00\x00"
_FLAGS_REMOTE = b"\x85\x01\x00\x03\x00\x00"
# Link.flags (field 6, fixed32), the same two values.
_LINK_FLAGS_LOCAL = b"\x35\x00\x01\x00\x00"
_LINK_FLAGS_REMOTE = b"\x35\x00\x03\x00\x00"
# Span.status (field 15) without a description: present, code only (UNSET is the default and not written).
_STATUS_FIELD = {
    StatusCode.UNSET: b"\x7a\x00",
    StatusCode.OK: b"\x7a\x02\x18\x01",
    StatusCode.ERROR: b"\x7a\x02\x18\x02",
}
# Looked up by the member's id: an Enum member's __hash__ is a Python call.
_KIND_BY_ID = {id(kind): field for kind, field in _KIND_FIELD.items()}
_STATUS_BY_ID = {id(code): field for code, field in _STATUS_FIELD.items()}
_EMPTY_SCOPE_FIELD = b"\x0a\x00"  # ScopeSpans.scope of a span without an instrumentation scope: present and empty
_SPAN_ATTRIBUTES = b"\x4a"  # Span.attributes (field 9, length-delimited)


def _varint(n: int) -> bytes:
    if n < 128:
        return _SMALL_VARINTS[n]
    out = bytearray()
    while n > 127:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


def _delimited(tag: bytes, body: bytes) -> bytes:
    """A length-delimited field: tag, length, body."""
    size = len(body)
    if size < 128:
        return tag + _SMALL_VARINTS[size] + body
    return tag + _varint(size) + body


def _int64(n: int) -> bytes:
    if not _INT64_MIN <= n <= _INT64_MAX:
        raise ValueError(f"integer {n} is out of the int64 range")
    return _varint(n & _UINT64_MASK)


def _any_value(value: Any) -> bytes:
    """An AnyValue message body, with the SDK's type precedence; raises for what the SDK cannot encode either."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _delimited(b"\x0a", value.encode("utf-8"))
    if isinstance(value, int):
        return b"\x18" + _int64(value)
    if isinstance(value, float):
        return b"\x21" + _pack_double(value)
    if isinstance(value, bytes):
        return _delimited(b"\x3a", value)
    if isinstance(value, Sequence):
        return _delimited(b"\x2a", b"".join([_delimited(b"\x0a", _any_value(item)) for item in value]))
    if isinstance(value, Mapping):
        return _delimited(
            b"\x32", b"".join([_delimited(b"\x0a", _key_value(str(k), item)) for k, item in value.items()])
        )
    raise TypeError(f"invalid attribute value type {type(value).__name__}")


def _key_value(key: str, value: Any) -> bytes:
    """A KeyValue message body (the value is always present, empty for None, as the SDK writes it)."""
    return _delimited(b"\x0a", key.encode("utf-8")) + _delimited(b"\x12", _any_value(value))


def _raw_attributes(tag: bytes, attributes: Any) -> list[bytes]:
    """Attributes as repeated KeyValue fields, unscrubbed (resources, scopes, links); bad values are left out."""
    if not attributes:
        return []
    fields = []
    for key, value in attributes.items():
        try:
            fields.append(_delimited(tag, _key_value(key, value)))
        except Exception:  # as the SDK does: one attribute that cannot be encoded does not lose the span
            _log.debug("signalfire: cannot encode attribute %r; left out", key, exc_info=True)
    return fields


def _trace_state(context: SpanContext, scrubber: Scrubber | None) -> str:
    state: TraceState | None = context.trace_state
    if state and scrubber is not None:
        state = scrub_trace_state(scrubber, state)
    if state is None:
        return ""
    return ",".join([f"{key}={value}" for key, value in state.items()])


class SpanEncoder:
    """Encodes batches of finished spans as OTLP ``ExportTraceServiceRequest`` bytes, scrubbed with ``scrubber``.

    One instance per exporter: its caches hold values scrubbed under this scrubber's policy only. ``scrubber=None``
    encodes the spans as they are. Raises on a span the SDK's encoder could not encode either (the exporter then
    takes the SDK's path).
    """

    __slots__ = ("_generation", "_id_keys", "_kv_cache", "_kv_caches", "_names", "_resources", "_scopes", "scrubber")

    def __init__(self, scrubber: Scrubber | None) -> None:
        self.scrubber = scrubber
        # (key, type, value) -> the KeyValue as a length-prefixed body, scrubbed (b"": the attribute is left out)
        self._kv_cache: dict[tuple[Any, type, Any], bytes] = {}
        # one cache per field tag (span, event and link attributes), each entry the whole field: tag, length, body
        self._kv_caches: dict[bytes, dict[tuple[Any, type, Any], bytes]] = {_SPAN_ATTRIBUTES: self._kv_cache}
        self._names: dict[str, bytes] = {}  # span name -> its field (tag 5), scrubbed
        self._id_keys: dict[str, bytes] = {}  # key of a generated id (request.id) -> its KeyValue.key field, scrubbed
        # id(object) -> (object, encoded): the object is held so that its id cannot be reused while memoised
        self._resources: dict[int, tuple[Any, bytes, bytes]] = {}
        self._scopes: dict[int, tuple[Any, bytes, bytes]] = {}
        # the known-secret registry's generation the caches were filled under: a newly registered secret empties them
        self._generation = registry_generation()

    # --- the request ------------------------------------------------------------------------------------------------
    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The serialised ExportTraceServiceRequest of ``spans``."""
        if self._generation != registry_generation():
            self._generation = registry_generation()
            caches: list[dict[Any, Any]] = [*self._kv_caches.values(), self._names, self._id_keys]
            for cache in [*caches, self._resources, self._scopes]:
                cache.clear()
        # Grouped by resource, then scope, by equality and in first-seen order (as the SDK's dicts do); the id maps
        # avoid hashing a Resource (a JSON dump of its attributes) once per span.
        groups: list[tuple[Any, list[tuple[Any, list[bytes]]], dict[int, list[bytes]]]] = []
        resource_index: dict[int, int] = {}
        seen: list[Any] = []  # keeps every object whose id is a key above alive for the call
        encode_span = self._span
        for span in spans:
            parts = span_parts(span)
            resource = parts.resource
            index = resource_index.get(id(resource))
            if index is None:
                seen.append(resource)
                index = next((i for i, group in enumerate(groups) if group[0] == resource), len(groups))
                if index == len(groups):
                    groups.append((resource, [], {}))
                resource_index[id(resource)] = index
            _, scopes, scope_index = groups[index]
            scope = parts.instrumentation_scope or None
            bucket = scope_index.get(id(scope))
            if bucket is None:
                seen.append(scope)
                bucket = next((b for s, b in scopes if s == scope), None)
                if bucket is None:
                    bucket = []
                    scopes.append((scope, bucket))
                scope_index[id(scope)] = bucket
            bucket.append(encode_span(parts))
        out = []
        for resource, scopes, _ in groups:
            head, tail = self._resource(resource)
            body = [head]
            for scope, bucket in scopes:
                scope_head, scope_tail = self._scope(scope)
                body.append(_delimited(b"\x12", b"".join([scope_head, *bucket, scope_tail])))
            body.append(tail)
            out.append(_delimited(b"\x0a", b"".join(body)))
        return b"".join(out)

    def _resource(self, resource: Any) -> tuple[bytes, bytes]:
        """ResourceSpans.resource (field 1, always present) and ResourceSpans.schema_url (field 3, after the scopes)."""
        memo = self._resources.get(id(resource))
        if memo is None or memo[0] is not resource:
            original = resource
            if self.scrubber is not None:
                resource = scrub_resource(self.scrubber, resource)
            head = _delimited(b"\x0a", b"".join(_raw_attributes(b"\x0a", resource.attributes)))
            schema_url = resource.schema_url
            tail = _delimited(b"\x1a", schema_url.encode("utf-8")) if schema_url else b""
            if len(self._resources) >= OBJECT_MEMO_SIZE:
                self._resources.clear()
            memo = self._resources[id(original)] = (original, head, tail)
        return memo[1], memo[2]

    def _scope(self, scope: Any) -> tuple[bytes, bytes]:
        """ScopeSpans.scope (field 1, always present) and ScopeSpans.schema_url (field 3, after the spans)."""
        memo = self._scopes.get(id(scope))
        if memo is None or memo[0] is not scope:
            original = scope
            if scope is not None and self.scrubber is not None:
                scope = scrub_scope(self.scrubber, scope)
            if scope is None:
                head, tail = _EMPTY_SCOPE_FIELD, b""
            else:
                body = b""
                if scope.name:
                    body += _delimited(b"\x0a", scope.name.encode("utf-8"))
                if scope.version:
                    body += _delimited(b"\x12", scope.version.encode("utf-8"))
                body += b"".join(_raw_attributes(b"\x1a", scope.attributes))
                head = _delimited(b"\x0a", body)
                tail = _delimited(b"\x1a", scope.schema_url.encode("utf-8")) if scope.schema_url else b""
            if len(self._scopes) >= OBJECT_MEMO_SIZE:
                self._scopes.clear()
            memo = self._scopes[id(original)] = (original, head, tail)
        return memo[1], memo[2]

    # --- one span ---------------------------------------------------------------------------------------------------
    def _span(self, span: SpanParts) -> bytes:
        (
            name,
            context,
            kind,
            parent,
            start_time,
            end_time,
            attributes,
            dropped_attributes,
            events,
            dropped_events,
            links,
            dropped_links,
            status,
            _,
            _,
        ) = span
        if context is None:
            raise ValueError("span without a context")
        parts = [b"\x0a\x10", context.trace_id.to_bytes(16, "big"), b"\x12\x08", context.span_id.to_bytes(8, "big")]
        if context.trace_state:
            state = _trace_state(context, self.scrubber)
            if state:
                parts.append(_delimited(b"\x1a", state.encode("utf-8")))
        if parent:
            parts.append(b"\x22\x08")
            parts.append(parent.span_id.to_bytes(8, "big"))
        field = self._names.get(name)
        if field is None:
            field = self._name_field(name)
        parts.append(field)
        parts.append(_KIND_BY_ID[id(kind)])
        if start_time:
            parts.append(b"\x39" + _pack_fixed64(start_time))
        if end_time:
            parts.append(b"\x41" + _pack_fixed64(end_time))
        if attributes:
            self._attributes(parts, _SPAN_ATTRIBUTES, attributes)
        if dropped_attributes:
            parts.append(b"\x50" + _varint(dropped_attributes))
        for event in events:
            parts.append(_delimited(b"\x5a", self._event(event)))
        if dropped_events:
            parts.append(b"\x60" + _varint(dropped_events))
        for link in links:
            parts.append(_delimited(b"\x6a", self._link(link)))
        if dropped_links:
            parts.append(b"\x70" + _varint(dropped_links))
        parts.append(self._status(status))
        parts.append(_FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL)
        return _delimited(b"\x12", b"".join(parts))

    def _name_field(self, name: str) -> bytes:
        scrubber = self.scrubber
        text = wire_text(scrubber, name) if scrubber is not None else name
        field = _delimited(b"\x2a", text.encode("utf-8")) if text else b""
        names = self._names
        if len(names) >= NAME_CACHE_SIZE:
            names.clear()
        names[name] = field
        return field

    def _status(self, status: Any) -> bytes:
        description = status.description
        if not description:
            return _STATUS_BY_ID[id(status.status_code)]
        if self.scrubber is not None:
            description = wire_text(self.scrubber, description)
        body = _delimited(b"\x12", description.encode("utf-8"))
        code = status.status_code.value
        if code:
            body += b"\x18" + _varint(code)
        return _delimited(b"\x7a", body)

    def _event(self, event: Any) -> bytes:
        parts = []
        if event.timestamp:
            parts.append(b"\x09" + _pack_fixed64(event.timestamp))
        name = event.name
        if name and self.scrubber is not None:
            name = wire_text(self.scrubber, name)
        if name:
            parts.append(_delimited(b"\x12", name.encode("utf-8")))
        if event.attributes:
            self._attributes(parts, b"\x1a", event.attributes)
        if event.dropped_attributes:
            parts.append(b"\x20" + _varint(event.dropped_attributes))
        return b"".join(parts)

    # --- attributes ---------------------------------------------------------------------------------------------------
    def _attributes(self, parts: list[bytes], tag: bytes, attributes: Mapping[str, Any]) -> None:
        """Append the scrubbed attributes as repeated KeyValue fields with ``tag``."""
        cache = self._kv_caches.get(tag)
        if cache is None:
            cache = self._kv_caches[tag] = {}
        append = parts.append
        for key, value in attributes.items():
            kind = type(value)
            if kind is str:
                if len(value) > KV_CACHE_MAX_STRING:
                    entry = self._scrubbed_key_value(key, value)
                    append(tag + entry if entry else b"")
                    continue
            elif kind is not int and kind is not bool:
                entry = (self._generated_key_value if kind is GeneratedId else self._scrubbed_key_value)(key, value)
                append(tag + entry if entry else b"")
                continue
            cache_key = (key, kind, value)
            field = cache.get(cache_key)
            if field is None:
                entry = self._scrubbed_key_value(key, value)
                field = tag + entry if entry else b""  # b"": left out (joined as nothing)
                if len(cache) >= KV_CACHE_SIZE:
                    cache.clear()
                cache[cache_key] = field
            append(field)

    def _generated_key_value(self, key: str, value: GeneratedId) -> bytes:
        """A request id signalfire generated (unique per span, so never cached): the key's field is encoded once, the
        value only checked for known secret values (what ``wire_attribute`` does to such a value under such a key)."""
        scrubber = self.scrubber
        key_field = self._id_keys.get(key)
        if key_field is None:
            if scrubber is None or scrubber.key_category(key) is not None or key in STATEMENT_KEYS:
                return self._scrubbed_key_value(key, value)
            shown = wire_text(scrubber, key) if len(key) >= 8 else key
            key_field = _delimited(b"\x0a", shown.encode("utf-8"))
            if len(self._id_keys) >= NAME_CACHE_SIZE:
                self._id_keys.clear()
            self._id_keys[key] = key_field
        if len(value) > scrubber.attribute_limit:  # type: ignore[union-attr]  # a key field exists: scrubber is set
            return self._scrubbed_key_value(key, value)
        text = scrubber.scrub_text(value)  # type: ignore[union-attr]  # known secret values only, for such a value
        if "[parameters: " in text or "Key (" in text:
            text = strip_statement_data(text)
        raw = text.encode("utf-8")
        size = len(raw)
        total = len(key_field) + size + 4  # KeyValue: the key field, then value (tag, length, AnyValue: tag, length)
        if total < 128:  # every length fits one byte (a 32-digit id under a short key)
            small = _SMALL_VARINTS
            return b"".join((small[total], key_field, b"\x12", small[size + 2], b"\x0a", small[size], raw))
        body = key_field + _delimited(b"\x12", _delimited(b"\x0a", raw))
        return _varint(len(body)) + body

    def _scrubbed_key_value(self, key: str, value: Any) -> bytes:
        """The KeyValue as length + body, scrubbed as ScrubbingSpanExporter scrubs it; b"" when it cannot be encoded."""
        scrubber = self.scrubber
        if scrubber is not None:
            value = wire_attribute(scrubber, key, value)
            if isinstance(key, str) and len(key) >= 8:  # a key that holds a secret goes out under its scrubbed name
                key = wire_text(scrubber, key)
        try:
            body = _key_value(key, value)
        except Exception:  # as the SDK does: one attribute that cannot be encoded does not lose the span
            _log.debug("signalfire: cannot encode attribute %r; left out", key, exc_info=True)
            return b""
        return _varint(len(body)) + body

    def _link(self, link: Any) -> bytes:
        context = link.context
        parts = [b"\x0a\x10", context.trace_id.to_bytes(16, "big"), b"\x12\x08", context.span_id.to_bytes(8, "big")]
        if link.attributes:
            if self.scrubber is not None:
                self._attributes(parts, b"\x22", link.attributes)
            else:
                parts.extend(_raw_attributes(b"\x22", link.attributes))
        if link.dropped_attributes:
            parts.append(b"\x28" + _varint(link.dropped_attributes))
        parts.append(_LINK_FLAGS_REMOTE if context.is_remote else _LINK_FLAGS_LOCAL)
        return b"".join(parts)
