"""Profiles of signalfire's request path and of ``traced``, with pyinstrument (``nox -s bench -- --profile``).

``python -m benchmarks.profile [VARIANT ...] [--requests N] [--out DIR]`` drives N in-process requests through each
variant (default: signalfire) and writes a text profile per variant to DIR (default benchmarks/out), plus one of a
``traced`` function called in a loop. Only the main thread is sampled: the batch span processor's export thread shows
up as the gap between wall time and the request path's own samples (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from benchmarks import apps
from benchmarks._harness import ROOT


def _profiler() -> object:
    try:
        from pyinstrument import Profiler
    except ImportError as exc:
        raise ImportError("profiling needs pyinstrument: pip install pyinstrument (the bench extra)") from exc
    return Profiler(interval=0.0002, async_mode="disabled")


def profile_variant(variant: str, requests: int) -> str:
    """A text profile of ``requests`` GET /items/42 through ``variant``."""

    async def run() -> str:
        app = apps.build(variant)
        driver = apps.AsgiDriver(app)
        await driver.startup()
        for _ in range(min(requests, 1000)):
            await driver.request("/items/42")
        profiler = _profiler()
        profiler.start()  # type: ignore[attr-defined]
        for _ in range(requests):
            await driver.request("/items/42")
        profiler.stop()  # type: ignore[attr-defined]
        await driver.close()
        apps.shutdown(variant)
        return profiler.output_text(unicode=False, color=False, show_all=False)  # type: ignore[attr-defined,no-any-return]

    return asyncio.run(run())


def profile_traced(calls: int) -> str:
    """A text profile of ``calls`` calls of a ``traced`` function, 100% sampled."""
    from benchmarks import bench_tracing

    work = bench_tracing.traced()
    for _ in range(1000):
        work()
    profiler = _profiler()
    profiler.start()  # type: ignore[attr-defined]
    for _ in range(calls):
        work()
    profiler.stop()  # type: ignore[attr-defined]
    bench_tracing.teardown()
    return profiler.output_text(unicode=False, color=False, show_all=True)  # type: ignore[attr-defined,no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variants", nargs="*", default=["signalfire"])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for variant in args.variants:
        text = profile_variant(variant, args.requests)
        (out / f"profile-{variant}.txt").write_text(text)
        print(text)
    text = profile_traced(args.requests * 4)
    (out / "profile-traced.txt").write_text(text)
    print(text)
    print(f"profiles written to {out}{os.sep}")


if __name__ == "__main__":
    main()
