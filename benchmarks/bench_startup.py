"""Start-up cost in a fresh process: import + initialise, CPU and wall time, peak resident memory (a child; see
run.py).

``python -m benchmarks.bench_startup signalfire|logfire|baseline [--first-export] --result FILE``. The clocks (wall
and the process's CPU time) start after the interpreter is up and before the library is imported; memory is the
process's peak RSS (VmHWM) minus its RSS at that moment. Both libraries get the same OTLP endpoint (a loopback sink).
signalfire builds its OTLP exporters at their first export (on the export thread), logfire in ``configure()``; with
``--first-export`` the clocks also take in one span and a flush of every signal to the sink, which builds them, so
that what start-up no longer pays is shown where it is paid.
"""

from __future__ import annotations

import sys
import time

from benchmarks._harness import peak_rss_bytes, rss_bytes


def main() -> None:
    which = sys.argv[1]
    result_path = sys.argv[sys.argv.index("--result") + 1]
    first_export = "--first-export" in sys.argv
    rss_before = rss_bytes()
    start, start_cpu = time.perf_counter(), time.process_time()
    if which == "signalfire":
        import signalfire

        obs = signalfire.init_observability()
        if first_export:
            with signalfire.span("first"):
                pass
            obs.force_flush()
    elif which == "logfire":
        import logfire

        logfire.configure(send_to_logfire=False, console=False)
        if first_export:
            with logfire.span("first"):
                pass
            logfire.force_flush()
    elif which != "baseline":
        raise SystemExit(f"unknown start-up case {which!r}")
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    peak = peak_rss_bytes()
    from benchmarks._harness import write_result

    write_result(
        result_path,
        {
            "case": which,
            "first_export": first_export,
            "ms": elapsed * 1000,
            "cpu_ms": cpu * 1000,
            "peak_rss_mb": (peak - rss_before) / 2**20,
        },
    )


if __name__ == "__main__":
    main()
