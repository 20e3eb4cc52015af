"""Instructions per request, counted by valgrind: the figure a busy machine cannot blur (a child; see run.py).

``python -m benchmarks.bench_instructions VARIANT --requests N --result FILE`` builds the app for VARIANT, runs its
lifespan, sends N GET /items/42 through the in-process ASGI driver and shuts the variant down, so every span and metric
it buffered is encoded and sent before the process ends. run.py runs it under ``valgrind --tool=callgrind`` twice (a
small and a large N) and divides the difference of the two totals by the difference of N: start-up, import and
shutdown cancel out, and what remains is what one request costs, including the exporters' background work, in
instructions. The batch span processor's schedule delay and the metric reader's export interval are set far beyond the
run (``OTEL_BSP_SCHEDULE_DELAY``, ``OTEL_METRIC_EXPORT_INTERVAL``), so spans and metrics leave in full batches and at
shutdown, the same way in both runs (a periodic export that fell in the slower run only moved the figure by tens of k).

Instructions are not time (a cache miss or a system call costs more than its count says), so this complements the CPU
time table rather than replacing it; but it is reproducible to a fraction of a percent on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio

from benchmarks import apps
from benchmarks._harness import write_result


async def run(variant: str, requests: int) -> None:
    app = apps.build(variant)
    driver = apps.AsgiDriver(app)
    await driver.startup()
    for _ in range(requests):
        await driver.request("/items/42")
    if driver.status != 200:
        raise RuntimeError(f"{variant}: GET /items/42 answered {driver.status}")
    await driver.close()
    apps.shutdown(variant)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=apps.VARIANTS)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    asyncio.run(run(args.variant, args.requests))
    write_result(args.result, {"variant": args.variant, "requests": args.requests})


if __name__ == "__main__":
    main()
