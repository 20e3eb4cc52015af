"""An app with every shape of route: APIRouter, a mounted sub-application, a streaming endpoint, a WebSocket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, WebSocket
from fastapi.responses import StreamingResponse

import signalfire


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.started = True
    yield


app = FastAPI(lifespan=lifespan)
# Instrumented before the routes exist: the middleware must still see every route added below.
signalfire.init_observability(app)

router = APIRouter(prefix="/api")


@router.get("/users/{user_id}")
async def user(user_id: int) -> dict[str, int]:
    return {"id": user_id}


app.include_router(router)

admin = FastAPI()


@admin.get("/reports/{report_id}")
async def report(report_id: int) -> dict[str, int]:
    return {"report": report_id}


app.mount("/admin", admin)


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        for i in range(5):
            await asyncio.sleep(0.01)
            yield f"line {i}\n".encode()

    return StreamingResponse(body(), media_type="text/plain")


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text(f"echo: {text}")
    await websocket.close()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/lifespan")
async def lifespan_ran() -> dict[str, bool]:
    return {"started": getattr(app.state, "started", False)}
