"""Prometheus alerting and SLO recording rules generated from the metric registry (``signalfire alerts``).

Every metric name in the rules comes from ``signalfire.metrics.instruments()``, so the rules cannot drift from what
``/metrics`` exposes. Every threshold, window and ``for:`` duration is an :class:`AlertOptions` field (and a command
line option of ``signalfire alerts``). The SLO alerts follow the multi-window, multi-burn-rate method of the Google
SRE workbook ("Alerting on SLOs"): page when the error budget burns 14.4x too fast over 1h (confirmed over 5m) or 6x
over 6h (confirmed over 30m); open a ticket at 3x over 1d (2h) or 1x over 3d (6h).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from signalfire._generators._promql import Catalog, InstrumentSpec, Query, duration_seconds, le_matcher, state_label

__all__ = ["AlertOptions", "BurnWindow", "alert_rules", "render_alert_rules"]


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """One multi-window burn-rate condition: the budget burns ``factor`` times too fast over both windows."""

    long: str
    short: str
    factor: float
    severity: str


# The SRE workbook's recommended pairs (Alerting on SLOs, table 5-8): 2% of a 30-day budget in 1h, 5% in 6h pages;
# 10% in 1d, 10% in 3d opens a ticket.
WORKBOOK_WINDOWS = (
    BurnWindow("1h", "5m", 14.4, "critical"),
    BurnWindow("6h", "30m", 6.0, "critical"),
    BurnWindow("1d", "2h", 3.0, "warning"),
    BurnWindow("3d", "6h", 1.0, "warning"),
)


@dataclass(frozen=True, slots=True)
class AlertOptions:
    """Thresholds and durations of the generated rules; each field is a ``signalfire alerts`` option.

    Durations are Prometheus durations (``30s``, ``5m``, ``1h``); ratios are fractions (0.05 is 5%).
    """

    matchers: str = field(default="", metadata={"help": 'label matchers added to every selector, e.g. job="checkout"'})
    group_by: tuple[str, ...] = field(default=("job",), metadata={"help": "labels alerts are grouped by"})
    runbook_url: str = field(
        default="https://runbooks.example.com/signalfire/{alert}",
        metadata={"help": "runbook_url annotation; {alert} becomes the alert name in kebab-case"},
    )
    service_down_for: str = field(default="1m", metadata={"help": "how long up == 0 before ServiceDown fires"})
    error_rate_threshold: float = field(default=0.05, metadata={"help": "5xx share of requests (0.05 = 5%)"})
    error_rate_window: str = field(default="5m", metadata={"help": "rate window of the error ratio"})
    error_rate_for: str = field(default="5m", metadata={"help": "for: of HighErrorRate"})
    latency_p95_threshold_s: float = field(default=1.0, metadata={"help": "p95 request latency in seconds"})
    latency_window: str = field(default="5m", metadata={"help": "rate window of the p95"})
    latency_for: str = field(default="10m", metadata={"help": "for: of HighLatencyP95"})
    queue_backlog_threshold: float = field(default=1000.0, metadata={"help": "jobs waiting in the queue"})
    queue_backlog_for: str = field(default="15m", metadata={"help": "for: of QueueBacklog"})
    failed_jobs_threshold: float = field(default=100.0, metadata={"help": "failed jobs within the window"})
    failed_jobs_window: str = field(default="30m", metadata={"help": "window the failed jobs are counted over"})
    failed_jobs_for: str = field(default="0s", metadata={"help": "for: of FailedJobs"})
    cache_miss_ratio_threshold: float = field(default=0.5, metadata={"help": "misses / (hits + misses)"})
    cache_miss_window: str = field(default="5m", metadata={"help": "rate window of the miss ratio"})
    cache_miss_for: str = field(default="30m", metadata={"help": "for: of CacheMissRatioHigh"})
    payment_failures_threshold: float = field(default=10.0, metadata={"help": "failed payments within the window"})
    payment_failures_window: str = field(default="5m", metadata={"help": "window payment failures are counted over"})
    payment_failures_for: str = field(default="0s", metadata={"help": "for: of PaymentFailures"})
    availability_objective: float = field(default=0.999, metadata={"help": "share of requests that are not 5xx"})
    latency_objective: float = field(default=0.95, metadata={"help": "share of requests faster than the target"})
    latency_target_s: float = field(
        default=1.0, metadata={"help": "latency SLO target in seconds; must be a bucket bound"}
    )
    burn_windows: tuple[BurnWindow, ...] = WORKBOOK_WINDOWS

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith(("_for", "_window")):
                try:
                    duration_seconds(value)
                except ValueError:
                    raise ValueError(
                        f"{f.name}={value!r} is not accepted: expected a Prometheus duration such as 30s, 5m or 1h"
                    ) from None
            elif f.name.endswith("_objective") and not 0 < value < 1:
                raise ValueError(f"{f.name}={value!r} is not accepted: expected a fraction between 0 and 1, e.g. 0.999")
            elif f.name.endswith(("_threshold", "_threshold_s", "_target_s")) and value < 0:
                raise ValueError(f"{f.name}={value!r} is not accepted: expected a number >= 0")
        for window in self.burn_windows:
            duration_seconds(window.long)
            duration_seconds(window.short)


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z][a-z])|(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()


def _num(value: float) -> str:
    # 1 - 0.999 is 0.0010000000000000009 in binary; twelve significant digits print what the user configured.
    return f"{value:.12g}"


class _Rules:
    def __init__(self, options: AlertOptions) -> None:
        self.options = options
        self.q = Query(options.matchers)
        self.by = list(options.group_by)

    def alert(
        self,
        name: str,
        expr: str,
        duration: str,
        severity: str,
        *,
        summary: str,
        description: str,
    ) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": name, "expr": expr}
        if duration_seconds(duration):
            rule["for"] = duration
        rule["labels"] = {"severity": severity}
        rule["annotations"] = {
            "summary": summary,
            "description": description,
            "runbook_url": self.options.runbook_url.replace("{alert}", _kebab(name)),
        }
        return rule

    def job(self) -> str:
        return " ".join(f"{{{{ $labels.{label} }}}}" for label in self.options.group_by) or "the service"


def _server_error(status_label: str) -> str:
    return f'{status_label}=~"5.."'


def _http_alerts(r: _Rules, catalog: Catalog) -> Iterable[dict[str, Any]]:
    o, q, by = r.options, r.q, r.by
    yield r.alert(
        "ServiceDown",
        f"{q.sel('up')} == 0",
        o.service_down_for,
        "critical",
        summary="{{ $labels.job }} target {{ $labels.instance }} is down",
        description=f"Prometheus has failed to scrape {{{{ $labels.instance }}}} for {o.service_down_for}.",
    )
    duration, status = catalog.http_duration, catalog.http_status_label
    if duration is None or status is None:
        return
    count = duration.prometheus_name + "_count"
    w = o.error_rate_window
    yield r.alert(
        "HighErrorRate",
        f"{q.rate(count, w, _server_error(status), by=by)}\n  /\n{q.rate(count, w, by=by)}\n"
        f"  > {_num(o.error_rate_threshold)}",
        o.error_rate_for,
        "critical",
        summary=f"{r.job()}: {{{{ $value | humanizePercentage }}}} of requests fail",
        description=f"More than {_num(o.error_rate_threshold * 100)}% of HTTP requests answered 5xx over {w} "
        f"for {o.error_rate_for}.",
    )
    yield r.alert(
        "HighLatencyP95",
        f"{q.quantile(0.95, duration.prometheus_name, o.latency_window, by=by)}\n  > {_num(o.latency_p95_threshold_s)}",
        o.latency_for,
        "warning",
        summary=f"{r.job()}: p95 latency is {{{{ $value | humanizeDuration }}}}",
        description=f"The 95th percentile of HTTP request duration has been above {_num(o.latency_p95_threshold_s)}s "
        f"for {o.latency_for}.",
    )


def _worker_alerts(r: _Rules, catalog: Catalog) -> Iterable[dict[str, Any]]:
    o, q, by = r.options, r.q, r.by
    depth = catalog.queue_depth
    if depth is not None:
        state = state_label(depth)
        waiting = (f'{state}="waiting"',) if state else ()
        yield r.alert(
            "QueueBacklog",
            f"{q.level(depth.prometheus_name, *waiting, by=by)} > {_num(o.queue_backlog_threshold)}",
            o.queue_backlog_for,
            "warning",
            summary=f"{r.job()}: {{{{ $value }}}} jobs waiting",
            description=f"More than {_num(o.queue_backlog_threshold)} jobs have been waiting "
            f"for {o.queue_backlog_for}.",
        )
    failures = catalog.job_failures
    if failures is not None:
        yield r.alert(
            "FailedJobs",
            f"{q.increase(failures.prometheus_name, o.failed_jobs_window, by=by)} > {_num(o.failed_jobs_threshold)}",
            o.failed_jobs_for,
            "warning",
            summary=f"{r.job()}: {{{{ $value | humanize }}}} jobs failed in {o.failed_jobs_window}",
            description=f"More than {_num(o.failed_jobs_threshold)} background jobs failed "
            f"within {o.failed_jobs_window}.",
        )
    hits, misses = catalog.cache_hits, catalog.cache_misses
    if hits is not None and misses is not None:
        w = o.cache_miss_window
        miss_rate = q.rate(misses.prometheus_name, w, by=by)
        yield r.alert(
            "CacheMissRatioHigh",
            f"{miss_rate}\n  /\n({q.rate(hits.prometheus_name, w, by=by)} + {miss_rate})\n"
            f"  > {_num(o.cache_miss_ratio_threshold)}",
            o.cache_miss_for,
            "warning",
            summary=f"{r.job()}: cache miss ratio is {{{{ $value | humanizePercentage }}}}",
            description=f"More than {_num(o.cache_miss_ratio_threshold * 100)}% of cache lookups missed "
            f"for {o.cache_miss_for}.",
        )
    payments = catalog.payment_failures
    if payments is not None:
        yield r.alert(
            "PaymentFailures",
            f"{q.increase(payments.prometheus_name, o.payment_failures_window, by=by)}"
            f" > {_num(o.payment_failures_threshold)}",
            o.payment_failures_for,
            "critical",
            summary=f"{r.job()}: {{{{ $value | humanize }}}} payments failed in {o.payment_failures_window}",
            description=f"More than {_num(o.payment_failures_threshold)} payments failed "
            f"within {o.payment_failures_window}.",
        )


def slo_record_name(sli: str, window: str) -> str:
    """The recording rule holding an SLI's bad-event ratio over one window."""
    return f"signalfire:slo_{sli}:ratio_rate{window}"


def _slo_windows(options: AlertOptions) -> list[str]:
    windows = {w for b in options.burn_windows for w in (b.long, b.short)}
    return sorted(windows, key=duration_seconds)


def _slo_recordings(r: _Rules, catalog: Catalog) -> Iterable[dict[str, Any]]:
    duration, status = catalog.http_duration, catalog.http_status_label
    if duration is None or status is None:
        return
    q, by = r.q, r.by
    count, bucket = duration.prometheus_name + "_count", duration.prometheus_name + "_bucket"
    _check_bucket(duration, r.options.latency_target_s)
    le = le_matcher(r.options.latency_target_s)
    for w in _slo_windows(r.options):
        yield {
            "record": slo_record_name("errors", w),
            "expr": f"{q.rate(count, w, _server_error(status), by=by)}\n  /\n{q.rate(count, w, by=by)}",
        }
    for w in _slo_windows(r.options):
        yield {
            "record": slo_record_name("slow_requests", w),
            "expr": f"1 - (\n  {q.rate(bucket, w, le, by=by)}\n  /\n  {q.rate(count, w, by=by)}\n)",
        }


def _check_bucket(duration: InstrumentSpec, target: float) -> None:
    if duration.buckets is not None and not any(abs(b - target) < 1e-9 for b in duration.buckets):
        bounds = ", ".join(_num(b) for b in duration.buckets)
        raise ValueError(
            f"latency_target_s={_num(target)} is not accepted: it is not a bucket bound of {duration.prometheus_name}; "
            f"expected one of {bounds}"
        )


def _slo_alerts(r: _Rules, catalog: Catalog) -> Iterable[dict[str, Any]]:
    if catalog.http_duration is None or catalog.http_status_label is None:
        return
    o = r.options
    slos = (
        ("Availability", "errors", o.availability_objective, "of requests answered 5xx"),
        ("Latency", "slow_requests", o.latency_objective, f"of requests took longer than {_num(o.latency_target_s)}s"),
    )
    for title, sli, objective, what in slos:
        budget = _num(1 - objective)
        for severity, name in (("critical", "Fast"), ("warning", "Slow")):
            windows = [b for b in o.burn_windows if b.severity == severity]
            if not windows:
                continue
            conditions = [
                f"(\n  {slo_record_name(sli, b.long)} > ({_num(b.factor)} * {budget})\n"
                f"  and\n  {slo_record_name(sli, b.short)} > ({_num(b.factor)} * {budget})\n)"
                for b in windows
            ]
            pairs = ", ".join(f"{b.long}/{b.short} at {_num(b.factor)}x" for b in windows)
            yield r.alert(
                f"SLO{title}BurnRate{name}",
                "\nor\n".join(conditions),
                "0s",
                severity,
                summary=f"{r.job()}: {title.lower()} SLO error budget burning too fast",
                description=f"{_num(objective * 100)}% {title.lower()} objective: "
                f"{{{{ $value | humanizePercentage }}}} {what} "
                f"(burn-rate windows {pairs}).",
            )


def alert_rules(instruments: Iterable[InstrumentSpec], options: AlertOptions | None = None) -> dict[str, Any]:
    """The Prometheus rule file, as a dict, for the instruments of a registry.

    >>> rules = alert_rules([], AlertOptions(matchers='job="checkout"'))
    >>> rules["groups"][0]["rules"][0]["expr"]
    'up{job="checkout"} == 0'
    """
    options = options or AlertOptions()
    catalog = Catalog.of(instruments)
    r = _Rules(options)
    groups = [
        {"name": "signalfire-slo-recording", "rules": list(_slo_recordings(r, catalog))},
        {"name": "signalfire-alerts", "rules": [*_http_alerts(r, catalog), *_worker_alerts(r, catalog)]},
        {"name": "signalfire-slo-alerts", "rules": list(_slo_alerts(r, catalog))},
    ]
    return {"groups": [g for g in groups if g["rules"]]}


def render_alert_rules(instruments: Iterable[InstrumentSpec], options: AlertOptions | None = None) -> str:
    """The rule file as YAML text, byte-for-byte the same for the same registry and options."""
    return dump_yaml(alert_rules(instruments, options))


def dump_yaml(document: Any) -> str:
    """YAML with multi-line strings as literal blocks and keys in the order they were built."""
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - the extra is part of the test install
        raise ImportError('signalfire alerts needs PyYAML: pip install "signalfire[dashboards]"') from exc

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    text: str = yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1_000, allow_unicode=True)
    return text


def option_fields() -> Sequence[dataclasses.Field[Any]]:
    """The :class:`AlertOptions` fields a command line can set (everything but the burn-rate table)."""
    return [f for f in dataclasses.fields(AlertOptions) if f.name != "burn_windows"]
