"""Settings as a pydantic-settings BaseSettings: .env files, secrets directories, nesting, where values came from."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

import signalfire
from signalfire import ConfigurationError, Settings
from signalfire._settings import environment_origin, unnamed_environment_notice


def test_a_dotenv_file_configures_and_its_other_variables_are_left_alone(tmp_path):
    """A .env file sets signalfire's variables; the application's own entries in it are not an error."""
    env_file = tmp_path / ".env"
    env_file.write_text(
        "OTEL_SERVICE_NAME=from-dotenv\nDATABASE_URL=postgresql://db/app\nSIGNALFIRE_ACCESS_LOG=false\n"
    )
    settings = Settings(_env_file=env_file)
    assert settings.service_name == "from-dotenv"
    assert settings.access_log is False
    assert settings.sources["service_name"] == "env file"


def test_the_environment_beats_a_dotenv_file(tmp_path, monkeypatch):
    """A variable in the process environment wins over the same variable in the .env file."""
    env_file = tmp_path / ".env"
    env_file.write_text("OTEL_SERVICE_NAME=from-dotenv\n")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    settings = Settings(_env_file=env_file)
    assert settings.service_name == "from-env"
    assert settings.sources["service_name"] == "environment"


def test_a_bad_value_in_a_dotenv_file_names_the_variable_and_the_file(tmp_path):
    """A rejected .env entry is reported with its variable, its value and where it came from."""
    env_file = tmp_path / ".env"
    env_file.write_text("OTEL_TRACES_SAMPLER_ARG=2\n")
    with pytest.raises(ConfigurationError) as info:
        Settings(_env_file=env_file)
    assert "OTEL_TRACES_SAMPLER_ARG='2' from a .env file is not accepted: expected a number from 0 to 1" in str(
        info.value
    )


def test_a_secrets_directory_gives_secret_values(tmp_path):
    """A file named after a variable in the secrets directory sets it (Docker and Kubernetes secrets)."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "SENTRY_DSN").write_text("https://public@o0.ingest.sentry.io/42")
    (secrets / "unrelated_secret").write_text("not ours")
    settings = Settings(_secrets_dir=secrets)
    assert settings.sentry_dsn == "https://public@o0.ingest.sentry.io/42"
    assert settings.sources["sentry_dsn"] == "secrets dir"


def test_a_subclass_sets_its_own_env_file(tmp_path, monkeypatch):
    """An application subclasses Settings with its own model_config (env_file) and passes it to init."""
    (tmp_path / "prod.env").write_text("SIGNALFIRE_ENVIRONMENT=production\n")

    class MySettings(Settings):
        model_config = SettingsConfigDict(env_file=tmp_path / "prod.env")

    obs = signalfire.init_observability(settings=MySettings())
    assert obs.settings.environment == "production"
    assert obs.settings.traces_sampler_arg == 0.1


def test_nested_in_an_application_settings_class(monkeypatch):
    """Settings as a field of the application's own BaseSettings reads signalfire's variables and nested ones."""

    class AppSettings(BaseSettings):
        model_config = SettingsConfigDict(env_nested_delimiter="__")
        database_url: str = "sqlite://"
        observability: Settings = Field(default_factory=Settings)

    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
    monkeypatch.setenv("OBSERVABILITY__SERVICE_VERSION", "1.2.3")
    app_settings = AppSettings()
    assert app_settings.observability.service_name == "checkout"
    assert app_settings.observability.service_version == "1.2.3"
    obs = signalfire.init_observability(settings=app_settings.observability)
    assert obs.settings.service_name == "checkout"


def test_settings_and_keyword_overrides_together_are_refused():
    """init_observability(settings=..., service_name=...) is ambiguous and says so."""
    with pytest.raises(ConfigurationError, match=r"settings=.*service_name"):
        signalfire.init_observability(settings=Settings(), service_name="x")


# --- the deployment environment is never guessed silently -------------------------------------------------------
@pytest.mark.parametrize(
    ("variable", "value", "origin"),
    [
        ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging", "deployment.environment.name in "),
        ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging", "deployment.environment in "),
        ("SENTRY_ENVIRONMENT", "staging", "SENTRY_ENVIRONMENT"),
        ("ENVIRONMENT", "staging", "ENVIRONMENT"),
    ],
)
def test_the_environment_is_read_from_the_standard_places(monkeypatch, variable, value, origin):
    """deployment.environment[.name] in OTEL_RESOURCE_ATTRIBUTES and SENTRY_ENVIRONMENT name the environment too."""
    monkeypatch.setenv(variable, value)
    settings = Settings.resolve()
    assert settings.environment == "staging"
    assert settings.preset == "production"
    assert environment_origin(settings).startswith(origin)
    assert unnamed_environment_notice(settings) is None


def test_an_unnamed_environment_is_said_once_at_start_up(caplog):
    """With no environment variable, init logs one warning naming the preset and how to choose."""
    with caplog.at_level(logging.WARNING, logger="signalfire"):
        signalfire.init_observability()
    notices = [r.getMessage() for r in caplog.records if "no deployment environment is set" in r.getMessage()]
    assert len(notices) == 1
    assert "development preset" in notices[0]
    assert "ENVIRONMENT=production" in notices[0]


def test_a_named_environment_logs_no_notice(caplog, monkeypatch):
    """ENVIRONMENT set: no start-up notice."""
    monkeypatch.setenv("ENVIRONMENT", "production")
    with caplog.at_level(logging.WARNING, logger="signalfire"):
        signalfire.init_observability()
    assert not [r for r in caplog.records if "no deployment environment" in r.getMessage()]


def test_doctor_flags_an_unnamed_environment_and_config_says_where_it_came_from(capsys, monkeypatch):
    """`signalfire doctor` warns when nothing names the environment; `signalfire config` names the variable that did."""
    from signalfire import cli

    cli.main(["doctor", "--timeout", "0.1"])
    doctor = capsys.readouterr().out
    assert "no variable names it: the default" in doctor
    assert "warn  no deployment environment is set, so the development preset runs" in doctor
    monkeypatch.setenv("SENTRY_ENVIRONMENT", "staging")
    cli.main(["config", "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert (document["environment"], document["environment_from"], document["preset"]) == (
        "staging",
        "SENTRY_ENVIRONMENT",
        "production",
    )
