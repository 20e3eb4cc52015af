"""Per-request cost of one variant, in-process through ASGI (a child process; see run.py).

``python -m benchmarks.bench_request VARIANT --batch 2000 --batches 7 --result FILE``: builds the app for VARIANT,
runs its lifespan, warms up with one batch, then times ``--batches`` batches of ``--batch`` GET /items/42 requests
in one event loop (``--paired-with-bare``: see paired_with_bare); the result is the median microseconds per request
over the batches, in two clocks:

- ``us``: CPU time of the whole process (every thread) per request. It counts what the variant makes the process
  do, including its exporters' background threads (encoding, HTTP), and not the time spent waiting for a core that
  another process holds: on a shared machine it is the stable figure, and the one the ratios use.
- ``wall_us``: wall-clock time per request, which on a quiet machine is close to ``us`` (the driver never waits on
  I/O) and also includes GIL hand-offs between the event loop and the exporter threads.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from typing import Any

from benchmarks import apps
from benchmarks._harness import median, write_result


async def _batch_us(driver: apps.AsgiDriver, path: str, batch: int) -> tuple[float, float]:
    start, start_wall = time.process_time_ns(), time.perf_counter_ns()
    for _ in range(batch):
        await driver.request(path)
    return (time.process_time_ns() - start) / batch / 1000, (time.perf_counter_ns() - start_wall) / batch / 1000


async def paired_with_bare(variant: str, batch: int, batches: int) -> dict[str, Any]:
    """``variant`` and the bare app in one process, batches alternating: the median per-pair difference.

    Only for variants that change no process-wide state the bare app would see (signalfire disabled sets no global
    provider, so FastAPI's own telemetry stays off in both): then the difference is the variant's overhead, free of
    the process-to-process noise that swamps a few microseconds.
    """
    bare, other = apps.AsgiDriver(apps.build("bare")), apps.AsgiDriver(apps.build(variant))
    path = "/items/42"
    for driver in (bare, other):
        await driver.startup()
        for _ in range(batch):
            await driver.request(path)
    gc.collect()
    differences = []
    for i in range(batches * 2):
        first, second = (bare, other) if i % 2 == 0 else (other, bare)
        a, _ = await _batch_us(first, path, batch)
        b, _ = await _batch_us(second, path, batch)
        differences.append(b - a if first is bare else a - b)
    for driver in (bare, other):
        await driver.close()
    return {"variant": variant, "paired_overhead_us": median(differences), "differences_us": differences}


async def measure(variant: str, batch: int, batches: int) -> dict[str, Any]:
    app = apps.build(variant)
    driver = apps.AsgiDriver(app)
    await driver.startup()
    path = "/items/42"
    for _ in range(batch):
        await driver.request(path)
    if driver.status != 200:
        raise RuntimeError(f"{variant}: GET {path} answered {driver.status}")
    gc.collect()
    per_request_us, wall_us = [], []
    for _ in range(batches):
        cpu, wall = await _batch_us(driver, path, batch)
        per_request_us.append(cpu)
        wall_us.append(wall)
    await driver.close()
    result: dict[str, Any] = {
        "variant": variant,
        "us": median(per_request_us),
        "wall_us": median(wall_us),
        "batches_us": per_request_us,
    }
    if variant.startswith("signalfire"):
        result["components"] = apps.components()
    apps.shutdown(variant)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=apps.VARIANTS)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=7)
    parser.add_argument("--paired-with-bare", action="store_true", help="see paired_with_bare()")
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    run = paired_with_bare if args.paired_with_bare else measure
    write_result(args.result, asyncio.run(run(args.variant, args.batch, args.batches)))


if __name__ == "__main__":
    main()
