"""init_observability and shutdown: idempotency, disabled mode, the handle, the global provider."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import trace

import signalfire
from signalfire import ConfigurationError


def test_second_init_with_same_settings_returns_same_handle():
    """Calling init twice with the same settings is a no-op returning the running handle."""
    first = signalfire.init_observability(service_name="a", traces_exporter="none")
    assert signalfire.init_observability(service_name="a", traces_exporter="none") is first


def test_second_init_with_different_settings_is_an_error_naming_the_difference():
    """Different settings while running fail clearly, unless replace=True."""
    signalfire.init_observability(service_name="a", traces_exporter="none")
    with pytest.raises(ConfigurationError, match=r"service_name: 'a' -> 'b'"):
        signalfire.init_observability(service_name="b", traces_exporter="none")
    replaced = signalfire.init_observability(service_name="b", traces_exporter="none", replace=True)
    assert replaced.settings.service_name == "b"


def test_reinit_after_shutdown_reaches_tracers_obtained_earlier():
    """A tracer obtained from the global provider keeps working across shutdown and a new init."""
    tracer = trace.get_tracer("third.party")
    signalfire.init_observability(traces_exporter="none")
    with tracer.start_as_current_span("first") as first:
        assert first.is_recording()
    signalfire.shutdown()
    with tracer.start_as_current_span("between") as between:
        assert not between.is_recording()
    obs = signalfire.init_observability(traces_exporter="none")
    with tracer.start_as_current_span("second") as second:
        assert second.is_recording()
        assert second.resource is obs.tracer_provider.resource


def test_shutdown_is_idempotent():
    """shutdown() can be called any number of times, before and after init."""
    assert signalfire.shutdown() is True
    obs = signalfire.init_observability(traces_exporter="none")
    assert obs.shutdown() is True
    assert obs.shutdown() is True
    assert signalfire.shutdown() is True
    assert not obs.active


def test_disabled_starts_nothing_and_decorators_are_plain_calls(monkeypatch):
    """OTEL_SDK_DISABLED=true: no providers, traced functions just run, spans are not recorded."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    obs = signalfire.init_observability()
    assert obs.tracer_provider is None
    assert obs.meter_provider is None
    assert not obs.active

    @signalfire.traced
    def work() -> int:
        return 7

    assert work() == 7
    with signalfire.span("x") as current:
        assert not current.is_recording()


def test_resource_carries_identity(telemetry):
    """The resource names the service, version, environment, a per-process instance id, host and runtime."""
    resource = telemetry.obs.tracer_provider.resource.attributes
    assert resource["service.name"] == "unknown_service:python"
    assert resource["deployment.environment.name"] == "test"
    assert len(resource["service.instance.id"]) == 36
    for key in ("host.name", "process.runtime.name", "process.runtime.version", "telemetry.sdk.version"):
        assert resource[key]


def test_production_without_endpoint_warns_once(caplog):
    """Production with no OTLP endpoint warns that traces are not exported."""
    with caplog.at_level(logging.WARNING, logger="signalfire"):
        signalfire.init_observability(environment="production")
    assert sum("traces are not exported" in r.getMessage() for r in caplog.records) == 1


def test_development_prints_span_tree(capsys):
    """In development with no endpoint, a finished trace is printed as a tree with durations."""
    obs = signalfire.init_observability()
    with signalfire.span("parent"), signalfire.span("child", **{"db.system": "sqlite"}):
        pass
    obs.force_flush()
    err = capsys.readouterr().err
    assert "parent" in err
    assert "└─ child" in err
    assert "db.system=sqlite" in err
    assert " ms" in err
