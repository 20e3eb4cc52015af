"""The OTLP span exporters signalfire builds: the SDK's, with the request body written by :class:`SpanEncoder`.

Everything but the serialisation is the SDK's (endpoint, headers, timeout, compression, retries with backoff, the
session or channel, its own metrics). Each exporter overrides only the step where the SDK serialises:

- HTTP: ``export()`` is the SDK's (1.45 layout: ``_client.export(bytes)`` behind the size check and the metrics), with
  ``encode_spans(spans).SerializePartialToString()`` replaced;
- gRPC: ``_translate_data()`` returns the bytes, and the stub sends them as they are (an identity serializer).

The private SDK members these rely on are checked when the exporter is built (``fast``) and pinned by
tests/unit/test_otlp_encode.py, so an SDK release that moves them fails the tests instead of silently slowing down;
with ``fast`` False the exporter takes the SDK's own path (still scrubbed). Should the encoder ever fail on a batch,
that batch takes the SDK's path too (``encoder_fallbacks`` counts it): nothing is lost for it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from signalfire._otlp_encode import SpanEncoder
from signalfire._scrub import Scrubber, scrub_spans

__all__ = ["encoding_exporter"]

_log = logging.getLogger("signalfire")


class _Encoding:
    """What both exporters share: the encoder (bound to the scrubber by ScrubbingSpanExporter) and the fallback."""

    _encoder: SpanEncoder
    encoder_fallbacks: int
    fast: bool

    def _init_encoding(self) -> None:
        self._encoder = SpanEncoder(None)
        self.encoder_fallbacks = 0

    def scrub_with(self, scrubber: Scrubber) -> None:
        """Scrub every span with ``scrubber`` while encoding it (a fresh encoder: its caches hold this policy's
        results only)."""
        self._encoder = SpanEncoder(scrubber)

    def _checked(self, spans: Sequence[ReadableSpan]) -> Sequence[ReadableSpan]:
        """The spans scrubbed the way the encoder would, for the SDK's path."""
        scrubber = self._encoder.scrubber
        return scrub_spans(scrubber, spans) if scrubber is not None else spans

    def _serialise(self, spans: Sequence[ReadableSpan]) -> bytes:
        try:
            return self._encoder.encode(spans)
        except Exception:  # the SDK's encoder is the safety net: the batch is still sent
            self.encoder_fallbacks += 1
            log = _log.warning if self.encoder_fallbacks == 1 else _log.debug
            log("signalfire: encoding a span batch failed; sent through the SDK's encoder instead", exc_info=True)
            data: bytes = encode_spans(self._checked(spans)).SerializePartialToString()
            return data


def encoding_exporter(protocol: str, **kwargs: Any) -> Any:
    """The span exporter for ``protocol`` ("grpc" or "http/protobuf") with ``kwargs`` passed to the SDK's."""
    if protocol == "grpc":
        return _grpc_class()(**kwargs)
    return _http_class()(**kwargs)


_classes: dict[str, type] = {}


def _http_class() -> type:
    if "http" in _classes:
        return _classes["http"]
    from opentelemetry.exporter.otlp.proto.http import trace_exporter as sdk

    try:
        from opentelemetry.exporter.otlp.proto.http._common import (
            RequestPayloadTooLargeError,
            _is_request_too_large,
        )
        from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
    except ImportError:  # another SDK layout: the SDK's own path
        layout_known = False
    else:
        layout_known = True
    sdk_log = logging.getLogger(sdk.__name__)  # the SDK's logger, so that its rate limiting (_drops) applies

    class HttpSpanExporter(_Encoding, sdk.OTLPSpanExporter):
        """The SDK's OTLP/HTTP span exporter; the request body is written by signalfire's encoder."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._init_encoding()
            self.fast = layout_known and all(
                hasattr(self, name) for name in ("_client", "_metrics", "_max_request_size", "_shutdown")
            )
            if not self.fast:
                _log.debug("signalfire: unknown OTLP/HTTP exporter layout; spans are encoded by the SDK")

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            if not self.fast:
                result: SpanExportResult = super().export(self._checked(spans))
                return result
            # From here to the end: the SDK's export() with the serialisation replaced.
            if self._shutdown:
                sdk_log.warning("Exporter already shutdown, ignoring batch")
                return SpanExportResult.FAILURE
            with self._metrics.export_operation(len(spans)) as outcome:
                try:
                    data = self._serialise(spans)
                except Exception as error:
                    sdk_log.error("Failed to encode span batch: %s", error)
                    outcome.error = error
                    return SpanExportResult.FAILURE
                if _is_request_too_large(data, self._max_request_size):
                    sdk_log.warning(
                        "Dropping span batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                        len(data),
                        self._max_request_size,
                    )
                    outcome.error = RequestPayloadTooLargeError(
                        f"Serialized span request size {len(data)} bytes exceeds max_request_size "
                        f"{self._max_request_size} bytes."
                    )
                    return SpanExportResult.FAILURE
                sent = self._client.export(data)
                if not sent.success:
                    outcome.error = sent.error
                    outcome.error_attrs = (
                        {HTTP_RESPONSE_STATUS_CODE: sent.status_code} if sent.status_code is not None else None
                    )
                    return SpanExportResult.FAILURE
            return SpanExportResult.SUCCESS

    _classes["http"] = HttpSpanExporter
    return HttpSpanExporter


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


def _grpc_class() -> type:
    if "grpc" in _classes:
        return _classes["grpc"]
    from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as sdk

    class GrpcSpanExporter(_Encoding, sdk.OTLPSpanExporter):
        """The SDK's OTLP/gRPC span exporter; the request is written by signalfire's encoder."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._init_encoding()
            self._last: tuple[Sequence[ReadableSpan] | None, Any] = (None, None)
            self.fast = all(hasattr(self, name) for name in ("_stub", "_channel", "_client"))
            if self.fast:
                # The SDK re-creates the stub from self._stub whenever it reconnects.
                self._stub = _BytesTraceStub
                self._client = _BytesTraceStub(self._channel)  # type: ignore[assignment]
            else:
                _log.debug("signalfire: unknown OTLP/gRPC exporter layout; spans are encoded by the SDK")

        def _translate_data(self, data: Sequence[ReadableSpan]) -> Any:
            # Called once per attempt: a retried batch is encoded (and its scrub failures counted) once.
            if self._last[0] is data:
                return self._last[1]
            request = self._serialise(data) if self.fast else encode_spans(self._checked(data))
            self._last = (data, request)
            return request

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            try:
                result: SpanExportResult = super().export(spans)
            finally:
                self._last = (None, None)
            return result

    _classes["grpc"] = GrpcSpanExporter
    return GrpcSpanExporter
