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
import concurrent.futures.thread
import contextlib
import logging
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from types import FrameType
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from signalfire import _errors, _instance, _logging, _metrics, _settings, _tracing
from signalfire._compat import uvicorn as uvicorn_compat
from signalfire._export import _drops, _otlp
from signalfire._metrics import _provider as metrics_provider
from signalfire._scrub import _policy as _scrub
from signalfire._settings import ConfigurationError, Settings

__all__ = ["Observability", "Owner", "current", "init_observability", "reset", "shutdown", "start"]

_log = logging.getLogger("signalfire")

Closer = Callable[[float], object]

# The names of the closers that shut the providers down (their last export); they run before the components'.
_PROVIDERS = ("traces", "metrics")
# At most this long (or half of what is left of the budget) to learn whether a collector refuses connections.
_PROBE_TIMEOUT_S = 1.0
# What a close step gets when the budget is spent: enough to stop threads that are not stuck, not enough to wait.
_LAST_STEP_S = 0.1


class _Exit:
    """One exit: its budget, shared by every hook (lifespan shutdown, SIGTERM, atexit, shutdown()), and what was
    learnt on the way (which collectors refuse connections).

    The clock runs while a hook works: from the first hook's start, every hook has until the same deadline. When the
    hooks at work have all finished in time, the clock stops with what they spent taken off the budget, so a server
    that drains for a while between SIGTERM's flush and the lifespan's does not eat the budget, and nothing is spent
    twice. A hook that ran out leaves the deadline behind it: the hooks after it have nothing left.

    ``signaled``: the exit began with SIGTERM, so the process is going away; under uvicorn the lifespan shutdown that
    follows the drain is then its last moment, and closes everything.
    """

    __slots__ = ("active", "budget", "clock", "deadline", "lock", "probed", "refused", "signaled", "spent")

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.spent = 0.0
        self.active = 0
        self.deadline: float | None = None
        self.clock = threading.Lock()
        self.signaled = False
        self.lock = threading.Lock()
        self.probed = False
        self.refused: set[tuple[str, int]] = set()

    def start(self) -> None:
        """A hook begins: the clock runs (if it was not already)."""
        with self.clock:
            if self.deadline is None:
                self.deadline = time.monotonic() + max(0.0, self.budget - self.spent)
            self.active += 1

    def finish(self, complete: bool) -> None:
        """A hook ends; ``complete``: it did all its work in time."""
        with self.clock:
            self.active -= 1
            now = time.monotonic()
            if complete and self.active == 0 and self.deadline is not None and now < self.deadline:
                self.spent = self.budget - (self.deadline - now)
                self.deadline = None

    def shorten(self, budget: float) -> None:
        """A later hook asked for at most ``budget`` seconds from now."""
        with self.clock:
            self.budget = min(self.budget, self.spent + budget)
            if self.deadline is not None:
                self.deadline = min(self.deadline, time.monotonic() + budget)

    def remaining(self) -> float:
        with self.clock:
            if self.deadline is None:
                return max(0.0, self.budget - self.spent)
            return max(0.0, self.deadline - time.monotonic())


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
        # Weak references: signalfire must not keep alive an app the application has dropped (an app per test).
        self._instrumented_apps: list[weakref.ref[Any]] = []
        # What each component found already configured by the application, and what it did about it (note_owner()).
        self.owners: list[Owner] = []
        self._shut_down = False
        # The exit in progress (None: serving); every shutdown hook spends from its one budget.
        self._exit: _Exit | None = None
        self._exit_lock = threading.Lock()
        if tracer_provider is not None:
            self._flushers.append(("traces", lambda t: tracer_provider.force_flush(int(t * 1000))))
            self._closers.append(("traces", lambda _t: tracer_provider.shutdown()))
        if meter_provider is not None:
            self._flushers.append(("metrics", lambda t: meter_provider.force_flush(int(t * 1000))))
            self._closers.append(("metrics", lambda t: meter_provider.shutdown(int(t * 1000))))

    def _first_sight(self, app: Any) -> bool:
        """True the first time this handle is given ``app`` (it is remembered weakly), False after."""
        if any(ref() is app for ref in self._instrumented_apps):
            return False
        self._instrumented_apps = [ref for ref in self._instrumented_apps if ref() is not None]
        # An app that cannot be weakly referenced is not tracked: installing again is a no-op on the app itself.
        with contextlib.suppress(TypeError):
            self._instrumented_apps.append(weakref.ref(app))
        return True

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
        """Flush and close every provider within ``timeout`` seconds; idempotent. True when all finished in time.

        The time comes out of the exit's one budget (SIGNALFIRE_SHUTDOWN_TIMEOUT, counted from the first shutdown
        hook: lifespan shutdown, SIGTERM, atexit or this call), never on top of what an earlier hook spent. What
        cannot be delivered is counted and reported in one warning line.
        """
        with _lock:
            if self._shut_down:
                return True
            self._shut_down = True
            if _instance.current() is self:
                _instance.set_current(None)
                _tracing.activate(None)
        exiting = self._begin_exit(timeout)
        exiting.start()
        _drops.begin_exit_report()
        finished = closed = False
        try:
            self._probe(exiting, abandon=True)
            finished = _run_within(self._flushers, exiting.remaining())
            if not finished:
                _abandon_all("shutdown_timeout")
            providers = [step for step in reversed(self._closers) if step[0] in _PROVIDERS]
            closed = _run_within(providers, max(_LAST_STEP_S, exiting.remaining()))
            if not closed:
                _abandon_all("shutdown_timeout")
            if not (finished and closed):
                # What the batch processors still hold now will never be exported: counted with the rest. (After a
                # shutdown in time, what is queued now was logged since the flush; closing the logs below sends it.)
                _drops.count_pending("shutdown_timeout")
            # The one line, while signalfire's log pipeline is still installed (the "logs" component closes below).
            _drops.end_exit_report(restore=False, **self._report_context(exiting, finished and closed))
            components = [step for step in reversed(self._closers) if step[0] not in _PROVIDERS]
            closed = _run_within(components, max(_LAST_STEP_S, exiting.remaining())) and closed
            _drops.count_pending("shutdown_timeout")  # forgets this instance's processors (nothing is left in them)
        finally:
            exiting.finish(finished and closed)
        return closed and finished

    # --- the exit budget ------------------------------------------------------------------------------------------
    def _begin_exit(self, budget: float | None = None, *, signaled: bool = False) -> _Exit:
        """The exit in progress, started now with ``budget`` (default SIGNALFIRE_SHUTDOWN_TIMEOUT) if none is; a
        ``budget`` given to a later hook can only shorten it."""
        with self._exit_lock:
            exiting = self._exit
            if exiting is None:
                exiting = self._exit = _Exit(budget or self.settings.shutdown_timeout_s)
            elif budget:
                exiting.shorten(budget)
            exiting.signaled = exiting.signaled or signaled
            return exiting

    def _probe(self, exiting: _Exit, *, abandon: bool) -> set[str]:
        """Ask once per exit which collectors refuse connections; with ``abandon``, give their exporters up at once
        (every batch counted as collector_unreachable, none retried). Returns the signals exporting to one."""
        with exiting.lock:
            wrappers = [w for w in _drops.exporters() if w.endpoint is not None and w.abandoned is None]
            if not exiting.probed:
                exiting.probed = True
                endpoints = {w.endpoint for w in wrappers if w.endpoint is not None}
                if endpoints:
                    exiting.refused = _otlp.refusing(endpoints, min(_PROBE_TIMEOUT_S, exiting.remaining() / 2))
            refused = [w for w in wrappers if w.endpoint in exiting.refused]
        if abandon:
            for wrapper in refused:
                wrapper.abandon("collector_unreachable")
        return {w.signal for w in refused}

    def _report_context(self, exiting: _Exit, finished: bool) -> dict[str, Any]:
        context: dict[str, Any] = {"budget_s": self.settings.shutdown_timeout_s}
        if exiting.refused:
            context["unreachable"] = sorted(f"{host}:{port}" for host, port in exiting.refused)
        if not finished:
            context["budget_exhausted"] = True
        return context

    def _soft_flush(self, exiting: _Exit) -> bool:
        """Flush within what is left of the exit budget, keeping everything open (the app may serve again).

        A signal whose collector refuses connections is not flushed (it would only retry): what it holds stays
        queued for the exporter's own schedule. A flush that finished leaves nothing owed, so the exit ends here;
        one that ran out of time leaves the exit open, and the next hook has only what is left."""
        exiting.start()
        _drops.begin_exit_report()
        finished = False
        skipped: set[str] = set()
        try:
            skipped = self._probe(exiting, abandon=False)
            steps = [step for step in self._flushers if step[0] not in skipped]
            finished = _run_within(steps, exiting.remaining())
        finally:
            exiting.finish(finished)
        context = self._report_context(exiting, finished)
        _drops.end_exit_report(**context)
        if skipped:
            _drops.not_flushed(sorted(skipped), context.get("unreachable", []))
        if finished:
            with self._exit_lock:
                if self._exit is exiting and not exiting.signaled:
                    self._exit = None
        return finished

    def _background_flush(self, exiting: _Exit) -> None:
        """At SIGTERM under a server that drains first: give up refusing collectors and export what the finished
        requests left, without holding up the signal handler (and so the event loop). The final flush follows the
        drain, within the same budget."""
        _drops.begin_exit_report()
        exiting.start()

        def run() -> None:
            finished = False
            try:
                self._probe(exiting, abandon=True)
                finished = _run_within(self._flushers, exiting.remaining())
            finally:
                exiting.finish(finished)

        threading.Thread(target=run, name="signalfire-exit-flush", daemon=True).start()

    def lifespan_started(self) -> None:
        """The app (re)starts serving: an exit that ended in a flush is over. In the main thread, SIGTERM is chained
        in front of uvicorn's handler, which uvicorn installed after ``init_observability()`` ran (gunicorn's
        worker imports the app before it serves)."""
        with self._exit_lock:
            if self._exit is not None and not self._exit.signaled:
                self._exit = None
        if self.settings.handle_sigterm and threading.current_thread() is threading.main_thread():
            try:
                if uvicorn_compat.is_server_exit_handler(signal.getsignal(signal.SIGTERM)):
                    _chain_sigterm()
            except (ValueError, OSError):
                pass

    def lifespan_ended(self) -> concurrent.futures.Future[bool]:
        """Flush at lifespan shutdown, on a daemon thread; the future is done when it is, within the budget.

        After SIGTERM this is the last moment under uvicorn (it exits, or re-raises the signal, right after), so it
        shuts everything down; otherwise (a TestClient leaving, a server stopping by itself) it only flushes.
        """
        done: concurrent.futures.Future[bool] = concurrent.futures.Future()
        exiting = self._begin_exit()

        def run() -> None:
            try:
                result = self.shutdown() if exiting.signaled else self._soft_flush(exiting)
            except Exception:
                result = False
            done.set_result(result)

        threading.Thread(target=run, name="signalfire-lifespan-flush", daemon=True).start()
        return done


def _abandon_all(reason: str) -> None:
    """Stop every exporter still trying (the budget is spent): what they hold is counted for ``reason``."""
    for wrapper in _drops.exporters():
        wrapper.abandon(reason)


def _run_within(steps: Sequence[tuple[str, Closer]], timeout: float) -> bool:
    """Run ``steps`` in order on a helper thread and wait at most ``timeout`` seconds for all of them.

    The SDK's force_flush does not honour its timeout and a black-holed exporter may block for its own timeout and
    retries; a daemon thread keeps that from delaying exit or a SIGTERM beyond the budget we promise. A step that
    fails is logged at debug level only: what it could not deliver is counted and reported once by the caller.
    """
    if not steps:
        return True
    deadline = time.monotonic() + timeout
    failed: list[str] = []

    def run() -> None:
        for name, step in steps:
            try:
                if step(max(0.0, deadline - time.monotonic())) is False:
                    failed.append(name)
            except Exception as error:
                failed.append(name)
                _log.debug("signalfire: flushing %s failed: %r", name, error)

    worker = threading.Thread(target=run, name="signalfire-flush", daemon=True)
    worker.start()
    worker.join(timeout)
    return not worker.is_alive()


# Process-wide: guards the one running instance (the slot in _instance), renewed in a forked child.
_lock = threading.RLock()
# Process-wide: atexit, the fork hook and the SIGTERM chain are installed once per process, whatever runs.
_hooks_installed = False
# The handle of the running instance, or None (the slot lives in the leaf _instance, which the entrypoints read).
current = _instance.current


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
    with _lock:
        running = _instance.current()
        if running is not None and running.settings != settings:
            if not replace:
                raise ConfigurationError(_difference(running.settings, settings))
            running.shutdown()
            running = None
        built = running is None
        if running is None:
            running = _build(settings, span_exporters, metric_readers, sentry_transport)
            _instance.set_current(running)
            _install_process_hooks(settings)
    if app is not None:
        instrument_app(running, app, health_checks)
    if built:
        from signalfire import _owners

        _owners.report(running)  # the one start-up line: who owns each signal, what signalfire did about the others
    return running


def instrument_app(obs: Observability, app: Any, health_checks: Iterable[Any] | None = None) -> None:
    """Instrument an ASGI app and add its health endpoints, once per handle; health_checks given again replace the
    app's checks (``integrations.fastapi.instrument_app``, imported when an app is first given)."""
    from signalfire.integrations import fastapi as fastapi_integration

    fastapi_integration.instrument_app(obs, app, health_checks)


def _build(
    settings: Settings,
    span_exporters: Sequence[SpanExporter] | None,
    metric_readers: Sequence[MetricReader],
    sentry_transport: Any = None,
) -> Observability:
    # An earlier instance's exit silenced the SDK's exporter loggers for the rest of the process: not any more.
    _drops.unsilence()
    if not settings.active:
        _tracing.activate(None)
        return Observability(settings, None, None)
    if (notice := _settings.unnamed_environment_notice(settings)) is not None:
        _log.warning(notice)  # the preset was not chosen by anyone: say which one runs (never silently)
    _settings.apply_config_file(settings)  # propagators: the one part of OTEL_CONFIG_FILE no setting carries
    # The scrubber first: the span exporters and the log pipeline built below use the policy of these settings.
    scrubber = _scrub.install(settings, _drops.dropped)
    resource = _tracing.build_resource(settings)
    # other libraries' OpenTelemetry metrics reach /metrics through a reader that must exist before the provider
    bridge = _metrics.otel_bridge(settings)
    bridge_readers = [bridge.reader] if bridge is not None else []
    meter_provider = metrics_provider.install(
        settings, resource, readers=[*metric_readers, *bridge_readers], views=metrics_provider.single_owner_views()
    )
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
    running = _instance.current()
    if running is None:
        return True
    return running.shutdown(timeout)


def reset() -> None:
    """Shut the running instance down and forget what the process remembers between instances (when each loss was
    last warned about, the warnings given once): the clean start the ``telemetry`` fixture and tests begin with.

    Everything else an instance changes is its own and undone by its shutdown (each component's close step)."""
    shutdown()
    _drops.reset()
    _errors.forget_warnings()


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


class _SigtermChain:
    """signalfire's SIGTERM handler, in front of the one it replaced (``previous``), which it always calls after.

    - In front of a uvicorn server's handler (uvicorn serves the app, see ``_compat.uvicorn``): the signal starts the
      exit budget and a background flush, and uvicorn's handler runs at once, so draining starts without delay; the
      lifespan shutdown after the drain closes everything within what is left of the budget.
    - In front of an application's own handler: a flush within the budget, then the application's handler (whatever
      it does next, atexit's shutdown has only what is left of the budget).
    - In front of the default action: shutdown, then the process ends by the signal, as it would have without us.
    - In front of SIG_IGN: a flush, and the process goes on.

    One object per installation: under gunicorn there are two (one at init, one in front of uvicorn's handler once
    it serves), each with its own ``previous``.
    """

    __slots__ = ("previous",)

    def __init__(self, previous: Any) -> None:
        self.previous = previous

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        previous = self.previous
        running = _instance.current()
        if running is not None and running.active:
            try:
                if uvicorn_compat.is_server_exit_handler(previous):
                    running._background_flush(running._begin_exit(signaled=True))
                elif callable(previous) or previous == signal.SIG_IGN:
                    running._soft_flush(running._begin_exit())
                else:
                    running._begin_exit(signaled=True)
                    running.shutdown()
            except Exception:  # a signal handler must not raise into whatever the main thread was doing
                _log.debug("signalfire: the SIGTERM flush failed", exc_info=True)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_IGN:
            return
        else:
            # The default action: terminate with the signal, as the process would have without us.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)


def _chain_sigterm() -> None:
    """Put signalfire's handler in front of the current one, unless it already is."""
    try:
        current = signal.getsignal(signal.SIGTERM)
        if isinstance(current, _SigtermChain):
            return
        signal.signal(signal.SIGTERM, _SigtermChain(current))
    except (ValueError, OSError):  # not the main thread of the main interpreter
        return


def _after_fork_in_child() -> None:
    # A lock held by another thread at fork time stays locked forever in the child; start with a fresh one. The SDK's
    # own fork hooks restart the batch and metric threads and renew service.instance.id.
    global _lock  # noqa: PLW0603
    _lock = threading.RLock()
