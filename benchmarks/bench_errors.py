"""Instructions per request that raises, under a real uvicorn in this process (a child; see run.py's errors section).

``python -m benchmarks.bench_errors VARIANT --path /boom --requests N --result FILE`` starts uvicorn's own
``Server`` (``uvicorn.Config("benchmarks.apps:create_app", factory=True)``, the e2e section's options: no access
log, log level warning) on a loopback socket inside this process, sends N requests to PATH over fresh connections
from the same event loop, then stops the server the way a SIGTERM does (``should_exit``, lifespan shutdown) and
shuts the variant down, so every span, metric and Sentry envelope it buffered is sent before the process ends.

``/boom`` raises ``RuntimeError`` in the endpoint: Starlette's ServerErrorMiddleware answers 500 and re-raises, and
uvicorn's protocol (``uvicorn.protocols.http.*_impl.RequestResponseCycle.run_asgi``) logs
``logger.error("Exception in ASGI application\\n", exc_info=exc)`` on ``uvicorn.error`` -- uvicorn's own call, not a
reproduction of it, so whatever each variant does with that record (log line, Sentry's logging integration) is paid
as in production. ``/items/42`` is the happy request over the same path.

run.py runs this under ``valgrind --tool=callgrind`` at two request counts and divides the difference of the totals
by the difference in requests: start-up, import and shutdown cancel out. Every request opens its own connection
(uvicorn closes a keep-alive connection after an app raised), in the happy runs too, so the two rows differ only by
what the error costs; the client's own work is the same for every variant and cancels in the overhead columns.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
from typing import Any

from benchmarks import apps
from benchmarks._harness import write_result

# The variants this section compares (apps.VARIANTS names).
VARIANTS = ("bare", "signalfire", "otel")
PATHS = {"happy": "/items/42", "error": "/boom"}


async def _get(port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nhost: bench.local\r\nconnection: close\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()  # to EOF: the server closes after the response
    writer.close()
    await writer.wait_closed()
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


async def run(variant: str, path: str, requests: int) -> dict[str, Any]:
    import uvicorn

    os.environ["BENCH_VARIANT"] = variant
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        "benchmarks.apps:create_app", factory=True, access_log=False, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    for _ in range(10_000):  # bounded: about 10 s of polling
        if server.started or serving.done():
            break
        await asyncio.sleep(0.001)
    if not server.started:
        serving.result()  # raises what stopped it
        raise RuntimeError("uvicorn did not start")
    statuses: dict[int, int] = {}
    for _ in range(requests):
        status = await _get(port, path)
        statuses[status] = statuses.get(status, 0) + 1
    server.should_exit = True
    await asyncio.wait_for(serving, 30)
    sock.close()
    apps.shutdown(variant)
    expected = 500 if path == PATHS["error"] else 200
    if statuses != {expected: requests}:
        raise RuntimeError(f"{variant}: GET {path} answered {statuses}, expected {expected} for all {requests}")
    return {"statuses": {str(k): v for k, v in statuses.items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=apps.VARIANTS)
    parser.add_argument("--path", choices=sorted(PATHS.values()), required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    outcome = asyncio.run(run(args.variant, args.path, args.requests))
    write_result(args.result, {"variant": args.variant, "path": args.path, "requests": args.requests, **outcome})


if __name__ == "__main__":
    main()
