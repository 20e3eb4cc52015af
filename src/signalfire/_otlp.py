"""OTLP exporters for every signal, built from a resolved OtlpTarget with every value passed explicitly."""

from __future__ import annotations

import errno
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable
from typing import Any

from signalfire._settings import OtlpTarget, Signal

__all__ = ["address", "otlp_exporter", "refusing"]

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


# --- is the collector there? ------------------------------------------------------------------------------------------
# The SDK's exporters retry a refused connection with exponential backoff until their timeout (1.45: the HTTP client in
# opentelemetry.exporter.otlp.common.http treats a connection error as retryable, 6 attempts, 1 s, 2 s, 4 s, ...; the
# gRPC exporter retries UNAVAILABLE the same way). During the run that costs a background thread nothing, but at exit
# it is the whole budget. A refusal is known from one TCP connect, so the exit path asks once, up front.
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REFUSED = frozenset({errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH})


def address(endpoint: str, protocol: str) -> tuple[str, int] | None:
    """The (host, port) an exporter for ``endpoint`` connects to, or None when it cannot be probed directly (a unix
    socket, an unparsable value, or a proxy in between, which the HTTP and gRPC exporters both honour)."""
    try:
        parsed = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        host = parsed.hostname
        if parsed.scheme not in ("http", "https", "grpc", "grpcs") or not host:
            return None
        port = parsed.port or _DEFAULT_PORTS.get(parsed.scheme) or (4317 if protocol == "grpc" else 4318)
        proxies = urllib.request.getproxies()
        scheme = "https" if parsed.scheme in ("https", "grpcs") else "http"
        if (scheme in proxies or "grpc" in proxies) and not urllib.request.proxy_bypass(host):
            return None
    except (ValueError, OSError):
        return None
    return host, port


def refusing(addresses: Iterable[tuple[str, int]], timeout: float) -> set[tuple[str, int]]:
    """Of ``addresses``, those that refuse a TCP connection (or have no route), each tried once, all at the same
    time, for at most ``timeout`` seconds. One that does not answer within the timeout is not counted as refusing:
    it may be slow, and the flush that follows is bounded anyway."""
    found: set[tuple[str, int]] = set()
    lock = threading.Lock()

    def probe(target: tuple[str, int]) -> None:
        try:
            with socket.create_connection(target, timeout=timeout):
                return
        except OSError as error:
            if error.errno in _REFUSED or isinstance(error, ConnectionRefusedError | socket.gaierror):
                with lock:
                    found.add(target)

    threads = [
        threading.Thread(target=probe, args=(target,), name="signalfire-probe", daemon=True)
        for target in set(addresses)
    ]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with lock:
        return set(found)
