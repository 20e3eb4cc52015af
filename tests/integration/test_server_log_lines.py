"""The server's own lines around a request that failed and around exit, under a real uvicorn (command line) and
gunicorn (uvicorn worker): rendered by signalfire's pipeline, one JSON record each, joined to their request's trace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.reliability_server import serve

pytestmark = pytest.mark.integration

# uvicorn's last lines: logged after signalfire's shutdown ran (at lifespan shutdown, after SIGTERM)
LAST_LINES = ("Waiting for application shutdown.", "Application shutdown complete.", "Finished server process")


def _failed_request(lines: list[dict[str, Any]], request_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The access line of the request and the server's error line about it."""
    access_lines = [line for line in lines if line.get("logger") == "signalfire.access"]
    (access,) = [line for line in access_lines if line["request_id"] == request_id]
    (error,) = [line for line in lines if line.get("logger") == "uvicorn.error" and line["level"] == "error"]
    return access, error


@pytest.mark.parametrize("server_name", ["uvicorn", "gunicorn"])
def test_the_servers_traceback_line_carries_the_trace_of_the_failed_request(tmp_path: Path, server_name: str) -> None:
    """uvicorn's "Exception in ASGI application" (logged after signalfire's middleware and span have finished) is one
    JSON record with the structured exception and the trace, span and request ids of the request that failed."""
    with serve(tmp_path, server=server_name) as server:
        response = httpx.get(f"{server.url}/boom/1", headers={"X-Request-ID": "req-boom-1"}, timeout=10)
        assert response.status_code == 500
        server.stop()
    access, error = _failed_request(server.log_lines(), "req-boom-1")
    assert error["event"] == "Exception in ASGI application"  # no trailing newline
    assert (error["trace_id"], error["span_id"]) == (access["trace_id"], access["span_id"])
    assert error["request_id"] == "req-boom-1"
    assert error["exception"]["type"] == "RuntimeError"
    assert error["exception"]["message"] == "boom 1"
    assert "Traceback (most recent call last)" in error["exception"]["stack"]
    # the traceback is inside the record, not on lines of its own
    assert not [raw for raw in server.output().splitlines() if raw.startswith((b"Traceback", b"  File "))]


def test_the_servers_last_lines_are_rendered_after_signalfires_shutdown(tmp_path: Path) -> None:
    """uvicorn's shutdown lines, logged after signalfire shut down (SIGTERM, then lifespan shutdown), are JSON lines of
    the same pipeline (service, environment), not uvicorn's own "INFO:" format."""
    with serve(tmp_path, uvicorn_args=("--log-level", "info")) as server:
        assert httpx.get(f"{server.url}/work/1", timeout=10).status_code == 200
        server.stop()
    lines = server.log_lines()
    for text in LAST_LINES:
        (line,) = [line for line in lines if str(line.get("event")).startswith(text)]
        assert line["logger"] == "uvicorn.error"
        assert line["service"] == "reliability"
    assert b"INFO:" not in server.output()
