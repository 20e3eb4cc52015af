"""The OTLP span exporters signalfire builds: the SDK's, with the request body written by :class:`SpanEncoder`.

Everything but the serialisation is the SDK's (endpoint, headers, timeout, compression, retries with backoff, the
session or channel, its own metrics). Each exporter replaces only the step where the SDK serialises, through
``signalfire._compat.opentelemetry`` (the one place that knows the SDK's private members, pinned by
tests/unit/test_compat_opentelemetry.py):

- HTTP: ``export()`` is the SDK's, with ``encode_spans(spans).SerializePartialToString()`` replaced;
- gRPC: ``_translate_data()`` returns the bytes, and the stub sends them as they are (an identity serializer).

Privacy fails closed: the encoder scrubs while it encodes (the same policy and fields as ``signalfire._scrub._wire``);
with an unknown SDK layout (``fast`` False) the exporter takes the SDK's own path on spans scrubbed by the public
path first. Should the encoder ever fail on a batch, that batch takes the SDK's path too, scrubbed the same way
(``encoder_fallbacks`` counts it): nothing is lost for it, and nothing leaves unscrubbed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from signalfire._compat import opentelemetry as compat
from signalfire._export._otlp_encode import SpanEncoder
from signalfire._scrub._policy import Scrubber
from signalfire._scrub._wire import DropSink, SpanScrubber

__all__ = ["encoding_exporter"]

_log = logging.getLogger("signalfire")


class _Encoding:
    """What both exporters share: the encoder (bound to the scrubber by ScrubbingSpanExporter) and the fallback."""

    _encoder: SpanEncoder
    _public: SpanScrubber | None
    encoder_fallbacks: int
    fast: bool

    def _init_encoding(self) -> None:
        self._encoder = SpanEncoder(None)
        self._public = None
        self.encoder_fallbacks = 0

    def scrub_with(self, scrubber: Scrubber, dropped: DropSink | None = None) -> None:
        """Scrub every span with ``scrubber`` while encoding it (a fresh encoder: its caches hold this policy's
        results only); spans that cannot be scrubbed on the SDK's path are counted with ``dropped``."""
        self._encoder = SpanEncoder(scrubber)
        self._public = SpanScrubber(scrubber, dropped) if dropped is not None else SpanScrubber(scrubber)

    def _checked(self, spans: Sequence[ReadableSpan]) -> Sequence[ReadableSpan]:
        """The spans scrubbed the way the encoder would, for the SDK's path."""
        return self._public.spans(spans) if self._public is not None else spans

    def _serialise(self, spans: Sequence[ReadableSpan]) -> bytes:
        try:
            return self._encoder.encode(spans)
        except Exception:  # the SDK's encoder is the safety net: the batch is still sent
            self.encoder_fallbacks += 1
            log = _log.warning if self.encoder_fallbacks == 1 else _log.debug
            log("signalfire: encoding a span batch failed; sent through the SDK's encoder instead", exc_info=True)
            from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

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

    sdk_log = logging.getLogger(sdk.__name__)  # the SDK's logger, so that its rate limiting (_drops) applies

    class HttpSpanExporter(_Encoding, sdk.OTLPSpanExporter):
        """The SDK's OTLP/HTTP span exporter; the request body is written by signalfire's encoder."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._init_encoding()
            self.fast = compat.http_layout_known(self)
            if not self.fast:
                _log.debug("signalfire: unknown OTLP/HTTP exporter layout; spans are encoded by the SDK")

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            if not self.fast:
                result: SpanExportResult = super().export(self._checked(spans))
                return result
            sent = compat.http_send(self, len(spans), lambda: self._serialise(spans), sdk_log)
            return SpanExportResult.SUCCESS if sent else SpanExportResult.FAILURE

    _classes["http"] = HttpSpanExporter
    return HttpSpanExporter


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
            self.fast = compat.grpc_send_bytes(self)
            if not self.fast:
                _log.debug("signalfire: unknown OTLP/gRPC exporter layout; spans are encoded by the SDK")

        def _translate_data(self, data: Sequence[ReadableSpan]) -> Any:
            # Called once per attempt: a retried batch is encoded (and its scrub failures counted) once. Without
            # the fast path export() has scrubbed the spans already.
            if self._last[0] is data:
                return self._last[1]
            if self.fast:
                request = self._serialise(data)
            else:
                from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

                request = encode_spans(data)
            self._last = (data, request)
            return request

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            # Unknown layout: the spans are scrubbed before the SDK sees them, whichever way it then serialises.
            batch = spans if self.fast else self._checked(spans)
            try:
                result: SpanExportResult = super().export(batch)
            finally:
                self._last = (None, None)
            return result

    _classes["grpc"] = GrpcSpanExporter
    return GrpcSpanExporter
