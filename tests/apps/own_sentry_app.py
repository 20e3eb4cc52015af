"""An app that starts its own Sentry client (default integrations, LoggingIntegration among them) before signalfire,
served by a real uvicorn in tests/integration/test_sentry_server_errors.py.

``SENTRY_DSN`` is the app's (sentry-sdk reads it). ``APP_SENTRY_WEB=off`` leaves sentry-sdk's auto-enabled integrations
(Starlette, FastAPI) out, so signalfire's middleware reports unhandled errors. ``APP_FAIL_STARTUP=1`` makes its
lifespan start-up raise. At start-up the app puts a handler of its own on ``uvicorn.error`` that prints
``APP-HANDLER <logger> <message>``. Routes: ``/ready``, ``/boom`` (an unhandled error whose message holds a secret)
and ``/logged`` (logs an unrelated, caught exception at ERROR with exc_info, then answers 200).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sentry_sdk
from fastapi import FastAPI

import signalfire

# APP_SENTRY_WEB=off: without sentry-sdk's auto-enabled Starlette/FastAPI integrations (signalfire's middleware reports)
sentry_sdk.init(environment="own-client", auto_enabling_integrations=os.environ.get("APP_SENTRY_WEB") != "off")
SECRET = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"


class _Printer(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        sys.stdout.write(f"APP-HANDLER {record.name} {record.getMessage().strip()}\n")
        sys.stdout.flush()


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    if os.environ.get("APP_FAIL_STARTUP") == "1":
        raise RuntimeError("the database is unreachable at start-up")
    logging.getLogger("uvicorn.error").addHandler(_Printer())
    yield


app = FastAPI(lifespan=lifespan)
signalfire.init_observability(app, service_name="own-sentry")


@app.get("/ready")
async def ready() -> dict[str, bool]:
    return {"ready": True}


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError(f"payment failed for token {SECRET}")


@app.get("/logged")
async def logged() -> dict[str, bool]:
    try:
        raise KeyError("inventory row missing")
    except KeyError:
        logging.getLogger("shop.inventory").error("inventory lookup failed", exc_info=True)
    return {"logged": True}
