"""A stand-in for ``signalfire.metrics.instruments()`` shaped like its contract, for generator unit tests only."""

from __future__ import annotations

from dataclasses import dataclass

SECONDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


@dataclass(frozen=True)
class Spec:
    name: str
    prometheus_name: str
    kind: str
    unit: str
    description: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] | None
    category: str
    business: bool


def instruments(prefix: str = "") -> list[Spec]:
    """A small registry: HTTP, db, cache, jobs, payments, and one application instrument."""
    p = f"{prefix}_" if prefix else ""
    return [
        Spec(
            "http.server.request.duration",
            "http_server_request_duration_seconds",
            "histogram",
            "s",
            "HTTP server request duration",
            ("http.request.method", "http.route", "http.response.status_code", "error.type"),
            SECONDS,
            "http",
            False,
        ),
        Spec(
            "http.server.active_requests",
            "http_server_active_requests",
            "updown_counter",
            "{request}",
            "Requests in flight",
            ("http_request_method",),
            None,
            "http",
            False,
        ),
        Spec(
            "db.client.operation.duration",
            "db_client_operation_duration_seconds",
            "histogram",
            "s",
            "Query duration",
            ("db.system.name", "db.operation.name", "db.collection.name"),
            SECONDS,
            "db",
            False,
        ),
        Spec(
            "db.client.connection.count",
            "db_client_connection_count",
            "updown_counter",
            "{connection}",
            "Pool connections",
            ("state",),
            None,
            "db",
            False,
        ),
        Spec("cache.hits", "cache_hits_total", "counter", "{hit}", "Cache hits", ("key_type",), None, "cache", False),
        Spec(
            "cache.misses",
            "cache_misses_total",
            "counter",
            "{miss}",
            "Cache misses",
            ("key_type",),
            None,
            "cache",
            False,
        ),
        Spec(
            "jobs.processed",
            "jobs_processed_total",
            "counter",
            "{job}",
            "Jobs processed",
            ("job_type", "status"),
            None,
            "jobs",
            False,
        ),
        Spec(
            "jobs.duration",
            "jobs_duration_seconds",
            "histogram",
            "s",
            "Job duration",
            ("job_type",),
            SECONDS,
            "jobs",
            False,
        ),
        Spec(
            "jobs.failures",
            "jobs_failures_total",
            "counter",
            "{job}",
            "Job failures",
            ("job_type", "reason"),
            None,
            "jobs",
            False,
        ),
        Spec(
            "queue.depth",
            "queue_depth",
            "observable_gauge",
            "{job}",
            "Queue depth",
            ("queue", "state"),
            None,
            "jobs",
            False,
        ),
        Spec(
            "payments",
            f"{p}payments_total",
            "counter",
            "{payment}",
            "Payments",
            ("status", "currency"),
            None,
            "payments",
            True,
        ),
        Spec(
            "payments.failures",
            f"{p}payments_failures_total",
            "counter",
            "{payment}",
            "Payment failures",
            ("reason",),
            None,
            "payments",
            True,
        ),
        Spec(
            "payments.amount",
            f"{p}payments_amount",
            "histogram",
            "1",
            "Payment amount",
            ("currency",),
            (1.0, 10.0, 100.0),
            "payments",
            True,
        ),
        Spec(
            "bookings.created",
            f"{p}bookings_created_total",
            "counter",
            "{booking}",
            "Bookings",
            ("source",),
            None,
            "custom",
            True,
        ),
    ]
