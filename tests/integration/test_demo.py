"""The README's demo runs: the example service starts, serves a burst with one error, prints its traces, stops."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo() -> subprocess.CompletedProcess[str]:
    """examples/demo.py, run once: what a newcomer sees on the terminal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SENTRY_", "SIGNALFIRE_"))}
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_runs_and_shows_the_span_tree(demo):
    """examples/demo.py exits 0 and its output has the route-template span tree with a nested custom span."""
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output[-3000:]
    assert "POST /bookings" in output
    assert "└─ price_booking" in output
    assert "GET /reports/broken" in output
    assert "responses by status: {200: 8, 404: 1, 409: 1, 500: 1}" in output


def test_demo_sql_spans_are_named_by_operation_and_table(demo):
    """The SQLite spans read "SELECT properties"; the database file's path is nowhere in the output."""
    output = demo.stdout + demo.stderr
    assert "└─ SELECT properties" in output
    assert "signalfire-demo-" not in output
    assert "demo.sqlite3" not in output


def test_demo_crash_line_carries_the_trace_of_the_failed_request(demo):
    """uvicorn's "Exception in ASGI application" line names the trace the span tree prints for /reports/broken."""
    output = demo.stdout + demo.stderr
    (error_line,) = [line for line in output.splitlines() if "Exception in ASGI application" in line]
    assert "[uvicorn.error]" in error_line
    trace_id = re.search(r"trace_id=([0-9a-f]{32})", error_line)
    assert trace_id is not None, error_line
    assert "request_id=demo-11" in error_line
    tree = output.split(f"trace {trace_id.group(1)}\n", 1)[1].splitlines()[0]
    assert "GET /reports/broken" in tree


def test_demo_start_up_and_shutdown_lines_are_signalfires(demo):
    """The owners line is shown at start-up, and uvicorn's last lines come out in the same format as the others."""
    output = demo.stdout + demo.stderr
    assert "signalfire: owners of each signal" in output
    for text in ("Application shutdown complete.", "Finished server process"):
        (line,) = [line for line in output.splitlines() if text in line]
        assert "[uvicorn.error]" in line
        assert "service=bookings" in line
    assert "INFO:" not in output
