"""Logs and request correlation under a real uvicorn server on loopback, read from the process's stdout."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

APP = Path(__file__).with_name("log_app.py")
SRC = Path(__file__).parents[2] / "src"
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """uvicorn in a subprocess; its stdout and stderr are collected line by line."""

    def __init__(self, **extra_env: str) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SIGNALFIRE_", "SENTRY_"))}
        env.update(extra_env)
        env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
        self.process = subprocess.Popen(
            [sys.executable, str(APP), str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"uvicorn exited: {self.err[-20:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail("uvicorn did not start listening")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for reader in self._readers:
            reader.join(timeout=5)
        self.process.stdout.close()
        self.process.stderr.close()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out]


@pytest.fixture(scope="module")
def served() -> tuple[Server, list[httpx.Response]]:
    """Start the app under uvicorn, send three requests, stop it; yield the server and the responses."""
    server = Server()
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            responses = [
                client.get("/items/7", headers={"X-Request-ID": "it-req-1"}),
                client.get("/items/8?token=tok-9f8e7d6c5b4a"),
                client.get("/boom", headers={"X-Request-ID": "it-req-500"}),
            ]
    finally:
        server.stop()
    return server, responses


def test_every_stdout_line_is_one_json_object(served):
    """Everything the process writes to stdout (app, access log, uvicorn itself) is one JSON object per line."""
    server, _ = served
    assert server.out
    for line in server.out:
        assert isinstance(json.loads(line), dict), line


def test_one_access_line_per_request_with_ids(served):
    """Each request has exactly one access line, with its request_id and a 32-hex trace_id."""
    server, responses = served
    access = [line for line in server.lines() if line["logger"] == "signalfire.access"]
    assert [line["status"] for line in access] == [200, 200, 500]
    for line, response in zip(access, responses, strict=True):
        assert line["request_id"] == response.headers["x-request-id"]
        assert HEX32.match(line["trace_id"])
        assert line["route"] in ("/items/{item_id}", "/boom")
        assert line["service"] == "shop"
    assert access[1]["path"] == "/items/8?token=[REDACTED:token]"


def test_app_lines_carry_the_same_ids_as_the_access_line(served):
    """The application's own line inside a request has the request's request_id and trace_id."""
    server, _ = served
    lines = server.lines()
    app_line = next(line for line in lines if line["event"] == "loading item" and line["item_id"] == 7)
    access = next(line for line in lines if line["logger"] == "signalfire.access" and line["path"] == "/items/7")
    assert app_line["request_id"] == access["request_id"] == "it-req-1"
    assert app_line["trace_id"] == access["trace_id"]
    assert app_line["api_key"] == "[REDACTED:api_key]"


def test_request_id_round_trips(served):
    """The X-Request-ID sent is the one returned; without one, a generated id is returned."""
    _, responses = served
    assert responses[0].headers["x-request-id"] == "it-req-1"
    assert len(responses[1].headers["x-request-id"]) == 32


def test_unhandled_error_returns_500_with_request_id_and_a_scrubbed_traceback(served):
    """A route that raises answers 500 with the request id; uvicorn's error line is ours, scrubbed."""
    server, responses = served
    assert responses[2].status_code == 500
    assert responses[2].headers["x-request-id"] == "it-req-500"
    errors = [line for line in server.lines() if line["logger"] == "uvicorn.error" and line["level"] == "error"]
    assert len(errors) == 1
    assert errors[0]["exception"]["type"] == "RuntimeError"
    assert errors[0]["request_id"] == "it-req-500"
    assert "hunter2hunter2" not in "\n".join(server.out + server.err)


def test_uvicorn_records_are_written_once_and_its_access_log_is_replaced(served):
    """uvicorn's startup line is written once in our format; its own access lines are not duplicated."""
    server, _ = served
    lines = server.lines()
    startup = [line for line in lines if "Application startup complete" in str(line["event"])]
    assert len(startup) == 1
    assert startup[0]["logger"] == "uvicorn.error"
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]
    assert not any("Application startup complete" in line for line in server.err)


def test_the_access_log_replacement_is_announced_once(served):
    """One line says signalfire's access log replaces uvicorn's, and how to keep uvicorn's."""
    server, _ = served
    notices = [line for line in server.lines() if "uvicorn's access log is replaced" in str(line["event"])]
    assert len(notices) == 1
    assert "SIGNALFIRE_ACCESS_LOG=false" in notices[0]["event"]


def test_without_signalfire_access_log_uvicorn_keeps_its_own():
    """SIGNALFIRE_ACCESS_LOG=false: uvicorn's access log is left alone (rendered by the same pipeline), no notice."""
    server = Server(SIGNALFIRE_ACCESS_LOG="false")
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/items/7").status_code == 200
    finally:
        server.stop()
    lines = server.lines()
    assert len([line for line in lines if line["logger"] == "uvicorn.access"]) == 1
    assert not [line for line in lines if line["logger"] == "signalfire.access"]
    assert not [line for line in lines if "access log is replaced" in str(line["event"])]
