"""An app served by several worker processes in the integration tests (gunicorn, uvicorn --workers)."""

from __future__ import annotations

import os
import time

from fastapi import FastAPI

import signalfire

app = FastAPI()
signalfire.init_observability(app, service_name="workers")
_hanging = 0  # requests now inside /hang (what a test waits on before it signals the worker)


@app.get("/block/{n}")
async def block(n: int) -> dict[str, int]:
    # Blocks this worker's event loop so that concurrent requests spread over every worker process.
    time.sleep(0.05)
    return {"n": n, "pid": os.getpid()}


@app.get("/ready")
async def ready() -> dict[str, bool]:
    return {"ready": True}


@app.get("/hang")
async def hang() -> dict[str, bool]:
    # Outlasts gunicorn's graceful timeout: the worker is killed with this request still in flight.
    import asyncio

    global _hanging  # noqa: PLW0603
    _hanging += 1
    await asyncio.sleep(120)
    return {"hung": False}


@app.get("/hanging")
async def hanging() -> dict[str, int]:
    return {"hanging": _hanging}
