"""Start-up imports only what the configuration uses; what it defers still works the moment it is used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from signalfire import _imports

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SIGNALFIRE_", "SENTRY_", "PYDANTIC_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["SIGNALFIRE_ENVIRONMENT"] = "production"  # JSON lines: the console renderer is development's
    env["OTEL_TRACES_EXPORTER"] = "none"
    env["SIGNALFIRE_HANDLE_SIGTERM"] = "false"
    # Another package's pydantic plugin (logfire's, where it is installed) would import its own dependencies.
    env["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_init_without_app_or_dsn_leaves_the_optional_parts_unimported() -> None:
    """No app, no DSN, JSON logs: Sentry, structlog, rich, wrapt, health and the integrations are not imported."""
    result = _run(
        """
        import sys
        import signalfire
        signalfire.init_observability()
        optional = [
            "sentry_sdk", "structlog", "structlog.dev", "rich", "wrapt", "signalfire.health", "signalfire._web._http",
            "signalfire.integrations.fastapi", "signalfire.integrations.sqlalchemy", "signalfire.integrations.redis",
            "signalfire.integrations.httpx",
        ]
        print(sorted(name for name in optional if name in sys.modules))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"  # after init's owners line


def test_settings_is_a_pydantic_settings_class_and_imports_none_of_its_optional_sources() -> None:
    """Settings is a pydantic-settings BaseSettings; init imports none of its cloud or YAML sources' libraries."""
    result = _run(
        """
        import sys
        import pydantic_settings
        import signalfire
        signalfire.init_observability()
        optional = ["boto3", "azure", "google.cloud", "yaml", "tomli", "opentelemetry.configuration", "jsonschema"]
        loaded = [name for name in optional if name in sys.modules]
        print(issubclass(signalfire.Settings, pydantic_settings.BaseSettings), loaded)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True []"  # after init's owners line


def test_the_lazy_public_names_resolve_as_attributes_and_imports() -> None:
    """signalfire.health and the instrument_* functions work as attributes, from-imports and module imports."""
    result = _run(
        """
        import signalfire
        from signalfire import health, instrument_fastapi, uninstrument_sqlalchemy
        import signalfire.health
        import signalfire.integrations.sqlalchemy as sqlalchemy_integration
        assert signalfire.health is health and health.HealthCheck
        assert signalfire.instrument_fastapi is instrument_fastapi
        assert uninstrument_sqlalchemy is sqlalchemy_integration.uninstrument_sqlalchemy
        assert set(signalfire.__all__) <= set(dir(signalfire))
        try:
            signalfire.no_such_name
        except AttributeError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "module 'signalfire' has no attribute 'no_such_name'"


def test_structlog_imported_after_init_logs_through_the_pipeline() -> None:
    """structlog, first imported after init, is configured on import: its lines are signalfire's JSON lines."""
    result = _run(
        """
        import sys
        import signalfire
        signalfire.init_observability(service_name="checkout")
        assert "structlog" not in sys.modules
        import structlog
        structlog.get_logger("orders").info("order placed", api_key="sk_live_abcdefghijklmnop")
        """
    )
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["event"] == "order placed"
    assert line["logger"] == "orders"
    assert line["service"] == "checkout"
    assert "abcdefghijklmnop" not in line["api_key"]


def test_get_logger_before_structlog_is_imported_configures_it() -> None:
    """signalfire.get_logger() imports and configures structlog itself when nothing has yet."""
    result = _run(
        """
        import signalfire
        signalfire.init_observability(service_name="checkout")
        signalfire.get_logger("payments").warning("card declined", attempt=2)
        """
    )
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert (line["event"], line["level"], line["attempt"]) == ("card declined", "warning", 2)


@pytest.fixture
def module_dir(tmp_path: Path):
    """A directory on sys.path for throw-away modules, removed (with the modules) afterwards."""
    sys.path.insert(0, str(tmp_path))
    before = set(sys.modules)
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in set(sys.modules) - before:
            if name.startswith("sf_hook_probe"):
                del sys.modules[name]


def test_a_hook_runs_after_the_first_import_of_its_module(module_dir: Path) -> None:
    """when_imported() calls the hook with the executed module, before the importer gets it."""
    (module_dir / "sf_hook_probe_a.py").write_text("VALUE = 41\n")
    seen: list[int] = []
    _imports.when_imported("sf_hook_probe_a", lambda module: seen.append(module.VALUE + 1))
    assert seen == []
    import sf_hook_probe_a  # type: ignore[import-not-found]

    assert seen == [42]
    assert type(sf_hook_probe_a.__loader__).__name__ == "SourceFileLoader"


def test_a_hook_for_a_module_already_imported_runs_at_once(module_dir: Path) -> None:
    """A module imported before the hook is registered gets the hook immediately."""
    (module_dir / "sf_hook_probe_b.py").write_text("VALUE = 1\n")
    import sf_hook_probe_b  # type: ignore[import-not-found]  # noqa: F401

    seen: list[str] = []
    _imports.when_imported("sf_hook_probe_b", lambda module: seen.append(module.__name__))
    assert seen == ["sf_hook_probe_b"]


def test_a_failing_hook_does_not_break_the_import(module_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A hook that raises is logged; the import still succeeds."""
    (module_dir / "sf_hook_probe_c.py").write_text("VALUE = 3\n")

    def broken(_module: object) -> None:
        raise RuntimeError("boom")

    _imports.when_imported("sf_hook_probe_c", broken)
    import sf_hook_probe_c  # type: ignore[import-not-found]

    assert sf_hook_probe_c.VALUE == 3
    assert "configuring sf_hook_probe_c after its import failed" in caplog.text
