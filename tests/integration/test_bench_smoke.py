"""The benchmark harness runs end to end in its quick mode, so it cannot rot (no timing is asserted: benchmarks/
measures speed, tests only prove the harness works against today's code and today's peers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import signalfire

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_writes_every_section_and_variant(tmp_path: Path) -> None:
    """`python -m benchmarks.run --quick` measures every variant and section and writes the Markdown report."""
    output, raw = tmp_path / "performance.md", tmp_path / "results.json"
    src = str(Path(signalfire.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--output", str(output), "--json", str(raw)],
        cwd=ROOT,
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # a bound on a hung run, not a speed check: quick mode takes a few minutes on a busy machine
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    document = output.read_text()
    for title in ("Per-request overhead", "Micro-benchmarks", "Start-up", "End to end under uvicorn", "Memory"):
        assert f"## {title}" in document
    for variant in ("bare", "signalfire", "signalfire_10pct", "signalfire_disabled", "otel", "runbook", "logfire"):
        assert f"| {variant} |" in document
    assert "| failed |" not in document
    results = json.loads(raw.read_text())["raw"]
    assert results["request"]["failed"] == {}
    assert results["request"]["trace_exports"]["signalfire"] > 0, "signalfire's spans never reached the receiver"
    # every end-to-end setup was served (how fast is not the question: resets are retried and counted in "errors")
    assert results["e2e"], "the end-to-end section measured nothing"
    for setup, runs in results["e2e"].items():
        assert runs, setup
        assert all(run["p50_ms"] is not None for run in runs), f"{setup}: no request was answered"


def test_instruction_count_child_runs_a_variant_and_exports(tmp_path: Path) -> None:
    """The child `run.py` puts under callgrind serves its requests and shuts the variant down cleanly."""
    result = tmp_path / "result.json"
    src = str(Path(signalfire.__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([src, str(ROOT)]),
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
    }
    command = [sys.executable, "-m", "benchmarks.bench_instructions", "signalfire", "--requests", "5"]
    proc = subprocess.run(
        [*command, "--result", str(result)], cwd=ROOT, check=False, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads(result.read_text()) == {"variant": "signalfire", "requests": 5}


def _child(tmp_path: Path, module: str, *args: str) -> dict[str, object]:
    result = tmp_path / "result.json"
    src = str(Path(signalfire.__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([src, str(ROOT)]),
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
    }
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args, "--result", str(result)],
        cwd=ROOT,
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data: dict[str, object] = json.loads(result.read_text())
    return data


@pytest.mark.parametrize("op", ["span", "server_span", "prometheus_inc", "prometheus_labels_inc", "json_log"])
def test_floor_child_measures_each_operation(tmp_path: Path, op: str) -> None:
    """The floor's child sets up each operation and reports a time per operation."""
    data = _child(tmp_path, "bench_floor", op, "--count", "50", "--loops", "2")
    assert data["op"] == op
    assert isinstance(data["us"], float)


@pytest.mark.parametrize("variant", ["otel_meter", "fastapi_native", "fastapi_native_no_ops", "signalfire_native_off"])
def test_peer_variants_serve_their_requests(tmp_path: Path, variant: str) -> None:
    """The rows added for issue 20 (FastAPIInstrumentor with a meter provider, FastAPI's native telemetry with and
    without operation spans, signalfire on an app with FastAPI's telemetry off) build, serve and shut down."""
    pytest.importorskip("fastapi.telemetry", reason="FastAPI < 0.142 has no native telemetry")
    assert _child(tmp_path, "bench_instructions", variant, "--requests", "5") == {"variant": variant, "requests": 5}


@pytest.mark.parametrize("variant", ["bare", "signalfire"])
def test_errors_child_serves_through_a_real_uvicorn(tmp_path: Path, variant: str) -> None:
    """The errors section's child serves erroring and happy requests through uvicorn in process and stops it."""
    assert _child(tmp_path, "bench_errors", variant, "--path", "/boom", "--requests", "3")["statuses"] == {"500": 3}
    assert _child(tmp_path, "bench_errors", variant, "--path", "/items/42", "--requests", "3")["statuses"] == {"200": 3}
