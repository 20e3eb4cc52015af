"""Tracing: the tracer provider, its sampler and exporters, and the ``traced`` / ``span`` helpers.

The OpenTelemetry global tracer provider can be set only once per process (a second ``set_tracer_provider`` is ignored
and its processors are silently lost). signalfire therefore sets, once, a small delegating provider whose tracers
forward to whichever SDK provider the current ``init_observability()`` built. Re-initialising after ``shutdown()``
(tests, reloads) then reaches every tracer obtained earlier, including those of third-party instrumentations.
"""

from __future__ import annotations

import functools
import inspect
import logging
import platform
import socket
import threading
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource, ServiceInstanceIdResourceDetector
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from signalfire import _traceback
from signalfire._export import _drops
from signalfire._export._drops import CountingSpanExporter, watch_batch_processor
from signalfire._export._otlp import address, otlp_exporter
from signalfire._scrub import _policy as _scrub
from signalfire._scrub._wire import ScrubbingSpanExporter
from signalfire._settings import Settings

__all__ = ["build_resource", "install", "span", "traced"]

_log = logging.getLogger("signalfire")

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

_SDK_NAME = "signalfire"


# --- the delegating global provider ---------------------------------------------------------------------------------
class _Active:
    """The SDK provider in force and a generation counter that tells cached tracers to refresh."""

    __slots__ = ("generation", "provider", "recording")

    def __init__(self) -> None:
        self.provider: trace.TracerProvider = trace.NoOpTracerProvider()
        self.generation = 0
        # False before init, after shutdown and when disabled: traced/span then cost a branch and a plain call.
        self.recording = False


# The running instance's tracing, which the delegating tracers follow (activate(); recording False without one).
_active = _Active()
# Process-wide: the OpenTelemetry global tracer provider can be set once per process.
_global_lock = threading.Lock()
_global_installed = False


class _DelegatingTracer(trace.Tracer):
    __slots__ = ("_args", "_generation", "_tracer")

    def __init__(self, args: tuple[Any, ...]) -> None:
        self._args = args
        self._generation = -1
        self._tracer: trace.Tracer = trace.NoOpTracer()

    def current(self) -> trace.Tracer:
        if self._generation != _active.generation:
            self._tracer = _active.provider.get_tracer(*self._args)
            self._generation = _active.generation
        return self._tracer

    def start_span(self, *args: Any, **kwargs: Any) -> Span:
        return self.current().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self.current().start_as_current_span(*args, **kwargs)


# Instrumentation scopes whose tracers signalfire narrows (by scope name, a public part of the OpenTelemetry API):
# FastAPI's native telemetry asks the global provider for "fastapi" (see integrations/_fastapi_native.py).
SCOPE_TRACERS: dict[str, Callable[[trace.Tracer], trace.Tracer]] = {}


class _DelegatingTracerProvider(trace.TracerProvider):
    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> trace.Tracer:
        tracer = _DelegatingTracer((instrumenting_module_name, instrumenting_library_version, schema_url, attributes))
        narrow = SCOPE_TRACERS.get(instrumenting_module_name)
        return narrow(tracer) if narrow is not None else tracer


GLOBAL_PROVIDER = _DelegatingTracerProvider()


def _set_global_once() -> None:
    global _global_installed  # noqa: PLW0603 - the process-wide fact "the global is ours" lives here
    with _global_lock:
        if _global_installed:
            return
        existing = trace.get_tracer_provider()
        if not isinstance(existing, trace.ProxyTracerProvider):
            _log.warning(
                "signalfire: a global tracer provider (%s) was set before init_observability(); spans made through "
                "signalfire (traced, span, its instrumentations) use signalfire's provider, other code keeps the "
                "existing one",
                type(existing).__name__,
            )
        else:
            trace.set_tracer_provider(GLOBAL_PROVIDER)
        _global_installed = True


def activate(provider: trace.TracerProvider | None) -> None:
    """Route every delegating tracer to ``provider`` (None: back to no-op)."""
    _active.provider = provider if provider is not None else trace.NoOpTracerProvider()
    _active.recording = provider is not None
    _active.generation += 1


# --- building the provider ------------------------------------------------------------------------------------------
def build_resource(settings: Settings) -> Resource:
    """The resource every signal carries: service identity, environment, host, process, SDK, and the user's own."""
    from opentelemetry.sdk.version import __version__ as sdk_version

    from signalfire._version import __version__

    # The SDK's detector keeps one id per process and renews it after fork; providers re-read it at fork themselves.
    instance = ServiceInstanceIdResourceDetector().detect().attributes
    attributes: dict[str, AttributeValue] = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": sdk_version,
        "telemetry.distro.name": _SDK_NAME,
        "telemetry.distro.version": __version__,
        "host.name": socket.gethostname(),
        "host.arch": platform.machine().lower(),
        "os.type": platform.system().lower(),
        "process.runtime.name": platform.python_implementation().lower(),
        "process.runtime.version": platform.python_version(),
        **dict(instance),
        **settings.resource_attributes,
        "service.name": settings.service_name or "unknown_service:python",
        "deployment.environment.name": settings.environment or "development",
    }
    if settings.service_version:
        attributes["service.version"] = settings.service_version
    return Resource(attributes)


def build_sampler(settings: Settings) -> Sampler:
    """The sampler OTEL_TRACES_SAMPLER / _ARG describe; the ratio comes from the environment's preset by default."""
    ratio = settings.traces_sampler_arg if settings.traces_sampler_arg is not None else 1.0
    name = settings.traces_sampler
    root: Sampler
    if name.endswith("always_on"):
        root = ALWAYS_ON
    elif name.endswith("always_off"):
        root = ALWAYS_OFF
    else:
        root = TraceIdRatioBased(ratio)
    return ParentBased(root) if name.startswith("parentbased_") else root


def build_span_limits(settings: Settings) -> SpanLimits:
    """OTEL_*_LIMIT settings as SpanLimits, every value explicit (SpanLimits reads the environment for a None)."""
    count = settings.attribute_count_limit
    length = settings.attribute_value_length_limit
    return SpanLimits(
        max_attributes=count,
        max_events=settings.span_event_count_limit,
        max_links=settings.span_link_count_limit,
        max_span_attributes=settings.span_attribute_count_limit or count,
        max_event_attributes=count,
        max_link_attributes=count,
        max_attribute_length=length,
        max_span_attribute_length=settings.span_attribute_value_length_limit or length,
    )


def _span_exporters(settings: Settings) -> list[tuple[SpanExporter, tuple[str, int] | None]]:
    """The exporters with the (host, port) each connects to (None: not over the network), so that the exit path can
    tell a collector that refuses connections at once (``_otlp.refusing``)."""
    exporters: list[tuple[SpanExporter, tuple[str, int] | None]] = []
    for name in settings.exporters("traces"):
        if name == "otlp":
            target = settings.otlp_target("traces")
            if target is not None:
                exporters.append((otlp_exporter("traces", target), address(target.endpoint, target.protocol)))
        elif name == "console":
            from signalfire._export._console import SpanTreeExporter

            exporters.append((SpanTreeExporter(), None))
    return exporters


def install(
    settings: Settings,
    resource: Resource,
    *,
    exporters: Sequence[SpanExporter] | None = None,
    extra_processors: Sequence[Any] = (),
) -> TracerProvider:
    """Build the SDK tracer provider for ``settings`` and route the global tracers to it.

    ``exporters`` replaces the exporters the settings select (tests pass an in-memory one). ``extra_processors`` are
    added before the batch processors (the scrubber adds itself here).
    """
    provider = TracerProvider(
        resource=resource,
        sampler=build_sampler(settings),
        span_limits=build_span_limits(settings),
        shutdown_on_exit=False,
    )
    for processor in extra_processors:
        provider.add_span_processor(processor)
    chosen = [(e, None) for e in exporters] if exporters is not None else _span_exporters(settings)
    for exporter, endpoint in chosen:
        # one scrubber policy for every signal: span attributes and events are scrubbed before export; the counting
        # wrapper outside it sees every loss, the scrubber's included, and keeps any exception from the SDK's thread
        counting = CountingSpanExporter(
            ScrubbingSpanExporter(exporter, _scrub.active(), _drops.dropped), endpoint=endpoint
        )
        processor = BatchSpanProcessor(counting, **settings.batch_options())
        watch_batch_processor(processor, "traces", counting)
        provider.add_span_processor(processor)
    if not chosen and settings.preset == "production" and settings.traces_exporter is None:
        _log.warning(
            "signalfire: traces are not exported: set OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_TRACES_EXPORTER=none to "
            "silence this)"
        )
    _set_global_once()
    activate(provider)
    return provider


# --- traced and span ------------------------------------------------------------------------------------------------
def record_exception(span: Span, exc: BaseException) -> None:
    """``span.record_exception(exc)``, the same ``exception`` event (type, message, stacktrace, escaped), with the
    stack trace from ``signalfire._traceback`` (each frame's text formatted once per process, not once per error)."""
    cls = type(exc)
    module, qualname = cls.__module__, cls.__qualname__
    span.add_event(
        "exception",
        {
            "exception.type": f"{module}.{qualname}" if module and module != "builtins" else qualname,
            "exception.message": str(exc),
            "exception.stacktrace": _traceback.format_exception(cls, exc, exc.__traceback__),
            "exception.escaped": "False",
        },
    )


def _record_error(current: Span, exc: BaseException) -> None:
    # As opentelemetry's use_span does: only Exception is an error (not CancelledError, GeneratorExit, SystemExit).
    if isinstance(exc, Exception) and current.is_recording():
        record_exception(current, exc)
        current.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def _attribute_value(value: Any) -> AttributeValue:
    if isinstance(value, str | bool | int | float):
        return value
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not break the call it describes
        text = f"<{type(value).__name__}>"
    return text[:1024]


class _SpanSpec:
    """What a decorated function needs per call, computed once at decoration time."""

    __slots__ = ("attributes", "capture", "name", "signature", "tracer")

    def __init__(
        self, func: Callable[..., Any], name: str | None, attributes: Mapping[str, Any] | None, capture: Any
    ) -> None:
        self.name = name or f"{func.__module__}.{func.__qualname__}"
        self.attributes: dict[str, AttributeValue] = {"code.function.name": f"{func.__module__}.{func.__qualname__}"}
        self.attributes.update({k: _attribute_value(v) for k, v in (attributes or {}).items()})
        self.tracer = _DelegatingTracer((func.__module__ or _SDK_NAME, None, None, None))
        self.signature = inspect.signature(func) if capture else None
        self.capture: frozenset[str] | None
        if capture is True:
            self.capture = frozenset(self.signature.parameters) if self.signature else frozenset()
        elif capture:
            self.capture = frozenset([capture] if isinstance(capture, str) else capture)
            missing = self.capture - set(self.signature.parameters if self.signature else ())
            if missing:
                raise TypeError(f"traced(capture_args=...) names unknown parameters of {self.name}: {sorted(missing)}")
        else:
            self.capture = None

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Span:
        delegate = self.tracer
        tracer = delegate._tracer if delegate._generation == _active.generation else delegate.current()
        # Attributes are set on the started span rather than passed to start_span: the SDK runs a mapping given at
        # start through the sampler, a read-only proxy and two ABC isinstance checks, which costs more than the span
        # itself saves (benchmarks/bench_tracing.py). Only the built-in samplers run here and none reads attributes.
        current = tracer.start_span(self.name)
        if not current.is_recording():
            return current
        for key, value in self.attributes.items():
            current.set_attribute(key, value)
        if self.capture is not None and self.signature is not None:
            try:
                bound = self.signature.bind_partial(*args, **kwargs)
                for key, value in bound.arguments.items():
                    if key in self.capture:
                        current.set_attribute(f"code.function.parameter.{key}", _attribute_value(value))
            except TypeError:
                pass  # the call itself will raise the TypeError the user expects
        return current


@overload
def traced(func: F, /) -> F: ...
@overload
def traced(
    name: str | None = None,
    /,
    *,
    attributes: Mapping[str, Any] | None = None,
    capture_args: bool | str | Sequence[str] = False,
) -> Callable[[F], F]: ...
def traced(
    func_or_name: Any = None,
    /,
    *,
    attributes: Mapping[str, Any] | None = None,
    capture_args: bool | str | Sequence[str] = False,
) -> Any:
    """Run a function inside a span named ``module.qualname`` (or the name you give).

    Works on sync, async, generator and async-generator functions. An exception is recorded on the span, the span's
    status set to ERROR and the exception re-raised unchanged. A generator's span stays open across its iteration and
    is current only while the generator's own code runs. Before ``init_observability()`` and when signalfire is
    disabled (OTEL_SDK_DISABLED=true, OTEL_ENABLED=false), the decorated function costs about a plain call.

    ``capture_args`` records named arguments as ``code.function.parameter.<name>`` attributes: ``True`` for all,
    or the names to record. Nothing is captured unless asked for.

    Example::

        @signalfire.traced
        async def sync_property_availability(property_id: str) -> None: ...

        @signalfire.traced("charge", attributes={"payment.provider": "stripe"}, capture_args=["payment_id"])
        def charge(payment_id: str, amount: float) -> None: ...
    """
    if callable(func_or_name):
        return _decorate(func_or_name, None, attributes, capture_args)
    name = func_or_name

    def decorator(func: F) -> F:
        return _decorate(func, name, attributes, capture_args)

    return decorator


def _decorate(func: F, name: str | None, attributes: Mapping[str, Any] | None, capture: Any) -> F:
    spec = _SpanSpec(func, name, attributes, capture)
    active = _active
    if inspect.isasyncgenfunction(func):
        wrapper: Any = _wrap_async_generator(func, spec)
    elif inspect.isgeneratorfunction(func):
        wrapper = _wrap_generator(func, spec)
    elif inspect.iscoroutinefunction(func):

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not active.recording:
                return await func(*args, **kwargs)
            current = spec.start(args, kwargs)
            token = otel_context.attach(trace.set_span_in_context(current))
            try:
                return await func(*args, **kwargs)
            except BaseException as exc:
                _record_error(current, exc)
                raise
            finally:
                otel_context.detach(token)
                current.end()

    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not active.recording:
                return func(*args, **kwargs)
            current = spec.start(args, kwargs)
            token = otel_context.attach(trace.set_span_in_context(current))
            try:
                return func(*args, **kwargs)
            except BaseException as exc:
                _record_error(current, exc)
                raise
            finally:
                otel_context.detach(token)
                current.end()

    functools.update_wrapper(wrapper, func)
    return wrapper  # type: ignore[no-any-return]


def _wrap_generator(func: Callable[..., Generator[Any, Any, Any]], spec: _SpanSpec) -> Callable[..., Any]:
    active = _active

    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        if not active.recording:
            return (yield from func(*args, **kwargs))
        current = spec.start(args, kwargs)
        span_context = trace.set_span_in_context(current)
        inner = func(*args, **kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                # The span is current only while the generator's own code runs, never in the consumer's code.
                token = otel_context.attach(span_context)
                try:
                    if thrown is not None:
                        exc, thrown = thrown, None
                        item = inner.throw(exc)
                    else:
                        item = inner.send(sent)
                except StopIteration as stop:
                    return stop.value
                finally:
                    otel_context.detach(token)
                try:
                    sent = yield item
                except GeneratorExit:
                    token = otel_context.attach(span_context)
                    try:
                        inner.close()
                    finally:
                        otel_context.detach(token)
                    raise
                except BaseException as exc:
                    thrown = exc
        except BaseException as exc:
            _record_error(current, exc)
            raise
        finally:
            current.end()

    return wrapper


def _wrap_async_generator(func: Callable[..., AsyncGenerator[Any, Any]], spec: _SpanSpec) -> Callable[..., Any]:
    active = _active

    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        if not active.recording:
            async for item in func(*args, **kwargs):
                yield item
            return
        current = spec.start(args, kwargs)
        span_context = trace.set_span_in_context(current)
        inner = func(*args, **kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                token = otel_context.attach(span_context)
                try:
                    if thrown is not None:
                        exc, thrown = thrown, None
                        item = await inner.athrow(exc)
                    else:
                        item = await inner.asend(sent)
                except StopAsyncIteration:
                    return
                finally:
                    otel_context.detach(token)
                try:
                    sent = yield item
                except GeneratorExit:
                    token = otel_context.attach(span_context)
                    try:
                        await inner.aclose()
                    finally:
                        otel_context.detach(token)
                    raise
                except BaseException as exc:
                    thrown = exc
        except BaseException as exc:
            _record_error(current, exc)
            raise
        finally:
            current.end()

    return wrapper


class span:
    """Open a span for a block of code, sync or async, as the current span.

    The exception of a failing block is recorded on the span, its status set to ERROR, and the exception propagates
    unchanged. Attributes are keyword arguments. Before ``init_observability()`` or when disabled it is a no-op.

    Example::

        with signalfire.span("charge_card", payment_id=pid) as current:
            current.set_attribute("payment.amount", 49.0)

        async with signalfire.span("fetch_rates", provider="ecb"):
            ...
    """

    __slots__ = ("_attributes", "_name", "_span", "_token")

    def __init__(self, name: str, /, **attributes: Any) -> None:
        self._name = name
        self._attributes = attributes
        self._span: Span = trace.INVALID_SPAN
        self._token: object | None = None

    def __enter__(self) -> Span:
        if not _active.recording:
            return trace.INVALID_SPAN
        delegate = _span_tracer
        tracer = delegate._tracer if delegate._generation == _active.generation else delegate.current()
        self._span = current = tracer.start_span(self._name)
        if self._attributes and current.is_recording():  # set after start: see _SpanSpec.start
            for key, value in self._attributes.items():
                current.set_attribute(key, _attribute_value(value))
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._token is None:
            return
        if exc is not None:
            _record_error(self._span, exc)
        otel_context.detach(self._token)  # type: ignore[arg-type]
        self._token = None
        self._span.end()

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


_span_tracer = _DelegatingTracer((_SDK_NAME, None, None, None))
