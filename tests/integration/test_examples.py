"""The examples run: the worker script and the gunicorn configuration deliver their spans to a real OTLP receiver."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import _CONFIG_NAMES, _CONFIG_PREFIXES
from tests.receivers import HttpOtlpServer
from tests.support import stop

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def example_env(server, **extra: str) -> dict[str, str]:
    """A production-like environment exporting everything to ``server``; the worktree's src/ first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CONFIG_PREFIXES) and k not in _CONFIG_NAMES}
    paths = [str(ROOT / "src")] + [str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(
        PYTHONPATH=os.pathsep.join(paths),
        ENVIRONMENT="production",
        OTEL_TRACES_SAMPLER_ARG="1.0",
        OTEL_EXPORTER_OTLP_ENDPOINT=server.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=getattr(server, "protocol", "http/protobuf"),
        OTEL_BSP_SCHEDULE_DELAY="60000",  # nothing leaves before exit: the example's shutdown path must flush
        OTEL_METRICS_EXPORTER="none",
    )
    env.update(extra)
    return env


def test_worker_traces_every_job_as_a_continuation_of_its_producer(otlp_server):
    """examples/worker.py: each job's span is a child of its enqueue span; failures are ERROR; nothing is lost."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "worker.py"), "--jobs", "10", "--fail-every", "5"],
        env=example_env(otlp_server, OTEL_SERVICE_NAME="thumbnailer"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    received = otlp_server.receiver.spans()
    assert {resource["service.name"] for resource, _ in received} == {"thumbnailer"}
    spans = [span for _, span in received]
    enqueued = {span.span_id: span for span in spans if span.name == "enqueue"}
    processed = [span for span in spans if span.name == "process thumbnail"]
    assert len(enqueued) == len(processed) == 10
    for span in processed:
        assert enqueued[span.parent_span_id].trace_id == span.trace_id
    failed = [span for span in processed if span.status.code == span.status.STATUS_CODE_ERROR]
    assert len(failed) == 2
    assert sum(span.name == "upload" for span in spans) == 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


APP = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/items/{item_id}")
def item(item_id: int) -> dict[str, int]:
    return {"id": item_id}
"""


def scrape_count(port: int, route: str = "/properties/{property_id}") -> float:
    """The request count of ``route`` in one scrape of the server's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        exposition = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith("http_server_request_duration_seconds_count{") and f'http_route="{route}"' in line
    )


def wait_until_serving(port: int, proc: subprocess.Popen, path: str = "/properties/1", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
                response.read()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"gunicorn did not serve on port {port} within {timeout} s")


@pytest.mark.parametrize(
    "preload",
    [
        pytest.param(False, id="as-configured"),
        pytest.param(True, id="preload"),
    ],
)
def test_gunicorn_config_serves_the_example_service_and_every_worker_flushes_on_stop(tmp_path, preload):
    """examples/gunicorn.conf.py serving examples/service under real gunicorn: /metrics counts the requests of both
    workers, and with a 60 s batch delay every request's spans still arrive after SIGTERM, each from its worker's own
    service.instance.id."""
    pytest.importorskip("gunicorn", reason="pip install -e '.[test]' installs gunicorn")
    port = free_port()
    requests = 20
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    (multiproc / "counter_stale.db").write_bytes(b"left over from a previous run")
    with HttpOtlpServer() as server:
        env = example_env(
            server,
            GUNICORN_BIND=f"127.0.0.1:{port}",
            WEB_CONCURRENCY="2",
            DEMO_DATABASE_URL=f"sqlite:///{tmp_path / 'bookings.sqlite3'}",
            OTEL_METRICS_EXPORTER="prometheus",
            PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        )
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env["PYTHONPATH"]])
        command = [sys.executable, "-m", "gunicorn", "-c", str(EXAMPLES / "gunicorn.conf.py"), "--no-control-socket"]
        proc = subprocess.Popen(
            [*command, *(["--preload"] if preload else []), "examples.service.app:app"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        request_error: OSError | None = None
        try:
            wait_until_serving(port, proc)
            assert not (multiproc / "counter_stale.db").exists(), "on_starting empties the multiprocess directory"
            for _ in range(requests):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/properties/1", timeout=5) as response:
                        assert response.status == 200
                except OSError as error:
                    request_error = error  # reported below, with what the server printed
                    break
            # A worker records a request's duration just after sending the response: poll until the last one is in.
            scraped = scrape_count(port)
            deadline = time.monotonic() + 10
            while scraped < requests + 1 and time.monotonic() < deadline:
                time.sleep(0.1)
                scraped = scrape_count(port)
        finally:
            out, err = stop(proc)
        # gunicorn's own lines go to stderr, or through signalfire's pipeline to stdout once it took them over
        log = out + err
        if request_error is not None:
            pytest.fail(f"{request_error}; the server said:\n{log[-6000:]}")
        workers = re.findall(r"Booting worker with pid: (\d+)", log)
        server_spans = [
            (resource, span)
            for resource, span in server.receiver.spans()
            if span.name == "GET /properties/{property_id}"
        ]
    # every request, plus the readiness probes that reached a worker
    assert len(server_spans) >= requests + 1, log
    assert requests + 1 <= scraped <= len(server_spans), "one scrape counts the requests of every worker"
    assert {resource["service.name"] for resource, _ in server_spans} == {"bookings"}
    instances = {resource["service.instance.id"] for resource, _ in server_spans}
    assert 1 <= len(instances) <= len(workers) == 2, log


def test_uvicorn_flushes_on_sigterm_when_the_app_initializes_at_import(tmp_path):
    """A service that calls init_observability(app) at import under plain uvicorn loses no span on SIGTERM."""
    (tmp_path / "service.py").write_text(APP + "\nimport signalfire\n\nsignalfire.init_observability(app)\n")
    port = free_port()
    with HttpOtlpServer() as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "service:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=example_env(server, OTEL_SERVICE_NAME="web"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until_serving(port, proc, "/items/0")
            for number in range(1, 11):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/items/{number}", timeout=5) as response:
                    assert response.status == 200
        finally:
            _, log = stop(proc)
        server_spans = [span for _, span in server.receiver.spans() if span.name == "GET /items/{item_id}"]
    assert len(server_spans) >= 11, log
