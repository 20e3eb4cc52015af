"""Process exit with dead, black-holed and healthy backends: the ``exit`` section of benchmarks/run.py.

- SIGTERM to exit of ``benchmarks.exit_app`` under uvicorn and under gunicorn (one uvicorn worker) after a few
  requests, with the OTLP endpoint (and the Sentry DSN) refusing connections, black-holed (accepts, never answers) or
  healthy (benchmarks/_servers.HttpSink). Measured by the parent: :func:`sigterm_to_exit`.
- TestClient enter and exit (a lifespan startup and shutdown) with a refusing collector, in-process: the child
  ``python -m benchmarks.bench_exit testclient --cycles N --result FILE``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from typing import Any

from benchmarks._harness import ROOT, child_env, write_result

REQUESTS = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, timeout: float = 5.0) -> int:
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as response:
        return int(response.status)


def sigterm_to_exit(server: str, endpoint: str, budget: float) -> dict[str, Any]:
    """Start the app under ``server`` exporting to ``endpoint``, serve REQUESTS requests, SIGTERM it; returns the
    seconds from the signal to the exit of the process (gunicorn: of its master) and whether the one exit line
    reporting a loss was printed."""
    port = free_port()
    host_port = endpoint.split("://", 1)[1]
    env = child_env(
        {
            "ENVIRONMENT": "production",
            "OTEL_TRACES_SAMPLER_ARG": "1.0",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_LOGS_EXPORTER": "otlp",
            "SENTRY_DSN": f"http://public@{host_port}/1",
            "SIGNALFIRE_SHUTDOWN_TIMEOUT": str(budget),
            "SIGNALFIRE_LOG_FORMAT": "json",
        }
    )
    if server == "gunicorn":
        command = [sys.executable, "-m", "gunicorn", "benchmarks.exit_app:app", "-k", "uvicorn_worker.UvicornWorker"]
        command += ["-w", "1", "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    else:
        command = [sys.executable, "-m", "uvicorn", "benchmarks.exit_app:app", "--port", str(port)]
        command += ["--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(f"http://127.0.0.1:{port}/ready", 1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{server} did not start") from None
                time.sleep(0.1)
        for n in range(REQUESTS):
            _get(f"http://127.0.0.1:{port}/work/{n}")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
        elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return {
        "seconds": elapsed,
        "lost_line": output.count(b"telemetry lost at shutdown"),
        "tracebacks": output.count(b"Traceback"),
        "returncode": proc.returncode,
    }


def testclient_cycles(cycles: int) -> dict[str, Any]:
    """Enter and leave a TestClient ``cycles`` times (one request each) with the collector refusing connections."""
    os.environ.update(
        {
            "ENVIRONMENT": "production",
            "OTEL_TRACES_SAMPLER_ARG": "1.0",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's TestClient warns about httpx vs httpx2
        from fastapi.testclient import TestClient

    from benchmarks.exit_app import app

    seconds = []
    for _ in range(cycles):
        started = time.monotonic()
        with TestClient(app) as client:
            client.get("/work/1")
        seconds.append(time.monotonic() - started)
    return {"seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["testclient"])
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    write_result(args.result, testclient_cycles(args.cycles))


if __name__ == "__main__":
    main()
