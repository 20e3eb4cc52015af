"""CPU per request of Sentry in the request path: off, lean (the default) and sentry-sdk's own ASGI integrations.

    python benchmarks/bench_sentry.py [--rounds 3]

A trivial FastAPI route (and one raising an unhandled exception) is driven in-process through ASGI, signalfire on with
100% sampling, spans handed to a no-op exporter, the access log off (identical in every variant, so differences are
Sentry's). Sentry events go to a transport that drops them: the figures are the request path's cost (event building,
scrubbing, enqueueing), not the network send, which sentry-sdk does on its background thread.

Variants, each in its own fresh process, alternated over the rounds:
  bare         FastAPI without signalfire
  off          signalfire, SENTRY_DSN unset
  lean         signalfire, SENTRY_DSN set (the default: signalfire's middleware reports errors, no sentry-sdk web
               integrations)
  sentry-asgi  signalfire, SENTRY_DSN set, SIGNALFIRE_SENTRY_ASGI_INTEGRATION=true (sentry-sdk's own integrations)
Prints CPU microseconds per request (process_time: all threads), the median over the rounds, and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("bare", "off", "lean", "sentry-asgi")
ERROR_VARIANTS = ("lean", "sentry-asgi")
OK_REQUESTS = 4000
ERROR_REQUESTS = 100
WARMUP = 200


def _measure(variant: str, path: str, count: int) -> float:
    """Median over 5 batches of the CPU microseconds per request of ``count`` requests to ``path``."""
    sys.path.insert(0, str(ROOT / "src"))
    from fastapi import FastAPI

    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})
    if variant != "bare":
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
        from sentry_sdk.transport import Transport

        from signalfire import _runtime
        from signalfire._settings import Settings

        class NoSpans(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        class DropEvents(Transport):
            def capture_envelope(self, envelope: Any) -> None:
                pass

        settings = Settings.resolve(
            sentry_dsn=None if variant == "off" else "http://public@127.0.0.1:9/1",
            sentry_asgi_integration=variant == "sentry-asgi",
            traces_sampler_arg=1.0,
            traces_exporter="none",
            metrics_exporter="none",
            access_log=False,
            handle_sigterm=False,
        )
        obs = _runtime.start(settings, span_exporters=[NoSpans()], sentry_transport=DropEvents())
        _runtime.instrument_app(obs, app)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/fail/{order_id}")
    async def fail(order_id: str) -> None:
        raise ValueError(f"order {order_id} is inconsistent")

    scope_template = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"page=2",
        "headers": [(b"host", b"bench.local"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000),
        "server": ("bench.local", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    async def one() -> None:
        with contextlib.suppress(ValueError):
            await app(dict(scope_template), receive, send)

    async def run(n: int) -> None:
        for _ in range(n):
            await asyncio.create_task(one())  # a task per request, as servers do

    async def batches() -> list[float]:
        await run(WARMUP)
        results = []
        for _ in range(5):
            started = time.process_time()
            await run(count)
            results.append((time.process_time() - started) / count * 1e6)
        return results

    return statistics.median(asyncio.run(batches()))


def _child(variant: str, kind: str) -> None:
    path, count = ("/items/7", OK_REQUESTS) if kind == "ok" else ("/fail/o-9", ERROR_REQUESTS)
    print(json.dumps({"us": _measure(variant, path, count)}))


def _run(variant: str, kind: str) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--child", variant, kind], capture_output=True, text=True, check=True, timeout=300
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["us"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    ok: dict[str, list[float]] = {v: [] for v in VARIANTS}
    err: dict[str, list[float]] = {v: [] for v in ERROR_VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            ok[variant].append(_run(variant, "ok"))
        for variant in ERROR_VARIANTS:
            err[variant].append(_run(variant, "error"))
    med = {v: statistics.median(xs) for v, xs in ok.items()}
    print(f"CPU per trivial request (median of {args.rounds} processes, each the median of 5 x {OK_REQUESTS}):")
    for variant in VARIANTS:
        overhead = med[variant] - med["bare"]
        print(f"  {variant:<12} {med[variant]:8.1f} us   overhead vs bare {overhead:7.1f} us   runs {ok[variant]}")
    off_overhead = med["off"] - med["bare"]
    lean_cost = med["lean"] - med["off"]
    asgi_cost = med["sentry-asgi"] - med["off"]
    print(f"  Sentry's own cost per request: lean {lean_cost:+.1f} us, sentry-asgi {asgi_cost:+.1f} us")
    print(
        f"  ratios: lean / off {med['lean'] / med['off']:.3f}; sentry-asgi / off {med['sentry-asgi'] / med['off']:.3f};"
        f" sentry-asgi / lean {med['sentry-asgi'] / med['lean']:.3f} (signalfire overhead, Sentry off: "
        f"{off_overhead:.1f} us)"
    )
    emed = {v: statistics.median(xs) for v, xs in err.items()}
    print(f"CPU per request raising an unhandled exception (reported; median of {args.rounds} x 5 x {ERROR_REQUESTS}):")
    for variant in ERROR_VARIANTS:
        print(f"  {variant:<12} {emed[variant]:8.1f} us   runs {err[variant]}")
    print(f"  ratio sentry-asgi / lean: {emed['sentry-asgi'] / emed['lean']:.3f}")


if __name__ == "__main__":
    main()
