"""Keep-alive after unhandled errors: resets over N "error, then next request" pairs on one keep-alive connection.

``python -m benchmarks.bench_keepalive [--pairs 50]`` serves the reliability app (signalfire) and the same routes
without signalfire under a real uvicorn each, and on one ``http.client`` keep-alive connection per app sends
``GET /boom/<i>`` (an unhandled error: 500) immediately followed by ``GET /ready``, ``--pairs`` times. It prints, per
app, how many of the pairs ended in a reset connection (``ConnectionResetError``, ``BrokenPipeError``,
``RemoteDisconnected``) and how many times the client had to open a new connection because the 500 said
``connection: close``. tests/integration/test_keepalive.py asserts 0 resets for signalfire with the same client.
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = {"signalfire": "tests.apps.reliability_app:app", "bare uvicorn": "tests.apps.bare_errors_app:app"}


@dataclass
class PairsResult:
    """What one keep-alive connection saw over ``pairs`` error/next-request pairs."""

    pairs: int
    resets: int
    reconnects: int
    close_headers: int


def error_pairs(port: int, pairs: int, timeout: float = 10.0) -> PairsResult:
    """Send ``pairs`` x (GET /boom/i, GET /ready) on one keep-alive connection, reconnecting only when told or reset."""
    resets = reconnects = close_headers = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        for i in range(pairs):
            try:
                conn.request("GET", f"/boom/{i}")
                first = conn.getresponse()
                first.read()
                if (first.getheader("connection") or "").lower() == "close":
                    close_headers += 1
                if first.will_close:
                    reconnects += 1  # http.client opens a new connection for the next request, as pools do
                conn.request("GET", "/ready")
                second = conn.getresponse()
                second.read()
            except (ConnectionError, http.client.RemoteDisconnected):
                resets += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    finally:
        conn.close()
    return PairsResult(pairs, resets, reconnects, close_headers)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_and_measure(app: str, pairs: int) -> PairsResult:
    """Start ``app`` under uvicorn on a free port, measure, stop it (by PID)."""
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SIGNALFIRE_", "SENTRY_"))}
    environment.update(ENVIRONMENT="production", PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}")
    args = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--log-level", "critical"]
    proc = subprocess.Popen(args, env=environment, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                probe.request("GET", "/ready")
                probe.getresponse().read()
                probe.close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{app} did not start") from None
                time.sleep(0.1)
        return error_pairs(port, pairs)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=50)
    args = parser.parse_args()
    for name, app in APPS.items():
        result = serve_and_measure(app, args.pairs)
        print(
            f"{name}: {result.resets}/{result.pairs} pairs reset, {result.close_headers} 500s said connection: close, "
            f"{result.reconnects} reconnects"
        )


if __name__ == "__main__":
    main()
