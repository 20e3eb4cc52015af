"""Worker processes: gunicorn (with and without --preload) and uvicorn --workers each export their own spans."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.receivers import HttpOtlpServer
from tests.support import stop, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BURST = 16
BURSTS = 20  # at most 320 requests before giving up on reaching the second worker


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(command: list[str], receiver: HttpOtlpServer, **extra_env: str) -> tuple[int, subprocess.Popen[str]]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SIGNALFIRE_", "SENTRY_"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_BSP_SCHEDULE_DELAY="200",
        ENVIRONMENT="production",
        OTEL_TRACES_SAMPLER_ARG="1.0",
        PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}",  # this checkout's code, whatever is installed
    )
    env.update(extra_env)
    proc = subprocess.Popen(
        [arg.replace("PORT", str(port)) for arg in command],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1)
            return port, proc
        except httpx.TransportError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    _, err = proc.communicate()
    pytest.fail(f"server did not start: {err[-2000:]}")


def _load_and_stop(port: int, proc: subprocess.Popen[str]) -> int:
    """Concurrent bursts until both workers have answered (bounded), then SIGTERM; returns the requests served."""
    served = 0
    pids: set[int] = set()

    def get(i: int) -> int:
        response = httpx.get(f"http://127.0.0.1:{port}/block/{i}", timeout=10)
        assert response.status_code == 200
        return int(response.json()["pid"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(BURSTS):
            pids.update(pool.map(get, range(BURST)))
            served += BURST
            if len(pids) == 2:
                break
    assert len(pids) == 2, "both workers should have served within the bounded bursts"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the server did not stop on SIGTERM")
    return served


def _server_spans(receiver: HttpOtlpServer) -> list[tuple[dict, object]]:
    return [(resource, span) for resource, span in receiver.receiver.spans() if span.name == "GET /block/{n}"]


GUNICORN = [sys.executable, "-m", "gunicorn", "tests.apps.workers_app:app", "-k", "uvicorn_worker.UvicornWorker"]
GUNICORN += ["-w", "2", "-b", "127.0.0.1:PORT", "--graceful-timeout", "10"]
UVICORN = [sys.executable, "-m", "uvicorn", "tests.apps.workers_app:app", "--workers", "2", "--port", "PORT"]


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(GUNICORN, id="gunicorn"),
        pytest.param([*GUNICORN, "--preload"], id="gunicorn-preload"),
        pytest.param(UVICORN, id="uvicorn-workers"),
    ],
)
def test_every_worker_exports_every_span_with_its_own_instance_id(command):
    """Every request's server span arrives (zero lost after SIGTERM), from two workers with distinct instance ids."""
    with HttpOtlpServer() as receiver:
        port, proc = _serve(command, receiver)
        try:
            served = _load_and_stop(port, proc)
        finally:
            stop(proc, signal.SIGKILL, timeout=10)  # already ended unless an assertion failed
        spans = _server_spans(receiver)
        assert len(spans) == served
        instance_ids = {resource["service.instance.id"] for resource, _ in spans}
        assert len(instance_ids) == 2


def test_worker_killed_at_graceful_timeout_still_delivers_completed_requests():
    """A gunicorn worker stuck on a request past --graceful-timeout is killed; requests it completed before are
    exported anyway (flushed on SIGTERM, not only at the exit the SIGKILL prevents)."""
    command = [sys.executable, "-m", "gunicorn", "tests.apps.workers_app:app", "-k", "uvicorn_worker.UvicornWorker"]
    command += ["-w", "1", "-b", "127.0.0.1:PORT", "--graceful-timeout", "3"]
    with HttpOtlpServer() as receiver:
        # nothing exported along the way: what arrives was flushed at shutdown
        port, proc = _serve(command, receiver, OTEL_BSP_SCHEDULE_DELAY="60000", SIGNALFIRE_SHUTDOWN_TIMEOUT="1")
        completed = [httpx.get(f"http://127.0.0.1:{port}/block/{i}", timeout=10).status_code for i in range(10)]
        assert completed == [200] * 10
        hung = ThreadPoolExecutor(max_workers=1)
        try:
            hung.submit(lambda: httpx.get(f"http://127.0.0.1:{port}/hang", timeout=60))
            wait_until(
                lambda: httpx.get(f"http://127.0.0.1:{port}/hanging", timeout=5).json()["hanging"] == 1,
                timeout=30,
                message="the hanging request never reached the worker",
            )
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
        finally:
            stop(proc, signal.SIGKILL, timeout=10)
            hung.shutdown(wait=True, cancel_futures=True)
        assert len(_server_spans(receiver)) == 10
