"""Settings: precedence, standard variables, presets, and the errors a bad value gets."""

from __future__ import annotations

import pytest

from signalfire import ConfigurationError, Settings, init_observability

BAD_VALUES = [
    ("OTEL_TRACES_SAMPLER_ARG", "abc", "a number from 0 to 1"),
    ("OTEL_TRACES_SAMPLER_ARG", "1.5", "a number from 0 to 1"),
    ("OTEL_TRACES_SAMPLER", "sometimes", "parentbased_traceidratio"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon", "grpc or http/protobuf"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url", "http:// or https:// URL"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "garbage-without-equals", "key=value"),
    ("OTEL_METRIC_EXPORT_INTERVAL", "-5", "greater than 0"),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "0", "greater than 0"),
    ("OTEL_TRACES_EXPORTER", "zipkin", "otlp, console, none"),
    ("OTEL_SDK_DISABLED", "maybe", "true or false"),
    ("LOG_LEVEL", "LOUD", "DEBUG"),
    ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json", "grpc or http/protobuf"),
]


@pytest.mark.parametrize(("variable", "value", "accepted"), BAD_VALUES)
def test_bad_variable_fails_init_naming_variable_value_and_accepted(monkeypatch, variable, value, accepted):
    """A bad environment variable fails init_observability() with its name, its value and what is accepted."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as info:
        init_observability()
    message = str(info.value)
    assert f"{variable}={value!r}" in message
    assert accepted in message


def test_bad_keyword_argument_is_named_as_an_argument():
    """A bad keyword override is reported as the argument, not as an environment variable."""
    with pytest.raises(ConfigurationError, match=r"init_observability\(traces_sampler_arg=2\)"):
        init_observability(traces_sampler_arg=2)


def test_unknown_keyword_argument_is_rejected():
    """A misspelt setting is an error, not silently ignored."""
    with pytest.raises(ConfigurationError, match="servce_name"):
        init_observability(servce_name="x")


def test_batch_size_larger_than_queue_is_rejected(monkeypatch):
    """OTEL_BSP_MAX_EXPORT_BATCH_SIZE above OTEL_BSP_MAX_QUEUE_SIZE names both variables."""
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "10")
    with pytest.raises(ConfigurationError, match=r"OTEL_BSP_MAX_EXPORT_BATCH_SIZE.*OTEL_BSP_MAX_QUEUE_SIZE"):
        Settings.resolve()


def test_argument_beats_environment_beats_preset(monkeypatch):
    """Keyword arguments > environment > preset > default, and sources say which applied."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("ENVIRONMENT", "production")
    settings = Settings.resolve(service_name="from-arg")
    assert settings.service_name == "from-arg"
    assert settings.traces_sampler_arg == 0.1
    assert settings.sources["service_name"] == "argument"
    assert settings.sources["environment"] == "environment"
    assert settings.sources["traces_sampler_arg"] == "preset"
    assert settings.sources["otlp_protocol"] == "default"


def test_sampler_arg_from_environment_beats_production_preset(monkeypatch):
    """OTEL_TRACES_SAMPLER_ARG overrides the production preset's 10%."""
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    assert Settings.resolve().traces_sampler_arg == 0.5


def test_development_preset_samples_everything():
    """With no environment named, the development preset samples every trace."""
    settings = Settings.resolve()
    assert settings.environment == "development"
    assert settings.traces_sampler_arg == 1.0


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"OTEL_SERVICE_VERSION": "1.2.3"}, "1.2.3"),
        ({"APP_VERSION": "2.0"}, "2.0"),
        ({"GIT_SHA": "abc123"}, "abc123"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.version=9"}, "9"),
    ],
)
def test_runbook_version_variables(monkeypatch, variables, expected):
    """OTEL_SERVICE_VERSION, APP_VERSION and GIT_SHA all give the service version."""
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    assert Settings.resolve().service_version == expected


def test_environment_aliases(monkeypatch):
    """DEPLOYMENT_ENVIRONMENT names the environment when ENVIRONMENT is unset."""
    monkeypatch.setenv("DEPLOYMENT_ENVIRONMENT", "staging")
    settings = Settings.resolve()
    assert settings.environment == "staging"
    assert settings.preset == "production"


def test_service_name_variable_beats_resource_attribute(monkeypatch):
    """OTEL_SERVICE_NAME takes precedence over service.name in OTEL_RESOURCE_ATTRIBUTES, as specified."""
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,team=core")
    assert Settings.resolve().service_name == "from-attrs"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-name")
    settings = Settings.resolve()
    assert settings.service_name == "from-name"
    assert settings.resource_attributes["team"] == "core"


@pytest.mark.parametrize(("variable", "value"), [("OTEL_SDK_DISABLED", "true"), ("OTEL_ENABLED", "false")])
def test_disable_variables(monkeypatch, variable, value):
    """OTEL_SDK_DISABLED=true and the runbooks' OTEL_ENABLED=false both disable."""
    monkeypatch.setenv(variable, value)
    assert Settings.resolve().active is False


def test_http_endpoint_gets_signal_path_and_grpc_does_not(monkeypatch):
    """The generic endpoint gets /v1/<signal> for http/protobuf; a per-signal endpoint is used as given."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:9000/custom")
    settings = Settings.resolve()
    assert settings.otlp_target("traces").endpoint == "http://collector:4318/v1/traces"
    assert settings.otlp_target("metrics").endpoint == "http://metrics:9000/custom"
    grpc = Settings.resolve(otlp_protocol="grpc")
    assert grpc.otlp_target("traces").endpoint == "http://collector:4318/"


def test_timeout_is_milliseconds_and_headers_are_decoded(monkeypatch):
    """OTEL_EXPORTER_OTLP_TIMEOUT is milliseconds (the specification), headers are percent-decoded pairs."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b,x-team=core")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "only=traces")
    settings = Settings.resolve()
    target = settings.otlp_target("traces")
    assert target.timeout_s == 2.5
    assert target.headers == {"only": "traces"}
    assert settings.otlp_target("metrics").headers == {"api-key": "a b", "x-team": "core"}


def test_exporters_default_by_endpoint_and_environment(monkeypatch):
    """Without an endpoint: the console tree in development, nothing in production; with one: otlp."""
    assert Settings.resolve().exporters("traces") == ("console",)
    assert Settings.resolve(environment="production").exporters("traces") == ()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert Settings.resolve(environment="production").exporters("traces") == ("otlp",)
    assert Settings.resolve(traces_exporter="none").exporters("traces") == ()


def test_explicit_otlp_without_endpoint_uses_specified_default():
    """OTEL_TRACES_EXPORTER=otlp with no endpoint uses localhost:4318 (http/protobuf), as specified."""
    target = Settings.resolve(traces_exporter="otlp").otlp_target("traces")
    assert target is not None
    assert target.endpoint == "http://localhost:4318/v1/traces"


def test_logs_are_exported_over_otlp_only_when_asked(monkeypatch):
    """A generic endpoint exports traces and metrics; logs need OTEL_LOGS_EXPORTER=otlp or their own endpoint."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert Settings.resolve().exporters("logs") == ()
    assert Settings.resolve(logs_exporter="otlp").exporters("logs") == ("otlp",)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://loki-gateway:4318/v1/logs")
    assert Settings.resolve().exporters("logs") == ("otlp",)


# --- the environment source: which variables are read, and how ----------------------------------------------------
EXACT_MESSAGES = [
    ({"OTEL_BSP_MAX_QUEUE_SIZE": "lots"}, "OTEL_BSP_MAX_QUEUE_SIZE='lots' is not accepted: expected a whole number"),
    ({"SIGNALFIRE_ACCESS_LOG": "perhaps"}, "SIGNALFIRE_ACCESS_LOG='perhaps' is not accepted: expected true or false"),
    (
        {"otel_traces_sampler_arg": "1.5"},
        "otel_traces_sampler_arg='1.5' is not accepted: expected a number from 0 to 1 (the sampling ratio)",
    ),
    (
        {"OTEL_EXPORTER_PROMETHEUS_PORT": "99999"},
        "OTEL_EXPORTER_PROMETHEUS_PORT='99999' is not accepted: expected a TCP port from 0 to 65535 (0 picks a free "
        "one)",
    ),
    (
        {"OTEL_TRACES_EXPORTER": '["otlp"]'},
        "OTEL_TRACES_EXPORTER='[\"otlp\"]' is not accepted: expected a comma-separated list of otlp, console, none",
    ),
]


@pytest.mark.parametrize(("variables", "line"), EXACT_MESSAGES)
def test_rejected_variable_message_is_exact(monkeypatch, variables, line):
    """A rejected variable gets one line naming it as it is spelt in the environment, its value and what is accepted."""
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError) as info:
        Settings.resolve()
    assert str(info.value).startswith("invalid signalfire configuration:\n  " + line)


def test_rejected_arguments_are_each_named_on_their_own_line():
    """Two bad keyword arguments give two lines, each naming the argument and its value."""
    with pytest.raises(ConfigurationError) as info:
        Settings.resolve(otlp_timeout_ms="soon", access_log="x")
    assert str(info.value) == (
        "invalid signalfire configuration:\n"
        "  init_observability(otlp_timeout_ms='soon') is not accepted: expected a whole number greater than 0\n"
        "  init_observability(access_log='x') is not accepted: expected true or false"
    )


def test_variable_names_are_matched_case_insensitively(monkeypatch):
    """A lower-case spelling of a variable is read and reported as coming from the environment."""
    monkeypatch.setenv("otel_service_name", "checkout")
    settings = Settings.resolve()
    assert settings.service_name == "checkout"
    assert settings.sources["service_name"] == "environment"


def test_first_set_variable_wins_and_an_empty_one_is_unset(monkeypatch):
    """An empty variable counts as unset, so the field's next variable gives the value."""
    monkeypatch.setenv("SIGNALFIRE_SERVICE_VERSION", "")
    monkeypatch.setenv("APP_VERSION", "2.0")
    monkeypatch.setenv("GIT_SHA", "abc123")
    settings = Settings.resolve()
    assert settings.service_version == "2.0"
    assert settings.sources["service_version"] == "environment"


def test_a_field_name_alone_is_not_a_variable(monkeypatch):
    """Only the documented variables configure: ENABLED or SERVICE_NAME, set by other tools, change nothing."""
    monkeypatch.setenv("ENABLED", "false")
    monkeypatch.setenv("SERVICE_NAME", "someone-else")
    settings = Settings.resolve()
    assert settings.active is True
    assert settings.service_name == "unknown_service:python"


def test_keyword_only_hook_set_in_the_environment_is_rejected(monkeypatch):
    """sentry_before_send takes a function: the same name in the environment is refused, not silently ignored."""
    monkeypatch.setenv("SENTRY_BEFORE_SEND", "myapp.hooks.before_send")
    with pytest.raises(ConfigurationError, match=r"SENTRY_BEFORE_SEND='myapp.hooks.before_send' is not accepted"):
        Settings.resolve()


def test_settings_constructor_takes_names_or_variables_and_reads_the_environment(monkeypatch):
    """Settings() itself reads the environment; a keyword (field or variable name, any case) beats it."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.3")
    assert Settings().service_name == "from-env"
    assert Settings(service_name="a").service_name == "a"
    assert Settings(OTEL_SERVICE_NAME="b").service_name == "b"
    assert Settings(otel_service_name="c").traces_sampler_arg == 0.3
