"""Multiprocess: two real worker processes behind one port share PROMETHEUS_MULTIPROC_DIR; any worker's scrape
reports every worker's requests, and a dead worker's counts stay while its live gauges go."""

from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import signalfire

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SRC = str(Path(signalfire.__file__).resolve().parent.parent)
APP = """
import os
from fastapi import FastAPI
import signalfire

app = FastAPI()


@app.get("/work/{n}")
async def work(n: int) -> dict[str, int]:
    signalfire.metrics.record_job("work", "success")
    return {"pid": os.getpid()}


signalfire.init_observability(app, traces_exporter="none")
"""
GUNICORN_CONF = """
from signalfire import metrics

child_exit = metrics.gunicorn_child_exit
on_starting = metrics.gunicorn_on_starting
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


class Workers:
    """A multi-worker server process tree on loopback with its own multiprocess directory."""

    def __init__(self, tmp_path: Path, command: list[str]) -> None:
        self.dir = tmp_path / "prom"
        self.dir.mkdir()
        (tmp_path / "mpapp.py").write_text(APP)
        (tmp_path / "gunicorn_conf.py").write_text(GUNICORN_CONF)
        self.port = free_port()
        env = dict(os.environ)
        env.update(
            PROMETHEUS_MULTIPROC_DIR=str(self.dir),
            PYTHONPATH=os.pathsep.join([SRC, str(tmp_path)]),
            PYTHONWARNINGS="ignore::DeprecationWarning",
        )
        command = [part.format(port=self.port, tmp=tmp_path) for part in command]
        self.log = (tmp_path / "server.log").open("wb")
        self.process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=self.log, stderr=subprocess.STDOUT)
        self.requests = 0
        self.pids: set[int] = set()

    def work(self) -> int:
        """One counted request on a new connection; returns the pid of the worker that served it."""
        status, body = get(f"http://127.0.0.1:{self.port}/work/{self.requests}")
        assert status == 200
        self.requests += 1
        pid = int(body.decode().split(":")[1].strip("}"))
        self.pids.add(pid)
        return pid

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.read_log()}")
            try:
                self.work()
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        raise RuntimeError(f"server did not start: {self.read_log()}")

    def until_both_workers_served(self, at_least: int, limit: int = 1500) -> None:
        while (len(self.pids) < 2 or self.requests < at_least) and self.requests < limit:
            self.work()
        assert len(self.pids) == 2, f"only worker(s) {self.pids} served {self.requests} requests"

    def scrape(self) -> dict[str, list]:
        status, body = get(f"http://127.0.0.1:{self.port}/metrics")
        assert status == 200
        samples: dict[str, list] = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append(sample)
        return samples

    def read_log(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()


def settled_count(workers: Workers, timeout: float = 5.0) -> float:
    """The scraped request total once it stops moving: a request is recorded just after its response is sent, so a
    scrape served by the other worker can arrive a moment before the last observation is written."""
    deadline = time.monotonic() + timeout
    count = request_count(workers.scrape())
    while count < workers.requests and time.monotonic() < deadline:
        time.sleep(0.05)
        count = request_count(workers.scrape())
    return count


def request_count(samples: dict[str, list]) -> float:
    return sum(
        s.value
        for s in samples.get("http_server_request_duration_seconds_count", [])
        if s.labels["http_route"] == "/work/{n}"
    )


@pytest.fixture
def uvicorn_workers(tmp_path) -> Iterator[Workers]:
    command = [sys.executable, "-m", "uvicorn", "mpapp:app", "--workers", "2", "--host", "127.0.0.1"]
    workers = Workers(tmp_path, [*command, "--port", "{port}", "--log-level", "warning"])
    try:
        workers.wait_ready()
        yield workers
    finally:
        workers.stop()


@pytest.fixture(params=[False, True], ids=["gunicorn", "gunicorn-preload"])
def gunicorn_workers(tmp_path, request) -> Iterator[Workers]:
    preload = ["--preload"] if request.param else []  # init in the master, then fork: values must not be shared
    command = [
        sys.executable, "-m", "gunicorn", *preload, "mpapp:app", "--workers", "2", "--bind", "127.0.0.1:{port}",
        "--worker-class", "uvicorn.workers.UvicornWorker", "--config", "python:gunicorn_conf",
        "--log-level", "warning",
    ]  # fmt: skip
    workers = Workers(tmp_path, command)
    try:
        workers.wait_ready()
        yield workers
    finally:
        workers.stop()


def test_two_uvicorn_workers_scrape_the_total(uvicorn_workers):
    """With uvicorn --workers 2, after N requests served by both workers every scrape reports exactly N."""
    uvicorn_workers.until_both_workers_served(at_least=200)
    assert settled_count(uvicorn_workers) == uvicorn_workers.requests
    for _ in range(6):  # scrapes land on either worker; each must see the whole
        samples = uvicorn_workers.scrape()
        assert request_count(samples) == uvicorn_workers.requests
        [jobs] = samples["jobs_processed_total"]
        assert jobs.value == uvicorn_workers.requests
        [active] = samples["http_server_active_requests"]
        assert active.value == 0


def test_workers_expose_their_summed_process_metrics(uvicorn_workers):
    """In multiprocess mode the live workers' resident memory is summed into one process metric."""
    uvicorn_workers.until_both_workers_served(at_least=2)
    [memory] = uvicorn_workers.scrape()["process_resident_memory_bytes"]
    assert memory.value > 10_000_000


def test_a_killed_gunicorn_worker_keeps_its_counts_and_loses_its_gauges(gunicorn_workers):
    """After a worker is killed, the total still counts its requests and child_exit removes its live gauges."""
    gunicorn_workers.until_both_workers_served(at_least=50)
    assert settled_count(gunicorn_workers) == gunicorn_workers.requests  # nothing in flight when the worker dies
    victim = sorted(gunicorn_workers.pids)[0]
    assert glob.glob(str(gunicorn_workers.dir / f"gauge_live*_{victim}.db"))
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while glob.glob(str(gunicorn_workers.dir / f"gauge_live*_{victim}.db")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not glob.glob(str(gunicorn_workers.dir / f"gauge_live*_{victim}.db"))
    gunicorn_workers.pids.discard(victim)
    for _ in range(20):
        gunicorn_workers.work()
    assert settled_count(gunicorn_workers) == gunicorn_workers.requests
