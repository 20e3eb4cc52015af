"""An app with its own SIGTERM handler, installed before or after ``init_observability()`` (APP_SIGTERM=before|after).

The handler prints a line and then does what the handler it replaced would have done, as a well-behaved application
does. ``/handler`` says who handles SIGTERM right now: "app", "signalfire" or "other".
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import Any

from fastapi import FastAPI

import signalfire

app = FastAPI()
_replaced: Any = None


def app_handler(signum: int, frame: FrameType | None) -> None:
    sys.stdout.write("app handler ran\n")
    sys.stdout.flush()
    if callable(_replaced):
        _replaced(signum, frame)
    elif _replaced != signal.SIG_IGN:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install() -> None:
    global _replaced  # noqa: PLW0603
    _replaced = signal.signal(signal.SIGTERM, app_handler)


if os.environ.get("APP_SIGTERM") == "before":
    _install()
signalfire.init_observability(app, service_name="sigterm")
if os.environ.get("APP_SIGTERM") == "after":
    _install()


@app.get("/ready")
async def ready() -> dict[str, bool]:
    return {"ready": True}


@app.get("/handler")
async def handler() -> dict[str, str]:
    current = signal.getsignal(signal.SIGTERM)
    if current is app_handler:
        return {"handler": "app"}
    return {"handler": "signalfire" if type(current).__module__.startswith("signalfire") else "other"}


@app.get("/work/{n}")
async def work(n: int) -> dict[str, int]:
    with signalfire.span("work.inner", n=n):
        pass
    return {"n": n}
