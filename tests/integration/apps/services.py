"""Two services for the distributed-trace test: ``frontend`` calls ``backend`` over HTTP with httpx.

Run with ``uvicorn tests.integration.apps.services:app``; SERVICE_ROLE picks the role (frontend or backend) and
BACKEND_URL tells the frontend where the backend listens. signalfire is configured from the environment alone.
"""

from __future__ import annotations

import logging
import os

import httpx
from fastapi import FastAPI

import signalfire

ROLE = os.environ["SERVICE_ROLE"]
app = FastAPI(title=ROLE)
log = logging.getLogger(ROLE)

if ROLE == "frontend":
    BACKEND_URL = os.environ["BACKEND_URL"]

    @app.get("/checkout/{order_id}")
    async def checkout(order_id: str) -> dict[str, object]:
        log.warning("frontend handling checkout %s", order_id)
        async with httpx.AsyncClient(base_url=BACKEND_URL) as client:
            response = await client.get(f"/stock/{order_id}")
        return {"order": order_id, "stock": response.json()}

else:

    @app.get("/stock/{item_id}")
    async def stock(item_id: str) -> dict[str, object]:
        log.warning("backend looking up stock %s", item_id)
        return {"item": item_id, "available": 3}


signalfire.init_observability(app)
