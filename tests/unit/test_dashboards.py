"""The generated Grafana dashboards: the panels the issue lists, valid PromQL, stable ids and bytes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from signalfire._generators._alerts import dump_yaml
from signalfire._generators._dashboards import DashboardOptions, dashboard_queries, dashboards, render_dashboards
from signalfire._generators._promql import Catalog
from tests.conftest import require_binary
from tests.unit.registry import registry_instruments


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.of(registry_instruments())


@pytest.fixture(scope="module")
def boards(catalog: Catalog) -> dict[str, dict[str, Any]]:
    return dashboards(catalog.instruments)


def grafana_to_promql(expr: str, rate_interval: str = "5m") -> str:
    """What Grafana sends to Prometheus for a query: variables expanded (All selected for $job)."""
    return expr.replace("$__rate_interval", rate_interval).replace("$job", ".*")


def _titles(board: dict[str, Any]) -> list[str]:
    return [p["title"] for p in board["panels"]]


def test_four_dashboards_with_stable_uids(boards: dict[str, dict[str, Any]]) -> None:
    """API overview, business, workers and data dashboards, each file named after its uid."""
    assert list(boards) == [
        "signalfire-api-overview.json",
        "signalfire-business.json",
        "signalfire-workers.json",
        "signalfire-data.json",
    ]
    for name, board in boards.items():
        assert name == board["uid"] + ".json"


def test_api_overview_panels(boards: dict[str, dict[str, Any]]) -> None:
    """The API overview shows rate by status class, error rate, latency by route, in-flight and a route table."""
    assert _titles(boards["signalfire-api-overview.json"]) == [
        "Request rate by status class",
        "Error rate",
        "Latency by route",
        "Requests in flight",
        "Routes",
    ]


def test_error_rate_stat_has_1_and_5_percent_thresholds(boards: dict[str, dict[str, Any]]) -> None:
    """The error-rate single stat turns orange at 1% and red at 5%."""
    panel = next(p for p in boards["signalfire-api-overview.json"]["panels"] if p["title"] == "Error rate")
    assert panel["type"] == "stat"
    assert panel["fieldConfig"]["defaults"]["unit"] == "percentunit"
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["value"], s["color"]) for s in steps] == [(None, "green"), (0.01, "orange"), (0.05, "red")]


def test_route_table_has_rate_p50_p95_and_error_rate(boards: dict[str, dict[str, Any]]) -> None:
    """The per-route table merges four instant queries into columns named for what they show."""
    panel = next(p for p in boards["signalfire-api-overview.json"]["panels"] if p["title"] == "Routes")
    assert panel["type"] == "table"
    assert all(t["instant"] and t["format"] == "table" for t in panel["targets"])
    organize = next(t for t in panel["transformations"] if t["id"] == "organize")
    assert list(organize["options"]["renameByName"].values()) == ["req/s", "p50", "p95", "error rate"]


def test_business_dashboard_has_one_panel_per_business_instrument(
    catalog: Catalog, boards: dict[str, dict[str, Any]]
) -> None:
    """Every business instrument, the application's own included, gets a panel querying its prefixed name."""
    board = boards["signalfire-business.json"]
    business = catalog.business()
    assert _titles(board) == [s.name for s in business]
    for spec, panel in zip(business, board["panels"], strict=True):
        assert spec.prometheus_name in panel["targets"][0]["expr"]
    own = next(p for p in board["panels"] if p["title"] == "bookings.cancelled")
    assert "tvl_bookings_cancelled_total" in own["targets"][0]["expr"]


def test_workers_and_data_dashboards(boards: dict[str, dict[str, Any]]) -> None:
    """Workers: queue depth, job rate, failure rate, job p95. Data: query p95, pool utilisation, cache hit rate."""
    assert _titles(boards["signalfire-workers.json"]) == ["Queue depth", "Job rate", "Failure rate", "Job p95"]
    assert _titles(boards["signalfire-data.json"]) == ["Query p95", "Pool utilisation", "Cache hit rate"]


def test_every_query_is_scoped_to_the_job_variable(boards: dict[str, dict[str, Any]]) -> None:
    """Each vector selector carries job=~"$job", so the job picker filters every panel."""
    for board in boards.values():
        for expr in dashboard_queries(board):
            assert len(re.findall(r"(?<!\$)\{", expr)) == expr.count('job=~"$job"'), expr


def test_every_dashboard_query_parses(boards: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """Prometheus's own parser (promtool check rules on a recording-rule wrapper) accepts every panel query."""
    promtool = require_binary("promtool", "prometheus")
    exprs = [grafana_to_promql(e) for board in boards.values() for e in dashboard_queries(board)]
    wrapper = {
        "groups": [{"name": "dashboards", "rules": [{"record": f"q{i}", "expr": e} for i, e in enumerate(exprs)]}]
    }
    path = tmp_path / "queries.yml"
    path.write_text(dump_yaml(wrapper))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_promtool_rejects_a_broken_query(tmp_path: Path) -> None:
    """The parse check above can fail: an unbalanced query is rejected."""
    promtool = require_binary("promtool", "prometheus")
    path = tmp_path / "queries.yml"
    path.write_text(dump_yaml({"groups": [{"name": "d", "rules": [{"record": "q", "expr": "sum(rate(x[5m])"}]}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode != 0


def test_panel_ids_are_sequential_and_panels_do_not_overlap(boards: dict[str, dict[str, Any]]) -> None:
    """Ids count from 1 in panel order and no two panels share a grid cell."""
    for board in boards.values():
        panels = board["panels"]
        assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
        cells: set[tuple[int, int]] = set()
        for p in panels:
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & mine, p["title"]
            cells |= mine


def test_output_is_byte_identical_across_runs(catalog: Catalog) -> None:
    """Rendering twice gives the same bytes, so the files diff cleanly in git."""
    assert render_dashboards(catalog.instruments) == render_dashboards(list(catalog.instruments))


def test_rendered_json_is_what_grafana_imports(catalog: Catalog) -> None:
    """The rendered text is a dashboard object with datasource and job variables and a Prometheus data source."""
    text = render_dashboards(catalog.instruments)["signalfire-api-overview.json"]
    board = json.loads(text)
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource", "job"]
    assert board["panels"][0]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert board["schemaVersion"] >= 39


def test_options_change_uids_titles_and_matchers(catalog: Catalog) -> None:
    """uid and title prefixes and the fixed matchers come from DashboardOptions."""
    options = DashboardOptions(uid_prefix="shop", title_prefix="Shop", matchers='job="shop"')
    board = dashboards(catalog.instruments, options)["shop-api-overview.json"]
    assert board["title"] == "Shop / API overview"
    assert all('job="shop"' in e for e in dashboard_queries(board))


def test_missing_sdk_names_the_extra(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without grafana-foundation-sdk the error says which extra to install."""
    monkeypatch.setitem(sys.modules, "grafana_foundation_sdk.builders", None)
    with pytest.raises(ImportError, match=r'pip install "signalfire\[dashboards\]"'):
        dashboards(catalog.instruments)
