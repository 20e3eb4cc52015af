"""Instructions per exported server span in signalfire's encoder, scrubbing included (callgrind; a one-off measure).

``python -m benchmarks.encode_instructions`` runs this module twice under ``valgrind --tool=callgrind``, once encoding
1,024 fresh server spans (twelve attributes as the middleware records them, a generated request id) and once only
building them, and prints the difference per span. ``PYTHONHASHSEED=0`` and the collector off during the encode make
two runs agree to a few instructions. benchmarks/ANALYSIS.md (fourth pass) quotes it.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import subprocess
import sys

SPANS = 1024
MODULE = "benchmarks.encode_instructions"


def _spans(count: int) -> list:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from signalfire._scrub._policy import GeneratedId

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    for _ in range(count):
        span = tracer.start_span(
            "GET",
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": "GET", "url.scheme": "http", "url.path": "/items/42",
                "request.id": GeneratedId(os.urandom(16).hex()), "network.protocol.version": "1.1",
                "server.address": "testserver", "server.port": 80, "client.address": "testclient",
                "client.port": 50000, "user_agent.original": "bench",
            },
        )  # fmt: skip
        span.update_name("GET /items/{item_id}")
        span.set_attributes({"http.route": "/items/{item_id}", "http.response.status_code": 200})
        span.end()
    return list(memory.get_finished_spans())


def child(encode: bool) -> None:
    from signalfire._export._otlp_encode import SpanEncoder
    from signalfire._scrub._policy import Scrubber

    encoder = SpanEncoder(Scrubber())
    encoder.encode(_spans(50))  # the resource, scope, names and repeating attributes are cached from here on
    batch = _spans(SPANS)
    gc.collect()
    gc.disable()
    if encode:
        for start in range(0, SPANS, 512):  # the batch processor's default batch size
            encoder.encode(batch[start : start + 512])


def main() -> None:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    totals = []
    for encode in ("1", "0"):
        done = subprocess.run(
            [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m", MODULE, encode],
            env={**os.environ, "PYTHONHASHSEED": "0"},
            capture_output=True,
            text=True,
            check=True,
        )
        totals.append(int(re.findall(r"refs:\s+([\d,]+)", done.stderr)[-1].replace(",", "")))
    print(f"signalfire encoder: {(totals[0] - totals[1]) / SPANS / 1000:.1f} k instructions per server span")


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] in ("0", "1"):
        child(sys.argv[1] == "1")
    else:
        main()
