"""Profiles of signalfire's request path and of ``traced`` (``nox -s bench -- --profile``).

``python -m benchmarks.profile [VARIANT ...] [--requests N] [--out DIR]`` writes, per variant (default: signalfire),
to DIR (default benchmarks/out):

- ``profile-VARIANT.txt``: pyinstrument's call tree of N in-process requests (main thread, wall clock);
- ``pyspy-VARIANT.txt`` when py-spy is installed: py-spy samples of the same run in a child process, every thread,
  only samples holding the GIL, summarised as the functions with the most self and inclusive samples. This is the
  one to trust on a busy machine (wall-clock profiles charge waiting for a core to whatever was running) and the one
  that shows the batch span processor's export thread, whose encoding competes with requests for the GIL;

plus the same two for a ``traced`` function called in a loop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks import apps
from benchmarks._harness import ROOT, child_env
from benchmarks._servers import HttpSink


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


def summarise_raw(raw: str, top: int = 30) -> str:
    """py-spy's raw (collapsed-stack) output as the top functions by self and by inclusive samples.

    Samples taken while importing are dropped (set-up, not the request path). Besides the generic tables, it lists
    the inclusive share of every signalfire function and of FastAPI's native telemetry, the figures the report quotes.
    """
    self_samples: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or "_find_and_load" in stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        threads[frames[0].split(":")[-1].strip() or "unnamed"] += count
        self_samples[frames[-1]] += count
        # Inclusive by function (py-spy names a frame "function (file:line)"; the line would split one function).
        for function in {frame.rsplit(":", 1)[0] + ")" if frame.endswith(")") else frame for frame in frames[1:]}:
            inclusive[function] += count
    if not total:
        return "no samples\n"
    ours = [(f, n) for f, n in inclusive.most_common() if "signalfire/" in f or "telemetry/_asgi" in f]
    lines = [f"{total} samples holding the GIL (imports excluded)", "", "by thread:"]
    lines += [f"{n / total:7.1%}  {name}" for name, n in threads.most_common()]
    lines += ["", "signalfire's functions and FastAPI's native telemetry, inclusive:"]
    lines += [f"{n / total:7.1%}  {name}" for name, n in ours[:top]]
    lines += ["", "self (where the CPU went):"]
    lines += [f"{n / total:7.1%}  {name}" for name, n in self_samples.most_common(top)]
    lines += ["", "inclusive (what it was doing):"]
    lines += [f"{n / total:7.1%}  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines) + "\n"


def pyspy(module_args: list[str], env: dict[str, str]) -> str | None:
    """Run ``python -m benchmarks.<module_args>`` under ``py-spy record`` (all threads, on-CPU) and summarise it."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(binary).exists():
        return None
    with tempfile.TemporaryDirectory(prefix="sfbench-pyspy-") as tmp:
        raw = Path(tmp) / "raw.txt"
        command = [binary, "record", "--threads", "--gil", "-r", "400", "-f", "raw", "-o", str(raw), "--"]
        command += [sys.executable, "-m", *module_args, "--result", str(Path(tmp) / "result.json")]
        subprocess.run(command, env=child_env(env), cwd=ROOT, check=True, capture_output=True)
        return summarise_raw(raw.read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variants", nargs="*", default=["signalfire"])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with HttpSink() as sink:
        for variant in args.variants:
            env = apps.variant_env(variant, sink.url, sink.url)
            os.environ.update(env)
            text = profile_variant(variant, args.requests)
            (out / f"profile-{variant}.txt").write_text(text)
            print(text)
            batch = str(max(1, args.requests // 5))
            summary = pyspy(["benchmarks.bench_request", variant, "--batch", batch, "--batches", "5"], env)
            if summary is not None:
                (out / f"pyspy-{variant}.txt").write_text(summary)
                print(summary)
        text = profile_traced(args.requests * 4)
        (out / "profile-traced.txt").write_text(text)
        print(text)
        micro = [
            "benchmarks.bench_micro",
            "bench_tracing",
            "traced",
            "--number",
            str(args.requests * 4),
            "--repeat",
            "1",
        ]
        summary = pyspy(micro, {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url})
        if summary is not None:
            (out / "pyspy-traced.txt").write_text(summary)
            print(summary)
    print(f"profiles written to {out}{os.sep}")


if __name__ == "__main__":
    main()
