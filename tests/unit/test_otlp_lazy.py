"""OTLP exporters are built at their first export: init imports no transport; a failed build is counted as dropped."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import Counter, Histogram, ObservableCounter, UpDownCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from signalfire import ConfigurationError, Settings, init_observability
from signalfire._export import _drops, _otlp
from signalfire._settings import OtlpTarget
from tests.receivers import free_port

ROOT = Path(__file__).resolve().parents[2]
TRANSPORT = [
    "requests",
    "urllib3",
    "grpc",
    "google.protobuf",
    "opentelemetry.proto",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "signalfire._export._otlp_spans",
    "urllib.request",  # and http.client, email: asked only where a proxy may be configured (_otlp.address)
    "prometheus_client",  # OTEL_METRICS_EXPORTER=otlp: no /metrics endpoint
]


def _run(code: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "SIGNALFIRE_", "SENTRY_", "PYDANTIC_")) and not k.lower().endswith("_proxy")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["SIGNALFIRE_ENVIRONMENT"] = "production"
    env["SIGNALFIRE_HANDLE_SIGTERM"] = "false"
    env["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_init_with_an_otlp_endpoint_imports_no_transport(protocol: str) -> None:
    """With traces, metrics and logs going to OTLP (and no Prometheus, which needs urllib.request), init imports
    neither requests/urllib3, grpc nor protobuf; nor does a shutdown that gives up on a collector refusing
    connections."""
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens: the exit path gives up at once
    result = _run(
        f"""
        import sys
        import signalfire
        transport = {TRANSPORT!r}
        signalfire.init_observability()
        print(sorted(name for name in transport if name in sys.modules))
        signalfire.shutdown(timeout=5)
        print(sorted(name for name in transport if name in sys.modules))
        """,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=endpoint + ("" if protocol == "grpc" else "/v1/logs"),
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
    )
    assert result.returncode == 0, result.stderr
    printed = [line for line in result.stdout.splitlines() if not line.startswith("{")]  # not init's owners line
    assert printed == ["[]", "[]"], result.stderr


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="there getproxies() also asks the system")
def test_without_proxy_variables_the_probe_address_is_the_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """No *_proxy variable: urllib finds no proxy either, and the endpoint itself is probed."""
    import urllib.request

    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    assert urllib.request.getproxies() == {}
    assert _otlp.address("http://collector:4318/v1/traces", "http/protobuf") == ("collector", 4318)
    monkeypatch.setenv("No_Proxy", "collector")  # any spelling of a proxy variable takes urllib's path
    assert _otlp.address("http://collector:4318/v1/traces", "http/protobuf") == ("collector", 4318)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    assert _otlp.address("http://elsewhere:4318/v1/traces", "http/protobuf") is None


def _target(protocol: str = "http/protobuf") -> OtlpTarget:
    target = Settings(otlp_endpoint="http://127.0.0.1:4318", otlp_protocol=protocol).otlp_target("traces")
    assert target is not None
    return target


class _Recorder:
    """A span exporter that records what it is given (what the SDK's exporter would send)."""

    def __init__(self) -> None:
        self.batches: list[Sequence[ReadableSpan]] = []
        self.scrubbers: list[tuple[Any, ...]] = []
        self.shut = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches.append(spans)
        return SpanExportResult.SUCCESS

    def scrub_with(self, *args: Any) -> None:
        self.scrubbers.append(args)

    def shutdown(self) -> None:
        self.shut = True

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def test_the_first_export_builds_the_exporter_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is built until the first export; every export after it goes to the same exporter, which got the
    scrubber handed over at init."""
    built: list[_Recorder] = []

    def build(signal: str, target: OtlpTarget, **extra: Any) -> _Recorder:
        built.append(_Recorder())
        return built[-1]

    monkeypatch.setattr(_otlp, "build_exporter", build)
    lazy = _otlp.otlp_exporter("traces", _target())
    lazy.scrub_with("policy", "sink")
    assert built == []
    assert lazy.built is None
    assert lazy.force_flush() is True
    assert lazy.export([]) is SpanExportResult.SUCCESS
    assert lazy.export([]) is SpanExportResult.SUCCESS
    assert len(built) == 1
    assert lazy.built is built[0]
    assert built[0].batches == [[], []]
    assert built[0].scrubbers == [("policy", "sink")]
    lazy.shutdown()
    assert built[0].shut


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # Python 3.12+: on purpose
def test_a_child_forked_while_the_parent_builds_its_exporter_builds_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """gunicorn --preload: the master's export thread may be building (holding the exporter's lock) when a worker
    forks; the worker's first export must not wait for a thread that does not exist in it."""
    building, release = threading.Event(), threading.Event()
    parent = os.getpid()

    def build(signal: str, target: OtlpTarget, **extra: Any) -> _Recorder:
        if os.getpid() == parent:  # the parent's build stays in progress until the child has answered
            building.set()
            release.wait(30)
        return _Recorder()

    monkeypatch.setattr(_otlp, "build_exporter", build)
    lazy = _otlp.otlp_exporter("traces", _target())
    parent_export = threading.Thread(target=lazy.export, args=([],))
    parent_export.start()
    assert building.wait(30)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one export with the parent's build still "in progress", then leave at once
        try:
            done = threading.Thread(target=lambda: os.write(write_end, str(lazy.export([]).name).encode()), daemon=True)
            done.start()
            done.join(20)
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        with os.fdopen(read_end) as pipe:
            answer = pipe.read()
    finally:
        os.waitpid(pid, 0)
        release.set()
        parent_export.join(30)
    assert answer == "SUCCESS"
    assert lazy.built is not None


def test_a_shutdown_before_the_first_export_builds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exporter shut down (or abandoned at exit) before it exported is never built; later batches fail."""
    monkeypatch.setattr(_otlp, "build_exporter", lambda *a, **k: pytest.fail("built"))
    lazy = _otlp.otlp_exporter("traces", _target())
    lazy.shutdown()
    assert lazy.export([]) is SpanExportResult.FAILURE
    assert lazy.built is None


def test_a_build_that_fails_is_counted_as_dropped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An exporter that cannot be built fails every batch, which the counting wrapper counts as dropped; the build is
    tried once and said once, and nothing raises."""
    attempts: list[str] = []

    def broken(signal: str, target: OtlpTarget, **extra: Any) -> Any:
        attempts.append(signal)
        raise OSError("no certificate at /etc/otel/ca.pem")

    monkeypatch.setattr(_otlp, "build_exporter", broken)
    counted: list[tuple[str, str, int]] = []
    _drops.set_sink(lambda signal, reason, count: counted.append((signal, reason, count)))
    try:
        counting = _drops.CountingSpanExporter(_otlp.otlp_exporter("traces", _target()))
        with caplog.at_level(logging.WARNING, logger="signalfire"):
            spans = [ReadableSpan(name="a"), ReadableSpan(name="b")]
            assert counting.export(spans) is SpanExportResult.FAILURE
            assert counting.export(spans[:1]) is SpanExportResult.FAILURE
    finally:
        _drops.set_sink(None)
    assert attempts == ["traces"]
    assert counted == [("traces", "export_failed", 2), ("traces", "export_failed", 1)]
    warnings = [r for r in caplog.records if "building the OTLP traces exporter" in r.getMessage()]
    assert len(warnings) == 1
    assert "no certificate at /etc/otel/ca.pem" in caplog.text


def test_a_missing_exporter_package_is_an_error_at_init(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the gRPC exporter installed, OTLP over gRPC fails at init, naming what to install."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "grpc" else real(name, *a))
    with pytest.raises(ImportError, match="pip install opentelemetry-exporter-otlp-proto-grpc"):
        _otlp.otlp_exporter("traces", _target("grpc"))


@pytest.mark.parametrize("preference", ["cumulative", "delta", "lowmemory", "Delta "])
@pytest.mark.parametrize("aggregation", ["explicit_bucket_histogram", "base2_exponential_bucket_histogram"])
def test_metric_preferences_are_the_sdk_exporters_own(
    monkeypatch: pytest.MonkeyPatch, preference: str, aggregation: str
) -> None:
    """The temporality and aggregation signalfire passes are those the SDK's OTLP metric exporter derives from the
    same variables (so that its reader can be built before the exporter is)."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", preference)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", aggregation)
    sdk = OTLPMetricExporter(endpoint="http://127.0.0.1:4318/v1/metrics")
    settings = Settings()
    ours = _otlp.metric_preferences(
        settings.otlp_metrics_temporality_preference, settings.otlp_metrics_default_histogram_aggregation
    )
    assert ours["preferred_temporality"] == sdk._preferred_temporality
    assert {k: type(v) for k, v in ours["preferred_aggregation"].items()} == {
        k: type(v) for k, v in sdk._preferred_aggregation.items()
    }
    sdk.shutdown()


def test_the_lazy_metric_exporter_has_its_preferences_before_it_is_built() -> None:
    """A periodic reader reads temporality and aggregation from its exporter when it is built: they are there."""
    settings = Settings(
        otlp_endpoint="http://127.0.0.1:4318",
        otlp_metrics_temporality_preference="delta",
        otlp_metrics_default_histogram_aggregation="base2_exponential_bucket_histogram",
    )
    target = settings.otlp_target("metrics")
    assert target is not None
    preferences = _otlp.metric_preferences(
        settings.otlp_metrics_temporality_preference, settings.otlp_metrics_default_histogram_aggregation
    )
    lazy = _otlp.otlp_exporter("metrics", target, **preferences)
    assert lazy.built is None
    delta, cumulative = AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE
    assert lazy._preferred_temporality[Counter] is delta
    assert lazy._preferred_temporality[Histogram] is delta
    assert lazy._preferred_temporality[ObservableCounter] is delta
    assert lazy._preferred_temporality[UpDownCounter] is cumulative
    assert isinstance(lazy._preferred_aggregation[Histogram], ExponentialBucketHistogramAggregation)
    lazy.shutdown()


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sometimes", "cumulative or delta or lowmemory"),
        ("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "buckets", "explicit_bucket_histogram"),
    ],
)
def test_a_bad_metric_preference_fails_init_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, accepted: str
) -> None:
    """The metric exporter's variables are checked at init, where the SDK would warn at export and fall back."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as info:
        init_observability()
    assert f"{variable}={value!r}" in str(info.value)
    assert accepted in str(info.value)
