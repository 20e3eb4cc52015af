"""The start-up report of owners: who owns each signal, and what signalfire did about every other owner it found.

Components record what they find while they install (``Observability.note_owner``: the application's Sentry client
and log handlers, FastAPIInstrumentor on an app, an app's own /metrics or health routes). What only the process as a
whole can tell (global OpenTelemetry providers set by someone else, Logfire, FastAPI's native telemetry,
FASTAPI_OTEL_AUTO_CONFIGURE) is looked up here, once, when the report is made. ``report()`` writes it as one
structured info line through signalfire's log pipeline (also when signalfire owns every signal: who owns each signal
is what an operator wants to see at start-up); ``signalfire doctor`` prints the same list.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import sys
from typing import Any

__all__ = ["SIGNALS", "detect", "report", "summary"]

_log = logging.getLogger("signalfire")

SIGNALS = ("traces", "metrics", "logs", "errors", "routes")


def _describe(provider: Any, kind: str) -> str:
    module = type(provider).__module__
    if module.startswith("logfire"):
        return f"Logfire's global {kind} provider (logfire.configure() ran before init_observability())"
    return f"a global {kind} provider set before init_observability() ({module}.{type(provider).__qualname__})"


def _fastapi_version(*, imported_only: bool = True) -> str | None:
    """The FastAPI release in use (imported, or with ``imported_only=False`` installed) when it has native telemetry
    (FastAPI >= 0.142), without importing FastAPI."""
    if imported_only and "fastapi" not in sys.modules:
        return None
    try:
        if importlib.util.find_spec("fastapi.telemetry") is None:
            return None
        return importlib.metadata.version("fastapi")
    except (ImportError, ValueError, importlib.metadata.PackageNotFoundError):
        return None


def detect(obs: Any, *, imported_only: bool = True) -> list[tuple[str, str, str]]:
    """The owners only the process as a whole can tell, as (signal, found, action); ``imported_only=False`` (the
    doctor, which has no application) also counts an installed FastAPI it has not imported."""
    from opentelemetry import _logs, trace
    from opentelemetry import metrics as otel_metrics

    from signalfire import _tracing
    from signalfire._metrics import _provider

    settings = obs.settings
    found: list[tuple[str, str, str]] = []
    tracer_provider = trace.get_tracer_provider()
    foreign_traces = tracer_provider is not _tracing.GLOBAL_PROVIDER and not isinstance(
        tracer_provider, trace.ProxyTracerProvider
    )
    fastapi_version = _fastapi_version(imported_only=imported_only)
    if foreign_traces:
        native = " FastAPI's native telemetry traces requests through it; signalfire then adds no second server span"
        found.append(
            (
                "traces",
                _describe(tracer_provider, "tracer"),
                "kept: code using the global tracer exports there; signalfire's own spans, traced/span and its "
                "instrumentations use signalfire's provider." + (native if fastapi_version else ""),
            )
        )
    meter_provider = otel_metrics.get_meter_provider()
    if (
        meter_provider is not _provider.GLOBAL_PROVIDER
        and meter_provider is not obs.meter_provider
        and type(meter_provider).__name__ not in ("_ProxyMeterProvider", "NoOpMeterProvider")
    ):
        found.append(
            (
                "metrics",
                _describe(meter_provider, "meter"),
                "kept: instruments made from the global meter record there; signalfire's metrics and its "
                "instrumentations use signalfire's provider (/metrics, OTLP)",
            )
        )
    logger_provider = _logs.get_logger_provider()
    if type(logger_provider).__name__ not in ("ProxyLoggerProvider", "NoOpLoggerProvider"):
        found.append(
            (
                "logs",
                _describe(logger_provider, "logger"),
                "kept: signalfire's log pipeline is separate; FastAPI's native telemetry sends its exception and "
                "validation records there (FastAPI(telemetry={'logs': False}) stops it)"
                if fastapi_version
                else "kept: signalfire's log pipeline is separate and writes no record there",
            )
        )
    if fastapi_version and not foreign_traces:
        operations = (
            "its operation spans are kept as children of signalfire's server span (SIGNALFIRE_FASTAPI_OPERATION_SPANS)"
            if settings.fastapi_operation_spans
            else "SIGNALFIRE_FASTAPI_OPERATION_SPANS=true keeps its operation spans under signalfire's server span"
        )
        found.append(
            (
                "traces",
                f"FastAPI {fastapi_version} native telemetry",
                "its tracer and meter from signalfire's providers record nothing (one server span and one set of HTTP "
                f"metrics per request, signalfire's); apps not given to signalfire stay untraced; {operations}",
            )
        )
    # FastAPI 0.142 adds its exporters unless told not to; 0.143 made it opt-in (FASTAPI_OTEL_AUTO_CONFIGURE).
    by_default = (fastapi_version or "").startswith("0.142.")
    if settings.fastapi_otel_auto_configure or by_default:
        found.append(
            (
                "traces",
                "FASTAPI_OTEL_AUTO_CONFIGURE=true"
                if settings.fastapi_otel_auto_configure
                else f"FastAPI {fastapi_version}'s exporter set-up (on by default before 0.143)",
                "refused: signalfire's providers take no exporter from FastAPI (each span and metric would leave "
                "twice, unscrubbed); FastAPI logs one warning at start-up saying it could not add them; unset it"
                if not foreign_traces
                else "FastAPI adds its OTLP exporters to the foreign global providers, not to signalfire's",
            )
        )
    return found


def summary(owners: list[Any]) -> dict[str, str]:
    """Signal -> who owns it: signalfire, unless a component kept another owner for the whole signal."""
    owner = dict.fromkeys(("traces", "metrics", "logs", "errors"), "signalfire")
    for item in owners:
        if item.signal in owner and item.action.startswith("kept") and item.signal != "routes":
            owner[item.signal] = f"shared with {item.found}"
    return owner


def report(obs: Any) -> None:
    """Add the process-wide owners to ``obs.owners`` and write the one start-up line; never raises."""
    try:
        for signal, found, action in detect(obs):
            obs.note_owner(signal, found, action)
        owners = [item.as_dict() for item in obs.owners]
        # Always an info line, also when signalfire owns every signal: at start-up an operator learns who owns each
        # signal (DESIGN.md, "coexist") without turning on debug logging; it is one line per process start.
        _log.info("signalfire: owners of each signal", extra={"signals": summary(obs.owners), "owners": owners})
    except Exception:  # the report is information; init goes on without it
        _log.warning("signalfire: the start-up report of owners failed", exc_info=True)
