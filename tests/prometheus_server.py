"""A real Prometheus server on loopback for integration tests: temporary storage, 1 s scrape and rule evaluation."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["PrometheusServer"]

_START_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _yaml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


class PrometheusServer:
    """``prometheus`` scraping ``targets`` every second as job ``job``, with ``rule_files`` evaluated every second.

    ``query(expr)`` runs an instant query through the HTTP API; ``alerts()`` lists active alerts; the server and its
    storage are gone after ``stop()``.
    """

    def __init__(self, binary: str, targets: list[str], rule_files: list[Path], job: str = "signalfire-demo") -> None:
        self.binary = binary
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = tempfile.TemporaryDirectory(prefix="signalfire-prometheus-")
        self._config = Path(self._dir.name) / "prometheus.yml"
        # JSON is YAML: no YAML writer needed for this small, fixed shape.
        self._config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(p) for p in rule_files],
                    "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}],
                }
            )
        )
        self._log = Path(self._dir.name) / "prometheus.log"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Start Prometheus and wait until /-/ready answers."""
        argv = [
            self.binary,
            f"--config.file={self._config}",
            f"--storage.tsdb.path={Path(self._dir.name) / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ]
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self._process.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url + "/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"prometheus was not ready on port {self.port} within {_START_TIMEOUT_S}s")

    def stop(self) -> None:
        """Stop the server and delete its storage."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        self._dir.cleanup()

    def log(self) -> str:
        """What Prometheus wrote to stderr, for failure messages."""
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def _get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}" if params else self.url + path
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result vector of an instant query (raises on a query Prometheus rejects)."""
        data = self._get("/api/v1/query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) with their labels, state and annotations."""
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts")["alerts"]
        return alerts

    def rule_groups(self) -> list[dict[str, Any]]:
        """The loaded rule groups, with each rule's health and last error."""
        groups: list[dict[str, Any]] = self._get("/api/v1/rules")["groups"]
        return groups
