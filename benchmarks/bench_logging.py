"""Cost of one signalfire log line against a plain structlog JSON line with the same fields.

    python benchmarks/bench_logging.py

signalfire's line: rendered by the init_observability() pipeline, inside a span (trace_id, span_id, trace_flags from
OpenTelemetry), inside a request (request_id from the context), every field scrubbed. The baseline: structlog with
add_log_level, an ISO UTC TimeStamper and orjson's JSONRenderer, the same identity and id fields bound as static
values, written to the same kind of stream. Both write to os.devnull and flush every line, as structlog's loggers do.
Prints the time per line of each and the ratio (target: at most 1.5).

``CASES`` and ``PAIRS`` put the same comparison into ``nox -s bench`` (benchmarks/bench_micro.py's contract): both
set-ups in one fresh process, loops alternating.
"""

from __future__ import annotations

import logging
import os
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks._harness when run as a script

import orjson
import structlog

import signalfire
from benchmarks._harness import Pair
from signalfire import _logging

NUMBER = 20_000
REPEAT = 7
FIELDS = {"order_id": "o-48151623", "amount": 49.5, "currency": "EUR", "items": 3, "customer": "c-1029"}


def plain_structlog(devnull) -> structlog.typing.FilteringBoundLogger:
    """The baseline, built with wrap_logger so it does not depend on (or disturb) structlog's global configuration."""
    return structlog.wrap_logger(
        structlog.WriteLogger(devnull),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=lambda obj, **kw: orjson.dumps(obj).decode()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    ).bind(
        logger="bench",
        service="checkout",
        environment="production",
        version="1.4.2",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        span_id="00f067aa0ba902b7",
        trace_flags="01",
        request_id="0af7651916cd43dd8448eb211c80319c",
    )


def _plain_line():
    logger = plain_structlog(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the benchmark process
    return lambda: logger.info("order placed", **FIELDS)


def _signalfire_line():
    signalfire.init_observability(
        service_name="checkout",
        service_version="1.4.2",
        environment="production",
        log_format="json",
        traces_exporter="none",
        # The line as written to stdout; the suite's micro children have an OTLP endpoint in their environment, which
        # would otherwise export every line over OTLP as well (the request benchmark measures that).
        logs_exporter="none",
        traces_sampler_arg=1.0,
        handle_sigterm=False,
    )
    _logging._current().stream = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the benchmark process
    logger = signalfire.get_logger("bench")
    _logging.bind_request_id("0af7651916cd43dd8448eb211c80319c")
    signalfire.span("request").__enter__()  # current for the rest of the process: every line carries its ids
    return lambda: logger.info("order placed", **FIELDS)


def teardown() -> None:
    signalfire.shutdown()


CASES = {"plain_structlog": _plain_line, "signalfire_line": _signalfire_line}

PAIRS = [
    Pair(
        "log line (trace context, scrubbed) / plain structlog JSON line",
        "signalfire_line",
        "plain_structlog",
        1.5,
        True,
    )
]


def main() -> None:
    with open(os.devnull, "w") as devnull:
        baseline_logger = plain_structlog(devnull)
        signalfire.init_observability(
            service_name="checkout",
            service_version="1.4.2",
            environment="production",
            log_format="json",
            traces_exporter="none",
            traces_sampler_arg=1.0,
            handle_sigterm=False,
        )
        _logging._current().stream = devnull
        ours_logger = signalfire.get_logger("bench")
        token = _logging.bind_request_id("0af7651916cd43dd8448eb211c80319c")
        baseline: list[float] = []
        ours: list[float] = []
        with signalfire.span("request"):
            # Interleaved rounds, best of each: a busy machine slows both alike instead of skewing the ratio.
            for _ in range(REPEAT):
                baseline.append(timeit.timeit(lambda: baseline_logger.info("order placed", **FIELDS), number=NUMBER))
                ours.append(timeit.timeit(lambda: ours_logger.info("order placed", **FIELDS), number=NUMBER))
        _logging.reset_request_id(token)
        signalfire.shutdown()

    base, mine = min(baseline) / NUMBER, min(ours) / NUMBER
    print(f"plain structlog JSON line:                 {base * 1e6:6.2f} us")
    print(f"signalfire line (trace context, scrubbed): {mine * 1e6:6.2f} us")
    print(f"ratio: {mine / base:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
