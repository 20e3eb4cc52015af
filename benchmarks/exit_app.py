"""The app the exit benchmark serves: a span, a log line and a metric increment per request."""

from __future__ import annotations

from fastapi import FastAPI

import signalfire

app = FastAPI()
signalfire.init_observability(app, service_name="bench-exit")
log = signalfire.get_logger("bench.exit")
WORK = signalfire.metrics.declare("bench.exit.work", "counter", unit="{request}", description="Requests served.")


@app.get("/ready")
async def ready() -> dict[str, bool]:
    return {"ready": True}


@app.get("/work/{n}")
async def work(n: int) -> dict[str, int]:
    with signalfire.span("work.inner", n=n):
        log.info("work done", n=n)
    WORK.add()
    return {"n": n}
