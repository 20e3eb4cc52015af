"""OTEL_CONFIG_FILE: OpenTelemetry's declarative configuration mapped onto Settings, and its precedence."""

from __future__ import annotations

import importlib.util
import json
import os
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signalfire import ConfigurationError, Settings
from signalfire._settings import config_file_report

if importlib.util.find_spec("opentelemetry.configuration") is None:  # pragma: no cover - the [config] extra
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail('opentelemetry-configuration is missing: pip install "signalfire[config]"', pytrace=False)
    pytest.skip(
        'opentelemetry-configuration is not installed: pip install "signalfire[config]"', allow_module_level=True
    )

FILE = """
file_format: "1.0"
resource:
  attributes:
    - name: service.name
      value: from-file
    - name: deployment.environment.name
      value: staging
tracer_provider:
  processors:
    - batch:
        schedule_delay: 200
        exporter:
          otlp_grpc:
            endpoint: http://collector:4317
            headers:
              - name: api-key
                value: ${API_KEY}
  sampler:
    parent_based:
      root:
        trace_id_ratio_based:
          ratio: 0.25
meter_provider:
  readers:
    - periodic:
        interval: 15000
        exporter:
          console:
propagator:
  composite:
    - tracecontext:
distribution:
  signalfire:
    log_format: json
    SIGNALFIRE_ACCESS_LOG: false
"""


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    def write(text: str = FILE, name: str = "otel.yaml") -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        monkeypatch.setenv("OTEL_CONFIG_FILE", str(path))
        return str(path)

    return write


def test_the_file_configures_exporters_sampler_batching_resource_and_own_settings(config_file, monkeypatch):
    """Every section the file has becomes the matching setting; ${VAR} is substituted from the environment."""
    config_file()
    monkeypatch.setenv("API_KEY", "secret")
    settings = Settings.resolve()
    target = settings.otlp_target("traces")
    assert (target.endpoint, target.protocol, dict(target.headers)) == (
        "http://collector:4317",
        "grpc",
        {"api-key": "secret"},
    )
    assert (settings.traces_sampler, settings.traces_sampler_arg) == ("parentbased_traceidratio", 0.25)
    assert settings.bsp_schedule_delay_ms == 200
    assert settings.exporters("metrics") == ("console",)
    assert settings.metric_export_interval_ms == 15000
    assert (settings.service_name, settings.environment, settings.preset) == ("from-file", "staging", "production")
    assert (settings.log_format, settings.access_log) == ("json", False)
    assert settings.sources["traces_sampler_arg"] == "config file"


def test_the_file_replaces_the_sdk_variables_but_not_arguments(config_file, monkeypatch):
    """With the file in charge OTEL_* SDK variables are ignored (and listed); keyword arguments still win."""
    path = config_file()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://elsewhere:4318")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "1.0")
    monkeypatch.setenv("SIGNALFIRE_METRICS_PREFIX", "shop")  # not the SDK's: still read
    settings = Settings.resolve(traces_sampler_arg=0.5)
    assert settings.traces_sampler_arg == 0.5
    assert settings.sources["traces_sampler_arg"] == "argument"
    assert settings.otlp_endpoint is None
    assert settings.metrics_prefix == "shop"
    report = config_file_report(settings)
    assert report[0].startswith(f"OTEL_CONFIG_FILE={path} is in charge: it sets ")
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in report[1]
    assert "OTEL_TRACES_SAMPLER_ARG" in report[1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'file_format: "1.0"\nmeter_provider:\n  readers:\n    - periodic: {exporter: {console: {}}}\n'
            "  views:\n    - selector: {instrument_name: x}\n"
            "      stream: {name: y}\n",
            "meter_provider.views is not supported",
        ),
        (
            'file_format: "1.0"\ntracer_provider:\n  processors:\n    - batch:\n        exporter:\n'
            "          otlp_file/development: {}\n",
            "tracer_provider.processors[0].batch.exporter is not supported",
        ),
        ('file_format: "1.0"\ndistribution:\n  signalfire:\n    servce_name: x\n', "servce_name is not a setting"),
        (
            'file_format: "1.0"\ndistribution:\n  signalfire:\n    traces_sampler_arg: 3\n',
            "traces_sampler_arg=3 from OTEL_CONFIG_FILE=",
        ),
        ("file_format: [not, a, string]\n", "is not accepted"),
        ("just text\n", "is not accepted"),
    ],
)
def test_what_the_file_cannot_say_is_refused_by_name(config_file, text, message):
    """Unsupported sections, unknown own settings and bad values fail init naming the file and the part."""
    config_file(text)
    with pytest.raises(ConfigurationError, match="OTEL_CONFIG_FILE") as info:
        Settings.resolve()
    assert message in str(info.value)


def test_a_missing_file_is_an_error(monkeypatch, tmp_path):
    """OTEL_CONFIG_FILE naming a file that does not exist fails init with the path."""
    monkeypatch.setenv("OTEL_CONFIG_FILE", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigurationError, match=r"nope\.yaml"):
        Settings.resolve()


def test_without_the_file_nothing_changes():
    """No OTEL_CONFIG_FILE: no report lines, nothing from a file."""
    settings = Settings.resolve()
    assert config_file_report(settings) == []
    assert "config file" not in settings.sources.values()


def test_the_files_propagators_become_the_global_propagator(config_file):
    """propagator.composite (which no setting carries) is applied at init through the package's public factory."""
    from opentelemetry.propagate import get_global_textmap, set_global_textmap

    from signalfire._settings import apply_config_file

    config_file('file_format: "1.0"\npropagator:\n  composite:\n    - baggage:\n')
    previous = get_global_textmap()
    try:
        apply_config_file(Settings.resolve())
        assert get_global_textmap().fields == {"baggage"}
    finally:
        set_global_textmap(previous)


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(sorted(Settings.model_fields)), value=yaml_values)
def test_any_value_under_distribution_signalfire_parses_or_names_the_setting(tmp_path, key, value):
    """Whatever a file puts under distribution.signalfire, resolving succeeds or names the setting and the file."""
    path = tmp_path / "otel.json"  # JSON: every generated value is representable
    path.write_text(json.dumps({"file_format": "1.0", "distribution": {"signalfire": {key: value}}}))
    os.environ["OTEL_CONFIG_FILE"] = str(path)
    message = ""
    try:
        Settings.resolve()
    except ConfigurationError as error:
        message = str(error)
    finally:
        del os.environ["OTEL_CONFIG_FILE"]
    assert not message or "OTEL_CONFIG_FILE" in message or key in message
