"""The keep-alive comparison's bare app: the reliability app's ``/ready`` and ``/boom/{n}`` without signalfire."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/ready")
async def ready() -> dict[str, bool]:
    return {"ready": True}


@app.get("/boom/{n}")
async def boom(n: int) -> None:
    raise RuntimeError(f"boom {n}")
