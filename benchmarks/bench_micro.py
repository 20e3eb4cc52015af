"""Micro-benchmarks: one operation timed in a fresh process (a child; see run.py).

``python -m benchmarks.bench_micro MODULE CASE [--baseline CASE2] --number N --repeat R --result FILE`` imports
``benchmarks.MODULE``, calls ``MODULE.CASES[CASE]()`` (the set-up, untimed) to get the operation, and times
R loops of N calls of it after one warm-up loop; the result is the median CPU nanoseconds per call. With
``--baseline`` both set-ups run in this one process and their loops alternate; the result adds the median of the
per-loop ratios (for a ``Pair(..., same_process=True)``).

The contract for a micro-benchmark module (bench_tracing.py is one; bench_logging.py and bench_metrics.py join the
suite by following it -- run.py picks up every name in ``MICRO_MODULES`` that exists):

- ``CASES: dict[str, Callable[[], Callable[[], object]]]`` -- case name to a set-up function returning the zero-argument
  operation to time (a plain function, or a coroutine function, which is awaited in a running event loop);
- ``PAIRS: list[benchmarks._harness.Pair]`` -- (label, case, baseline, target, same_process): the ratios to report;
- optionally ``DIVISORS: dict[str, int]`` -- a case whose operation handles many items (a batch export of 512 spans)
  is reported per item.

Each case runs in its own process, so a case's set-up (initialising signalfire, configuring structlog) never leaks
into another's measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
from typing import Any

from benchmarks._harness import median, time_per_call, time_per_call_async, write_result


def _paired(module: Any, case: str, baseline: str, number: int, repeat: int) -> dict[str, Any]:
    # The same work as the unpaired run, in five times as many, five times shorter loops: the finer the alternation,
    # the less a change in the machine's load falls on one side of the ratio only.
    number, repeat = max(1, number // 5), repeat * 5
    ops = [module.CASES[case](), module.CASES[baseline]()]
    timings: list[list[float]] = [[], []]

    async def run_async() -> None:
        for i in range(repeat + 1):
            for which in (0, 1) if i % 2 else (1, 0):
                (ns,) = await time_per_call_async(ops[which], number, 1)
                timings[which].append(ns)

    if inspect.iscoroutinefunction(ops[0]):
        asyncio.run(run_async())
    else:
        for i in range(repeat + 1):
            for which in (0, 1) if i % 2 else (1, 0):
                (ns,) = time_per_call(ops[which], number, 1)
                timings[which].append(ns)
    case_ns, base_ns = timings[0][1:], timings[1][1:]  # the first pair warms up
    teardown = getattr(module, "teardown", None)
    if teardown is not None:
        teardown()
    return {
        "case": case,
        "ns": median(case_ns),
        "baseline_ns": median(base_ns),
        "ratio": median([c / b for c, b in zip(case_ns, base_ns, strict=True)]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("module")
    parser.add_argument("case")
    parser.add_argument("--baseline")
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    module = importlib.import_module(f"benchmarks.{args.module}")
    if args.baseline:
        write_result(args.result, _paired(module, args.case, args.baseline, args.number, args.repeat))
        return
    op = module.CASES[args.case]()
    if inspect.iscoroutinefunction(op):

        async def run() -> list[float]:
            return await time_per_call_async(op, args.number, args.repeat)

        timings = asyncio.run(run())
    else:
        timings = time_per_call(op, args.number, args.repeat)
    divisor = getattr(module, "DIVISORS", {}).get(args.case, 1)
    per_item = [t / divisor for t in timings]
    teardown = getattr(module, "teardown", None)
    if teardown is not None:
        teardown()
    write_result(args.result, {"case": args.case, "ns": median(per_item), "runs_ns": per_item})


if __name__ == "__main__":
    main()
