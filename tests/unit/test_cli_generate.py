"""`signalfire dashboards` and `signalfire alerts`: files from the registry, options honoured, errors in one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from signalfire import cli, metrics


@pytest.fixture
def restore_registry() -> Iterator[None]:
    """Instruments a test declares on the global registry are gone after it (the registry has no undeclare)."""
    before = dict(metrics._instruments)
    yield
    metrics._instruments.clear()
    metrics._instruments.update(before)


def test_dashboards_writes_four_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`signalfire dashboards --out DIR` writes one JSON file per dashboard and prints each path."""
    assert cli.main(["dashboards", "--out", str(tmp_path / "grafana")]) == 0
    names = ["signalfire-api-overview.json", "signalfire-business.json", "signalfire-workers.json"]
    names.append("signalfire-data.json")
    assert sorted(p.name for p in (tmp_path / "grafana").iterdir()) == sorted(names)
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / "grafana" / n) for n in names]
    board = json.loads((tmp_path / "grafana" / "signalfire-api-overview.json").read_text())
    assert board["uid"] == "signalfire-api-overview"


def test_dashboards_prefix_names_business_metrics_as_exposed(tmp_path: Path) -> None:
    """--prefix puts the namespace on every business instrument's queries."""
    assert cli.main(["dashboards", "--out", str(tmp_path), "--prefix", "shop"]) == 0
    text = (tmp_path / "signalfire-business.json").read_text()
    assert "shop_payments_processed_total" in text
    assert "shop_jobs_processed_total" in (tmp_path / "signalfire-workers.json").read_text()


def test_dashboards_prefix_defaults_to_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --prefix, SIGNALFIRE_METRICS_PREFIX names the business instruments, as the service exposes them."""
    monkeypatch.setenv("SIGNALFIRE_METRICS_PREFIX", "tvl")
    assert cli.main(["dashboards", "--out", str(tmp_path)]) == 0
    assert "tvl_payments_processed_total" in (tmp_path / "signalfire-business.json").read_text()


def test_alerts_to_stdout_with_options(capsys: pytest.CaptureFixture[str]) -> None:
    """`signalfire alerts` prints the rule file; --error-rate-threshold and --error-rate-for change HighErrorRate."""
    assert cli.main(["alerts", "--error-rate-threshold", "0.02", "--error-rate-for", "10m"]) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    rule = next(r for g in document["groups"] for r in g["rules"] if r.get("alert") == "HighErrorRate")
    assert rule["expr"].endswith("> 0.02")
    assert rule["for"] == "10m"


def test_alerts_group_by_and_matchers(tmp_path: Path) -> None:
    """--group-by and --matchers reach every alert expression."""
    out = tmp_path / "rules.yml"
    assert cli.main(["alerts", "--out", str(out), "--group-by", "job,namespace", "--matchers", 'env="prod"']) == 0
    rule = next(
        r for g in yaml.safe_load(out.read_text())["groups"] for r in g["rules"] if r.get("alert") == "HighErrorRate"
    )
    assert "sum by (job, namespace)" in rule["expr"]
    assert 'env="prod"' in rule["expr"]


def test_alerts_bad_duration_is_one_line_naming_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed duration exits with 2 and one line naming the option, the value and what is accepted."""
    assert cli.main(["alerts", "--error-rate-for", "5 minutes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "signalfire: error: --error-rate-for='5 minutes' is not accepted: expected a Prometheus duration such as 30s, "
        "5m or 1h"
    ]


@pytest.mark.usefixtures("restore_registry")
def test_import_includes_the_application_instruments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--import MODULE runs the module's metrics.declare() first, so its instrument gets a business panel."""
    (tmp_path / "shop_telemetry_cli_test.py").write_text(
        "from signalfire import metrics\n"
        "metrics.declare('refunds.issued', 'counter', unit='{refund}', description='Refunds.', labels=('reason',))\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli.main(["dashboards", "--out", "out", "--import", "shop_telemetry_cli_test"]) == 0
    assert "refunds_issued_total" in (tmp_path / "out" / "signalfire-business.json").read_text()


def test_import_failure_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A module that cannot be imported is reported in one line with exit status 2."""
    assert cli.main(["alerts", "--import", "no_such_module_here"]) == 2
    assert capsys.readouterr().err.strip() == (
        "signalfire: error: --import 'no_such_module_here' failed: ModuleNotFoundError: "
        "No module named 'no_such_module_here'"
    )


@pytest.mark.parametrize("command", ["dashboards", "alerts"])
def test_help_lists_every_option(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` prints the options with their defaults and exits 0."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--out" in out
    if command == "alerts":
        assert "--error-rate-threshold NUMBER" in out
        assert "(0.05 = 5%) (default: 0.05)" in out
