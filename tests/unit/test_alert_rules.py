"""The generated Prometheus rule file: valid for promtool, and each alert fires and stays silent when it should."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from signalfire import metrics
from signalfire._generators._alerts import AlertOptions, alert_rules, dump_yaml, render_alert_rules
from signalfire._generators._promql import Catalog
from tests.conftest import require_binary
from tests.unit.registry import registry_instruments

RUNBOOK = "https://runbooks.example.com/signalfire/"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.of(registry_instruments())


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    promtool = require_binary("promtool", "prometheus")
    return subprocess.run([promtool, *map(str, args)], capture_output=True, text=True, timeout=60, check=False)


def _names(catalog: Catalog) -> dict[str, str]:
    """Exposed names of the instruments the synthetic series stand for."""
    assert catalog.http_duration is not None
    assert catalog.queue_depth is not None
    assert catalog.job_failures is not None
    assert catalog.cache_hits is not None
    assert catalog.cache_misses is not None
    assert catalog.payment_failures is not None
    return {
        "duration": catalog.http_duration.prometheus_name,
        "status": catalog.http_status_label or "",
        "queue": catalog.queue_depth.prometheus_name,
        "failures": catalog.job_failures.prometheus_name,
        "hits": catalog.cache_hits.prometheus_name,
        "misses": catalog.cache_misses.prometheus_name,
        "payment_failures": catalog.payment_failures.prometheus_name,
    }


def _requests(n: dict[str, str], job: str, ok: int, failed: int, minutes: int) -> list[dict[str, str]]:
    count, status = n["duration"] + "_count", n["status"]
    return [
        {"series": f'{count}{{job="{job}",{status}="200"}}', "values": f"0+{ok}x{minutes}"},
        {"series": f'{count}{{job="{job}",{status}="500"}}', "values": f"0+{failed}x{minutes}"},
    ]


def _latency(n: dict[str, str], job: str, fast: int, total: int, minutes: int) -> list[dict[str, str]]:
    """``total`` requests a minute, ``fast`` of them within 1 s, the others within 2.5 s."""
    bucket, count, status = n["duration"] + "_bucket", n["duration"] + "_count", n["status"]
    labels = f'job="{job}",{status}="200"'
    return [
        {"series": f'{bucket}{{{labels},le="1.0"}}', "values": f"0+{fast}x{minutes}"},
        {"series": f'{bucket}{{{labels},le="2.5"}}', "values": f"0+{total}x{minutes}"},
        {"series": f'{bucket}{{{labels},le="+Inf"}}', "values": f"0+{total}x{minutes}"},
        {"series": f"{count}{{{labels}}}", "values": f"0+{total}x{minutes}"},
    ]


def _annotations(summary: str, description: str, alert: str) -> dict[str, str]:
    return {"summary": summary, "description": description, "runbook_url": RUNBOOK + alert}


# name -> (input series, eval time, expected alerts). Each case has a job="bad" that must fire and a job="good" that
# must not, so every test shows both sides of the threshold.
def _cases(n: dict[str, str]) -> dict[str, tuple[list[dict[str, str]], str, list[dict[str, Any]]]]:
    return {
        "ServiceDown": (
            [
                {"series": 'up{job="bad",instance="a:80"}', "values": "0x10"},
                {"series": 'up{job="good",instance="b:80"}', "values": "1x10"},
            ],
            "5m",
            [
                {
                    "exp_labels": {"severity": "critical", "job": "bad", "instance": "a:80"},
                    "exp_annotations": _annotations(
                        "bad target a:80 is down", "Prometheus has failed to scrape a:80 for 1m.", "service-down"
                    ),
                }
            ],
        ),
        "HighErrorRate": (
            _requests(n, "bad", ok=90, failed=10, minutes=30) + _requests(n, "good", ok=99, failed=1, minutes=30),
            "15m",
            [
                {
                    "exp_labels": {"severity": "critical", "job": "bad"},
                    "exp_annotations": _annotations(
                        "bad: 10% of requests fail",
                        "More than 5% of HTTP requests answered 5xx over 5m for 5m.",
                        "high-error-rate",
                    ),
                }
            ],
        ),
        "HighLatencyP95": (
            _latency(n, "bad", fast=0, total=10, minutes=30) + _latency(n, "good", fast=10, total=10, minutes=30),
            "20m",
            [
                {
                    "exp_labels": {"severity": "warning", "job": "bad"},
                    "exp_annotations": _annotations(
                        "bad: p95 latency is 2.425s",
                        "The 95th percentile of HTTP request duration has been above 1s for 10m.",
                        "high-latency-p95",
                    ),
                }
            ],
        ),
        "QueueBacklog": (
            [
                {"series": f'{n["queue"]}{{job="bad",queue="default",state="waiting"}}', "values": "2000x30"},
                {"series": f'{n["queue"]}{{job="good",queue="default",state="waiting"}}', "values": "10x30"},
                # active jobs are not a backlog
                {"series": f'{n["queue"]}{{job="good",queue="default",state="active"}}', "values": "5000x30"},
            ],
            "20m",
            [
                {
                    "exp_labels": {"severity": "warning", "job": "bad"},
                    "exp_annotations": _annotations(
                        "bad: 2000 jobs waiting", "More than 1000 jobs have been waiting for 15m.", "queue-backlog"
                    ),
                }
            ],
        ),
        "FailedJobs": (
            [
                {"series": f'{n["failures"]}{{job="bad",reason="timeout"}}', "values": "0+10x60"},
                {"series": f'{n["failures"]}{{job="good",reason="timeout"}}', "values": "0+1x60"},
            ],
            "45m",
            [
                {
                    "exp_labels": {"severity": "warning", "job": "bad"},
                    "exp_annotations": _annotations(
                        "bad: 300 jobs failed in 30m",
                        "More than 100 background jobs failed within 30m.",
                        "failed-jobs",
                    ),
                }
            ],
        ),
        "CacheMissRatioHigh": (
            [
                {"series": f'{n["misses"]}{{job="bad",key_type="user"}}', "values": "0+60x60"},
                {"series": f'{n["hits"]}{{job="bad",key_type="user"}}', "values": "0+40x60"},
                {"series": f'{n["misses"]}{{job="good",key_type="user"}}', "values": "0+40x60"},
                {"series": f'{n["hits"]}{{job="good",key_type="user"}}', "values": "0+60x60"},
            ],
            "45m",
            [
                {
                    "exp_labels": {"severity": "warning", "job": "bad"},
                    "exp_annotations": _annotations(
                        "bad: cache miss ratio is 60%",
                        "More than 50% of cache lookups missed for 30m.",
                        "cache-miss-ratio-high",
                    ),
                }
            ],
        ),
        "PaymentFailures": (
            [
                {"series": f'{n["payment_failures"]}{{job="bad",reason="declined"}}', "values": "0+5x30"},
                {"series": f'{n["payment_failures"]}{{job="good",reason="declined"}}', "values": "0+1x30"},
            ],
            "15m",
            [
                {
                    "exp_labels": {"severity": "critical", "job": "bad"},
                    "exp_annotations": _annotations(
                        "bad: 25 payments failed in 5m",
                        "More than 10 payments failed within 5m.",
                        "payment-failures",
                    ),
                }
            ],
        ),
    }


def _slo_cases(n: dict[str, str]) -> dict[str, tuple[list[dict[str, str]], str, list[dict[str, Any]]]]:
    burning = "{job} availability SLO error budget burning too fast"
    return {
        # 2% errors burns a 99.9% budget 20x: pages (above 14.4x); 0.1% burns it 1x: nothing pages
        "SLOAvailabilityBurnRateFast": (
            _requests(n, "bad", ok=98, failed=2, minutes=120) + _requests(n, "good", ok=999, failed=1, minutes=120),
            "90m",
            [
                {
                    "exp_labels": {"severity": "critical", "job": "bad"},
                    "exp_annotations": _annotations(
                        burning.format(job="bad:"),
                        "99.9% availability objective: 2% of requests answered 5xx "
                        "(burn-rate windows 1h/5m at 14.4x, 6h/30m at 6x).",
                        "slo-availability-burn-rate-fast",
                    ),
                }
            ],
        ),
        # 0.5% errors burns it 5x: a ticket (above 3x) but no page (below 6x); 0.05% stays under even the 1x window
        "SLOAvailabilityBurnRateSlow": (
            _requests(n, "bad", ok=199, failed=1, minutes=180) + _requests(n, "good", ok=1999, failed=1, minutes=180),
            "150m",
            [
                {
                    "exp_labels": {"severity": "warning", "job": "bad"},
                    "exp_annotations": _annotations(
                        burning.format(job="bad:"),
                        "99.9% availability objective: 0.5% of requests answered 5xx "
                        "(burn-rate windows 1d/2h at 3x, 3d/6h at 1x).",
                        "slo-availability-burn-rate-slow",
                    ),
                }
            ],
        ),
        # 80% of requests slower than 1 s burns a 95% budget 16x: pages; good has none slow
        "SLOLatencyBurnRateFast": (
            _latency(n, "bad", fast=2, total=10, minutes=120) + _latency(n, "good", fast=10, total=10, minutes=120),
            "90m",
            [
                {
                    "exp_labels": {"severity": "critical", "job": "bad"},
                    "exp_annotations": _annotations(
                        "bad: latency SLO error budget burning too fast",
                        "95% latency objective: 80% of requests took longer than 1s "
                        "(burn-rate windows 1h/5m at 14.4x, 6h/30m at 6x).",
                        "slo-latency-burn-rate-fast",
                    ),
                }
            ],
        ),
        # 20% slow burns it 4x: a ticket, not a page
        "SLOLatencyBurnRateSlow": (
            _latency(n, "bad", fast=8, total=10, minutes=180) + _latency(n, "good", fast=100, total=100, minutes=180),
            "150m",
            [
                {
                    "exp_labels": {"severity": "warning", "job": "bad"},
                    "exp_annotations": _annotations(
                        "bad: latency SLO error budget burning too fast",
                        "95% latency objective: 20% of requests took longer than 1s "
                        "(burn-rate windows 1d/2h at 3x, 3d/6h at 1x).",
                        "slo-latency-burn-rate-slow",
                    ),
                }
            ],
        ),
    }


def _all_cases(catalog: Catalog) -> dict[str, tuple[list[dict[str, str]], str, list[dict[str, Any]]]]:
    n = _names(catalog)
    return {**_cases(n), **_slo_cases(n)}


ALERTS = [
    "ServiceDown",
    "HighErrorRate",
    "HighLatencyP95",
    "QueueBacklog",
    "FailedJobs",
    "CacheMissRatioHigh",
    "PaymentFailures",
    "SLOAvailabilityBurnRateFast",
    "SLOAvailabilityBurnRateSlow",
    "SLOLatencyBurnRateFast",
    "SLOLatencyBurnRateSlow",
]


def test_promtool_check_rules_accepts_the_generated_file(catalog: Catalog, tmp_path: Path) -> None:
    """`promtool check rules` accepts the rule file generated from the registry."""
    rules = tmp_path / "signalfire-rules.yml"
    rules.write_text(render_alert_rules(catalog.instruments))
    result = _promtool("check", "rules", rules)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {_rule_count(catalog)} rules found" in result.stdout


def _rule_count(catalog: Catalog) -> int:
    return sum(len(g["rules"]) for g in alert_rules(catalog.instruments)["groups"])


def test_every_listed_alert_is_generated(catalog: Catalog) -> None:
    """The rule file holds exactly the alerts the tests below exercise, so none goes untested."""
    groups = alert_rules(catalog.instruments)["groups"]
    assert [r["alert"] for g in groups for r in g["rules"] if "alert" in r] == ALERTS


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_fires_on_bad_series_and_not_on_good(alert: str, catalog: Catalog, tmp_path: Path) -> None:
    """`promtool test rules`: the alert fires for the job past its threshold and not for the job within it."""
    series, eval_time, expected = _all_cases(catalog)[alert]
    rules = tmp_path / "rules.yml"
    rules.write_text(render_alert_rules(catalog.instruments))
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [{"eval_time": eval_time, "alertname": alert, "exp_alerts": expected}],
            }
        ],
    }
    test_file = tmp_path / "test.yml"
    test_file.write_text(dump_yaml(test))
    result = _promtool("test", "rules", test_file)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("alert", "before"), [("ServiceDown", "30s"), ("HighErrorRate", "4m"), ("QueueBacklog", "10m")]
)
def test_alert_waits_for_its_duration(alert: str, before: str, catalog: Catalog, tmp_path: Path) -> None:
    """An alert with a `for:` duration is not firing yet before that duration has passed."""
    series, _, _ = _all_cases(catalog)[alert]
    rules = tmp_path / "rules.yml"
    rules.write_text(render_alert_rules(catalog.instruments))
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [{"eval_time": before, "alertname": alert, "exp_alerts": []}],
            }
        ],
    }
    test_file = tmp_path / "test.yml"
    test_file.write_text(dump_yaml(test))
    result = _promtool("test", "rules", test_file)
    assert result.returncode == 0, result.stdout + result.stderr


def test_thresholds_and_durations_come_from_the_options(catalog: Catalog) -> None:
    """A changed threshold, window and for: appear in the generated rule."""
    options = AlertOptions(error_rate_threshold=0.2, error_rate_window="2m", error_rate_for="30s")
    rule = next(
        r
        for g in alert_rules(catalog.instruments, options)["groups"]
        for r in g["rules"]
        if r.get("alert") == "HighErrorRate"
    )
    assert rule["expr"].endswith("> 0.2")
    assert "[2m]" in rule["expr"]
    assert rule["for"] == "30s"


def test_matchers_scope_every_selector(catalog: Catalog) -> None:
    """`matchers` is added to every vector selector of every rule."""
    text = render_alert_rules(catalog.instruments, AlertOptions(matchers='job="checkout"'))
    document = yaml.safe_load(text)
    exprs = [
        r["expr"] for g in document["groups"] for r in g["rules"] if "record" in r or "signalfire:" not in r["expr"]
    ]
    assert exprs
    for expr in exprs:
        assert expr.count("{") == expr.count('job="checkout"'), expr


def test_output_is_byte_identical_across_runs(catalog: Catalog) -> None:
    """Rendering twice gives the same bytes, so the file diffs cleanly in git."""
    assert render_alert_rules(catalog.instruments) == render_alert_rules(list(catalog.instruments))


def test_every_alert_has_summary_description_and_runbook(catalog: Catalog) -> None:
    """Each alert carries summary, description and runbook_url annotations."""
    for group in alert_rules(catalog.instruments)["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}


def test_latency_target_must_be_a_bucket_bound(catalog: Catalog) -> None:
    """A latency target between bucket bounds is rejected with the bounds that would work."""
    with pytest.raises(
        ValueError, match=r"latency_target_s=0.3 is not accepted: it is not a bucket bound .*expected one of"
    ):
        alert_rules(catalog.instruments, AlertOptions(latency_target_s=0.3))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("error_rate_for", "5 minutes", "expected a Prometheus duration"),
        ("availability_objective", 99.9, "expected a fraction between 0 and 1"),
        ("error_rate_threshold", -1, "expected a number >= 0"),
    ],
)
def test_bad_options_are_rejected(field: str, value: object, message: str) -> None:
    """A malformed duration, objective or threshold is rejected with what is expected."""
    with pytest.raises(ValueError, match=message):
        AlertOptions(**{field: value})  # type: ignore[arg-type]


def test_the_documented_promtool_example_passes(tmp_path: Path) -> None:
    """The `promtool test rules` example in docs/dashboards.md passes against the generated file."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "dashboards.md").read_text()
    blocks = [b.split("```", 1)[0] for b in docs.split("```yaml\n")[1:]]
    example = next(b for b in blocks if b.startswith("rule_files: [signalfire-rules.yml]"))
    (tmp_path / "signalfire-rules.yml").write_text(render_alert_rules(metrics.instruments(prefix="")))
    (tmp_path / "signalfire-rules.test.yml").write_text(example)
    result = subprocess.run(
        [require_binary("promtool", "prometheus"), "test", "rules", "signalfire-rules.test.yml"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
