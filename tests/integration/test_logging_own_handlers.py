"""An application's own log handlers on uvicorn's loggers keep working under a real uvicorn with signalfire."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.test_logging_uvicorn import SRC, free_port

pytestmark = pytest.mark.integration

APP = Path(__file__).with_name("own_logging_app.py")


def test_app_files_keep_their_format_and_stdout_has_each_line_once(tmp_path):
    """server.log (uvicorn's access lines included) and app.log get the app's format; stdout one JSON line per record,
    none doubled, stderr quiet."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SIGNALFIRE_", "SENTRY_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(Path(__file__).parents[2]), env.get("PYTHONPATH", "")])
    process = subprocess.Popen(
        [sys.executable, str(APP), str(port), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        for _ in range(200):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/items/7", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read()
                time.sleep(0.1)
        assert response.status_code == 200
    finally:
        process.terminate()
        out, err = process.communicate(timeout=20)
    lines = [json.loads(line) for line in out.splitlines()]
    events = [line["event"] for line in lines]
    assert events.count("Application startup complete.") == 1
    assert events.count("loading item 7") == 1
    assert len([line for line in lines if line["logger"] == "signalfire.access"]) == 1
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]
    assert "Application startup complete." not in err
    server_log = (tmp_path / "server.log").read_text().splitlines()
    assert server_log.count("AUDIT uvicorn.error Application startup complete.") == 1
    # the app's file on uvicorn.access keeps uvicorn's access line; stdout has signalfire's only (asserted above)
    assert [line for line in server_log if line.startswith("AUDIT uvicorn.access") and "GET /items/7" in line]
    assert "APP shop loading item 7" in (tmp_path / "app.log").read_text().splitlines()
    kept = [line for line in lines if "handlers on the server's loggers are kept" in str(line["event"])]
    assert kept
    assert "server.log" in kept[0]["event"]
