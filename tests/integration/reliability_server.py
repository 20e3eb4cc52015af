"""The reliability app (tests/apps/reliability_app.py) under a real uvicorn process, with its stdout captured."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.receivers import free_port

ROOT = Path(__file__).resolve().parents[2]


class Server:
    """A running app: its base URL, its process and the file its stdout (the log lines) goes to."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, stdout: Path) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.stdout = stdout

    def output(self) -> bytes:
        return self.stdout.read_bytes()

    def log_lines(self) -> list[dict[str, Any]]:
        """Every JSON log line printed so far."""
        lines = []
        for raw in self.output().splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
        return lines

    def scrape(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=10).text

    def stop(self, timeout: float = 30) -> float:
        """SIGTERM, wait for exit; returns the seconds it took."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"the server did not exit within {timeout} s of SIGTERM")
        return time.monotonic() - started


def dropped(scrape: str, signal_name: str, reason: str) -> float:
    """signalfire_telemetry_dropped_total{signal, reason} from a Prometheus scrape (0 when absent)."""
    total = 0.0
    for line in scrape.splitlines():
        if (
            line.startswith("signalfire_telemetry_dropped_total{")
            and f'signal="{signal_name}"' in line
            and f'reason="{reason}"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


@contextmanager
def serve(
    tmp_path: Path,
    *,
    uvicorn_args: tuple[str, ...] = (),
    server: str = "uvicorn",
    app: str = "tests.apps.reliability_app:app",
    **env: str,
) -> Iterator[Server]:
    """Start the app with ``env`` (on top of a production preset with no backends) and stop it afterwards.

    ``server`` is "uvicorn" or "gunicorn" (one uvicorn worker, ``uvicorn_worker.UvicornWorker``)."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SIGNALFIRE_", "SENTRY_"))}
    environment.update(
        ENVIRONMENT="production",
        OTEL_TRACES_SAMPLER_ARG="1.0",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="500",
        SIGNALFIRE_LOG_FORMAT="json",
        PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        PYTHONUNBUFFERED="1",
    )
    environment.update(env)
    stdout = tmp_path / f"stdout-{port}.log"
    with stdout.open("wb") as sink:
        if server == "gunicorn":
            command = [sys.executable, "-m", "gunicorn", app, "-k", "uvicorn_worker.UvicornWorker", "-w", "1"]
            command += ["-b", f"127.0.0.1:{port}", "--log-level", "warning"]
        else:
            command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
            command += ["--no-access-log", "--log-level", "warning", *uvicorn_args]
        proc = subprocess.Popen(
            command,
            env=environment,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    running = Server(proc, port, stdout)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{running.url}/ready", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    pytest.fail(f"the app did not start:\n{running.output()[-3000:].decode('utf-8', 'replace')}")
                time.sleep(0.1)
        yield running
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
