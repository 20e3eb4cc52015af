"""A real Prometheus scrapes a signalfire service under uvicorn with the generated rules loaded: every dashboard query
returns data, every rule evaluates cleanly, and the error-rate alert fires when the service starts failing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import signalfire
from signalfire import metrics
from signalfire._generators._alerts import AlertOptions, render_alert_rules
from signalfire._generators._dashboards import dashboard_queries, dashboards
from signalfire._metrics import Metrics
from tests.conftest import require_binary
from tests.prometheus_server import PrometheusServer
from tests.support import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

fastapi = pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

PREFIX = "shop"
JOB = "signalfire-demo"
# Short windows so the alert can fire within seconds against a 1 s scrape; the rule is otherwise the generated one.
OPTIONS = AlertOptions(error_rate_window="5s", error_rate_for="2s")
# What Grafana sends for $__rate_interval with a 1 s scrape is at least 4 scrapes; a little more absorbs jitter.
RATE_INTERVAL = "10s"


def _app(state: dict[str, bool]) -> Any:
    """A FastAPI service that records every instrument of the catalog, and fails every request when told to."""
    app = fastapi.FastAPI()
    cancelled = metrics.declare(
        "bookings.cancelled", "counter", unit="{booking}", description="Bookings cancelled, by reason.",
        labels=("reason",),
    )  # fmt: skip

    @app.get("/items/{item_id}")
    def item(item_id: int) -> Any:
        if state["failing"]:
            return fastapi.responses.JSONResponse({"error": "backend down"}, status_code=503)
        return {"item_id": item_id}

    @app.get("/broken")
    def broken() -> Any:
        return fastapi.responses.JSONResponse({"error": "always"}, status_code=500)

    @app.post("/work")
    def work() -> dict[str, str]:
        # one of everything a service records, so every panel of every dashboard has a series
        metrics.record_db_query("SELECT", "bookings", 0.004, system="postgresql")
        metrics.set_db_pool(used=3, idle=7)
        metrics.record_cache_hit("user")
        metrics.record_cache_miss("user")
        metrics.record_job("sync", "success", duration_s=0.2)
        metrics.record_job("sync", "failure", duration_s=1.5)
        metrics.record_job_failure("sync", "timeout")
        metrics.record_payment(amount=49.0, currency="USD", status="succeeded")
        metrics.record_payment(amount=12.0, currency="USD", status="failed", reason="card_declined")
        metrics.record_order("web", value=120.0)
        metrics.record_login("password")
        metrics.record_signup("web")
        metrics.record_user_action("view", "property")
        metrics.record_llm_call("openai", "gpt-4o-mini", 0.8, input_tokens=100, output_tokens=20)
        metrics.set_storage_used(1024.0)
        metrics.record_upload("pdf", size_bytes=2048)
        metrics.record_download("pdf", size_bytes=4096)
        metrics.record_external_call("stripe", "/v1/charges", 0.3, error_type="timeout")
        cancelled.add(1, reason="weather")
        return {"ok": "yes"}

    return app


class _Uvicorn:
    """uvicorn serving ``app`` on 127.0.0.1 from a thread, stopped by ``close()``."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        sockets = self.server.servers[0].sockets
        self.address = f"127.0.0.1:{sockets[0].getsockname()[1]}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def service() -> Iterator[tuple[str, dict[str, bool]]]:
    """The service on loopback; the instrument it declares is removed from the global registry afterwards."""
    before = dict(metrics._instruments)
    state = {"failing": False}
    app = _app(state)
    signalfire.init_observability(app, service_name="shop", metrics_prefix=PREFIX, traces_exporter="none")
    stop_observing = metrics.observe_queue_depth(lambda: {"waiting": 12, "active": 2, "failed": 1})
    server = _Uvicorn(app)
    try:
        yield server.address, state
    finally:
        server.close()
        stop_observing()
        metrics._instruments.clear()
        metrics._instruments.update(before)


@pytest.fixture
def prometheus(service: tuple[str, dict[str, bool]], tmp_path: Path) -> Iterator[PrometheusServer]:
    rules = tmp_path / "signalfire-rules.yml"
    rules.write_text(render_alert_rules(_service_instruments(), OPTIONS))
    with PrometheusServer(require_binary("prometheus", "prometheus"), [service[0]], [rules], job=JOB) as server:
        yield server


def _traffic(client: httpx.Client, rounds: int) -> None:
    """A bounded burst: item requests (with the odd 404 and 500) and one round of business work each time."""
    for i in range(rounds):
        client.get(f"/items/{i}")
        client.get("/items/not-a-number")  # 422
        if i % 25 == 0:
            client.get("/broken")  # a 5xx now and then, well under the 5% threshold
        if i % 10 == 0:
            client.post("/work")


def _drive_until(client: httpx.Client, condition: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        _traffic(client, 50)
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.2)


def _positive(series: list[dict[str, Any]]) -> bool:
    return any(float(item["value"][1]) > 0 for item in series)


def _promql(expr: str) -> str:
    return expr.replace("$__rate_interval", RATE_INTERVAL).replace("$job", ".*")


def _service_instruments() -> list[Any]:
    """The catalog and the service's own instrument, as exposed; other tests' declarations on the global registry
    (which has no undeclare) are not this service's and would leave panels empty."""
    names = {spec.name for spec in Metrics().instruments()} | {"bookings.cancelled"}
    return [spec for spec in metrics.instruments() if spec.name in names]


def _evaluated_after(prometheus: PrometheusServer, moment: float) -> bool:
    """Whether every rule group has been evaluated (on Prometheus's clock) after ``moment`` (a Unix time)."""
    groups = prometheus.rule_groups()
    return bool(groups) and all(datetime.fromisoformat(g["lastEvaluation"]).timestamp() > moment for g in groups)


def _error_alerts(prometheus: PrometheusServer, state: str) -> list[dict[str, Any]]:
    return [a for a in prometheus.alerts() if a["labels"]["alertname"] == "HighErrorRate" and a["state"] == state]


def test_every_dashboard_query_returns_data(service: tuple[str, dict[str, bool]], prometheus: PrometheusServer) -> None:
    """After a few seconds of traffic, each panel query of each generated dashboard returns at least one series."""
    boards = dashboards(_service_instruments())
    queries = [(name, expr) for name, board in boards.items() for expr in dashboard_queries(board)]
    assert len(queries) > 20

    def all_answer() -> bool:
        return all(prometheus.query(_promql(expr)) for _, expr in queries)

    with httpx.Client(base_url=f"http://{service[0]}", timeout=5) as client:
        try:
            _drive_until(client, all_answer, 40, "every dashboard query to return data")
        except AssertionError:
            empty = [f"{name}: {expr}" for name, expr in queries if not prometheus.query(_promql(expr))]
            raise AssertionError("queries without data:\n" + "\n".join(empty) + "\n" + prometheus.log()) from None
    business = boards["signalfire-business.json"]
    assert any(f"{PREFIX}_bookings_cancelled_total" in e for e in dashboard_queries(business))


def test_rules_load_and_evaluate_without_errors(
    service: tuple[str, dict[str, bool]], prometheus: PrometheusServer
) -> None:
    """Prometheus loads every generated rule and evaluates each one against real series without an error."""
    with httpx.Client(base_url=f"http://{service[0]}", timeout=5) as client:
        # the traffic has a few 5xx: wait until the recorded ratio has seen them (the first evaluations may not have)
        _drive_until(client, lambda: _positive(prometheus.query("signalfire:slo_errors:ratio_rate5m")), 30,
                     "SLO recordings")  # fmt: skip
    # One group has evaluated; on a busy machine the others may not have yet (their rules' health is "unknown").
    recorded = time.time()
    wait_until(lambda: _evaluated_after(prometheus, recorded), timeout=60, message="the rule groups were not evaluated")
    rules = [r for g in prometheus.rule_groups() for r in g["rules"]]
    assert len(rules) == sum(1 for line in render_alert_rules(_service_instruments(), OPTIONS).splitlines()
                             if line.lstrip().startswith(("- record:", "- alert:")))  # fmt: skip
    assert [(r["name"], r.get("lastError", "")) for r in rules if r["health"] != "ok"] == []
    ratio = prometheus.query(f'signalfire:slo_errors:ratio_rate5m{{job="{JOB}"}}')
    assert 0 < float(ratio[0]["value"][1]) < 0.05


def test_error_rate_alert_fires_when_the_service_fails(
    service: tuple[str, dict[str, bool]], prometheus: PrometheusServer
) -> None:
    """HighErrorRate stays quiet under normal traffic and fires, with its annotations, once requests start failing."""
    address, state = service
    with httpx.Client(base_url=f"http://{address}", timeout=5) as client:
        # healthy: traffic (with a few 5xx) long enough for the rule to have evaluated over a full window
        _drive_until(client, lambda: prometheus.query(f'signalfire:slo_errors:ratio_rate5m{{job="{JOB}"}}'), 30,
                     "the error ratio to be recorded")  # fmt: skip
        _traffic(client, 100)
        # The rules have seen all of it: evaluated more than two intervals (scrape and evaluation: 1 s) after it ended.
        ended = time.time()
        wait_until(lambda: _evaluated_after(prometheus, ended + 2), timeout=60, message="the rules were not evaluated")
        assert _error_alerts(prometheus, "pending") + _error_alerts(prometheus, "firing") == []
        state["failing"] = True
        firing = _drive_until(client, lambda: _error_alerts(prometheus, "firing"), 40, "HighErrorRate to fire")
    alert = firing[0]
    assert alert["labels"] == {"alertname": "HighErrorRate", "job": JOB, "severity": "critical"}
    assert alert["annotations"]["summary"].startswith(f"{JOB}: ")
    assert alert["annotations"]["summary"].endswith("% of requests fail")
    assert alert["annotations"]["runbook_url"].endswith("/high-error-rate")
