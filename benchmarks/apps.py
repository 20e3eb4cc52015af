"""The benchmarked app and its variants: the same trivial FastAPI app, bare or instrumented by signalfire or a peer.

A variant is chosen by name; endpoints come from the environment the orchestrator sets for the child process
(``OTEL_EXPORTER_OTLP_ENDPOINT`` and ``SENTRY_DSN`` point at loopback sinks or black holes). Every tracing variant
exports its spans over OTLP/HTTP to the same loopback receiver, so exporting is charged to everyone alike.

``create_app`` is also a uvicorn factory: ``BENCH_VARIANT=otel uvicorn benchmarks.apps:create_app --factory``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

# Variants in table order. "signalfire*" variants configure signalfire from the environment only (SIGNALFIRE_*,
# OTEL_*, SENTRY_*), so whatever components main holds today are switched on with their production defaults.
VARIANTS = (
    "bare",
    "signalfire",
    "signalfire_10pct",
    "signalfire_disabled",
    "signalfire_native_off",
    "signalfire_10pct_native_off",
    "otel",
    "otel_meter",
    "fastapi_native",
    "fastapi_native_no_ops",
    "prometheus_instrumentator",
    "runbook",
    "logfire",
)

DESCRIPTIONS = {
    "bare": "the FastAPI app, nothing added",
    "signalfire": "signalfire full stack, production preset, 100% sampling, OTLP to loopback, Sentry DSN on loopback",
    "signalfire_10pct": "the same with OTEL_TRACES_SAMPLER_ARG=0.1",
    "signalfire_disabled": "init_observability(app) with OTEL_SDK_DISABLED=true",
    "signalfire_native_off": "signalfire full stack on an app built with FastAPI's telemetry off (docs/fastapi.md)",
    "signalfire_10pct_native_off": "the same at OTEL_TRACES_SAMPLER_ARG=0.1",
    "otel": "OpenTelemetry FastAPIInstrumentor, default settings, SDK tracer provider only (OTLP/HTTP to loopback)",
    "otel_meter": "the same with an SDK meter provider too (its HTTP metrics pushed over OTLP/HTTP to loopback)",
    "fastapi_native": "FastAPI's native telemetry (FastAPI >= 0.142), SDK tracer + meter providers, operation spans on",
    "fastapi_native_no_ops": "the same with FastAPI(telemetry={'operation_spans': False})",
    "prometheus_instrumentator": "prometheus-fastapi-instrumentator: Instrumentator().instrument(app).expose(app)",
    "runbook": "hand-wired: FastAPIInstrumentor + Prometheus and structlog access-log BaseHTTPMiddlewares",
    "logfire": "logfire.configure(send_to_logfire=False, console=False) + instrument_fastapi, OTLP/HTTP to loopback",
}


def variant_env(variant: str, otlp_url: str, sentry_url: str) -> dict[str, str]:
    """The environment of a child process running ``variant`` against the given loopback endpoints."""
    env = {"OTEL_SERVICE_NAME": "bench", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_url}
    if variant.startswith("signalfire"):
        env.update(
            {
                "SIGNALFIRE_ENVIRONMENT": "production",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": "0.1" if variant.startswith("signalfire_10pct") else "1.0",
                "SENTRY_DSN": sentry_dsn(sentry_url),
            }
        )
        if variant == "signalfire_disabled":
            env["OTEL_SDK_DISABLED"] = "true"
    if variant == "logfire":
        env["PYDANTIC_DISABLE_PLUGINS"] = ""  # logfire's own pydantic plugin is part of what logfire costs
    return env


def sentry_dsn(url: str) -> str:
    """A Sentry DSN whose ingest endpoint is ``url`` (a loopback sink or black hole)."""
    host = url.removeprefix("http://")
    return f"http://0123456789abcdef0123456789abcdef@{host}/1"


def _app(telemetry: dict[str, Any] | None = None) -> FastAPI:
    # ``telemetry`` only for FastAPI >= 0.142 (older releases have no such parameter)
    app = FastAPI() if telemetry is None else FastAPI(telemetry=telemetry)  # type: ignore[call-arg]

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, Any]:
        return {"item_id": item_id, "name": "widget"}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return app


def create_app() -> FastAPI:
    """The app instrumented as ``BENCH_VARIANT`` (default bare) says; a uvicorn factory."""
    return build(os.environ.get("BENCH_VARIANT", "bare"))


# FastAPI(telemetry=...) of the variants that set it (FastAPI >= 0.142)
_TELEMETRY: dict[str, dict[str, Any]] = {
    "fastapi_native_no_ops": {"operation_spans": False},
    "signalfire_native_off": {"tracing": False, "metrics": False, "logs": False},
    "signalfire_10pct_native_off": {"tracing": False, "metrics": False, "logs": False},
}


def build(variant: str) -> FastAPI:
    """The trivial app instrumented as ``variant``."""
    app = _app(_TELEMETRY.get(variant))
    _SETUP[variant](app)
    return app


def _signalfire(app: FastAPI) -> None:
    import signalfire

    signalfire.init_observability(app)


def _otel_providers(meter: bool = True) -> tuple[Any, Any]:
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    base = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/")
    resource = Resource.create({"service.name": "bench"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
    trace.set_tracer_provider(tracer_provider)
    if not meter:
        return tracer_provider, None
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{base}/v1/metrics"))
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider


def _otel(app: FastAPI, meter: bool = False) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    _otel_providers(meter)
    FastAPIInstrumentor.instrument_app(app)


def _fastapi_native(app: FastAPI) -> None:
    """FastAPI >= 0.142 traces and meters by itself once global SDK providers exist: nothing else to do."""
    import fastapi.telemetry  # noqa: F401  - fails (the row says so) on a FastAPI without native telemetry

    _otel_providers()


def _prometheus_instrumentator(app: FastAPI) -> None:
    from prometheus_fastapi_instrumentator import Instrumentator

    Instrumentator().instrument(app).expose(app)


def _runbook(app: FastAPI) -> None:
    """The stack runbooks and blog posts wire by hand, written the way they write it."""
    import structlog
    from opentelemetry import trace
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from prometheus_client import CollectorRegistry, Counter, Histogram
    from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
    from starlette.requests import Request
    from starlette.responses import Response

    _otel_providers()

    def add_trace_ids(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            event_dict["trace_id"] = format(context.trace_id, "032x")
            event_dict["span_id"] = format(context.span_id, "016x")
        return event_dict

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            add_trace_ids,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )
    log = structlog.get_logger("access")
    registry = CollectorRegistry()
    requests_total = Counter("http_requests_total", "HTTP requests", ["method", "path", "status"], registry=registry)
    latency = Histogram("http_request_duration_seconds", "HTTP latency", ["method", "path"], registry=registry)

    class PrometheusMiddleware(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            start = time.perf_counter()
            response = await call_next(request)
            route = request.scope.get("route")
            path = getattr(route, "path", request.url.path)
            latency.labels(request.method, path).observe(time.perf_counter() - start)
            requests_total.labels(request.method, path, str(response.status_code)).inc()
            return response

    class AccessLogMiddleware(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            structlog.contextvars.clear_contextvars()
            request_id = request.headers.get("x-request-id") or str(uuid.uuid4())
            structlog.contextvars.bind_contextvars(request_id=request_id)
            start = time.perf_counter()
            response = await call_next(request)
            log.info(
                "request",
                method=request.method,
                path=request.url.path,
                status=response.status_code,
                duration_ms=round((time.perf_counter() - start) * 1000, 3),
                client=request.client.host if request.client else None,
            )
            response.headers["x-request-id"] = request_id
            return response

    app.add_middleware(PrometheusMiddleware)
    app.add_middleware(AccessLogMiddleware)
    FastAPIInstrumentor.instrument_app(app)


def _logfire(app: FastAPI) -> None:
    import logfire

    logfire.configure(send_to_logfire=False, console=False, service_name="bench")
    logfire.instrument_fastapi(app)


_SETUP: dict[str, Callable[[FastAPI], None]] = {
    "bare": lambda app: None,
    "signalfire": _signalfire,
    "signalfire_10pct": _signalfire,
    "signalfire_disabled": _signalfire,
    "signalfire_native_off": _signalfire,
    "signalfire_10pct_native_off": _signalfire,
    "otel": _otel,
    "otel_meter": lambda app: _otel(app, meter=True),
    "fastapi_native": _fastapi_native,
    "fastapi_native_no_ops": _fastapi_native,
    "prometheus_instrumentator": _prometheus_instrumentator,
    "runbook": _runbook,
    "logfire": _logfire,
}


def shutdown(variant: str) -> None:
    """Flush what the variant buffered (so the loopback receiver sees it) before the process ends."""
    if variant.startswith("signalfire"):
        import signalfire

        signalfire.shutdown()
    elif variant in ("otel", "otel_meter", "fastapi_native", "fastapi_native_no_ops", "runbook"):
        from opentelemetry import metrics, trace

        for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
            getattr(provider, "shutdown", lambda: None)()
    elif variant == "logfire":
        import logfire

        logfire.shutdown()


def components() -> list[str]:
    """What the running signalfire instance has switched on (its flush/close registrations), for the report."""
    from signalfire import _runtime

    running = _runtime.current()
    if running is None or not running.active:
        return []
    return [name for name, _ in running._closers]


# --- the in-process ASGI driver ------------------------------------------------------------------------------------
_HEADERS = [(b"host", b"bench.local"), (b"user-agent", b"bench/1.0"), (b"accept", b"*/*")]


class AsgiDriver:
    """Calls an ASGI app directly: one dict scope, a constant ``receive``, a ``send`` that keeps only the status.

    This is the lowest-noise driver: no sockets, no event-loop hops beyond the app's own, and nothing that is not the
    app or its middleware on the profile (httpx.ASGITransport would add its own request/response building per call,
    larger than the overhead of the lighter variants).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.status = 0
        self._lifespan: asyncio.Task[None] | None = None
        self._lifespan_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._started = asyncio.Event()

    async def _receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]

    async def request(self, path: str) -> int:
        """One GET of ``path``; returns the response status."""
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": list(_HEADERS),
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        await self.app(scope, self._receive, self._send)
        return self.status

    async def startup(self) -> None:
        """Run the app's lifespan startup (some instrumentations hook it)."""
        self._lifespan_queue.put_nowait({"type": "lifespan.startup"})

        async def send(message: dict[str, Any]) -> None:
            if message["type"].startswith("lifespan.startup"):
                self._started.set()

        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self._lifespan = asyncio.ensure_future(self.app(scope, self._lifespan_queue.get, send))
        await asyncio.wait_for(self._started.wait(), 10)

    async def close(self) -> None:
        """Run the lifespan shutdown."""
        if self._lifespan is not None:
            self._lifespan_queue.put_nowait({"type": "lifespan.shutdown"})
            # A lifespan that errors on shutdown does not change a measurement already taken.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._lifespan, 10)


def unique_path(i: int) -> str:
    """A raw path never seen before: even ``i`` match the route template, odd ``i`` match no route (404)."""
    return f"/items/{i}" if i % 2 == 0 else f"/unmatched/{i:x}/{uuid.uuid4().hex[:8]}"
