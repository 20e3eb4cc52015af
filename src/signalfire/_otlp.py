"""OTLP exporters for every signal, built from a resolved OtlpTarget with every value passed explicitly."""

from __future__ import annotations

from typing import Any

from signalfire._settings import OtlpTarget, Signal

__all__ = ["otlp_exporter"]

# (module, class) of the exporter per protocol and signal; imported only when used.
_EXPORTERS: dict[tuple[str, Signal], tuple[str, str]] = {
    ("grpc", "traces"): ("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", "OTLPSpanExporter"),
    ("grpc", "metrics"): ("opentelemetry.exporter.otlp.proto.grpc.metric_exporter", "OTLPMetricExporter"),
    ("grpc", "logs"): ("opentelemetry.exporter.otlp.proto.grpc._log_exporter", "OTLPLogExporter"),
    ("http/protobuf", "traces"): ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter"),
    ("http/protobuf", "metrics"): ("opentelemetry.exporter.otlp.proto.http.metric_exporter", "OTLPMetricExporter"),
    ("http/protobuf", "logs"): ("opentelemetry.exporter.otlp.proto.http._log_exporter", "OTLPLogExporter"),
}


def otlp_exporter(signal: Signal, target: OtlpTarget, **extra: Any) -> Any:
    """The OTLP exporter of ``signal`` for ``target`` (gRPC or HTTP/protobuf). The SDK's exporters would otherwise
    read OTEL_* variables themselves, and read OTEL_EXPORTER_OTLP_TIMEOUT as seconds where the specification says
    milliseconds; passing everything keeps Settings the one source. Span exporters write the request body with
    signalfire's encoder (``_otlp_spans``)."""
    import importlib

    kwargs: dict[str, Any] = {"endpoint": target.endpoint, "headers": dict(target.headers), "timeout": target.timeout_s}
    if target.protocol == "grpc":
        import grpc

        kwargs["insecure"] = target.endpoint.startswith("http://")
        kwargs["compression"] = (
            grpc.Compression.Gzip if target.compression == "gzip" else grpc.Compression.NoCompression
        )
    else:
        from opentelemetry.exporter.otlp.proto.http import Compression

        kwargs["compression"] = Compression.Gzip if target.compression == "gzip" else Compression.NoCompression
    if signal == "traces":
        # the SDK's exporter with signalfire's encoder (and the scrubbing) in place of encode_spans()
        from signalfire._otlp_spans import encoding_exporter

        return encoding_exporter(target.protocol, **kwargs, **extra)
    module_name, class_name = _EXPORTERS[(target.protocol, signal)]
    exporter_class = getattr(importlib.import_module(module_name), class_name)
    return exporter_class(**kwargs, **extra)
