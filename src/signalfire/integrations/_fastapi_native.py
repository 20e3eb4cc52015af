"""FastAPI's native telemetry (FastAPI >= 0.142) under signalfire's global providers: one owner per signal.

FastAPI traces and meters every request itself as soon as the global tracer or meter provider is configured, which
``init_observability()`` does, and it does so in ``FastAPI.__call__``, outside the middleware stack signalfire joins.
Its public configuration (``FastAPI(telemetry=...)``) is fixed when the app is built, usually before signalfire sees
the app, and writing the config afterwards means writing a private attribute. What FastAPI does ask is public: it
gets its tracer and meter from the global providers under the instrumentation scope ``"fastapi"``, and those
providers are signalfire's. So for that scope:

- the meter records nothing: signalfire's middleware records the HTTP metrics (on /metrics and over OTLP) and a
  second ``http.server.request.duration`` would be a duplicate series;
- the tracer makes no server span (FastAPI's would be a second one, outside signalfire's);
- FastAPI's operation spans (``fastapi.dependencies``, ``fastapi.endpoint``, ``fastapi.serialization``,
  ``fastapi.background_task``) are recorded only with SIGNALFIRE_FASTAPI_OPERATION_SPANS=true and only inside a
  recording span, so they become children of signalfire's server span.

The same holds for an app signalfire was not given: it is left untraced, not half traced (spans without metrics), and
the start-up report says so. An app built with its own providers (``FastAPI(telemetry={"tracer_provider": ...})``)
keeps them: then FastAPI's server span is current when signalfire's middleware runs, and signalfire adds none.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.util.types import Attributes

__all__ = ["SCOPE", "NativeTracer", "install"]

# The instrumentation scope FastAPI's native telemetry asks the global providers for.
SCOPE = "fastapi"


class _State:
    __slots__ = ("operation_spans",)

    def __init__(self) -> None:
        self.operation_spans = False


_state = _State()


class _Unrecorded:
    """What FastAPI's ``with tracer.start_as_current_span(...)`` gets for an operation signalfire does not record: a
    span that records nothing, carrying the current span's context, and not made current (the application's own spans
    inside an operation stay children of the server span). A plain class rather than a generator-based context
    manager: FastAPI opens several operations per request (dependencies, endpoint, serialization), and this is what
    they cost signalfire's users when nobody asked for them."""

    __slots__ = ("_context",)

    def __init__(self, context: Context | None) -> None:
        self._context = context

    def __enter__(self) -> Span:
        return trace.NonRecordingSpan(trace.get_current_span(self._context).get_span_context())

    def __exit__(self, *exc_info: object) -> None:
        return None


# The context manager for the usual call (no explicit context): stateless, so one serves every request.
_UNRECORDED = _Unrecorded(None)


class NativeTracer(trace.Tracer):
    """The tracer FastAPI's native telemetry gets from signalfire's global provider: no server span; operation spans
    only when asked for, as children of the recording span in force."""

    __slots__ = ("_tracer",)

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start_span(  # noqa: PLR0917 - the API's signature
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        if kind is SpanKind.SERVER or not _state.operation_spans or not trace.get_current_span(context).is_recording():
            # The caller's context stays what it was: spans made inside keep their parent (the upstream caller's).
            return trace.NonRecordingSpan(trace.get_current_span(context).get_span_context())
        return self._tracer.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )

    def start_as_current_span(  # type: ignore[override]  # noqa: PLR0917 - the API's signature
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> AbstractContextManager[Span]:
        if kind is SpanKind.SERVER or not _state.operation_spans or not trace.get_current_span(context).is_recording():
            return _UNRECORDED if context is None else _Unrecorded(context)
        return self._recorded(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception, end_on_exit
        )

    # The API's own decorator (_agnosticcontextmanager) is private; FastAPI uses this as a context manager.
    @contextmanager
    def _recorded(  # noqa: PLR0917 - the API's signature
        self,
        name: str,
        context: Context | None,
        kind: SpanKind,
        attributes: Attributes,
        links: Sequence[Link] | None,
        start_time: int | None,
        record_exception: bool,
        set_status_on_exception: bool,
        end_on_exit: bool,
    ) -> Iterator[Span]:
        span = self._tracer.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


def install(settings: Any) -> None:
    """Narrow the ``fastapi`` scope of signalfire's global providers; SIGNALFIRE_FASTAPI_OPERATION_SPANS decides
    whether FastAPI's operation spans are kept. Idempotent; new settings take effect at once."""
    from signalfire import _tracing
    from signalfire._metrics import _provider

    _state.operation_spans = bool(settings.fastapi_operation_spans)
    _tracing.SCOPE_TRACERS[SCOPE] = NativeTracer
    _provider.SILENT_SCOPES.add(SCOPE)
