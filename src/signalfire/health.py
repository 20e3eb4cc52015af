"""Health checks and the live / ready / deep endpoints that Kubernetes probes and load balancers call.

A :class:`HealthCheck` is a name, a sync or async function, whether it is critical, and a timeout. The function passes
by returning (``None``, ``True`` or a mapping of details) and fails by returning ``False`` or raising; raise
:class:`CheckFailed` to fail with details. ``init_observability(app, health_checks=[...])`` adds three endpoints:

- ``GET /health/live`` (SIGNALFIRE_HEALTH_LIVE_PATH): the process answers. 200, never calls a dependency.
- ``GET /health/ready`` (SIGNALFIRE_HEALTH_READY_PATH): the critical checks. 200 when all pass, 503 otherwise.
- ``GET /health/deep`` (SIGNALFIRE_HEALTH_DEEP_PATH): every check with its status, latency and details; ``healthy``,
  ``degraded`` (an optional check failed) or ``unhealthy`` (a critical check failed); 503 only when unhealthy.

Checks run concurrently, each within its timeout (SIGNALFIRE_HEALTH_TIMEOUT_SECONDS unless the check sets its own), so a
hung dependency fails its check at the timeout and the probe still answers. Sync checks run on their own daemon thread,
never on the event loop. Results are reused for SIGNALFIRE_HEALTH_CACHE_SECONDS so a storm of probes costs each
dependency at most one call per period, and concurrent probes share one call in flight. Error messages are scrubbed:
a connection string's password never reaches a response.

Example::

    from fastapi import FastAPI
    import signalfire
    from signalfire import health

    app = FastAPI()
    signalfire.init_observability(app, health_checks=[
        health.database(engine),
        health.redis(redis_client, critical=False),
        health.disk_space("/var/lib/app", min_free_percent=5),
        health.HealthCheck("payments", check_payments, critical=False, timeout=1.0),
    ])

The JSON shapes are documented in docs/health.md.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import datetime
import inspect
import logging
import math
import os
import re
import shutil
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from signalfire._compat import opentelemetry as compat
from signalfire._scrub import _policy as _scrub
from signalfire._settings import Settings

if TYPE_CHECKING:
    from fastapi import APIRouter
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

__all__ = [
    "CheckFailed",
    "CheckResult",
    "HealthCheck",
    "database",
    "disk_space",
    "http",
    "memory",
    "redis",
    "router",
]

_log = logging.getLogger("signalfire")

CheckStatus = Literal["pass", "fail"]
OverallStatus = Literal["healthy", "degraded", "unhealthy"]
CheckFunction = Callable[[], Any]

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_MAX_ERROR_CHARS = 500


class _TimedOut(Exception):
    """The check did not finish within its timeout (distinct from a TimeoutError the check itself raised)."""


class CheckFailed(Exception):
    """Raise from a check function to fail it with a message and details shown on the deep endpoint.

    Example::

        def queue_depth() -> dict[str, int]:
            depth = queue.qsize()
            if depth > 10_000:
                raise CheckFailed("queue backlog", details={"depth": depth})
            return {"depth": depth}
    """

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details: dict[str, Any] = dict(details or {})


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one run of a check, as the ready and deep endpoints report it.

    ``status`` is ``"pass"`` or ``"fail"``; ``latency_ms`` is how long the check took (its timeout when it timed out);
    ``error`` is the scrubbed failure message; ``checked_at`` is the Unix time the run finished.
    """

    name: str
    status: CheckStatus
    critical: bool
    latency_ms: float
    details: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    checked_at: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the check passed."""
        return self.status == "pass"

    def as_dict(self, *, details: bool = True) -> dict[str, Any]:
        """The JSON object for this result; without details and timestamp for the ready endpoint."""
        body: dict[str, Any] = {
            "status": self.status,
            "critical": self.critical,
            "latency_ms": round(self.latency_ms, 3),
        }
        if self.error is not None:
            body["error"] = self.error
        if details:
            body["checked_at"] = _iso(self.checked_at)
            body["details"] = dict(self.details)
        return body


class HealthCheck:
    """One dependency check: a name, a sync or async function, critical or optional, and a timeout in seconds.

    A critical check that fails makes ``/health/ready`` answer 503 and ``/health/deep`` report ``unhealthy``; an
    optional one only makes ``/health/deep`` report ``degraded``. ``timeout=None`` uses
    SIGNALFIRE_HEALTH_TIMEOUT_SECONDS (default 2 s). ``secrets`` are strings redacted from error messages in addition
    to what the scrubber finds (the built-in checks pass the passwords of the clients they check).

    Example::

        async def search_cluster() -> dict[str, str]:
            info = await es.cluster.health()
            if info["status"] == "red":
                raise CheckFailed("cluster is red")
            return {"status": info["status"]}

        HealthCheck("search", search_cluster, critical=False, timeout=1.5)
    """

    __slots__ = (
        "__weakref__",
        "_async",
        "_last",
        "_last_at",
        "_lock",
        "_task",
        "_thread_future",
        "critical",
        "function",
        "name",
        "secrets",
        "timeout",
    )

    def __init__(
        self,
        name: str,
        function: CheckFunction,
        *,
        critical: bool = True,
        timeout: float | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"health check name {name!r}: expected 1 to 64 letters, digits, '_', '.', ':' or '-'")
        if not callable(function):
            raise TypeError(f"health check {name!r}: expected a function, got {type(function).__name__}")
        if timeout is not None and (not isinstance(timeout, int | float) or not 0 < timeout < math.inf):
            raise ValueError(f"health check {name!r}: timeout={timeout!r}, expected a number of seconds greater than 0")
        self.name = name
        self.function = function
        self.critical = bool(critical)
        self.timeout = None if timeout is None else float(timeout)
        self.secrets = tuple(s for s in secrets if s)
        self._async = _is_async(function)
        self._lock = threading.Lock()
        self._last: CheckResult | None = None
        self._last_at = -math.inf
        # At most one run of a check is in flight: probes arriving meanwhile wait for it instead of starting another,
        # and a run that hangs forever holds one thread (or task), not one per probe.
        self._thread_future: concurrent.futures.Future[CheckResult] | None = None
        self._task: asyncio.Task[CheckResult] | None = None

    def __repr__(self) -> str:
        kind = "critical" if self.critical else "optional"
        return f"HealthCheck({self.name!r}, {kind}, timeout={self.timeout})"

    @property
    def last_result(self) -> CheckResult | None:
        """The most recent result, or None before the first run."""
        return self._last

    async def run(self, *, timeout: float = 2.0, cache_seconds: float = 0.0) -> CheckResult:
        """Run the check (or reuse a result younger than ``cache_seconds``) within its timeout; never raises."""
        last = self._last
        if last is not None and time.monotonic() - self._last_at < cache_seconds:
            return last
        limit = self.timeout if self.timeout is not None else timeout
        try:
            return await (self._join_async(limit) if self._async else self._join_sync(limit))
        except (_TimedOut, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and _current_task_cancelling():
                raise  # the probe itself was cancelled (client gone, server stopping): not the check's outcome
            result = self._failed(f"timed out after {limit:g} s", {}, limit)
            self._store(result)
            return result

    # A run is shared: it stores its own result the moment it finishes, so a probe arriving after that reuses it
    # (within the cache period) instead of starting another run; probes arriving while it runs wait for it.
    async def _join_sync(self, limit: float) -> CheckResult:
        with self._lock:
            future = self._thread_future
            if future is None or future.done():
                future = concurrent.futures.Future()
                self._thread_future = future
                threading.Thread(
                    target=self._run_in_thread,
                    args=(future, _quiet_context()),
                    name=f"signalfire-health-{self.name}",
                    daemon=True,  # a check blocked forever must not keep the process from exiting
                ).start()
        waiter = asyncio.wrap_future(future)
        try:
            done, _ = await asyncio.wait({waiter}, timeout=limit)
        finally:
            if not waiter.done():
                # Cancelling the wrapper (not the thread, which cannot be) stops it from delivering a late result to
                # a loop that may be closed by then.
                waiter.cancel()
        if not done:
            raise _TimedOut
        return waiter.result()

    async def _join_async(self, limit: float) -> CheckResult:
        loop = asyncio.get_running_loop()
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(self._run_async(), context=_quiet_context())
            task.add_done_callback(_consume)
            self._task = task
        done, _ = await asyncio.wait({task}, timeout=limit)
        if not done:
            # Not awaited: a check that swallows its cancellation must not hang the probe.
            task.cancel()
            raise _TimedOut
        return task.result()

    def _run_in_thread(self, future: concurrent.futures.Future[CheckResult], context: contextvars.Context) -> None:
        if not future.set_running_or_notify_cancel():
            return
        started = time.perf_counter()
        try:
            value = context.run(self.function)
            if inspect.isawaitable(value):  # a sync callable that returned a coroutine: run it on this thread
                value = asyncio.run(_await(value))
            result = self._passed(value, time.perf_counter() - started)
        except BaseException as exc:  # a check's SystemExit is its failure, not the process's
            result = self._from_exception(exc, time.perf_counter() - started)
        self._store(result)
        future.set_result(result)

    async def _run_async(self) -> CheckResult:
        started = time.perf_counter()
        try:
            result = self._passed(await self.function(), time.perf_counter() - started)
        except asyncio.CancelledError:
            raise  # the waiter that timed out records the timeout
        except Exception as exc:
            result = self._from_exception(exc, time.perf_counter() - started)
        self._store(result)
        return result

    def _store(self, result: CheckResult) -> None:
        with self._lock:
            self._last = result
            self._last_at = time.monotonic()
        _reporting.add(self)

    def _from_exception(self, exc: BaseException, elapsed: float) -> CheckResult:
        if isinstance(exc, CheckFailed):
            return self._failed(str(exc), exc.details, elapsed)
        return self._failed(_describe_exception(exc), {}, elapsed)

    def _passed(self, value: Any, elapsed: float) -> CheckResult:
        if value is False:
            return self._failed("check returned False", {}, elapsed)
        details = dict(value) if isinstance(value, Mapping) else {}
        return CheckResult(
            name=self.name,
            status="pass",
            critical=self.critical,
            latency_ms=elapsed * 1000,
            details=_scrub_details(details, self.secrets),
            checked_at=time.time(),
        )

    def _failed(self, message: str, details: Mapping[str, Any], elapsed: float) -> CheckResult:
        return CheckResult(
            name=self.name,
            status="fail",
            critical=self.critical,
            latency_ms=elapsed * 1000,
            details=_scrub_details(details, self.secrets),
            error=_scrub_text(message, self.secrets)[:_MAX_ERROR_CHARS],
            checked_at=time.time(),
        )


# --- running --------------------------------------------------------------------------------------------------------
def _is_async(function: Callable[..., Any]) -> bool:
    target = getattr(function, "__call__", None) if not inspect.isroutine(function) else function  # noqa: B004
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(target)


async def _await(value: Awaitable[Any]) -> Any:
    return await value


def _consume(task: asyncio.Task[Any]) -> None:
    # A check that fails after its probe gave up would otherwise log "Task exception was never retrieved".
    if not task.cancelled():
        task.exception()


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


# Checks run in a context that turns instrumentation off and whose parent span is not sampled, so an instrumented
# database or Redis client, or the check's own signalfire.span(), records nothing for a probe: probes are excluded
# from traces by default and should not leave orphan root spans either.
_UNSAMPLED_PARENT = NonRecordingSpan(
    SpanContext(
        trace_id=0x5369676E616C66697265206865616C74,
        span_id=0x6865616C74687A7A,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.DEFAULT),
    )
)
_QUIET = trace.set_span_in_context(_UNSAMPLED_PARENT, otel_context.Context())
for _key in compat.suppress_instrumentation_keys():
    _QUIET = otel_context.set_value(_key, True, _QUIET)


def _quiet_context() -> contextvars.Context:
    context = contextvars.copy_context()
    context.run(otel_context.attach, _QUIET)
    return context


# --- scrubbing ------------------------------------------------------------------------------------------------------
# The one policy (_scrub._policy) decides what a probe may show, as in a log line or a span; a check adds only its
# own secrets (the passwords of the clients it checks, its request's header values). What is health's is the shape:
# details become JSON-ready (objects by their repr), bounded in depth.
_MAX_DETAIL_DEPTH = 16


def _scrub_text(text: str, secrets: Sequence[str] = ()) -> str:
    return _scrub.scrub_text(text, secrets)


def _scrub_details(details: Mapping[str, Any], secrets: Sequence[str], depth: int = 0) -> dict[str, Any]:
    try:
        clean = {_scrub_text(str(key), secrets): _scrub_value(value, secrets, depth) for key, value in details.items()}
        # The policy also knows sensitive keys: {"password": ...} is redacted whatever its value looks like.
        scrubbed = _scrub.active().scrub(clean)
    except Exception:  # a failure must not fail the probe, nor show what it could not judge
        return {"details": _scrub.UNSCRUBBABLE}
    return scrubbed if isinstance(scrubbed, dict) else {"details": _scrub.UNSCRUBBABLE}


def _scrub_value(value: Any, secrets: Sequence[str], depth: int) -> Any:
    """A JSON-ready, scrubbed copy: strings scrubbed, containers walked, anything else shown by its repr."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _scrub_text(value, secrets)
    if depth >= _MAX_DETAIL_DEPTH:
        return _scrub.marker("too_deep")
    if isinstance(value, Mapping):
        return _scrub_details(value, secrets, depth + 1)
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub_value(item, secrets, depth + 1) for item in value]
    try:
        shown = repr(value)
    except Exception:
        return _scrub.UNSCRUBBABLE
    return _scrub_text(shown, secrets)


def _describe_exception(exc: BaseException) -> str:
    try:
        message = str(exc).strip()
    except Exception:  # an exception whose str() raises still fails its check, by its type
        message = ""
    kind = type(exc).__name__
    return f"{kind}: {message}" if message else kind


# --- gauge ----------------------------------------------------------------------------------------------------------
# Every check that has a result, for the gauge's callback. Weak: a check dropped by the app drops its series.
_reporting: weakref.WeakSet[HealthCheck] = weakref.WeakSet()


def _observe_statuses() -> list[tuple[float, dict[str, str]]]:
    latest: dict[str, tuple[float, CheckResult]] = {}
    for check in list(_reporting):
        result = check._last
        if result is not None and (check.name not in latest or latest[check.name][0] < check._last_at):
            latest[check.name] = (check._last_at, result)
    return [(1.0 if result.ok else 0.0, {"check": name}) for name, (_, result) in sorted(latest.items())]


def _declare_gauge() -> None:
    from signalfire._metrics import metrics

    metrics.declare(
        "health.check.status",
        "gauge",
        description="1 while the health check named by the check label passes, 0 while it fails (its latest run).",
        labels=("check",),
        category="health",
        business=False,
        # Under PROMETHEUS_MULTIPROC_DIR each worker runs its own checks; one worker failing shows as 0.
        multiprocess_mode="livemin",
        callback=_observe_statuses,
    )


_declare_gauge()


# --- reports and endpoints ------------------------------------------------------------------------------------------
def _iso(unix: float) -> str:
    moment = datetime.datetime.fromtimestamp(unix, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _overall(results: Iterable[CheckResult]) -> OverallStatus:
    status: OverallStatus = "healthy"
    for result in results:
        if not result.ok:
            if result.critical:
                return "unhealthy"
            status = "degraded"
    return status


def _process_started() -> float:
    """The monotonic time the process started (from /proc on Linux); elsewhere, when signalfire was imported."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            # The command name (field 2) may contain spaces and parentheses; the fields after the last ')' do not.
            fields = stat.read().rsplit(b")", 1)[1].split()
        with open("/proc/uptime", "rb") as uptime:
            system_uptime = float(uptime.read().split()[0])
        ticks = os.sysconf("SC_CLK_TCK")
        process_uptime = system_uptime - int(fields[19]) / ticks
        return time.monotonic() - max(0.0, process_uptime)
    except (OSError, ValueError, IndexError, AttributeError):
        return _IMPORTED_AT


_IMPORTED_AT = time.monotonic()


class _Health:
    """The checks of one app and the settings its endpoints answer with."""

    def __init__(self, checks: Sequence[HealthCheck], settings: Settings) -> None:
        self.started = _process_started()
        self.configure(settings, checks)

    def configure(self, settings: Settings, checks: Sequence[HealthCheck] | None) -> None:
        """Take new settings (paths excepted: the routes exist) and, unless None, a new list of checks."""
        self.settings = settings
        if checks is not None:
            self.checks = tuple(checks)
            self.critical = tuple(c for c in self.checks if c.critical)

    async def run(self, checks: Sequence[HealthCheck]) -> list[CheckResult]:
        timeout, cache = self.settings.health_timeout_s, self.settings.health_cache_s
        return list(await asyncio.gather(*(c.run(timeout=timeout, cache_seconds=cache) for c in checks)))

    async def live(self, request: Request) -> Response:
        return _json({"status": "healthy"}, 200)

    async def ready(self, request: Request) -> Response:
        results = await self.run(self.critical)
        status = _overall(results)
        body = {"status": status, "checks": {r.name: r.as_dict(details=False) for r in results}}
        return _json(body, 200 if status == "healthy" else 503)

    async def deep(self, request: Request) -> Response:
        results = await self.run(self.checks)
        status = _overall(results)
        settings = self.settings
        body = {
            "status": status,
            "service": settings.service_name,
            "version": settings.service_version,
            "environment": settings.environment,
            "uptime_s": round(time.monotonic() - self.started, 3),
            "checks": {r.name: r.as_dict(details=True) for r in results},
        }
        return _json(body, 503 if status == "unhealthy" else 200)

    def routes(self) -> list[BaseRoute]:
        try:
            from starlette.routing import Route
        except ImportError as exc:
            raise ImportError('signalfire.health endpoints need starlette: pip install "signalfire[fastapi]"') from exc
        settings = self.settings
        return [
            Route(settings.health_live_path, self.live, methods=["GET"], name="signalfire_health_live"),
            Route(settings.health_ready_path, self.ready, methods=["GET"], name="signalfire_health_ready"),
            Route(settings.health_deep_path, self.deep, methods=["GET"], name="signalfire_health_deep"),
        ]


def _json(body: Mapping[str, Any], status_code: int) -> Response:
    from starlette.responses import Response

    return Response(
        orjson.dumps(body),
        status_code=status_code,
        media_type="application/json",
        # A cached "healthy" in front of a dead pod is worse than no probe.
        headers={"cache-control": "no-store"},
    )


def _as_checks(checks: Iterable[HealthCheck | CheckFunction]) -> list[HealthCheck]:
    result: list[HealthCheck] = []
    for item in checks:
        if isinstance(item, HealthCheck):
            result.append(item)
        elif callable(item):
            result.append(HealthCheck(getattr(item, "__name__", type(item).__name__), item))
        else:
            raise TypeError(f"health_checks: expected HealthCheck objects or functions, got {item!r}")
    names = [c.name for c in result]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"health_checks: each check needs its own name; repeated: {', '.join(duplicates)}")
    return result


def _resolve_settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from signalfire import _instance

    running = _instance.current()
    return running.settings if running is not None else Settings.resolve()


def router(checks: Iterable[HealthCheck | CheckFunction] = (), *, settings: Settings | None = None) -> APIRouter:
    """A FastAPI router with the live, ready and deep endpoints for ``checks``, to include by hand.

    ``init_observability(app, health_checks=...)`` adds the same endpoints for you; use this when you want them on
    another app or without signalfire's telemetry. Paths, timeout and cache come from ``settings`` (default: those of
    the running signalfire, else the environment: SIGNALFIRE_HEALTH_LIVE_PATH, SIGNALFIRE_HEALTH_READY_PATH,
    SIGNALFIRE_HEALTH_DEEP_PATH, SIGNALFIRE_HEALTH_TIMEOUT_SECONDS, SIGNALFIRE_HEALTH_CACHE_SECONDS).

    Example::

        app.include_router(signalfire.health.router([health.redis(client)]))
    """
    try:
        from fastapi import APIRouter
    except ImportError as exc:
        raise ImportError('signalfire.health.router() needs fastapi: pip install "signalfire[fastapi]"') from exc
    state = _Health(_as_checks(checks), _resolve_settings(settings))
    return APIRouter(routes=state.routes())


def install(obs: Any, app: Any, checks: Iterable[HealthCheck | CheckFunction] | None) -> None:
    """Add the endpoints to ``app`` (FastAPI or Starlette); called by init_observability.

    The endpoints are added once per app, at the paths in force then. Called again (a second init_observability with
    this app, or a new one after shutdown), it takes the new settings and, when ``checks`` is not None, the new checks.
    """
    routes = getattr(getattr(app, "router", None), "routes", None)
    if not isinstance(routes, list):
        _log.warning("signalfire: %s has no Starlette router; health endpoints were not added", type(app).__name__)
        return
    settings: Settings = obs.settings
    existing: _Health | None = getattr(app, "_signalfire_health", None)
    if existing is not None:
        existing.configure(settings, None if checks is None else _as_checks(checks))
        return
    _warn_if_traced(settings)
    state = _Health(_as_checks(checks or ()), settings)
    # In front of the app's own routes so a catch-all route (a single-page app's /{path:path}) cannot shadow the probes;
    # a path the app names itself stays the app's (here, and again when the app is first served: yield_to_app).
    routes[0:0] = [route for route in state.routes() if not _app_serves(app, route, obs.note_owner)]
    app._signalfire_health = state


def serves_path(app: Any, path: str) -> bool:
    """True when one of ``app``'s own routes answers exactly ``path``: a route of that template, or a mount at it.

    A parameterised catch-all (a single-page app's ``/{path:path}``) does not count: signalfire's routes go in front
    of it, and the application keeps every path it names.
    """
    routes = getattr(getattr(app, "router", None), "routes", None)
    if not isinstance(routes, list):
        return False
    for route in routes:
        if (getattr(route, "name", None) or "").startswith("signalfire_"):
            continue
        template = getattr(route, "path", None)
        if not isinstance(template, str):
            continue
        if template == path or (type(route).__name__ == "Mount" and template.rstrip("/") == path.rstrip("/")):
            return True
    return False


def _app_serves(app: Any, route: Any, note: Any) -> bool:
    if not serves_path(app, route.path):
        return False
    _log.warning(
        "signalfire: %s already serves %s; signalfire's %s endpoint is left out (set %s to serve it elsewhere)",
        type(app).__name__,
        route.path,
        _ROUTE_VARIABLES[route.name][0],
        _ROUTE_VARIABLES[route.name][1],
    )
    note(
        "routes",
        f"{type(app).__name__}'s own {route.path}",
        f"kept: signalfire's {_ROUTE_VARIABLES[route.name][0]} endpoint is not served "
        f"({_ROUTE_VARIABLES[route.name][1]} moves it)",
    )
    return True


_ROUTE_VARIABLES = {
    "signalfire_health_live": ("liveness", "SIGNALFIRE_HEALTH_LIVE_PATH"),
    "signalfire_health_ready": ("readiness", "SIGNALFIRE_HEALTH_READY_PATH"),
    "signalfire_health_deep": ("deep health", "SIGNALFIRE_HEALTH_DEEP_PATH"),
}


def yield_to_app(app: Any, note: Any) -> None:
    """Take out signalfire's health routes whose path the app has come to serve itself since init (routes added after
    ``init_observability()``); called when the app's middleware stack is built, at its first request."""
    routes = getattr(getattr(app, "router", None), "routes", None)
    if not isinstance(routes, list) or getattr(app, "_signalfire_health", None) is None:
        return
    ours = [r for r in routes if getattr(r, "name", None) in _ROUTE_VARIABLES]
    for route in ours:
        if _app_serves(app, route, note):
            routes.remove(route)


def _warn_if_traced(settings: Settings) -> None:
    if not settings.excluded_paths:
        return  # SIGNALFIRE_EXCLUDED_PATHS=none: the user asked for probes to be traced
    from signalfire._web import _http

    matcher = _http.excluded_path_matcher(settings)
    variables = {
        "SIGNALFIRE_HEALTH_LIVE_PATH": settings.health_live_path,
        "SIGNALFIRE_HEALTH_READY_PATH": settings.health_ready_path,
        "SIGNALFIRE_HEALTH_DEEP_PATH": settings.health_deep_path,
    }
    for variable, path in variables.items():
        if matcher is None or not matcher.search(path):
            _log.warning(
                "signalfire: %s=%s is not in SIGNALFIRE_EXCLUDED_PATHS, so every probe is traced, counted and logged; "
                "add it there (e.g. SIGNALFIRE_EXCLUDED_PATHS=%s,/metrics)",
                variable,
                path,
                path,
            )


# --- built-in checks ------------------------------------------------------------------------------------------------
def database(
    engine: Any,
    *,
    name: str = "database",
    critical: bool = True,
    timeout: float | None = None,
) -> HealthCheck:
    """A check that runs ``SELECT 1`` on a SQLAlchemy ``Engine`` or ``AsyncEngine`` and reports its latency.

    The sync engine's query runs on the check's own thread; the async engine's on the event loop. The deep endpoint's
    details name the dialect; the engine's password is redacted from any error. Needs the ``sqlalchemy`` extra.

    Example::

        engine = sqlalchemy.create_engine("postgresql+psycopg://app:secret@db/app")
        health.database(engine, name="postgres")
    """
    try:
        import sqlalchemy
    except ImportError as exc:
        raise ImportError('health.database() needs sqlalchemy: pip install "signalfire[sqlalchemy]"') from exc
    # Whoever built an AsyncEngine has imported SQLAlchemy's asyncio module; importing it here would need greenlet,
    # which sync-only installations do not have.
    asyncio_ext = sys.modules.get("sqlalchemy.ext.asyncio")
    async_engine_type = getattr(asyncio_ext, "AsyncEngine", None)
    # Compiled per dialect: "SELECT 1", or "SELECT 1 FROM DUAL" where the dialect needs it.
    statement: Any = sqlalchemy.select(sqlalchemy.literal_column("1"))
    password = engine.url.password
    secrets = [str(password)] if password else []
    details = {"dialect": engine.dialect.name}
    check: CheckFunction
    if async_engine_type is not None and isinstance(engine, async_engine_type):
        async_engine = engine

        async def check_async_database() -> dict[str, Any]:
            async with async_engine.connect() as connection:
                await connection.execute(statement)
            return details

        check = check_async_database
    elif isinstance(engine, sqlalchemy.Engine):
        sync_engine = engine

        def check_database() -> dict[str, Any]:
            with sync_engine.connect() as connection:
                connection.execute(statement)
            return details

        check = check_database
    else:
        raise TypeError(f"health.database(): expected a SQLAlchemy Engine or AsyncEngine, got {type(engine).__name__}")
    return HealthCheck(name, check, critical=critical, timeout=timeout, secrets=secrets)


def redis(
    client: Any,
    *,
    name: str = "redis",
    critical: bool = True,
    timeout: float | None = None,
) -> HealthCheck:
    """A check that sends ``PING`` with a ``redis.Redis`` or ``redis.asyncio.Redis`` client.

    The sync client's ping runs on the check's own thread. The client's password is redacted from any error. Needs the
    ``redis`` extra.

    Example::

        health.redis(redis.Redis.from_url("redis://cache:6379/0"), critical=False)
    """
    try:
        import redis as redis_lib
        import redis.asyncio as redis_asyncio
    except ImportError as exc:
        raise ImportError('health.redis() needs redis: pip install "signalfire[redis]"') from exc
    pool = getattr(client, "connection_pool", None)
    password = getattr(pool, "connection_kwargs", {}).get("password") if pool is not None else None
    secrets = [str(password)] if password else []
    check: CheckFunction
    if isinstance(client, redis_asyncio.Redis):
        async_client = client

        async def check_async_redis() -> bool:
            return bool(await async_client.ping())

        check = check_async_redis
    elif isinstance(client, redis_lib.Redis):
        sync_client = client

        def check_redis() -> bool:
            return bool(sync_client.ping())

        check = check_redis
    else:
        raise TypeError(f"health.redis(): expected a redis.Redis or redis.asyncio.Redis, got {type(client).__name__}")
    return HealthCheck(name, check, critical=critical, timeout=timeout, secrets=secrets)


def disk_space(
    path: str | os.PathLike[str] = "/",
    *,
    min_free_percent: float | None = 10.0,
    min_free_bytes: int | None = None,
    name: str = "disk",
    critical: bool = False,
    timeout: float | None = None,
) -> HealthCheck:
    """A check that fails when the filesystem holding ``path`` has less free space than a threshold.

    Free space is what an unprivileged process may still use (``shutil.disk_usage``, on every platform). The check
    fails when free space is below ``min_free_percent`` of the total or below ``min_free_bytes``; pass None to drop a
    threshold. Optional by default: a filling disk degrades the service before it breaks it.

    Example::

        health.disk_space("/var/lib/app", min_free_percent=5, min_free_bytes=2 * 1024**3)
    """
    target = os.fspath(path)

    def check_disk_space() -> dict[str, Any]:
        usage = shutil.disk_usage(target)
        free_percent = 100.0 * usage.free / usage.total if usage.total else 0.0
        details = {
            "path": target,
            "free_bytes": usage.free,
            "total_bytes": usage.total,
            "free_percent": round(free_percent, 2),
        }
        if min_free_percent is not None and free_percent < min_free_percent:
            raise CheckFailed(f"{free_percent:.1f}% free, below {min_free_percent:g}%", details=details)
        if min_free_bytes is not None and usage.free < min_free_bytes:
            raise CheckFailed(f"{usage.free} bytes free, below {min_free_bytes}", details=details)
        return details

    return HealthCheck(name, check_disk_space, critical=critical, timeout=timeout)


def _rss_bytes() -> tuple[int, str] | None:
    """The process's resident memory and where it was read; None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"), "/proc/self/statm"
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Only the peak is available without /proc: kilobytes on most Unixes, bytes on macOS.
    return (peak if sys.platform == "darwin" else peak * 1024), "getrusage (peak)"


_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
# cgroup v1 reports "no limit" as a huge page-aligned number rather than "max".
_NO_LIMIT = 1 << 60


def _memory_limit() -> tuple[int, str] | None:
    """The container's memory limit (cgroup v2, then v1), else physical memory; None where neither can be read."""
    for path in _CGROUP_LIMITS:
        try:
            with open(path, "rb") as limit_file:
                raw = limit_file.read().strip()
        except OSError:
            continue
        if raw != b"max" and raw.isdigit() and 0 < int(raw) < _NO_LIMIT:
            return int(raw), "cgroup"
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "physical"
    except (AttributeError, ValueError, OSError):
        return None


def memory(
    *,
    max_percent: float | None = 90.0,
    max_bytes: int | None = None,
    name: str = "memory",
    critical: bool = False,
    timeout: float | None = None,
) -> HealthCheck:
    """A check that fails when this process's resident memory is above a threshold.

    On Linux the resident set size comes from /proc and the limit from the container's cgroup (v2 or v1), else the
    machine's physical memory, so ``max_percent`` means "percent of what the kernel will let us use" in a pod. On
    macOS and other Unixes only the peak resident size is available (``getrusage``); on Windows memory cannot be read
    without psutil and the check passes with ``"supported": false`` in its details. Optional by default.

    Example::

        health.memory(max_percent=85)
        health.memory(max_bytes=512 * 1024**2, max_percent=None)
    """

    def check_memory() -> dict[str, Any]:
        rss = _rss_bytes()
        if rss is None:
            return {"supported": False}
        used, source = rss
        details: dict[str, Any] = {"rss_bytes": used, "source": source}
        limit = _memory_limit()
        percent: float | None = None
        if limit is not None:
            details["limit_bytes"], details["limit_source"] = limit
            percent = 100.0 * used / limit[0]
            details["used_percent"] = round(percent, 2)
        if max_percent is not None and percent is not None and percent > max_percent:
            raise CheckFailed(f"{percent:.1f}% of the memory limit in use, above {max_percent:g}%", details=details)
        if max_bytes is not None and used > max_bytes:
            raise CheckFailed(f"{used} bytes resident, above {max_bytes}", details=details)
        return details

    return HealthCheck(name, check_memory, critical=critical, timeout=timeout)


def http(
    url: str,
    *,
    name: str | None = None,
    method: str = "GET",
    expected_status: Iterable[int] | None = None,
    headers: Mapping[str, str] | None = None,
    critical: bool = False,
    timeout: float | None = None,
) -> HealthCheck:
    """A check that requests ``url`` with httpx and passes on a 2xx or 3xx answer (or one of ``expected_status``).

    The name defaults to the URL's host. Optional by default: taking every replica out of the load balancer because a
    third-party API is down turns its outage into yours. Header values and the URL's password are redacted from any
    error. Needs the ``httpx`` extra.

    Example::

        health.http("http://payments.internal/health/ready", name="payments", critical=True)
    """
    try:
        import httpx
    except ImportError as exc:
        raise ImportError('health.http() needs httpx: pip install "signalfire[httpx]"') from exc
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"health.http(): expected an http:// or https:// URL, got {_scrub_text(url)!r}")
    accepted = frozenset(expected_status) if expected_status is not None else None
    request_headers = dict(headers or {})
    secrets = [v for v in request_headers.values() if v]
    if parts.password:
        secrets.append(parts.password)
    # The client's own timeout ends the request shortly after the check gives up, so no connection lingers.
    client_timeout = timeout if timeout is not None else 10.0

    async def check_http() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=client_timeout, follow_redirects=False) as client:
            response = await client.request(method, url, headers=request_headers)
        ok = response.status_code in accepted if accepted is not None else 200 <= response.status_code < 400
        details = {"status_code": response.status_code}
        if not ok:
            raise CheckFailed(f"unexpected status {response.status_code}", details=details)
        return details

    return HealthCheck(name or parts.hostname, check_http, critical=critical, timeout=timeout, secrets=secrets)
