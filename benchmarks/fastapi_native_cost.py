"""What FastAPI's native telemetry wrapper costs per request on an app signalfire instruments.

The same app built with ``FastAPI()`` (native telemetry on, recording nothing through signalfire's providers) and with
``FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})``, called through ASGI directly (no server,
no client); CPU microseconds per request, median of 5 alternating rounds of 3,000 requests.
``python -m benchmarks.fastapi_native_cost`` (FastAPI >= 0.142).
"""

from __future__ import annotations

import asyncio
import time

from fastapi import FastAPI

import signalfire

ROUNDS, REQUESTS = 5, 3000
SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/items/1",
    "raw_path": b"/items/1",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"bench")],
    "client": ("127.0.0.1", 1),
    "server": ("127.0.0.1", 80),
}


def build(native: bool) -> FastAPI:
    app = FastAPI() if native else FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    signalfire.instrument_fastapi(app)
    return app


async def serve(app: FastAPI, count: int) -> None:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        pass

    for _ in range(count):
        await app(dict(SCOPE), receive, send)


def main() -> None:
    signalfire.init_observability(
        traces_exporter="none", metrics_exporter="none", access_log=False, environment="production",
        traces_sampler_arg=1.0, log_level="WARNING",
    )  # fmt: skip
    apps = {"native telemetry on": build(True), "native telemetry off": build(False)}
    for app in apps.values():
        asyncio.run(serve(app, 500))  # warm-up
    cpu_us: dict[str, list[float]] = {name: [] for name in apps}
    for round_number in range(ROUNDS):
        for name in list(apps)[round_number % 2 :] + list(apps)[: round_number % 2]:
            started = time.process_time()
            asyncio.run(serve(apps[name], REQUESTS))
            cpu_us[name].append((time.process_time() - started) / REQUESTS * 1e6)
    for name, values in cpu_us.items():
        print(f"{name}: {sorted(values)[len(values) // 2]:.1f} us CPU per request")
    signalfire.shutdown()


if __name__ == "__main__":
    main()
