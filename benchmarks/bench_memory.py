"""Resident memory growth over many unique raw paths, in-process through ASGI (a child; see run.py).

``python -m benchmarks.bench_memory VARIANT --warmup 20000 --requests 200000 --result FILE``: after ``--warmup``
requests over unique paths (half match ``/items/{item_id}``, half match no route), RSS is read; then ``--requests``
more unique paths, and RSS again. Growth beyond the warm-up is what an unbounded cache or label set would show.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
from typing import Any

from benchmarks import apps
from benchmarks._harness import rss_bytes, write_result


async def measure(variant: str, warmup: int, requests: int) -> dict[str, Any]:
    app = apps.build(variant)
    driver = apps.AsgiDriver(app)
    await driver.startup()
    for i in range(warmup):
        await driver.request(apps.unique_path(i))
    gc.collect()
    before = rss_bytes()
    for i in range(warmup, warmup + requests):
        await driver.request(apps.unique_path(i))
    gc.collect()
    after = rss_bytes()
    await driver.close()
    apps.shutdown(variant)
    return {"variant": variant, "rss_before_mb": before / 2**20, "growth_mb": (after - before) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=apps.VARIANTS)
    parser.add_argument("--warmup", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    write_result(args.result, asyncio.run(measure(args.variant, args.warmup, args.requests)))


if __name__ == "__main__":
    main()
