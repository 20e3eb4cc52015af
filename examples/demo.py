"""The demo: start the example service on loopback, send it a burst of traffic including an error, show what it
emitted (the span tree and logs on its terminal), then stop it with SIGTERM so everything is flushed.

Nothing to start by hand and no account needed: signalfire's development preset prints traces to the terminal.

    python examples/demo.py
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(base: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the service exited early with status {proc.returncode}")
        try:
            httpx.get(f"{base}/properties/1", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the service did not come up in time")


def send_traffic(base: str) -> dict[int, int]:
    """A bounded burst: reads, bookings, a not-found, a rejected booking and one crash."""
    statuses: dict[int, int] = {}
    requests = [("GET", f"/properties/{i % 3 + 1}", None) for i in range(6)]
    requests += [("POST", "/bookings", {"property_id": 2, "nights": n}) for n in (2, 5)]
    requests += [("GET", "/properties/999", None), ("POST", "/bookings", {"property_id": 1, "nights": 30})]
    requests += [("GET", "/reports/broken", None)]
    with httpx.Client(base_url=base, timeout=5.0) as client:
        for number, (method, path, body) in enumerate(requests, start=1):
            response = client.request(method, path, json=body, headers={"X-Request-ID": f"demo-{number}"})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    return statuses


def main() -> int:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    workdir = tempfile.mkdtemp(prefix="signalfire-demo-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SENTRY_", "SIGNALFIRE_"))}
    env.update(
        ENVIRONMENT="development",
        DEMO_DATABASE_URL=f"sqlite:///{workdir}/demo.sqlite3",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    print(f"== starting the example service on {base} (logs and span trees follow)\n", flush=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "examples.service.app:app", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=workdir,
    )
    try:
        wait_until_up(base, proc)
        statuses = send_traffic(base)
        time.sleep(1.0)  # let the batch processor print the last traces
        print(f"\n== traffic sent; responses by status: {dict(sorted(statuses.items()))}", flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print("== the service stopped on SIGTERM; signalfire flushed what was pending", flush=True)
    return 0 if statuses.get(500) == 1 and statuses.get(200, 0) >= 8 else 1


if __name__ == "__main__":
    raise SystemExit(main())
