"""OTEL_CONFIG_FILE end to end: spans go where the file says, not where the OTEL_* variables point."""

from __future__ import annotations

import importlib.util
import os

import pytest

import signalfire
from tests.receivers import GrpcOtlpServer, HttpOtlpServer

if importlib.util.find_spec("opentelemetry.configuration") is None:  # pragma: no cover - the [config] extra
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail('opentelemetry-configuration is missing: pip install "signalfire[config]"', pytrace=False)
    pytest.skip(
        'opentelemetry-configuration is not installed: pip install "signalfire[config]"', allow_module_level=True
    )


@pytest.mark.parametrize("kind", ["otlp_http", "otlp_grpc"])
def test_spans_go_to_the_receiver_the_file_names(tmp_path, monkeypatch, kind):
    """The file's exporter, sampler and resource are used; OTEL_EXPORTER_OTLP_ENDPOINT (another receiver) is not."""
    server = GrpcOtlpServer() if kind == "otlp_grpc" else HttpOtlpServer()
    decoy = HttpOtlpServer()
    with server, decoy:
        endpoint = server.endpoint if kind == "otlp_grpc" else f"{server.endpoint}/v1/traces"
        path = tmp_path / "otel.yaml"
        path.write_text(
            f"""
file_format: "1.0"
resource:
  attributes:
    - {{name: service.name, value: from-the-file}}
    - {{name: deployment.environment.name, value: production}}
tracer_provider:
  processors:
    - batch:
        exporter:
          {kind}:
            endpoint: {endpoint}
            headers:
              - {{name: x-tenant, value: "${{TENANT}}"}}
  sampler:
    always_on:
"""
        )
        monkeypatch.setenv("OTEL_CONFIG_FILE", str(path))
        monkeypatch.setenv("TENANT", "acme")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", decoy.endpoint)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "from-the-environment")
        signalfire.init_observability()
        with signalfire.span("configured by file"):
            pass
        signalfire.shutdown()
        assert server.receiver.wait_for(lambda r: bool(r.spans()))
        resource, span = server.receiver.spans()[0]
        assert span.name == "configured by file"
        assert resource["service.name"] == "from-the-file"
        assert resource["deployment.environment.name"] == "production"
        assert server.receiver.of("traces")[0].headers["x-tenant"] == "acme"
        assert decoy.receiver.exports == []
