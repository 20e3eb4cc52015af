"""The app the reliability tests serve under a real uvicorn: every signal per request, configured from the environment.

Routes: ``/work/{n}`` (a span, a log line, a metric increment), ``/spans/{n}`` (n spans), ``/boom/{n}`` (an unhandled
error: a 500 and a Sentry event), ``/mixed/{n}`` (interleaved awaits and thread-pool calls, logging at each step),
``/echo`` (parses a JSON body and logs it), ``/leak`` (puts what it receives everywhere an app might), and for the
leak audit ``/wire`` (event names, links, OTel-API metrics, operator values), ``/password-reset/{token}``, ``/stderr``
(a warning and a thread's uncaught exception), ``/db`` (an IntegrityError on PostgreSQL) and ``/redis-auth``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import warnings
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace as otel_trace
from starlette.concurrency import run_in_threadpool

import signalfire

app = FastAPI()
signalfire.init_observability(app, service_name="reliability")
log = signalfire.get_logger("reliability")
WORK = signalfire.metrics.declare("reliability.work", "counter", unit="{request}", description="Work requests served.")
LEAKY = signalfire.metrics.declare(
    "reliability.leaky", "counter", unit="{request}", labels=("customer",), description="A label set from input."
)


@app.get("/ready")
async def ready() -> dict[str, bool]:
    return {"ready": True}


@app.get("/work/{n}")
async def work(n: int) -> dict[str, int]:
    with signalfire.span("work.inner", n=n):
        log.info("work done", n=n)
    WORK.add()
    return {"n": n}


@app.get("/spans/{n}")
async def spans(n: int) -> dict[str, int]:
    for i in range(n):
        with signalfire.span("burst", i=i):
            pass
    return {"n": n}


@app.get("/boom/{n}")
async def boom(n: int) -> None:
    log.info("about to fail", n=n)
    raise RuntimeError(f"boom {n}")


def _blocking_step(n: int) -> None:
    log.info("mixed step", n=n, step="thread")


@app.get("/mixed/{n}")
async def mixed(n: int) -> dict[str, int]:
    log.info("mixed step", n=n, step="start")
    await asyncio.sleep(random.random() / 100)
    await run_in_threadpool(_blocking_step, n)
    await asyncio.sleep(random.random() / 100)
    with signalfire.span("mixed.inner"):
        await asyncio.sleep(0)
        log.info("mixed step", n=n, step="inner")
    log.info("mixed step", n=n, step="end")
    return {"n": n}


@app.post("/echo")
async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return JSONResponse({"error": "not JSON"}, status_code=400)
    log.info("echo", payload=parsed)
    return JSONResponse({"bytes": len(body)})


@app.api_route("/leak", methods=["GET", "POST"])
async def leak(request: Request) -> None:
    secret = request.query_params.get("s") or request.headers.get("x-secret") or ""
    body: Any = (await request.body()).decode("utf-8", "replace")
    # Everywhere an application might put what it received.
    log.info("received", secret=secret, body=body, headers=dict(request.headers), note=f"value {secret}")
    with signalfire.span("leak.inner", payload=secret, description=f"got {secret}"):
        signalfire.set_context("input", {"secret": secret, "body": body})
        LEAKY.add(customer=secret)
        signalfire.metrics.declare("reliability.other", "counter", labels=("token",)).add(token=secret)
        raise ValueError(f"could not process {secret}")


_wire_meter = otel_metrics.get_meter("app.library")  # an instrument outside signalfire's registry
_wire_calls = _wire_meter.create_counter("app.library.calls", description="Calls made by a library.")
_wire_latency = _wire_meter.create_histogram("app.library.latency", unit="ms")
_wire_tracer = otel_trace.get_tracer("app.library")
OPERATOR = signalfire.metrics.declare(
    "reliability.operator", "counter", unit="{request}", labels=("value",), description="Operator values as labels."
)


@app.get("/wire")
async def wire(request: Request) -> None:
    """Puts what it receives where the OpenTelemetry model carries strings that are easy to forget: event names, link
    attributes, OTel-API metric points; the incoming tracestate is the server span's; operator values everywhere."""
    secret = request.query_params.get("s", "")
    operator = request.query_params.get("op", "")
    if operator:
        log.info("operator values", value=operator, note=f"order {operator} shipped")
        OPERATOR.add(value=operator)
        _wire_calls.add(1, {"value": operator})
        signalfire.set_context("operator", {"value": operator})
        with signalfire.span("operator.values", value=operator):
            raise ValueError(f"operator value {operator}")
    linked = otel_trace.get_current_span().get_span_context()
    with _wire_tracer.start_as_current_span("wire.link", links=[otel_trace.Link(linked, {"origin": secret})]) as span:
        span.add_event(f"retry after {secret}", {"attempt": 2})
        _wire_calls.add(1, {"target": secret})
        _wire_latency.record(3.5, {"target": secret})
        log.warning("wire", detail=secret)
        raise ValueError(f"wire failed for {secret}")


@app.get("/password-reset/{token}")
async def password_reset(token: str) -> None:
    """A secret as a path segment, named by its route parameter."""
    log.info("password reset requested")
    raise ValueError("password reset failed")


def _failing_thread(secret: str) -> None:
    raise RuntimeError(f"background job failed with password={secret}")


@app.post("/stderr")
async def to_stderr(request: Request) -> dict[str, bool]:
    """What reaches stderr without the log pipeline today: a warning and an uncaught exception in a thread."""
    secret = (await request.body()).decode()
    warnings.warn(f"deprecated login with password={secret}", UserWarning, stacklevel=1)
    thread = threading.Thread(target=_failing_thread, args=(secret,))
    thread.start()
    await run_in_threadpool(thread.join)
    return {"ok": True}


_engine: Any = None


@app.post("/db")
async def db_integrity_error(request: Request) -> None:
    """A unique violation on real PostgreSQL (LEAK_PG_URL): the bound value is repeated by SQLAlchemy's and
    PostgreSQL's error message, which propagates."""
    global _engine  # noqa: PLW0603 - one engine for the app
    import sqlalchemy

    value = (await request.body()).decode()
    if _engine is None:
        _engine = sqlalchemy.create_engine(os.environ["LEAK_PG_URL"])
        with _engine.begin() as conn:
            conn.execute(sqlalchemy.text("CREATE TABLE IF NOT EXISTS leak_members (email text UNIQUE)"))
    statement = sqlalchemy.text("INSERT INTO leak_members VALUES (:email)")
    with _engine.begin() as conn:
        conn.execute(statement, {"email": value})
    with _engine.begin() as conn:
        conn.execute(statement, {"email": value})


@app.post("/redis-auth")
async def redis_auth(request: Request) -> None:
    """AUTH with a password against a real redis-server (LEAK_REDIS_URL); the failure propagates."""
    import redis

    password = (await request.body()).decode()
    client = redis.Redis.from_url(os.environ["LEAK_REDIS_URL"])
    try:
        client.execute_command("AUTH", "svc-user", password)
    finally:
        client.close()
