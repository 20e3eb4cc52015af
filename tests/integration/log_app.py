"""A small FastAPI service run under a real uvicorn by test_logging_uvicorn.py: python log_app.py PORT."""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

import signalfire

app = FastAPI()
log = signalfire.get_logger("shop")


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict:
    log.info("loading item", item_id=item_id, api_key="k-live-123456")
    return {"id": item_id}


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("kaboom password=hunter2hunter2")


if __name__ == "__main__":
    signalfire.init_observability(
        app, service_name="shop", environment="production", traces_sampler_arg=1.0, traces_exporter="none"
    )
    # uvicorn configures its logging here, after init: signalfire must still own its records.
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info")
