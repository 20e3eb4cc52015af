"""The README's demo runs: the example service starts, serves a burst with one error, prints its traces, stops."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_and_shows_the_span_tree():
    """examples/demo.py exits 0 and its output has the route-template span tree with a nested custom span."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SENTRY_", "SIGNALFIRE_"))}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "POST /bookings" in output
    assert "└─ price_booking" in output
    assert "GET /reports/broken" in output
    assert "responses by status: {200: 8, 404: 1, 409: 1, 500: 1}" in output
