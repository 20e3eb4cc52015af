"""The floor: what the libraries signalfire builds on charge for the least a request can ask of them (a child; see
run.py's ``floor_section``).

``python -m benchmarks.bench_floor OP --count N --result FILE`` sets up OP once, then performs it N times, and writes
the CPU microseconds per operation (median of 7 loops of N); under ``valgrind --tool=callgrind`` run.py runs it with
two counts and divides the difference of the totals by the difference of the counts, so set-up cancels out. OP is one
of:

- ``span``: one opentelemetry-sdk span started and ended (no attributes), on a tracer provider with a batch span
  processor whose exporter drops what it gets (``--loops 1``: the export thread does nothing measurable);
- ``server_span``: the same with the eleven attributes a server span of the benchmark's request starts with;
- ``prometheus_inc``: one prometheus-client ``Counter`` increment on a child whose labels are already bound;
- ``prometheus_labels_inc``: ``counter.labels(method, route, status).inc()``, the labels looked up each time;
- ``json_log``: one structlog line (level, ISO timestamp, four fields) rendered by structlog's JSONRenderer and written
  to ``/dev/null``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks._harness import median, write_result

OPS = ("span", "server_span", "prometheus_inc", "prometheus_labels_inc", "json_log")
DESCRIPTIONS = {
    "span": "one opentelemetry-sdk span started and ended (batch processor, an exporter that drops)",
    "server_span": "the same with the 11 attributes the benchmark's server span starts with",
    "prometheus_inc": "one prometheus-client Counter increment, labels bound once",
    "prometheus_labels_inc": "counter.labels(method, route, status).inc(), labels looked up each time",
    "json_log": "one structlog JSON line (level, ISO timestamp, 4 fields) written to /dev/null",
}
_SERVER_ATTRIBUTES = {
    "http.request.method": "GET",
    "url.scheme": "http",
    "url.path": "/items/42",
    "request.id": "0123456789abcdef0123456789abcdef",
    "network.protocol.version": "1.1",
    "server.address": "bench.local",
    "server.port": 80,
    "user_agent.original": "bench/1.0",
    "client.address": "127.0.0.1",
    "client.port": 50000,
    "http.route": "/items/{item_id}",
}


def _tracer() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    return provider.get_tracer("bench")


def build(op: str) -> Callable[[], None]:
    """The operation, set up once."""
    if op in ("span", "server_span"):
        from opentelemetry.trace import SpanKind

        tracer = _tracer()
        attributes = _SERVER_ATTRIBUTES if op == "server_span" else None
        kind = SpanKind.SERVER if op == "server_span" else SpanKind.INTERNAL

        def span() -> None:
            tracer.start_span("GET /items/{item_id}", kind=kind, attributes=attributes).end()

        return span
    if op in ("prometheus_inc", "prometheus_labels_inc"):
        from prometheus_client import CollectorRegistry, Counter

        counter = Counter("requests", "requests", ["method", "route", "status"], registry=CollectorRegistry())
        if op == "prometheus_inc":
            return counter.labels("GET", "/items/{item_id}", "200").inc
        return lambda: counter.labels("GET", "/items/{item_id}", "200").inc()
    if op == "json_log":
        import structlog

        log = structlog.wrap_logger(
            structlog.PrintLogger(open(os.devnull, "w")),  # noqa: SIM115 - lives as long as the process
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso"),
                structlog.processors.JSONRenderer(),
            ],
        )

        def line() -> None:
            log.info("request", method="GET", route="/items/{item_id}", status=200, duration_ms=0.123)

        return line
    raise ValueError(op)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("op", choices=OPS)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--loops", type=int, default=7)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    op = build(args.op)
    for _ in range(min(args.count, 200)):  # warm-up: caches, first-call paths
        op()
    per_op_us = []
    for _ in range(args.loops):
        started = time.process_time_ns()
        for _ in range(args.count):
            op()
        per_op_us.append((time.process_time_ns() - started) / args.count / 1000)
    write_result(args.result, {"op": args.op, "us": median(per_op_us)})


if __name__ == "__main__":
    main()
