"""init_observability / shutdown: orchestration, idempotency, and the exit, signal and fork hooks.

Each component has an ``install(settings, ...)`` that receives the resolved Settings; none reads the environment. The
runtime owns the one :class:`Observability` handle of the process and the lock that guards it.
"""

from __future__ import annotations

import atexit

# The SDK's after-fork hooks (TracerProvider/MeterProvider._handle_fork) call get_aggregated_resources(), which submits
# to a ThreadPoolExecutor. concurrent.futures.thread acquires its global shutdown lock before every fork and releases
# it in the child from its own after-fork hook; hooks run in registration order, so when that module is first imported
# after our providers exist, a forked child (a gunicorn --preload worker) submits while the lock is still held and
# hangs for ever. Importing it here, before any provider is built, registers its hook first.
import concurrent.futures.thread  # noqa: F401
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from types import FrameType
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from signalfire import _drops, _errors, _logging, _metrics, _scrub, _settings, _tracing
from signalfire._metrics import _provider as metrics_provider
from signalfire._settings import ConfigurationError, Settings

__all__ = ["Observability", "Owner", "current", "init_observability", "shutdown", "start"]

_log = logging.getLogger("signalfire")

Closer = Callable[[float], object]


class Owner:
    """Who owns one signal (or one part of it), found at start-up, and what signalfire did about it.

    ``signal`` is one of "traces", "metrics", "logs", "errors", "routes" or "process"; ``found`` names the owner
    ("the application's sentry_sdk client", "FastAPI native telemetry", ...); ``action`` says what signalfire did
    ("attached: kept its before_send and integrations, added scrubbing"). The start-up report and
    ``signalfire doctor`` print these.
    """

    __slots__ = ("action", "found", "signal")

    def __init__(self, signal: str, found: str, action: str) -> None:
        self.signal = signal
        self.found = found
        self.action = action

    def __repr__(self) -> str:
        return f"Owner({self.signal!r}, {self.found!r}, {self.action!r})"

    def as_dict(self) -> dict[str, str]:
        """The owner as a plain mapping, for the structured start-up line and ``signalfire doctor --format json``."""
        return {"signal": self.signal, "found": self.found, "action": self.action}


class Observability:
    """The handle ``init_observability()`` returns: the settings in force, the providers, and ``shutdown()``.

    Example::

        obs = signalfire.init_observability()
        obs.settings.service_name
        obs.tracer_provider.force_flush()
        obs.shutdown()
    """

    def __init__(
        self,
        settings: Settings,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
    ) -> None:
        self.settings = settings
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        # Components that need flushing register here, in install order; they are closed in reverse order.
        self._closers: list[tuple[str, Closer]] = []
        self._flushers: list[tuple[str, Closer]] = []
        self._instrumented_apps: list[Any] = []
        # What each component found already configured by the application, and what it did about it (note_owner()).
        self.owners: list[Owner] = []
        self._shut_down = False
        if tracer_provider is not None:
            self._flushers.append(("traces", lambda t: tracer_provider.force_flush(int(t * 1000))))
            self._closers.append(("traces", lambda _t: tracer_provider.shutdown()))
        if meter_provider is not None:
            self._flushers.append(("metrics", lambda t: meter_provider.force_flush(int(t * 1000))))
            self._closers.append(("metrics", lambda t: meter_provider.shutdown(int(t * 1000))))

    @property
    def active(self) -> bool:
        """True while signals are being recorded (initialized, enabled and not shut down)."""
        return not self._shut_down and self.settings.active

    def note_owner(self, signal: str, found: str, action: str) -> None:
        """Record that a component found ``found`` owning (part of) ``signal`` and did ``action`` about it."""
        self.owners.append(Owner(signal, found, action))

    def on_shutdown(self, name: str, close: Closer, flush: Closer | None = None) -> None:
        """Register a component's close (and optional flush) callable, each taking a timeout in seconds."""
        self._closers.append((name, close))
        if flush is not None:
            self._flushers.append((name, flush))

    def force_flush(self, timeout: float | None = None) -> bool:
        """Export everything pending now, within ``timeout`` seconds (default SIGNALFIRE_SHUTDOWN_TIMEOUT)."""
        return _run_within(self._flushers, timeout or self.settings.shutdown_timeout_s)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush and close every provider within ``timeout`` seconds; idempotent. True when all finished in time."""
        with _lock:
            if self._shut_down:
                return True
            self._shut_down = True
            global _current  # noqa: PLW0603 - the one handle of the process
            if _current is self:
                _current = None
                _tracing.activate(None)
        budget = timeout or self.settings.shutdown_timeout_s
        deadline = time.monotonic() + budget
        finished = _run_within(self._flushers, budget)
        remaining = max(0.05, deadline - time.monotonic())
        closed = _run_within(list(reversed(self._closers)), remaining)
        # What the batch processors still hold now will never be exported: counted, and warned about.
        _drops.count_pending("shutdown_timeout")
        return closed and finished


def _run_within(steps: Sequence[tuple[str, Closer]], timeout: float) -> bool:
    """Run ``steps`` in order on a helper thread and wait at most ``timeout`` seconds for all of them.

    The SDK's force_flush does not honour its timeout and a black-holed exporter may block for its own timeout and
    retries; a daemon thread keeps that from delaying exit or a SIGTERM beyond the budget we promise.
    """
    if not steps:
        return True
    deadline = time.monotonic() + timeout

    def run() -> None:
        for name, step in steps:
            try:
                step(max(0.0, deadline - time.monotonic()))
            except Exception:
                _log.warning("signalfire: flushing %s failed", name, exc_info=True)

    worker = threading.Thread(target=run, name="signalfire-flush", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        _log.warning("signalfire: flush did not finish within %.1f s; pending telemetry may be lost", timeout)
        return False
    return True


_lock = threading.RLock()
_current: Observability | None = None
_hooks_installed = False
_previous_sigterm: Any = None


def current() -> Observability | None:
    """The handle of the running instance, or None."""
    return _current


def init_observability(
    app: Any = None,
    *,
    replace: bool = False,
    health_checks: Iterable[Any] | None = None,
    settings: Settings | None = None,
    **overrides: Any,
) -> Observability:
    """Start every signal with settings from keyword arguments, the environment, the environment's preset, defaults.

    Call it once at start-up. A second call with the same settings returns the running instance (and instruments
    ``app`` if it is new); a call with different settings raises :class:`ConfigurationError` unless ``replace=True``,
    which shuts the running instance down first. A bad environment variable raises ``ConfigurationError`` naming the
    variable, its value and what is accepted. With OTEL_SDK_DISABLED=true or OTEL_ENABLED=false nothing is started.

    ``app`` also gets the health endpoints (``/health/live``, ``/health/ready``, ``/health/deep``; see
    :mod:`signalfire.health`) running ``health_checks``, a list of :class:`signalfire.health.HealthCheck` objects or
    plain functions, unless SIGNALFIRE_HEALTH_ENABLED=false. The endpoints are served even when telemetry is disabled,
    because a probe that starts answering 404 takes the service down.

    ``settings`` is a :class:`signalfire.Settings` you built yourself (from a ``.env`` file, a secrets directory, or a
    field of your application's own settings) to use instead of resolving one from keyword overrides.

    Example::

        app = FastAPI()
        signalfire.init_observability(app, service_name="checkout")
    """
    if settings is None:
        settings = Settings.resolve(**overrides)
    elif overrides:
        raise ConfigurationError(
            "init_observability(settings=...) takes no other settings as keyword arguments: pass them to "
            f"Settings(...) instead ({', '.join(sorted(overrides))})"
        )
    return start(settings, app=app, replace=replace, health_checks=health_checks)


def start(
    settings: Settings,
    *,
    app: Any = None,
    replace: bool = False,
    span_exporters: Sequence[SpanExporter] | None = None,
    metric_readers: Sequence[MetricReader] = (),
    sentry_transport: Any = None,
    health_checks: Iterable[Any] | None = None,
) -> Observability:
    """init_observability() for already-resolved settings; tests pass in-memory exporters, readers and a Sentry
    transport here."""
    if health_checks is not None and app is None:
        raise ConfigurationError(
            "init_observability(health_checks=...) needs app=...: the checks are served by the app's health "
            "endpoints. Without an app, include signalfire.health.router(checks) in your app yourself."
        )
    if health_checks is not None:
        from signalfire import health

        # Validated before anything starts, so a bad check list fails init rather than leaving it half done.
        health_checks = health._as_checks(health_checks)
    global _current  # noqa: PLW0603 - the one handle of the process
    with _lock:
        running = _current
        if running is not None and running.settings != settings:
            if not replace:
                raise ConfigurationError(_difference(running.settings, settings))
            running.shutdown()
            running = None
        if running is None:
            running = _build(settings, span_exporters, metric_readers, sentry_transport)
            _current = running
            _install_process_hooks(settings)
    if app is not None:
        instrument_app(running, app, health_checks)
    return running


def instrument_app(obs: Observability, app: Any, health_checks: Iterable[Any] | None = None) -> None:
    """Instrument an ASGI app and add its health endpoints, once per handle; health_checks given again replace the
    app's checks."""
    seen = any(existing is app for existing in obs._instrumented_apps)
    if seen and health_checks is None:
        return
    if not seen:
        obs._instrumented_apps.append(app)
    if obs.settings.health_enabled:
        from signalfire import health

        health.install(obs, app, health_checks)
    elif health_checks:
        _log.warning("signalfire: SIGNALFIRE_HEALTH_ENABLED=false, so the health_checks given are not served")
    if seen or not obs.active:
        return
    from signalfire.integrations import fastapi as fastapi_integration

    fastapi_integration.install(obs, app)


def _build(
    settings: Settings,
    span_exporters: Sequence[SpanExporter] | None,
    metric_readers: Sequence[MetricReader],
    sentry_transport: Any = None,
) -> Observability:
    if not settings.active:
        _tracing.activate(None)
        return Observability(settings, None, None)
    if (notice := _settings.unnamed_environment_notice(settings)) is not None:
        _log.warning(notice)  # the preset was not chosen by anyone: say which one runs (never silently)
    _settings.apply_config_file(settings)  # propagators: the one part of OTEL_CONFIG_FILE no setting carries
    # The scrubber first: the span exporters and the log pipeline built below use the policy of these settings.
    scrubber = _scrub.install(settings)
    resource = _tracing.build_resource(settings)
    # other libraries' OpenTelemetry metrics reach /metrics through a reader that must exist before the provider
    bridge = _metrics.otel_bridge(settings)
    bridge_readers = [bridge.reader] if bridge is not None else []
    meter_provider = metrics_provider.install(settings, resource, readers=[*metric_readers, *bridge_readers])
    tracer_provider = _tracing.install(settings, resource, exporters=span_exporters)
    obs = Observability(settings, tracer_provider, meter_provider)
    obs.on_shutdown("scrub", lambda _t: _scrub.reset(scrubber))
    # Each component installs itself in this order and registers what it must flush with obs.on_shutdown(); closing
    # runs in reverse, so Sentry and the logs still work while the metrics and integrations are torn down.
    _logging.install(settings, obs, resource)
    _errors.install(settings, obs, transport=sentry_transport)
    push = bool(metric_readers) or any(name in ("otlp", "console") for name in settings.exporters("metrics"))
    _metrics.install(settings, obs, push=push, bridge=bridge)
    # SQLAlchemy, Redis and httpx now, or at their first import; FastAPI apps are instrumented by instrument_app()
    from signalfire import integrations

    integrations.install(settings, obs)
    return obs


def _difference(old: Settings, new: Settings) -> str:
    before, after = old.model_dump(), new.model_dump()
    changed = [f"{k}: {before[k]!r} -> {after[k]!r}" for k in sorted(before) if before[k] != after[k]]
    return (
        "signalfire is already initialized with different settings ("
        + "; ".join(changed)
        + "). Call signalfire.shutdown() first, or pass replace=True to init_observability()."
    )


def shutdown(timeout: float | None = None) -> bool:
    """Flush and close everything signalfire started, within ``timeout`` seconds; safe to call more than once.

    It also runs at interpreter exit and, unless SIGNALFIRE_HANDLE_SIGTERM=false, on SIGTERM. The default timeout is
    SIGNALFIRE_SHUTDOWN_TIMEOUT (5 s). Returns False when something could not be flushed in time.

    Example::

        signalfire.shutdown(timeout=2.0)
    """
    running = _current
    if running is None:
        return True
    return running.shutdown(timeout)


# --- process hooks: exit, SIGTERM, fork -----------------------------------------------------------------------------
def _install_process_hooks(settings: Settings) -> None:
    global _hooks_installed  # noqa: PLW0603
    if _hooks_installed:
        return
    _hooks_installed = True
    # Registered after the SDK's and sentry's own atexit hooks would be, so it runs before them (atexit is LIFO).
    atexit.register(shutdown)
    os.register_at_fork(after_in_child=_after_fork_in_child)
    if settings.handle_sigterm and threading.current_thread() is threading.main_thread():
        _chain_sigterm()
    if settings.handle_sigterm:
        _flush_when_uvicorn_begins_exiting()


def _chain_sigterm() -> None:
    global _previous_sigterm  # noqa: PLW0603
    try:
        _previous_sigterm = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main thread of the main interpreter
        _previous_sigterm = None


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    previous = _previous_sigterm
    shutdown()
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_IGN:
        return
    else:
        # The default action: terminate with the signal, as the process would have without us.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _flush_when_uvicorn_begins_exiting() -> None:
    """Start a flush as soon as uvicorn receives SIGTERM/SIGINT, not only when it has finished draining.

    uvicorn replaces our SIGTERM handler while it serves and hands the signal back only after every in-flight request
    has ended. A request that hangs keeps it draining until a supervisor kills the process (gunicorn's
    --graceful-timeout, Kubernetes' terminationGracePeriodSeconds), and the SIGKILL would take with it everything the
    completed requests left queued. Flushing in the background from the first exit signal gets that out while the
    server drains; the final shutdown still runs when (if) it exits normally.
    """
    server_module = sys.modules.get("uvicorn.server")
    server_class = getattr(server_module, "Server", None)
    original = getattr(server_class, "handle_exit", None)
    if original is None or getattr(original, "_signalfire", False):
        return

    def handle_exit(self: Any, sig: int, frame: FrameType | None) -> None:
        original(self, sig, frame)
        running = _current
        if running is not None and running.active:
            threading.Thread(target=running.force_flush, name="signalfire-exit-flush", daemon=True).start()

    handle_exit._signalfire = True  # type: ignore[attr-defined]
    server_class.handle_exit = handle_exit  # type: ignore[union-attr]


def _after_fork_in_child() -> None:
    # A lock held by another thread at fork time stays locked forever in the child; start with a fresh one. The SDK's
    # own fork hooks restart the batch and metric threads and renew service.instance.id.
    global _lock  # noqa: PLW0603
    _lock = threading.RLock()
