"""End to end under uvicorn on loopback with a bounded load generator (run from run.py, not a child itself).

One uvicorn worker serves the app of a variant (``benchmarks.apps:create_app``); wrk (Debian package ``wrk``) drives it
for a fixed duration with a fixed number of connections, one request in a hundred to ``/boom`` (an unhandled error, so
Sentry has something to send). Without wrk, a bounded asyncio generator on raw sockets takes its place (it costs more
CPU on the same cores, so its figures are lower; the report says which generator ran).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks._harness import ROOT, child_env

_LUA = """
counter = 0
request = function()
  counter = counter + 1
  if counter % 100 == 0 then
    return wrk.format("GET", "/boom")
  end
  return wrk.format("GET", "/items/42")
end
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """uvicorn serving ``variant`` on 127.0.0.1 in a subprocess; stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, variant: str, env: Mapping[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="sfbench-uvicorn-", suffix=".log", delete=False)  # noqa: SIM115
        command = [
            sys.executable, "-m", "uvicorn", "benchmarks.apps:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            command, env=child_env({**env, "BENCH_VARIANT": variant}), cwd=ROOT, stdout=self.log, stderr=self.log
        )

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited {self.proc.returncode}: {Path(self.log.name).read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/items/1", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError("uvicorn did not answer within 30 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        os.unlink(self.log.name)


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def run_wrk(url: str, seconds: float, connections: int) -> dict[str, Any]:
    """wrk against ``url``: requests per second and latency percentiles in milliseconds."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA)
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", script.name, url],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    percentiles = {int(p): _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.MULTILINE)}
    return {"rps": rps, "p50_ms": percentiles.get(50), "p99_ms": percentiles.get(99), "generator": "wrk"}


# A short run on a busy machine may get no answer before its deadline: it goes on until one request has been answered,
# for at most this much longer (and every read is bounded by it), so a report always has a figure and never hangs.
_GRACE_S = 30.0


async def keep_alive_get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, extra_headers: str = ""
) -> bool:
    """One GET on a keep-alive connection, its response read whole; False when the server closes the connection
    after it (``connection: close``, as after an unhandled error). The bounded load clients share it."""
    writer.write(f"GET {path} HTTP/1.1\r\nhost: bench\r\n{extra_headers}\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    if length is None:
        raise ConnectionError(f"no content-length in {head[:200]!r}")
    await reader.readexactly(int(length[1]))
    return re.search(rb"connection: close", head, re.IGNORECASE) is None


async def _python_load(host: str, port: int, seconds: float, connections: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    started = time.monotonic()
    deadline = started + seconds
    hard_deadline = deadline + _GRACE_S

    def more() -> bool:
        now = time.monotonic()
        return now < deadline or (not latencies and now < hard_deadline)

    async def connection() -> None:
        nonlocal errors
        count = 0
        while more():
            writer: asyncio.StreamWriter | None = None
            try:
                async with asyncio.timeout(max(0.1, hard_deadline - time.monotonic())):
                    reader, writer = await asyncio.open_connection(host, port)
                    keep_alive = True
                    while keep_alive and more():
                        count += 1
                        start = time.perf_counter()
                        keep_alive = await keep_alive_get(reader, writer, "/boom" if count % 100 == 0 else "/items/42")
                        latencies.append((time.perf_counter() - start) * 1000)
            except (OSError, EOFError, TimeoutError, asyncio.LimitOverrunError):
                # A reset or refused connection: uvicorn closes a keep-alive connection after an app raised (the
                # request after each /boom meets a reset), a loaded server refuses. Counted in "errors"; the connection
                # is opened again after a short pause, until the run's deadline.
                errors += 1
                await asyncio.sleep(0.05)
            finally:
                if writer is not None:
                    writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.monotonic() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None  # noqa: E731
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
        "generator": "python",
        "errors": errors,
    }


def load(url: str, seconds: float, connections: int) -> dict[str, Any]:
    """Drive ``url`` for ``seconds`` with ``connections`` keep-alive connections (wrk if installed)."""
    if shutil.which("wrk"):
        return run_wrk(url, seconds, connections)
    host, port = url.removeprefix("http://").split(":")
    return asyncio.run(_python_load(host, int(port), seconds, connections))


def measure(
    variant: str, env: Mapping[str, str], seconds: float, connections: int, warmup: float = 1
) -> dict[str, Any]:
    """Start uvicorn for ``variant``, warm it up for ``warmup`` seconds, and measure one load run."""
    with Server(variant, env) as server:
        if warmup:
            load(server.url, warmup, connections)
        return load(server.url, seconds, connections)
