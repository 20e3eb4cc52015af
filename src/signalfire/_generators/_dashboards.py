"""Grafana dashboards generated from the metric registry (``signalfire dashboards``).

Four dashboards, built with Grafana's own typed builders (grafana-foundation-sdk) so the JSON follows the schema of the
Grafana version the SDK targets: API overview, business metrics, workers and jobs, database and cache. Every query is
built by :mod:`_generators._promql` from ``signalfire.metrics.instruments()``, so a panel cannot ask for a metric the
service does not expose. Panel ids, grid positions and key order are fixed, so the files diff cleanly in git.

Each dashboard has a ``datasource`` variable (any Prometheus-compatible data source) and a ``job`` variable
(multi-value, All by default), and uses ``$__rate_interval`` so it works with any scrape interval.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from signalfire._generators._promql import Catalog, InstrumentSpec, Query, prom_labels, state_label

__all__ = ["DashboardOptions", "Panel", "Target", "dashboard_queries", "dashboards", "render_dashboards"]

RATE = "$__rate_interval"


@dataclass(frozen=True, slots=True)
class DashboardOptions:
    """What ``signalfire dashboards`` can change about the generated dashboards."""

    uid_prefix: str = "signalfire"
    title_prefix: str = "signalfire"
    tags: tuple[str, ...] = ("signalfire",)
    # Grafana expands a multi-value variable with All selected to all_value; ".*" keeps every job.
    matchers: str = 'job=~"$job"'
    refresh: str = "30s"


@dataclass(frozen=True, slots=True)
class Target:
    """One PromQL query of a panel."""

    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True, slots=True)
class Panel:
    """A panel before it is rendered: what it shows and how wide it is (Grafana's grid is 24 columns)."""

    title: str
    kind: str  # timeseries | stat | table
    targets: tuple[Target, ...]
    unit: str = "short"
    description: str = ""
    width: int = 12
    height: int = 8
    thresholds: tuple[tuple[float, str], ...] = ()
    rename: tuple[tuple[str, str], ...] = field(default=())


def _legend(labels: Sequence[str]) -> str:
    return " ".join(f"{{{{{label}}}}}" for label in labels)


def _unit(spec: InstrumentSpec, rate: bool) -> str:
    base = {"s": "s", "ms": "ms", "By": "bytes", "%": "percent", "1": "short"}.get(spec.unit, "short")
    if not rate:
        return base
    return {"bytes": "Bps", "short": "ops"}.get(base, base)


def _first(spec: InstrumentSpec, *words: str) -> list[str]:
    labels = prom_labels(spec)
    for word in words:
        for label in labels:
            if word in label:
                return [label]
    return labels[:1]


def _api_overview(c: Catalog, q: Query) -> list[Panel]:
    duration, status, route = c.http_duration, c.http_status_label, c.http_route_label
    panels: list[Panel] = []
    if duration is not None and status is not None:
        count = duration.prometheus_name + "_count"
        errors = f'{status}=~"5.."'
        by_class = (
            f'sum by (status_class) (label_replace(rate({q.sel(count)}[{RATE}]), "status_class", "${{1}}xx", '
            f'"{status}", "([0-9]).."))'
        )
        panels.append(
            Panel(
                "Request rate by status class",
                "timeseries",
                (Target(by_class, "{{status_class}}"),),
                "reqps",
                "Requests per second, grouped 2xx/3xx/4xx/5xx.",
                width=16,
            )
        )
        # `or ... * 0` gives 0 rather than no data while no request has failed yet.
        error_ratio = f"({q.rate(count, RATE, errors)} or {q.rate(count, RATE)} * 0)\n/\n{q.rate(count, RATE)}"
        panels.append(
            Panel(
                "Error rate",
                "stat",
                (Target(error_ratio),),
                "percentunit",
                "Share of requests answered 5xx; orange above 1%, red above 5%.",
                width=8,
                thresholds=((0.01, "orange"), (0.05, "red")),
            )
        )
        if route is not None:
            panels.append(
                Panel(
                    "Latency by route",
                    "timeseries",
                    tuple(
                        Target(
                            q.quantile(p, duration.prometheus_name, RATE, by=[route]),
                            f"p{round(p * 100)} {{{{{route}}}}}",
                        )
                        for p in (0.5, 0.95, 0.99)
                    ),
                    "s",
                    "p50, p95 and p99 request duration per route template.",
                    width=16,
                )
            )
    in_flight = c.http_in_flight
    if in_flight is not None:
        panels.append(
            Panel(
                "Requests in flight",
                "timeseries",
                (Target(q.level(in_flight.prometheus_name), "in flight"),),
                "short",
                "Requests being served right now.",
                width=8,
            )
        )
    if duration is not None and status is not None and route is not None:
        count = duration.prometheus_name + "_count"
        by = [route]
        errors = f'{status}=~"5.."'
        panels.append(
            Panel(
                "Routes",
                "table",
                (
                    Target(q.rate(count, RATE, by=by), instant=True),
                    Target(q.quantile(0.5, duration.prometheus_name, RATE, by=by), instant=True),
                    Target(q.quantile(0.95, duration.prometheus_name, RATE, by=by), instant=True),
                    Target(
                        f"({q.rate(count, RATE, errors, by=by)} or {q.rate(count, RATE, by=by)} * 0)\n/\n"
                        f"{q.rate(count, RATE, by=by)}",
                        instant=True,
                    ),
                ),
                "short",
                "Per route template: requests per second, p50 and p95 latency, share of 5xx.",
                width=24,
                height=10,
                rename=(("Value #A", "req/s"), ("Value #B", "p50"), ("Value #C", "p95"), ("Value #D", "error rate")),
            )
        )
    return panels


def _business(c: Catalog, q: Query) -> list[Panel]:
    panels = []
    for spec in c.business():
        by = prom_labels(spec)[:1]
        name = spec.prometheus_name
        if spec.kind == "counter":
            target = Target(q.rate(name, RATE, by=by), _legend(by) or spec.name)
            unit = _unit(spec, rate=True)
        elif spec.kind == "histogram" and spec.unit == "s":
            target = Target(q.quantile(0.95, name, RATE, by=by), ("p95 " + _legend(by)).strip())
            unit = _unit(spec, rate=False)
        elif spec.kind == "histogram":
            # amounts and sizes: the total per second (revenue per second), in the instrument's own unit
            target = Target(q.rate(name + "_sum", RATE, by=by), _legend(by) or spec.name)
            unit = "Bps" if spec.unit == "By" else _unit(spec, rate=False)
        else:
            target = Target(q.level(name, by=by), _legend(by) or spec.name)
            unit = _unit(spec, rate=False)
        panels.append(Panel(spec.name, "timeseries", (target,), unit, spec.description or name, width=12))
    return panels


def _workers(c: Catalog, q: Query) -> list[Panel]:
    panels = []
    depth = c.queue_depth
    if depth is not None:
        by = prom_labels(depth)
        panels.append(
            Panel(
                "Queue depth",
                "timeseries",
                (Target(q.level(depth.prometheus_name, by=by), _legend(by)),),
                "short",
                "Jobs per queue and state (waiting, active, failed).",
                width=12,
            )
        )
    processed = c.jobs_processed
    if processed is not None:
        status = state_label(processed)
        by = [status] if status else []
        panels.append(
            Panel(
                "Job rate",
                "timeseries",
                (Target(q.rate(processed.prometheus_name, RATE, by=by), _legend(by) or "jobs"),),
                "ops",
                "Jobs processed per second by outcome.",
                width=12,
            )
        )
    failures = c.job_failures
    if failures is not None:
        by = _first(failures, "reason")
        panels.append(
            Panel(
                "Failure rate",
                "timeseries",
                (Target(q.rate(failures.prometheus_name, RATE, by=by), _legend(by) or "failures"),),
                "ops",
                "Failed jobs per second by reason.",
                width=12,
            )
        )
    duration = c.job_duration
    if duration is not None:
        by = _first(duration, "type", "name")
        panels.append(
            Panel(
                "Job p95",
                "timeseries",
                (Target(q.quantile(0.95, duration.prometheus_name, RATE, by=by), ("p95 " + _legend(by)).strip()),),
                "s",
                "95th percentile job duration by job type.",
                width=12,
            )
        )
    return panels


def _data(c: Catalog, q: Query) -> list[Panel]:
    panels = []
    duration = c.db_duration
    if duration is not None:
        by = _first(duration, "operation")
        panels.append(
            Panel(
                "Query p95",
                "timeseries",
                (Target(q.quantile(0.95, duration.prometheus_name, RATE, by=by), ("p95 " + _legend(by)).strip()),),
                "s",
                "95th percentile database query duration by operation.",
                width=12,
            )
        )
    connections = c.db_connections
    state = state_label(connections)
    if connections is not None and state is not None:
        used = q.level(connections.prometheus_name, f'{state}="used"')
        panels.append(
            Panel(
                "Pool utilisation",
                "timeseries",
                (Target(f"{used}\n/\n{q.level(connections.prometheus_name)}", "in use"),),
                "percentunit",
                "Connections in use as a share of the pool (in use + idle).",
                width=12,
            )
        )
    hits, misses = c.cache_hits, c.cache_misses
    if hits is not None and misses is not None:
        hit_rate = q.rate(hits.prometheus_name, RATE)
        panels.append(
            Panel(
                "Cache hit rate",
                "timeseries",
                (Target(f"{hit_rate}\n/\n({hit_rate} + {q.rate(misses.prometheus_name, RATE)})", "hit rate"),),
                "percentunit",
                "Share of cache lookups that hit.",
                width=12,
            )
        )
    return panels


_DASHBOARDS = (
    ("api-overview", "API overview", _api_overview),
    ("business", "Business metrics", _business),
    ("workers", "Workers and jobs", _workers),
    ("data", "Database and cache", _data),
)


def _render(uid: str, title: str, panels: Sequence[Panel], options: DashboardOptions) -> dict[str, Any]:
    try:
        from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
        from grafana_foundation_sdk.cog.encoder import JSONEncoder
        from grafana_foundation_sdk.models import dashboard as model
        from grafana_foundation_sdk.models import prometheus as prometheus_model
    except ImportError as exc:
        raise ImportError(
            'signalfire dashboards needs grafana-foundation-sdk: pip install "signalfire[dashboards]"'
        ) from exc

    datasource = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
    board = (
        dashboard.Dashboard(f"{options.title_prefix} / {title}" if options.title_prefix else title)
        .uid(f"{options.uid_prefix}-{uid}")
        .tags(list(options.tags))
        .refresh(options.refresh)
        .time("now-1h", "now")
        .timezone("browser")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            dashboard.QueryVariable("job")
            .label("Job")
            .datasource(datasource)
            .query("label_values(up, job)")
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(model.VariableOption(selected=True, text="All", value="$__all"))
        )
    )
    x = y = row_height = 0
    for panel_id, panel in enumerate(panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        builder: Any
        if panel.kind == "stat":
            builder = stat.Panel()
        elif panel.kind == "table":
            builder = table.Panel()
        else:
            builder = timeseries.Panel()
        builder = (
            builder.id(panel_id)
            .title(panel.title)
            .description(panel.description)
            .datasource(datasource)
            .unit(panel.unit)
            .grid_pos(model.GridPos(h=panel.height, w=panel.width, x=x, y=y))
        )
        for index, target in enumerate(panel.targets):
            query = prometheus.Dataquery().expr(target.expr).ref_id(chr(ord("A") + index)).datasource(datasource)
            if target.legend:
                query = query.legend_format(target.legend)
            if target.instant:
                query = query.instant().format(prometheus_model.PromQueryFormat.TABLE)
            builder = builder.with_target(query)
        if panel.thresholds:
            steps = [model.Threshold(value=None, color="green")]
            steps += [model.Threshold(value=value, color=color) for value, color in panel.thresholds]
            builder = builder.thresholds(dashboard.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(steps))
        if panel.kind == "table":
            builder = builder.with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
            builder = builder.with_transformation(
                model.DataTransformerConfig(
                    id_val="organize",
                    options={"excludeByName": {"Time": True}, "renameByName": dict(panel.rename)},
                )
            )
        board = board.with_panel(builder)
        x += panel.width
        row_height = max(row_height, panel.height)
    result: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return result


def dashboards(
    instruments: Iterable[InstrumentSpec], options: DashboardOptions | None = None
) -> dict[str, dict[str, Any]]:
    """The dashboards for the instruments of a registry, by file name (``signalfire-api-overview.json``, ...).

    A dashboard whose instruments the registry does not declare has no panels and is left out.
    """
    options = options or DashboardOptions()
    catalog = Catalog.of(instruments)
    query = Query(options.matchers)
    result = {}
    for uid, title, build in _DASHBOARDS:
        panels = build(catalog, query)
        if panels:
            result[f"{options.uid_prefix}-{uid}.json"] = _render(uid, title, panels, options)
    return result


def render_dashboards(instruments: Iterable[InstrumentSpec], options: DashboardOptions | None = None) -> dict[str, str]:
    """The dashboards as JSON text by file name; the same registry and options give byte-identical text."""
    return {
        name: json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for name, board in dashboards(instruments, options).items()
    }


def dashboard_queries(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a rendered dashboard's panels, in panel order."""
    return [t["expr"] for p in board.get("panels", []) for t in p.get("targets", []) if t.get("expr")]
