"""The installed ``signalfire`` console script against real OTLP receivers and a closed port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import _CONFIG_NAMES, _CONFIG_PREFIXES
from tests.receivers import GrpcOtlpServer, HttpOtlpServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script() -> str:
    """The console script pip installed next to this interpreter (``[project.scripts]`` in pyproject.toml)."""
    path = Path(sys.executable).parent / "signalfire"
    if not path.exists():
        message = f"{path} is missing: pip install -e . installs the signalfire console script"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return str(path)


def run(script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``signalfire ARGS`` with only ``env`` as signalfire configuration; the worktree's src/ first on the path."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_CONFIG_PREFIXES) and k not in _CONFIG_NAMES}
    paths = [str(ROOT / "src")] + [str(Path(p).resolve()) for p in clean.get("PYTHONPATH", "").split(os.pathsep) if p]
    clean["PYTHONPATH"] = os.pathsep.join(paths)
    clean.update(env)
    return subprocess.run([script, *args], env=clean, capture_output=True, text=True, timeout=60, check=False)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_doctor_passes_against_a_live_http_receiver_and_sends_the_configured_headers(script):
    """doctor exits 0 when the OTLP/HTTP endpoint answers, and its probe carries OTEL_EXPORTER_OTLP_HEADERS."""
    with HttpOtlpServer() as server:
        result = run(
            script,
            "doctor",
            OTEL_EXPORTER_OTLP_ENDPOINT=server.endpoint,
            OTEL_EXPORTER_OTLP_HEADERS="api-key=k-123",
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert (
            f"ok    OTLP endpoint {server.endpoint} (http/protobuf) for traces, metrics, logs answers" in result.stdout
        )
        assert {e.headers.get("api-key") for e in server.receiver.exports} == {"k-123"}
        assert all(not e.message.ListFields() for e in server.receiver.exports), "the probe must carry no data"


def test_doctor_passes_against_a_live_grpc_receiver(script):
    """doctor exits 0 when the OTLP/gRPC endpoint answers an empty export for each signal."""
    with GrpcOtlpServer() as server:
        result = run(script, "doctor", OTEL_EXPORTER_OTLP_ENDPOINT=server.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="grpc")
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"OTLP endpoint {server.endpoint} (grpc) for traces, metrics, logs answers" in result.stdout
        assert sorted(e.signal for e in server.receiver.exports) == ["logs", "metrics", "traces"]


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_doctor_fails_on_a_closed_port_with_the_fix(script, protocol):
    """A closed OTLP port is a problem: exit 1, a FAIL line naming the endpoint, the fix, and no traceback."""
    endpoint = f"http://127.0.0.1:{closed_port()}"
    result = run(
        script,
        "doctor",
        "--timeout",
        "2",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"FAIL  OTLP endpoint {endpoint} ({protocol}) for traces, metrics, logs: does not answer" in result.stdout
    assert "fix: start the collector, or set OTEL_EXPORTER_OTLP_ENDPOINT" in result.stdout
    assert "1 problem found." in result.stdout
    assert "Traceback" not in result.stderr


def test_doctor_reports_rejected_credentials(script):
    """A receiver answering 401 is reported as rejected credentials, pointing at OTEL_EXPORTER_OTLP_HEADERS."""
    with HttpOtlpServer() as server:
        server.receiver.fail_with = lambda: 401
        result = run(script, "doctor", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=server.endpoint + "/v1/traces")
    assert result.returncode == 1
    assert "for traces: rejected the credentials (HTTP 401)" in result.stdout
    assert "fix: check the key in OTEL_EXPORTER_OTLP_HEADERS" in result.stdout


@pytest.fixture
def not_found_server():
    """A plain HTTP server on loopback that answers 404 to everything, like a web server that is not a collector."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_doctor_explains_an_endpoint_without_otlp_paths(script, not_found_server):
    """An HTTP 404 from the endpoint is a problem whose fix says to use the collector's base URL."""
    result = run(script, "doctor", OTEL_EXPORTER_OTLP_ENDPOINT=not_found_server + "/v1/traces")
    assert result.returncode == 1
    assert "answers, but not at this path (HTTP 404)" in result.stdout
    assert "fix: set OTEL_EXPORTER_OTLP_ENDPOINT to the collector's base URL (http://host:4318)" in result.stdout


def test_doctor_masks_header_values_and_shows_where_each_value_came_from(script):
    """Header values never print; the table names each set value's source and variable."""
    result = run(
        script,
        "doctor",
        "--set",
        "service_name=shop",
        OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer s3cr3t-token",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        ENVIRONMENT="staging",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "s3cr3t" not in result.stdout
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert lines["otlp_headers"] == ["authorization=****", "environment", "OTEL_EXPORTER_OTLP_HEADERS"]
    assert lines["service_name"][:2] == ["shop", "argument"]
    assert lines["environment"] == ["staging", "environment", "ENVIRONMENT"]
    assert lines["traces_sampler_arg"][:2] == ["0.1", "preset"]


def test_bad_environment_variable_is_one_line_and_exit_2(script):
    """A rejected variable prints the ConfigurationError message as one line on stderr and exits 2."""
    result = run(script, "doctor", OTEL_TRACES_SAMPLER_ARG="1.5")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "signalfire: error: OTEL_TRACES_SAMPLER_ARG='1.5' is not accepted: expected a number from 0 to 1 "
        "(the sampling ratio)"
    ]
    assert result.stdout == ""


def test_unknown_field_in_set_is_one_line_and_exit_2(script):
    """--set with a name that is not a setting says so on one line and exits 2."""
    result = run(script, "config", "--set", "servce_name=x")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "init_observability(servce_name=...) is not a setting" in result.stderr


def test_config_json_for_production_shows_preset_values_and_sources(script):
    """config --environment production --format json resolves as production would, with each value's source."""
    result = run(script, "config", "--environment", "production", "--format", "json", OTEL_SERVICE_NAME="shop")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["preset"] == "production"
    settings = document["settings"]
    assert settings["environment"] == {
        "value": "production",
        "source": "argument",
        "variable": "SIGNALFIRE_ENVIRONMENT",
    }
    assert settings["service_name"] == {"value": "shop", "source": "environment", "variable": "OTEL_SERVICE_NAME"}
    assert settings["traces_sampler_arg"]["value"] == 0.1
    assert settings["traces_sampler_arg"]["source"] == "preset"


def test_config_table_lists_every_setting(script):
    """config (table) prints one row per Settings field."""
    from signalfire import Settings

    result = run(script, "config")
    assert result.returncode == 0, result.stderr
    rows = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
    assert rows == list(Settings.model_fields)


def test_python_dash_m_signalfire_is_the_console_script():
    """python -m signalfire runs the same command line."""
    result = subprocess.run(
        [sys.executable, "-m", "signalfire", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 0
    assert result.stdout.startswith("signalfire ")


def test_doctor_passes_a_sentry_dsn_whose_host_resolves(script):
    """A DSN that parses and whose host resolves is reported ok; its key is masked in the table."""
    result = run(script, "doctor", "--set", "traces_exporter=none", SENTRY_DSN="http://publickey123@localhost:9/42")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok    Sentry: DSN parses and localhost resolves (project 42)" in result.stdout
    assert "publickey123" not in result.stdout


def test_doctor_fails_when_the_sentry_host_does_not_resolve(script):
    """A DSN whose host does not resolve (.invalid never does) is a problem with the fix."""
    result = run(script, "doctor", "--set", "traces_exporter=none", SENTRY_DSN="https://key@sentry.example.invalid/1")
    assert result.returncode == 1
    assert "FAIL  Sentry: the DSN's host sentry.example.invalid does not resolve" in result.stdout
    assert "fix: check the DSN's host name" in result.stdout


def test_doctor_checks_the_prometheus_multiprocess_directory(script, tmp_path):
    """A writable PROMETHEUS_MULTIPROC_DIR is reported ok; a missing one is rejected in one line with exit 2."""
    ok = run(script, "doctor", "--set", "traces_exporter=none", PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"ok    Prometheus: multiprocess directory {tmp_path} is writable" in ok.stdout
    missing = run(script, "doctor", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "absent"))
    assert missing.returncode == 2
    assert missing.stderr.startswith(f"signalfire: error: PROMETHEUS_MULTIPROC_DIR='{tmp_path / 'absent'}'")
    assert len(missing.stderr.strip().splitlines()) == 1
