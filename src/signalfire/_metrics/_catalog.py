"""The predefined catalog: what web services measure, each with the helper that is the way to record it.

Durations are always seconds (``duration_s``); sizes are bytes; amounts are in the currency's major unit. Every
helper is safe to call before ``init_observability()`` (it does nothing) and never raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from signalfire._metrics._registry import HTTP_DURATION_BUCKETS, MetricsRegistry
from signalfire._web import _url

__all__ = ["Metrics"]

# Semantic-convention boundaries: database client operations and GenAI client operations (seconds), GenAI tokens.
DB_DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
GEN_AI_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
GEN_AI_TOKEN_BUCKETS = tuple(float(4**i) for i in range(14))  # 1 .. 67,108,864
JOB_DURATION_BUCKETS = (
    0.01,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)
AMOUNT_BUCKETS = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 25000.0)

_TOKEN_TYPES = {"input": "input", "output": "output", "prompt": "input", "completion": "output"}


class _Timer:
    """Times a block in seconds (sync ``with`` and ``async with``); on an exception records a failure, re-raises."""

    __slots__ = ("_done", "_start")

    def __init__(self) -> None:
        self._start = 0.0

    def __enter__(self) -> _Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._finish(time.perf_counter() - self._start, exc_type)

    async def __aenter__(self) -> _Timer:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def _finish(self, duration_s: float, exc_type: type[BaseException] | None) -> None:
        raise NotImplementedError


class JobTimer(_Timer):
    """What ``metrics.time_job(...)`` returns; set ``status`` inside the block to override success/failure."""

    __slots__ = ("_metrics", "job_type", "status")

    def __init__(self, metrics: Metrics, job_type: str) -> None:
        super().__init__()
        self._metrics = metrics
        self.job_type = job_type
        self.status: str | None = None

    def _finish(self, duration_s: float, exc_type: type[BaseException] | None) -> None:
        if exc_type is not None:
            self._metrics.record_job_failure(self.job_type, exc_type.__name__)
        status = self.status or ("failure" if exc_type is not None else "success")
        self._metrics.record_job(self.job_type, status, duration_s=duration_s)


class LlmCallTimer(_Timer):
    """What ``metrics.time_llm_call(...)`` returns; set ``input_tokens`` / ``output_tokens`` inside the block."""

    __slots__ = ("_metrics", "input_tokens", "model", "operation", "output_tokens", "provider")

    def __init__(self, metrics: Metrics, provider: str, model: str, operation: str) -> None:
        super().__init__()
        self._metrics = metrics
        self.provider = provider
        self.model = model
        self.operation = operation
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None

    def _finish(self, duration_s: float, exc_type: type[BaseException] | None) -> None:
        self._metrics.record_llm_call(
            self.provider,
            self.model,
            duration_s,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            operation=self.operation,
            error_type=exc_type.__name__ if exc_type is not None else None,
        )


class ExternalCallTimer(_Timer):
    """What ``metrics.time_external_call(...)`` returns."""

    __slots__ = ("_metrics", "endpoint", "service")

    def __init__(self, metrics: Metrics, service: str, endpoint: str) -> None:
        super().__init__()
        self._metrics = metrics
        self.service = service
        self.endpoint = endpoint

    def _finish(self, duration_s: float, exc_type: type[BaseException] | None) -> None:
        self._metrics.record_external_call(
            self.service, self.endpoint, duration_s, error_type=exc_type.__name__ if exc_type else None
        )


class Metrics(MetricsRegistry):
    """``signalfire.metrics``: the registry with the predefined catalog and its helpers.

    Environment: SIGNALFIRE_METRICS_PREFIX (namespace of business instruments), SIGNALFIRE_METRICS_MAX_SERIES (label
    sets per instrument, default 2000), SIGNALFIRE_METRICS_PATH / SIGNALFIRE_METRICS_PORT (Prometheus exposition),
    PROMETHEUS_MULTIPROC_DIR (workers), OTEL_EXPORTER_OTLP_METRICS_ENDPOINT (OTLP push).

    Example::

        from signalfire import metrics

        metrics.record_payment(amount=49.0, currency="USD", status="succeeded")
        with metrics.time_job("sync_availability"):
            pass
    """

    def __init__(self) -> None:
        super().__init__()
        d = self.declare
        # --- HTTP server (recorded by the ASGI middleware) ----------------------------------------------------------
        self.http_server_duration = d(
            "http.server.request.duration", "histogram", unit="s", category="http",
            description="Duration of HTTP server requests; its _count is the request count.",
            labels=(
                "http.request.method", "http.route", "http.response.status_code", "error.type", "url.scheme",
                "network.protocol.version",
            ),
            buckets=HTTP_DURATION_BUCKETS,
        )  # fmt: skip
        self.http_server_active = d(
            "http.server.active_requests", "updown_counter", unit="{request}", category="http",
            description="HTTP server requests in flight.", labels=("http.request.method", "url.scheme"),
            multiprocess_mode="livesum",
        )  # fmt: skip
        # --- database ----------------------------------------------------------------------------------------------
        self._db_duration = d(
            "db.client.operation.duration", "histogram", unit="s", category="db",
            description="Duration of database client operations.",
            labels=("db.system.name", "db.operation.name", "db.collection.name"), buckets=DB_DURATION_BUCKETS,
        )  # fmt: skip
        self._db_connections = d(
            "db.client.connection.count", "gauge", unit="{connection}", category="db",
            description="Connections in the pool by state (used, idle).",
            labels=("db.client.connection.pool.name", "db.client.connection.state"),
            allowed_values={"db.client.connection.state": {"used", "idle"}}, multiprocess_mode="livesum",
        )  # fmt: skip
        # --- cache -------------------------------------------------------------------------------------------------
        self._cache_hits = d(
            "cache.hits", "counter", unit="{hit}", category="cache",
            description="Cache lookups that found a value, by key type.", labels=("key_type",),
        )  # fmt: skip
        self._cache_misses = d(
            "cache.misses", "counter", unit="{miss}", category="cache",
            description="Cache lookups that found nothing, by key type.", labels=("key_type",),
        )  # fmt: skip
        # --- background jobs and queues ----------------------------------------------------------------------------
        self._jobs_processed = d(
            "jobs.processed", "counter", unit="{job}", category="jobs",
            description="Background jobs finished, by type and status.", labels=("job_type", "status"),
        )  # fmt: skip
        self._jobs_duration = d(
            "jobs.duration", "histogram", unit="s", category="jobs",
            description="Duration of background jobs.", labels=("job_type", "status"), buckets=JOB_DURATION_BUCKETS,
        )  # fmt: skip
        self._jobs_failures = d(
            "jobs.failures", "counter", unit="{failure}", category="jobs",
            description="Background job failures, by type and reason.", labels=("job_type", "reason"),
        )  # fmt: skip
        self._queue_depth = d(
            "jobs.queue.depth", "gauge", unit="{job}", category="jobs",
            description="Jobs in a queue by state (waiting, active, failed).", labels=("queue", "state"),
            allowed_values={"state": {"waiting", "active", "failed"}},
            multiprocess_mode="livemax",  # every worker sees the same queue: summing would multiply it
        )  # fmt: skip
        # --- payments ----------------------------------------------------------------------------------------------
        self._payments = d(
            "payments.processed", "counter", unit="{payment}", category="payments",
            description="Payments, by status and currency.", labels=("status", "currency"),
        )  # fmt: skip
        self._payments_amount = d(
            "payments.amount", "histogram", category="payments",
            description="Payment amounts in the major unit of their currency.", labels=("currency", "status"),
            buckets=AMOUNT_BUCKETS,
        )  # fmt: skip
        self._payments_failures = d(
            "payments.failures", "counter", unit="{payment}", category="payments",
            description="Failed payments, by reason and currency.", labels=("reason", "currency"),
        )  # fmt: skip
        # --- orders / bookings -------------------------------------------------------------------------------------
        self._orders = d(
            "orders.created", "counter", unit="{order}", category="orders",
            description="Orders or bookings created, by source and status.", labels=("source", "status"),
        )  # fmt: skip
        self._orders_value = d(
            "orders.value", "histogram", category="orders",
            description="Order value in the major unit of its currency.", labels=("currency", "source"),
            buckets=AMOUNT_BUCKETS,
        )  # fmt: skip
        # --- users -------------------------------------------------------------------------------------------------
        self._logins = d(
            "users.logins", "counter", unit="{login}", category="users",
            description="Login attempts, by provider and status.", labels=("provider", "status"),
            allowed_values={"status": {"success", "failure"}},
        )  # fmt: skip
        self._sessions = d(
            "users.sessions.active", "updown_counter", unit="{session}", category="users",
            description="Active user sessions.", multiprocess_mode="livesum",
        )  # fmt: skip
        self._signups = d(
            "users.signups", "counter", unit="{signup}", category="users",
            description="Sign-ups, by source.", labels=("source",),
        )  # fmt: skip
        self._user_actions = d(
            "users.actions", "counter", unit="{action}", category="users",
            description="User actions, by action and resource type.", labels=("action", "resource_type"),
        )  # fmt: skip
        # --- AI / LLM calls (OpenTelemetry GenAI semantic conventions) ---------------------------------------------
        self._llm_duration = d(
            "gen_ai.client.operation.duration", "histogram", unit="s", category="ai",
            description="Duration of GenAI client operations; its _count is the call count, error.type the status.",
            labels=("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "error.type"),
            buckets=GEN_AI_DURATION_BUCKETS,
        )  # fmt: skip
        self._llm_tokens = d(
            "gen_ai.client.token.usage", "histogram", unit="{token}", category="ai",
            description="Tokens used per GenAI operation, by type (input = prompt, output = completion).",
            labels=("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.token.type"),
            allowed_values={"gen_ai.token.type": {"input", "output"}}, buckets=GEN_AI_TOKEN_BUCKETS,
        )  # fmt: skip
        # --- storage -----------------------------------------------------------------------------------------------
        self._storage_used = d(
            "storage.used", "gauge", unit="By", category="storage",
            description="Bytes used in a store.", labels=("store",), multiprocess_mode="livemax",
        )  # fmt: skip
        self._uploads = d(
            "storage.uploads", "counter", unit="{file}", category="storage",
            description="Files uploaded, by file type.", labels=("file_type",),
        )  # fmt: skip
        self._downloads = d(
            "storage.downloads", "counter", unit="{file}", category="storage",
            description="Files downloaded, by file type.", labels=("file_type",),
        )  # fmt: skip
        self._uploaded_bytes = d(
            "storage.uploaded", "counter", unit="By", category="storage",
            description="Bytes uploaded, by file type.", labels=("file_type",),
        )  # fmt: skip
        self._downloaded_bytes = d(
            "storage.downloaded", "counter", unit="By", category="storage",
            description="Bytes downloaded, by file type.", labels=("file_type",),
        )  # fmt: skip
        # --- external APIs -----------------------------------------------------------------------------------------
        self._external_duration = d(
            "external.request.duration", "histogram", unit="s", category="external",
            description="Duration of calls to external APIs, by service and endpoint.",
            labels=("service", "endpoint"), buckets=HTTP_DURATION_BUCKETS,
        )  # fmt: skip
        self._external_errors = d(
            "external.request.errors", "counter", unit="{error}", category="external",
            description="Failed calls to external APIs, by service, endpoint and error type.",
            labels=("service", "endpoint", "error.type"),
        )  # fmt: skip
        # --- signalfire itself -------------------------------------------------------------------------------------
        self._dropped_counter = d(
            "signalfire.telemetry.dropped", "counter", unit="{item}", category="signalfire",
            description="Telemetry signalfire had to drop, by signal and reason.", labels=("signal", "reason"),
        )  # fmt: skip
        self._overflow_counter = d(
            "signalfire.metrics.series_overflow", "counter", unit="{measurement}", category="signalfire",
            description="Measurements recorded in a metric's overflow series (label sets beyond the cap).",
            labels=("metric",),
        )  # fmt: skip
        self._rejected_counter = d(
            "signalfire.metrics.labels_rejected", "counter", unit="{measurement}", category="signalfire",
            description="Label problems (undeclared label, disallowed value, ...) by metric and reason.",
            labels=("metric", "reason"),
        )  # fmt: skip

    # --- HTTP --------------------------------------------------------------------------------------------------------
    def record_http_request(
        self,
        method: str,
        route: str,
        status_code: int,
        duration_s: float,
        error_type: str | None = None,
        *,
        scheme: str = "http",
        protocol_version: str = "",
    ) -> None:
        """Record one HTTP server request yourself (frameworks without the ASGI middleware): ``route`` must be the
        route template (``/items/{item_id}``), never the raw path; ``""`` when no route matched (no ``http.route``)."""
        try:
            # the methods the semantic conventions name; any other is _OTHER (bounded by construction)
            method = _url.http_method(method)
            if error_type is None:
                error_type = _url.error_type_of_status(status_code)
            key = (method, route, status_code, error_type or "", scheme, protocol_version)
            self.http_server_duration._child(key).record(duration_s)
        except Exception as exc:
            self.http_server_duration._failed(exc)

    # --- database ----------------------------------------------------------------------------------------------------
    def record_db_query(self, operation: str, table: str, duration_s: float, system: str = "other_sql") -> None:
        """One database operation: ``operation`` (SELECT, INSERT, ...), ``table`` and its duration in seconds;
        ``system`` is the OpenTelemetry db.system.name (postgresql, mysql, sqlite, redis, ...).

        Example::

            metrics.record_db_query("SELECT", "bookings", 0.0042, system="postgresql")
        """
        try:
            self._db_duration._child((system, operation, table)).record(duration_s)
        except Exception as exc:
            self._db_duration._failed(exc)

    def set_db_pool(self, used: int, idle: int, pool: str = "default") -> None:
        """Set the connections of a pool now: ``used`` (checked out) and ``idle``. Prefer ``observe_db_pool`` when
        the pool can be asked at scrape time."""
        try:
            self._db_connections._child((pool, "used")).set(used)
            self._db_connections._child((pool, "idle")).set(idle)
        except Exception as exc:
            self._db_connections._failed(exc)

    def observe_db_pool(self, callback: Callable[[], Mapping[str, int]], pool: str = "default") -> Callable[[], None]:
        """Read a pool's connections at every scrape / OTLP collection from ``callback``, which returns
        ``{"used": n, "idle": m}`` (``"active"`` is accepted for used). Returns a function that stops observing.

        Example::

            stop = metrics.observe_db_pool(lambda: {"used": 3, "idle": 7}, pool="main")
            stop()
        """

        def read() -> list[tuple[float, dict[str, str]]]:
            counts = callback()
            used = counts.get("used", counts.get("active", 0))
            state = "db.client.connection.state"
            name = "db.client.connection.pool.name"
            return [(used, {name: pool, state: "used"}), (counts.get("idle", 0), {name: pool, state: "idle"})]

        return self._db_connections.observe_with(read)

    # --- cache -------------------------------------------------------------------------------------------------------
    def record_cache_hit(self, key_type: str) -> None:
        """A cache lookup that found a value; ``key_type`` is the kind of key (``user``, ``availability``), never
        the key itself."""
        try:
            self._cache_hits._child((key_type,)).add(1)
        except Exception as exc:
            self._cache_hits._failed(exc)

    def record_cache_miss(self, key_type: str) -> None:
        """A cache lookup that found nothing; ``key_type`` as for ``record_cache_hit``."""
        try:
            self._cache_misses._child((key_type,)).add(1)
        except Exception as exc:
            self._cache_misses._failed(exc)

    # --- jobs --------------------------------------------------------------------------------------------------------
    def time_job(self, job_type: str) -> JobTimer:
        """Time a background job (``with`` or ``async with``): records its duration and ``jobs.processed`` with
        status ``success``, or ``failure`` plus ``jobs.failures`` (reason = the exception's class) if it raises.

        Example::

            with metrics.time_job("sync_availability"):
                pass
        """
        return JobTimer(self, job_type)

    def record_job(self, job_type: str, status: str = "success", duration_s: float | None = None) -> None:
        """A finished job, with its duration in seconds if known."""
        try:
            self._jobs_processed._child((job_type, status)).add(1)
            if duration_s is not None:
                self._jobs_duration._child((job_type, status)).record(duration_s)
        except Exception as exc:
            self._jobs_processed._failed(exc)

    def record_job_failure(self, job_type: str, reason: str) -> None:
        """A job failure with a short reason (an exception class, ``timeout``), not a message."""
        try:
            self._jobs_failures._child((job_type, reason)).add(1)
        except Exception as exc:
            self._jobs_failures._failed(exc)

    def observe_queue_depth(
        self, callback: Callable[[], Mapping[str, int]], queue: str = "default"
    ) -> Callable[[], None]:
        """Read a queue's depth at every scrape / OTLP collection from ``callback``, which returns counts by state:
        ``{"waiting": 12, "active": 2, "failed": 1}``. Returns a function that stops observing."""

        def read() -> list[tuple[float, dict[str, str]]]:
            return [(count, {"queue": queue, "state": state}) for state, count in callback().items()]

        return self._queue_depth.observe_with(read)

    # --- payments and orders -----------------------------------------------------------------------------------------
    def record_payment(
        self, amount: float, currency: str, status: str = "succeeded", reason: str | None = None
    ) -> None:
        """A payment of ``amount`` (major units: 49.0 is 49 dollars) in ``currency`` (ISO 4217) with its status;
        a ``reason`` (``card_declined``) also counts it in ``payments.failures``.

        Example::

            metrics.record_payment(amount=49.0, currency="USD", status="succeeded")
        """
        try:
            key = (status, currency)
            self._payments._child(key).add(1)
            self._payments_amount._child((currency, status)).record(amount)
            if reason is not None:
                self._payments_failures._child((reason, currency)).add(1)
        except Exception as exc:
            self._payments._failed(exc)

    def record_order(
        self, source: str, status: str = "created", value: float | None = None, currency: str = "USD"
    ) -> None:
        """An order or booking created through ``source`` (web, app, partner), with its value in major units."""
        try:
            self._orders._child((source, status)).add(1)
            if value is not None:
                self._orders_value._child((currency, source)).record(value)
        except Exception as exc:
            self._orders._failed(exc)

    # --- users -------------------------------------------------------------------------------------------------------
    def record_login(self, provider: str, success: bool = True) -> None:
        """A login attempt through ``provider`` (password, google, saml)."""
        try:
            self._logins._child((provider, "success" if success else "failure")).add(1)
        except Exception as exc:
            self._logins._failed(exc)

    def record_signup(self, source: str = "direct") -> None:
        """A sign-up, by source."""
        try:
            self._signups._child((source,)).add(1)
        except Exception as exc:
            self._signups._failed(exc)

    def record_user_action(self, action: str, resource_type: str) -> None:
        """A user action (``create``, ``share``) on a resource type (``document``)."""
        try:
            self._user_actions._child((action, resource_type)).add(1)
        except Exception as exc:
            self._user_actions._failed(exc)

    def session_started(self) -> None:
        """One more active session."""
        try:
            self._sessions._child(()).add(1)
        except Exception as exc:
            self._sessions._failed(exc)

    def session_ended(self) -> None:
        """One active session fewer."""
        try:
            self._sessions._child(()).add(-1)
        except Exception as exc:
            self._sessions._failed(exc)

    # --- AI / LLM ----------------------------------------------------------------------------------------------------
    def record_llm_call(
        self,
        provider: str,
        model: str,
        duration_s: float,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        operation: str = "chat",
        error_type: str | None = None,
    ) -> None:
        """One GenAI call (OpenTelemetry GenAI conventions): ``provider`` (openai, anthropic, ...), the requested
        ``model``, its duration in seconds, tokens used (input = prompt, output = completion) and ``error_type``
        when it failed.

        Example::

            metrics.record_llm_call("openai", "gpt-4o", 1.8, input_tokens=812, output_tokens=95)
        """
        try:
            self._llm_duration._child((operation, provider, model, error_type or "")).record(duration_s)
            if input_tokens is not None:
                self._llm_tokens._child((operation, provider, model, "input")).record(input_tokens)
            if output_tokens is not None:
                self._llm_tokens._child((operation, provider, model, "output")).record(output_tokens)
        except Exception as exc:
            self._llm_duration._failed(exc)

    def record_llm_tokens(
        self, provider: str, model: str, token_type: str, count: int, operation: str = "chat"
    ) -> None:
        """Tokens of one type (``input``/``prompt`` or ``output``/``completion``) used by one GenAI call."""
        try:
            kind = _TOKEN_TYPES.get(token_type, token_type)
            self._llm_tokens._child((operation, provider, model, kind)).record(count)
        except Exception as exc:
            self._llm_tokens._failed(exc)

    def time_llm_call(self, provider: str, model: str, operation: str = "chat") -> LlmCallTimer:
        """Time a GenAI call (``with`` / ``async with``); set ``input_tokens`` and ``output_tokens`` on the timer.

        Example::

            with metrics.time_llm_call("anthropic", "claude-sonnet-4") as call:
                call.input_tokens, call.output_tokens = 812, 95
        """
        return LlmCallTimer(self, provider, model, operation)

    # --- storage -----------------------------------------------------------------------------------------------------
    def set_storage_used(self, bytes_used: float, store: str = "default") -> None:
        """Bytes used in a store (bucket, volume) now."""
        try:
            self._storage_used._child((store,)).set(bytes_used)
        except Exception as exc:
            self._storage_used._failed(exc)

    def observe_storage_used(self, callback: Callable[[], float], store: str = "default") -> Callable[[], None]:
        """Read the bytes used in a store from ``callback`` at every scrape; returns a function that stops it."""
        return self._storage_used.observe_with(lambda: [(callback(), {"store": store})])

    def record_upload(self, file_type: str, size_bytes: int | None = None) -> None:
        """A file uploaded, by type (``pdf``, ``image``), with its size in bytes if known."""
        try:
            self._uploads._child((file_type,)).add(1)
            if size_bytes is not None:
                self._uploaded_bytes._child((file_type,)).add(size_bytes)
        except Exception as exc:
            self._uploads._failed(exc)

    def record_download(self, file_type: str, size_bytes: int | None = None) -> None:
        """A file downloaded, by type, with its size in bytes if known."""
        try:
            self._downloads._child((file_type,)).add(1)
            if size_bytes is not None:
                self._downloaded_bytes._child((file_type,)).add(size_bytes)
        except Exception as exc:
            self._downloads._failed(exc)

    # --- external APIs -----------------------------------------------------------------------------------------------
    def record_external_call(
        self, service: str, endpoint: str, duration_s: float, error_type: str | None = None
    ) -> None:
        """A call to an external API: ``service`` (stripe), ``endpoint`` as a template (``/v1/charges``), duration
        in seconds; ``error_type`` (timeout, http_503, an exception class) also counts an error."""
        try:
            self._external_duration._child((service, endpoint)).record(duration_s)
            if error_type is not None:
                self._external_errors._child((service, endpoint, error_type)).add(1)
        except Exception as exc:
            self._external_duration._failed(exc)

    def time_external_call(self, service: str, endpoint: str) -> ExternalCallTimer:
        """Time a call to an external API (``with`` / ``async with``); an exception counts an error."""
        return ExternalCallTimer(self, service, endpoint)

    # --- Prometheus exposition and multiprocess hooks -------------------------------------------------------------
    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The Prometheus exposition now, as (body, content type); ``accept`` chooses OpenMetrics (with exemplars)
        or the classic text format, as an HTTP Accept header does. Empty when Prometheus is not enabled."""
        from signalfire._metrics import _prometheus

        return _prometheus.render(accept)

    @staticmethod
    def gunicorn_child_exit(server: Any, worker: Any) -> None:
        """gunicorn's ``child_exit`` hook: a dead worker's live gauges leave PROMETHEUS_MULTIPROC_DIR.

        In ``gunicorn.conf.py``::

            from signalfire import metrics

            child_exit = metrics.gunicorn_child_exit
            on_starting = metrics.gunicorn_on_starting
        """
        from signalfire._metrics import _prometheus

        _prometheus.mark_process_dead(worker.pid)

    @staticmethod
    def gunicorn_on_starting(server: Any) -> None:
        """gunicorn's ``on_starting`` hook: empty PROMETHEUS_MULTIPROC_DIR so a restart does not add old counts."""
        from signalfire._metrics import _prometheus

        _prometheus.clear_multiprocess_dir()

    def __repr__(self) -> str:
        return f"<signalfire.metrics: {len(self._instruments)} instruments>"
