"""The command line's pieces: masking, the subcommand registry, the console-script declaration."""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path

import pytest

import signalfire
from signalfire import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("sentry_dsn", "https://abc123@o1.ingest.sentry.io/42", "https://****@o1.ingest.sentry.io/42"),
        ("otlp_endpoint", "https://user:hunter2@collector:4318", "https://****@collector:4318"),
        ("otlp_headers", {"api-key": "k", "x-team": "core"}, {"api-key": "****", "x-team": "****"}),
        ("some_api_key", "plain-value", "****"),
        ("service_name", "shop", "shop"),
        ("otlp_timeout_ms", 10_000, 10_000),
    ],
)
def test_mask_hides_credentials_and_keeps_plain_values(field, value, shown):
    """DSN keys, URL passwords, header values and secret-named fields are masked; other values print as they are."""
    assert cli.mask(field, value) == shown


def test_a_registered_command_gets_its_arguments_and_runs(capsys):
    """A Command added to the registry is parsed and run by main(), which returns its exit status."""

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--name")

    def run(args: argparse.Namespace) -> int:
        print(f"hello {args.name}")
        return 3

    extra = cli.Command("hello", "say hello", add_arguments, run)
    cli.COMMANDS.append(extra)
    try:
        assert cli.main(["hello", "--name", "you"]) == 3
    finally:
        cli.COMMANDS.remove(extra)
    assert capsys.readouterr().out == "hello you\n"


def test_pyproject_declares_the_console_script():
    """pip installs `signalfire` pointing at signalfire.cli:main."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["signalfire"] == "signalfire.cli:main"


def test_doctor_check_that_raises_is_reported_as_a_problem(capsys, monkeypatch):
    """A check that crashes becomes a FAIL line and exit 1; the other checks still run."""

    def broken(settings, timeout):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "CHECKS", (broken, cli.check_instrumentations))
    assert cli.main(["doctor", "--set", "traces_exporter=none"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  broken failed: RuntimeError('boom')" in out
    assert "integration fastapi" in out


def test_mask_applies_the_shared_scrubber_to_values_of_ordinary_fields():
    """A JWT inside a resource attribute is redacted the way the scrubber redacts it in a log line."""
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    assert cli.mask("resource_attributes", {"team": "core", "build": jwt}) == {
        "team": "core",
        "build": "[REDACTED:jwt]",
    }


def test_config_masks_keys_the_service_configured_as_sensitive(capsys, monkeypatch):
    """SIGNALFIRE_SCRUB_KEYS makes `config` mask that key too, as the running service's scrubber would."""
    monkeypatch.setenv("SIGNALFIRE_SCRUB_KEYS", "internal_ref")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=core,internal_ref=abc123")
    assert cli.main(["config", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["settings"]["resource_attributes"]["value"] == {"team": "core", "internal_ref": "****"}


def test_installed_extras_are_read_from_the_package_metadata():
    """The integrations the doctor checks are signalfire's extras, without the tooling ones."""
    extras = cli.integration_requirements()
    assert "fastapi" in extras["fastapi"]
    assert not {"test", "all", "docs"} & set(extras)


def test_a_library_without_its_instrumentation_is_a_warning_with_the_extra_to_install(monkeypatch):
    """fastapi installed but an instrumentation of its extra missing: a warning naming pip install signalfire[extra]."""
    monkeypatch.setattr(
        cli, "integration_requirements", lambda: {"fastapi": ["fastapi", "opentelemetry-instrumentation-absent"]}
    )
    [finding] = cli.check_instrumentations(signalfire.Settings.resolve(), 1.0)
    assert finding.status == "warning"
    assert "but not opentelemetry-instrumentation-absent" in finding.title
    assert finding.fix == 'pip install "signalfire[fastapi]"'


def test_an_unexpected_error_is_one_line_unless_traceback_is_asked_for(capsys, monkeypatch):
    """A bug in a command prints one line naming the exception and exits 70; --traceback re-raises it."""

    def broken(args: argparse.Namespace) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "COMMANDS", [cli.Command("broken", "fails", lambda parser: None, broken)])
    assert cli.main(["broken"]) == 70
    assert capsys.readouterr().err == "signalfire: error: unexpected RuntimeError: boom (--traceback shows where)\n"
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["--traceback", "broken"])


def test_a_sampler_that_samples_nothing_is_a_warning():
    """A ratio of 0 is legal but almost always a mistake: the doctor warns, with the fix."""
    findings = list(cli.check_exporters(signalfire.Settings.resolve(traces_sampler_arg=0.0), 1.0))
    [warning] = [f for f in findings if f.status == "warning"]
    assert "samples no trace" in warning.title
    assert warning.fix is not None


APP_MODULE = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/health/live")
def own_live():
    return {"own": True}
"""


def test_doctor_names_the_owners_it_finds_in_the_application(capsys, monkeypatch, tmp_path):
    """doctor --app module:attribute imports the app and lists who owns what, with what signalfire did: here the
    app's own /health/live, which signalfire leaves to it."""
    (tmp_path / "doctor_owned_app.py").write_text(APP_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli.main(["doctor", "--set", "traces_exporter=none", "--app", "doctor_owned_app:app"]) == 0
    out = capsys.readouterr().out
    owners = out.split("owners (who owns each signal", 1)[1].split("\nchecks", 1)[0]
    assert "routes: FastAPI's own /health/live" in owners
    assert "SIGNALFIRE_HEALTH_LIVE_PATH moves it" in owners


def test_doctor_flags_fastapi_auto_configure(capsys, monkeypatch):
    """FASTAPI_OTEL_AUTO_CONFIGURE=true is a warning in the owners list, saying what signalfire does about it."""
    monkeypatch.setenv("FASTAPI_OTEL_AUTO_CONFIGURE", "true")
    assert cli.main(["doctor", "--set", "traces_exporter=none"]) == 0
    out = capsys.readouterr().out
    assert "warn  traces: FASTAPI_OTEL_AUTO_CONFIGURE=true" in out
    assert "refused" in out


def test_doctor_reports_an_application_that_fails_to_import(capsys):
    """An --app that cannot be imported is a FAIL line and exit 1, not a traceback."""
    assert cli.main(["doctor", "--set", "traces_exporter=none", "--app", "no_such_module_here:app"]) == 1
    assert "FAIL  importing no_such_module_here:app failed" in capsys.readouterr().out
