"""Logs: one structlog pipeline for structlog loggers and standard-library records, scrubbed, with trace context.

structlog is configured once with a single processor and an output object that both look up the *current* pipeline
when called. A logger obtained or bound at any time (before ``init_observability()``, across re-initialisation)
therefore always logs with the configuration in force; nothing is frozen on defaults. structlog itself is imported only
when something uses it (``get_logger()``, or the application importing structlog, which is configured the moment it
is imported): a service that logs through the standard library does not pay for importing it.

Standard-library records (uvicorn, sqlalchemy, httpx, any library) reach the same pipeline through one handler on the
root logger; uvicorn's own handlers are removed so every record is written exactly once. Levels come from the
standard library for both kinds of logger: LOG_LEVEL sets the root, SIGNALFIRE_LOG_LEVELS the named loggers.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import IO, TYPE_CHECKING, Any

import orjson

from signalfire import _traceback
from signalfire._compat import gunicorn as compat_gunicorn
from signalfire._compat import opentelemetry as compat
from signalfire._compat import structlog as compat_structlog
from signalfire._compat import uvicorn as compat_uvicorn
from signalfire._export import _drops
from signalfire._hex_ids import hex_ids
from signalfire._imports import when_imported
from signalfire._scrub import _policy as _scrub

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource

    from signalfire._runtime import Observability
    from signalfire._settings import Settings

__all__ = ["bind_request_id", "current_request_id", "get_logger", "install", "logging_processors", "reset_request_id"]

_log = logging.getLogger("signalfire")

# --- request id -------------------------------------------------------------------------------------------------------
# The request id, and the request's server span (handed over by the middleware, which made it). The middleware keeps
# the id bound after an unhandled exception, when its span is no longer current: the server logs the traceback next,
# in the same task ("Exception in ASGI application"), and that line carries the request's trace through this span.
_REQUEST_ID: contextvars.ContextVar[tuple[str, Any] | None] = contextvars.ContextVar(
    "signalfire.request_id", default=None
)


def current_request_id() -> str | None:
    """The id of the HTTP request being served in this context, or None."""
    bound = _REQUEST_ID.get()
    return None if bound is None else bound[0]


def bind_request_id(request_id: str | None, span: Any = None) -> contextvars.Token[tuple[str, Any] | None]:
    """Bind ``request_id`` to every log line of the current context, and ``span`` (the request's server span) to the
    lines logged in it outside any span; pass the token to :func:`reset_request_id`."""
    return _REQUEST_ID.set(None if request_id is None else (request_id, span))


def reset_request_id(token: contextvars.Token[tuple[str, Any] | None]) -> None:
    """Undo :func:`bind_request_id`."""
    _REQUEST_ID.reset(token)


# --- levels -----------------------------------------------------------------------------------------------------------
_METHOD_LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
_LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}
# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged as a field.
# uvicorn's ``color_message`` (its message again, with ANSI colours) is left out too: the line already has the message.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",
}
# Servers whose loggers come with their own handlers (and propagate=False); they are routed to ours instead.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn", "gunicorn.error", "gunicorn.access")


# --- timestamps and ids, cached -------------------------------------------------------------------------------------
class _Clock:
    """ISO-8601 UTC timestamps with milliseconds; the date-and-time part is formatted once per second."""

    __slots__ = ("_cached",)

    def __init__(self) -> None:
        # one tuple, replaced whole, so threads never see a second paired with another second's text
        self._cached: tuple[int, str] = (-1, "")

    def iso(self, now: float) -> str:
        second = int(now)
        cached = self._cached
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._cached = cached
        return cached[1] + _MILLISECONDS[int((now - second) * 1000)]


# ".000Z" to ".999Z": a lookup and one concatenation per line instead of a formatted field
_MILLISECONDS = tuple(f".{ms:03d}Z" for ms in range(1000))


_current_span = compat.current_span_reader()


def _add_trace_ids(out: dict[str, Any], fallback: Any = None) -> None:
    """The current span's hex ids on a line, else those of ``fallback`` (the span of the request the line belongs to);
    formatted once per span (:mod:`signalfire._hex_ids`), not once per line."""
    # trace.get_current_span() without its ABC isinstance check, which costs more than the rest of this function
    span: Any = _current_span() or fallback
    if span is None:
        return
    try:
        context = span.get_span_context()
    except AttributeError:
        return
    if not context.is_valid:
        return
    ids = hex_ids(context)
    out["trace_id"] = ids[1]
    out["span_id"] = ids[2]
    out["trace_flags"] = ids[3]


def _exception_fields(exc_info: Any) -> tuple[Any, BaseException | None]:
    """The structured ``exception`` field (type, message, stack) of an exc_info value, and the exception."""
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or len(exc_info) != 3 or exc_info[1] is None:
        return None, None
    exc = exc_info[1]
    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {_type_name(exc)}>"
    try:
        stack = _traceback.format_exception(*exc_info)  # each frame's text formatted once per process
    except Exception:
        stack = f"{_type_name(exc)}: {message}"
    return {"type": type(exc).__name__, "message": message, "stack": stack}, exc


# --- values that cannot be rendered as they are ----------------------------------------------------------------------
# How deep a logged structure is rendered; below, a marker. Deep enough for any real payload, shallow enough that a
# structure nested a thousand levels (or a cycle) costs a bounded walk and no RecursionError.
MAX_RENDER_DEPTH = 32


def _type_name(value: Any) -> str:
    try:
        return type(value).__qualname__
    except Exception:  # pragma: no cover - a type without a name
        return "object"


def safe_repr(value: Any) -> str:
    """``repr(value)``, or a marker naming its type when its ``__repr__`` raises."""
    try:
        text = repr(value)
    except Exception:
        return f"<unrepresentable {_type_name(value)}>"
    return text if isinstance(text, str) else f"<unrepresentable {_type_name(value)}>"


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return str(key)
    if isinstance(key, bytes):
        return key.decode("utf-8", "backslashreplace")
    if key is None or isinstance(key, bool | int | float):
        return str(key)
    return safe_repr(key)


def plain(value: Any, depth: int = 0, path: frozenset[int] = frozenset()) -> Any:
    """``value`` as plain JSON data: str keys, lists for tuples and sets, text for bytes and other objects (their
    repr, or a marker naming the type when that raises), a marker for cycles and for nesting beyond
    MAX_RENDER_DEPTH. Never raises; linear in the size of what it keeps."""
    if value is None or isinstance(value, str | bool | float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if depth >= MAX_RENDER_DEPTH:
        return f"<too deep: {_type_name(value)}>"
    try:
        if isinstance(value, dict | list | tuple | set | frozenset):
            if id(value) in path:
                return f"<cycle: {_type_name(value)}>"
            inner = path | {id(value)}
            if isinstance(value, dict):
                return {_key_text(k): plain(v, depth + 1, inner) for k, v in list(value.items())}
            return [plain(item, depth + 1, inner) for item in list(value)]
        if isinstance(value, bytes | bytearray):
            return bytes(value).decode("utf-8", "backslashreplace")
    except Exception:  # a container whose iteration raises
        return f"<unrenderable {_type_name(value)}>"
    return safe_repr(value)


# --- the pipeline -----------------------------------------------------------------------------------------------------
class _Pipeline:
    """Everything the settings decide about a log line: format, static fields, scrubber, destinations, levels."""

    __slots__ = (
        "_clock",
        "_console",
        "_default",
        "_loggers",
        "_stdlib_levels",
        "json",
        "min_level",
        "otel_logger",
        "scrubber",
        "static",
        "stream",
    )

    def __init__(
        self,
        *,
        json_format: bool,
        static: dict[str, str],
        scrubber: _scrub.Scrubber,
        stream: IO[str] | None = None,
        stdlib_levels: bool = True,
        otel_logger: Any = None,
    ) -> None:
        self.json = json_format
        self.static = static
        self.scrubber = scrubber
        self.stream = stream
        self.otel_logger = otel_logger
        self._stdlib_levels = stdlib_levels
        self.min_level = logging.INFO
        self._loggers: dict[str, logging.Logger] = {}
        self._clock = _Clock()
        self._console: Callable[..., Any] | None = None
        if not json_format:
            colors = bool(getattr(stream or sys.stdout, "isatty", lambda: False)())
            from structlog.dev import ConsoleRenderer

            self._console = ConsoleRenderer(colors=colors, sort_keys=False)
        scrub_text = scrubber.scrub_text

        def default(value: Any) -> str:
            # orjson calls this for types it cannot serialize; their repr is scrubbed like any other text.
            try:
                return scrub_text(safe_repr(value))
            except Exception:
                return f"<unrepresentable {_type_name(value)}>"

        self._default = default

    def enabled_for(self, name: str, level: int) -> bool:
        if not self._stdlib_levels:
            return level >= self.min_level
        logger = self._loggers.get(name)
        if logger is None:
            logger = logging.getLogger(None if name == "root" else name)
            if len(self._loggers) < 10_000:
                self._loggers[name] = logger
        return logger.isEnabledFor(level)

    def detach_levels(self) -> None:
        """Judge levels by ``min_level`` from now on (the root logger's level is given back at shutdown)."""
        self._stdlib_levels = False
        self._loggers.clear()

    def render(self, fields: MutableMapping[str, Any], level: int, name: str, now: float) -> str:
        """The line for one event: fields scrubbed, identity, trace context and request id added."""
        out = self.prepare(fields, level, name, now)
        if self._console is not None:
            line = self._console_line(out, level)
        else:
            try:  # the fast path, inline: orjson on the fields as they are
                line = orjson.dumps(out, default=self._default, option=orjson.OPT_NON_STR_KEYS).decode()
            except (TypeError, orjson.JSONEncodeError):
                line = self._json_line(out)
        if _taps:
            for tap in _taps:
                tap(out, line)
        return line

    def prepare(self, fields: MutableMapping[str, Any], level: int, name: str, now: float) -> dict[str, Any]:
        """The fields of one event as they are rendered and exported: scrubbed, with identity, trace context and
        request id; sent to the OTLP log exporter when there is one."""
        exc: BaseException | None = None
        exc_info = fields.pop("exc_info", None)
        if exc_info:
            structured, exc = _exception_fields(exc_info)
            if structured is not None:
                fields["exception"] = structured if self.json else structured["stack"]
        try:
            fields = self.scrubber.scrub_fields(fields)
        except Exception:  # a value the scrubber cannot walk (a raising __repr__, odd keys): plain data first
            fields = self._scrub_plain(fields)
        event = fields.pop("event", "")
        out: dict[str, Any] = {
            "timestamp": self._clock.iso(now),
            "level": _LEVEL_NAMES.get(level) or logging.getLevelName(level).lower(),
            "event": event,
            "logger": name,
        }
        out.update(fields)
        for key, value in fields.items():
            # a database error's message repeats its bound parameters: removed from the line (issue 17 item 4)
            if isinstance(value, str) and ("[parameters: " in value or "Key (" in value):
                out[key] = _strip_statement_data(value)
            elif key == "exception" and isinstance(value, dict):
                out[key] = {k: _strip_statement_data(v) if isinstance(v, str) else v for k, v in value.items()}
        if isinstance(event, str) and ("[parameters: " in event or "Key (" in event):
            out["event"] = _strip_statement_data(event)
        out.update(self.static)
        request = _REQUEST_ID.get()
        if request is None:
            _add_trace_ids(out)
        else:
            _add_trace_ids(out, request[1])
            # a client's X-Request-ID is whatever it sent: scrubbed like any value (seen clean once, a lookup after)
            request_id = request[0]
            out["request_id"] = (
                request_id if type(request_id) is _scrub.GeneratedId else self.scrubber.scrub_text(request_id)
            )
        if self.otel_logger is not None:
            self._export(out, level, now, exc)
        return out

    def _scrub_plain(self, fields: MutableMapping[str, Any]) -> dict[str, Any]:
        try:
            scrubbed = self.scrubber.scrub_fields(plain(dict(fields)))
            return dict(scrubbed)
        except Exception:  # fail closed: nothing of the fields unscrubbed, a marker saying why
            _drops.dropped("logs", "render_failed", warn=False)
            return {"event": "<unscrubbable log fields>", "signalfire.render_error": "scrub_failed"}

    def _json_line(self, out: dict[str, Any]) -> str:
        # Fast path: orjson on the fields as they are; only a line it refuses pays for the conversion to plain data.
        try:
            return orjson.dumps(out, default=self._default, option=orjson.OPT_NON_STR_KEYS).decode()
        except (TypeError, orjson.JSONEncodeError):  # bytes or tuple keys, cycles, depth, ints beyond 64 bits
            pass
        try:
            return orjson.dumps(plain(out), default=self._default).decode()
        except Exception:
            _drops.dropped("logs", "render_failed", warn=False)
            return json.dumps({k: out.get(k) for k in ("timestamp", "level", "logger")} | {"event": "<unrenderable>"})

    def _console_line(self, out: dict[str, Any], level: int) -> str:
        assert self._console is not None
        method = _LEVEL_NAMES.get(level, "info")
        try:
            return str(self._console(None, method, dict(out)))
        except Exception:
            pass
        try:
            return str(self._console(None, method, plain(out)))
        except Exception:
            _drops.dropped("logs", "render_failed", warn=False)
            return f"{out.get('timestamp', '')} [{method}] <unrenderable log line>"

    def _export(self, out: dict[str, Any], level: int, now: float, exc: BaseException | None) -> None:
        from opentelemetry._logs import SeverityNumber

        attributes = {
            key: value if isinstance(value, str | bool | int | float) else _attribute_text(value)
            for key, value in out.items()
            if key not in ("event", "timestamp", "trace_id", "span_id", "trace_flags", "level")
        }
        try:
            self.otel_logger.emit(
                timestamp=int(now * 1e9),
                context=None,  # the current context, which carries the span
                severity_number=SeverityNumber(_SEVERITY.get(level, 9)),
                severity_text=out["level"].upper(),
                body=out["event"] if isinstance(out["event"], str) else _attribute_text(out["event"]),
                attributes=attributes,
            )
        except Exception:  # an exporter problem must never reach the caller
            _log.debug("signalfire: exporting a log record failed", exc_info=True)

    def write(self, line: str) -> None:
        stream = self.stream or sys.stdout
        try:
            stream.write(line + "\n")
            stream.flush()
        except Exception:  # a closed stdout must not break the caller (e.g. after a test's capture ended)
            pass


_SEVERITY = {logging.DEBUG: 5, logging.INFO: 9, logging.WARNING: 13, logging.ERROR: 17, logging.CRITICAL: 21}


def _strip_statement_data(text: str) -> str:
    from signalfire._scrub._wire import strip_statement_data

    return strip_statement_data(text)


def _attribute_text(value: Any) -> str:
    try:
        return orjson.dumps(value, default=repr).decode()
    except Exception:
        return repr(value)


# Observers of every rendered line (the testing plugin's capture); empty in production, so it costs one test.
# Process-wide: a capture outlives the instances it watches (the fixture adds its tap before it starts signalfire).
Tap = Callable[[dict[str, Any], str], None]
_taps: list[Tap] = []


def add_tap(tap: Tap) -> None:
    """Call ``tap(fields, line)`` for every line rendered from now on."""
    _taps.append(tap)


def remove_tap(tap: Tap) -> None:
    """Stop calling ``tap``."""
    if tap in _taps:
        _taps.remove(tap)


def _default_pipeline() -> _Pipeline:
    # Before init_observability(): readable lines at INFO and above, secrets already scrubbed.
    return _Pipeline(json_format=False, static={}, scrubber=_scrub.active(), stdlib_levels=False)


# The pipeline every line goes through: the running instance's, or the one it leaves behind at shutdown (lines
# logged later still reach stdout), or a default one built when something logs before init. Set by install().
_pipeline: _Pipeline | None = None
# Process-wide: structlog's configuration is the process's; configuring it (and binding its names) is done once.
_configure_lock = threading.Lock()


def _current() -> _Pipeline:
    global _pipeline  # noqa: PLW0603 - built lazily the first time something logs before init
    if _pipeline is None:
        _pipeline = _default_pipeline()
    return _pipeline


# --- structlog side -------------------------------------------------------------------------------------------------
class _Output:
    """structlog's "wrapped logger": it knows its name and writes rendered lines to the current pipeline."""

    __slots__ = ("name",)

    def __init__(self, name: str | None = None, *_args: Any) -> None:
        self.name = name or "root"

    def msg(self, line: str) -> None:
        (_pipeline or _current()).write(line)

    log = debug = info = warning = warn = error = critical = fatal = exception = msg


# What _process needs of structlog, bound by _ensure_structlog() (which runs before structlog can call _process).
# Process-wide: names of the structlog module, the same for every instance.
_STRUCTLOG_CONTEXT_VARS: dict[str, Any] | None = None
_DropEvent: type[BaseException] = Exception
_merge_contextvars: Callable[..., MutableMapping[str, Any]] = dict
_BoundLogger: Any = None


def _process(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> str:
    """structlog's only processor: level check, then the current pipeline renders the line."""
    pipeline = _pipeline or _current()
    level = _METHOD_LEVELS.get(method_name, logging.INFO)
    name = getattr(logger, "name", None) or "root"
    if not pipeline.enabled_for(name, level):
        raise _DropEvent
    try:
        if _STRUCTLOG_CONTEXT_VARS is None or _STRUCTLOG_CONTEXT_VARS:  # only when the app used bind_contextvars
            event_dict = _merge_contextvars(logger, method_name, event_dict)
        return pipeline.render(event_dict, level, name, time.time())
    except Exception:  # never into the caller's code: a marker line instead, counted
        return _failed_line(pipeline, level, name)


def _failed_line(pipeline: _Pipeline, level: int, name: str) -> str:
    _drops.dropped("logs", "render_failed", warn=False)
    try:
        return pipeline.render({"event": "<unrenderable log call>"}, level, name, time.time())
    except Exception:
        return '{"event": "<unrenderable log call>"}'


def _bind_structlog() -> Any:
    global _STRUCTLOG_CONTEXT_VARS, _DropEvent, _merge_contextvars, _BoundLogger  # noqa: PLW0603
    import structlog

    if _BoundLogger is None:
        with _configure_lock:
            if _BoundLogger is None:
                _STRUCTLOG_CONTEXT_VARS = compat_structlog.bound_context_variables()
                _DropEvent = structlog.DropEvent
                _merge_contextvars = structlog.contextvars.merge_contextvars
                # Every level passes the wrapper; the level decision is made per call in _process, so it follows
                # re-configuration.
                _BoundLogger = structlog.make_filtering_bound_logger(logging.NOTSET)
    return structlog


def structlog_owner() -> str | None:
    """Who configured structlog: None (nobody yet), "signalfire" or "application"."""
    if "structlog" not in sys.modules:
        return None
    import structlog

    if not structlog.is_configured():
        return None
    return "signalfire" if structlog.get_config()["processors"] == [_process] else "application"


def _ensure_structlog() -> None:
    """Configure structlog with signalfire's pipeline unless something (the application) already configured it.

    A ``structlog.configure()`` by the application, before or after init, is never undone: it can put
    :func:`logging_processors` into its own chain instead.
    """
    structlog = _bind_structlog()
    if structlog.is_configured():
        return
    with _configure_lock:
        if structlog.is_configured():
            return
        structlog.configure(
            processors=[_process],
            wrapper_class=_BoundLogger,
            logger_factory=_Output,
            cache_logger_on_first_use=True,
        )


def _configure_structlog() -> None:
    """Configure structlog now if it is imported, else the moment it is."""
    if "structlog" in sys.modules:
        _ensure_structlog()
    else:
        _hook_structlog_import()


# Process-wide: the post-import hook is registered once (it outlives re-initialisation, and cannot be removed).
@functools.cache
def _hook_structlog_import() -> None:
    when_imported("structlog", lambda _module: _ensure_structlog())


def get_logger(name: str | None = None, **initial_values: Any) -> Any:
    """A structlog logger named ``name`` that logs with the configuration of the running ``init_observability()``.

    It can be obtained (and bound) at import time, before init: every call uses the pipeline in force when it logs.
    Lines carry timestamp, level, event, logger, service, environment, version and, inside a span or request,
    trace_id, span_id, trace_flags and request_id. Format: SIGNALFIRE_LOG_FORMAT (json or console); levels: LOG_LEVEL
    and SIGNALFIRE_LOG_LEVELS.

    Example::

        log = signalfire.get_logger(__name__)
        log.info("order placed", order_id="o-1", amount=49.5)
    """
    _ensure_structlog()
    import structlog

    return structlog.get_logger(name, **initial_values)


class DirectLogger:
    """One of signalfire's own loggers (the access log) that writes its lines without structlog's wrapper layers while
    structlog's chain for it is signalfire's own.

    ``log(method_name, event, fields)`` writes what ``get_logger(name).<method_name>(event, **fields)`` writes, and
    through the same code: structlog would build ``{**fields, "event": event}``, run its one processor
    (:func:`_process`) and hand the line to the wrapped ``_Output``; this does those three steps itself. It does so
    only when structlog's own logger for ``name`` is known to be that chain for good: structlog cached it at first use
    (``cache_logger_on_first_use``, as signalfire configures it) with signalfire's processor, wrapper, output and an
    empty context. Otherwise (the application configured structlog before that first use, or turned caching off) every
    line goes through structlog, so the application's chain is respected as it always was.
    """

    __slots__ = ("_chain", "_logger", "_output")

    def __init__(self, name: str) -> None:
        self._logger = get_logger(name)
        self._output = _Output(name)
        # The processor list structlog's cached logger runs (None: not resolved yet; (): structlog is called).
        self._chain: list[Any] | tuple[()] | None = None

    def _resolve(self) -> list[Any] | tuple[()]:
        import structlog

        bound = self._logger.bind()  # what structlog's first call does: build the logger (and cache it)
        config = structlog.get_config()
        processors = config["processors"]
        ours = (
            self._logger.bind() is bound  # cached: structlog uses this very logger for every later call
            and type(bound) is _BoundLogger
            and config["wrapper_class"] is _BoundLogger
            and config["logger_factory"] is _Output
            and config["context_class"] is dict
            and structlog.get_context(bound) == {}
            and isinstance(processors, list)
            and len(processors) == 1
            and processors[0] is _process
        )
        return processors if ours else ()

    def log(self, method_name: str, event: str, fields: dict[str, Any]) -> None:
        """Write one line at ``method_name`` ("info", "warning", ...); ``fields`` becomes the event dict (it is
        consumed)."""
        chain = self._chain
        if chain is None:
            chain = self._chain = self._resolve()
        # the list structlog's cached logger holds: still signalfire's processor alone (nobody changed it in place)
        if chain and len(chain) == 1 and chain[0] is _process:
            fields["event"] = event
            try:
                line = _process(self._output, method_name, fields)
            except _DropEvent:
                return
            self._output.msg(line)
            return
        getattr(self._logger, method_name)(event, **fields)


class _Enrich:
    """A structlog processor: the event's fields scrubbed, with signalfire's identity, trace and request ids (and
    sent to the OTLP log exporter when one is configured); the chain's own renderer renders them."""

    __slots__ = ()

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
        pipeline = _pipeline or _current()
        level = _METHOD_LEVELS.get(method_name, logging.INFO)
        name = event_dict.pop("logger", None) or getattr(logger, "name", None) or "root"
        try:
            out = pipeline.prepare(event_dict, level, str(name), time.time())
        except Exception:  # never into the caller: the line says it could not be rendered, with nothing unscrubbed
            _drops.dropped("logs", "render_failed", warn=False)
            out = {"event": "<unrenderable log call>", "logger": str(name)}
        if _taps:
            line = pipeline._json_line(out)
            for tap in _taps:
                tap(out, line)
        # plain data (str keys, lists, text for other objects): whatever renderer follows cannot fail on it
        result: dict[str, Any] = plain(out)
        return result


def logging_processors() -> list[Any]:
    """signalfire's structlog processors, for an application that configures structlog itself.

    Put them before your renderer: each event is scrubbed (SIGNALFIRE_SCRUB_KEYS and the shared policy), gets the
    service identity (OTEL_SERVICE_NAME, environment, version), trace_id/span_id and request_id, and goes to the
    OTLP log exporter when OTEL_LOGS_EXPORTER=otlp. Fields your earlier processors set (a timestamp, a level) win.
    Without your own ``structlog.configure()`` you do not need this: signalfire configures structlog itself.

    Example::

        structlog.configure(processors=[*signalfire.logging_processors(), structlog.processors.JSONRenderer()])
    """
    return [_Enrich()]


# --- standard-library side ------------------------------------------------------------------------------------------
class _StdlibBridge(logging.Handler):
    """The one root handler: renders every standard-library record with the current pipeline."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self._busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._busy, "active", False):
            return  # a record logged while rendering one (e.g. by a failing exporter) would recurse
        self._busy.active = True
        pipeline = _current()
        try:
            wrapped = compat_structlog.wrapped_event_dict(record)
            if wrapped is not None:  # the app's structlog chain ran and handed its event dict to logging
                fields: dict[str, Any] = dict(wrapped)
            else:
                fields = {"event": _record_message(record)}
                for key, value in record.__dict__.items():
                    if key not in _RECORD_ATTRIBUTES:
                        fields[key] = value
            if record.exc_info:
                fields["exc_info"] = record.exc_info
            line = pipeline.render(fields, record.levelno, record.name, record.created)
        except Exception:  # never logging's "--- Logging error ---" traceback on stderr: a marker line, counted
            line = _failed_line(pipeline, record.levelno, str(getattr(record, "name", "root")))
        finally:
            self._busy.active = False
        pipeline.write(line)


def _record_message(record: logging.LogRecord) -> str:
    """``record.getMessage()`` without trailing whitespace (uvicorn ends "Exception in ASGI application\\n" with a
    newline, which split the console line); when the arguments do not fit the format, the format and the arguments."""
    try:
        message = record.getMessage()
    except Exception:
        return f"{safe_repr(record.msg)} % {safe_repr(record.args)}"
    return message.rstrip() if message and message[-1].isspace() else message


class _StderrHooks:
    """Warnings and uncaught exceptions (main thread and other threads) logged through the pipeline, scrubbed,
    instead of printed raw on stderr. Each hook chains the one that was there before, unless that one is Python's
    default printer; each is given back at shutdown if nobody replaced it since."""

    def __init__(self) -> None:
        self._previous_showwarning: Any = None
        self._previous_thread_hook: Any = None
        self._previous_excepthook: Any = None

    def install(self) -> None:
        import warnings

        current = warnings.showwarning
        # logging.captureWarnings(True) already sends warnings to the "py.warnings" logger, which we render
        if getattr(current, "__module__", None) != "logging":
            self._previous_showwarning = current
            warnings.showwarning = self._showwarning
        self._previous_thread_hook = threading.excepthook
        threading.excepthook = self._thread_hook
        self._previous_excepthook = sys.excepthook
        sys.excepthook = self._excepthook

    def undo(self) -> None:
        import warnings

        # == rather than is: each attribute read gives a new bound method, equal to the one installed
        if self._previous_showwarning is not None and warnings.showwarning == self._showwarning:
            warnings.showwarning = self._previous_showwarning
        if self._previous_thread_hook is not None and threading.excepthook == self._thread_hook:
            threading.excepthook = self._previous_thread_hook
        if self._previous_excepthook is not None and sys.excepthook == self._excepthook:
            sys.excepthook = self._previous_excepthook

    def _showwarning(  # noqa: PLR0917 - warnings.showwarning's own signature
        self, message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: str | None = None
    ) -> None:
        previous = self._previous_showwarning
        if file is not None and previous is not None:  # someone asked for this warning on a given stream
            previous(message, category, filename, lineno, file, line)
            return
        try:
            name = getattr(category, "__name__", "Warning")
            logging.getLogger("py.warnings").warning(
                "%s: %s",
                name,
                message,
                extra={"warning_category": name, "warning_file": filename, "warning_line": lineno},
            )
        except Exception:
            if previous is not None:
                previous(message, category, filename, lineno, file, line)
            return
        if previous is not None and not _is_default_showwarning(previous):
            previous(message, category, filename, lineno, file, line)

    def _thread_hook(self, args: Any) -> None:
        previous = self._previous_thread_hook or threading.__excepthook__
        logged = args.exc_type is not SystemExit and _log_uncaught(
            "threading",
            logging.ERROR,
            f"uncaught exception in thread {getattr(args.thread, 'name', None)}",
            (args.exc_type, args.exc_value, args.exc_traceback),
        )
        if not (logged and previous is threading.__excepthook__):
            previous(args)

    def _excepthook(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        previous = self._previous_excepthook or sys.__excepthook__
        logged = not issubclass(exc_type, KeyboardInterrupt) and _log_uncaught(
            "signalfire.uncaught", logging.CRITICAL, "uncaught exception", (exc_type, exc_value, traceback)
        )
        if not (logged and previous is sys.__excepthook__):
            previous(exc_type, exc_value, traceback)


def _log_uncaught(name: str, level: int, message: str, exc_info: Any) -> bool:
    """Log an uncaught exception; True when signalfire's pipeline rendered it (then Python's printer is not needed)."""
    try:
        logging.getLogger(name).log(level, message, exc_info=exc_info)
    except Exception:
        return False
    return any(isinstance(handler, _StdlibBridge) for handler in logging.getLogger().handlers)


def _is_default_showwarning(function: Any) -> bool:
    return getattr(function, "__module__", None) == "warnings" and getattr(function, "__name__", "") == "showwarning"


class _Installed:
    """What install() changed in the logging module, to undo at shutdown."""

    def __init__(self) -> None:
        self.bridge = _StdlibBridge()
        self.stderr_hooks = _StderrHooks()
        self.removed_handlers: list[tuple[logging.Logger, logging.Handler]] = []
        # the application's own handlers found on the server's loggers, left in place
        self.kept_server_handlers: list[logging.Handler] = []
        self.levels: list[tuple[logging.Logger, int]] = []
        # non-propagating server loggers signalfire's handler was put on directly
        self.bridged_loggers: list[logging.Logger] = []
        self.provider: Any = None
        # Levels for server loggers, applied again when the server has configured its own logging.
        self.server_levels: dict[str, str] = {}
        # Say once, when uvicorn is seen serving, that its access log is replaced by signalfire's.
        self.access_notice = False
        # uvicorn's loggers had handlers of their own: its logging configuration ran, so uvicorn serves
        self.uvicorn_seen = False
        # signalfire's access log replaces uvicorn's (SIGNALFIRE_ACCESS_LOG on, no level of the user's for it)
        self.access_replaced = False
        # set on the bridge while the application has a handler of its own on uvicorn.access (see
        # _replace_uvicorn_access_records): uvicorn's access records then reach that handler and are not rendered twice
        self.access_filter: _UvicornAccessFilter | None = None
        # signalfire set uvicorn.access to WARNING (no handler of the application's was on it then)
        self.access_level_raised = False

    def undo(self, *, shutting_down: bool = False) -> None:
        """Give the logging module back as it was. ``shutting_down``: the server's loggers (uvicorn, gunicorn) keep
        being rendered by the pipeline, console only, instead of getting their own handlers back: the server logs its
        last lines ("Application shutdown complete.", "Finished server process") after signalfire's shutdown, and
        they belong in the same format as every line before them."""
        self.stderr_hooks.undo()
        root = logging.getLogger()
        if self.bridge in root.handlers:
            root.removeHandler(self.bridge)
        for logger, removed in self.removed_handlers:
            # the application's own handler (set aside as a parent's copy) comes back whatever the reason
            server_own = logger.name in SERVER_LOGGERS and _is_server_handler(removed)
            handler = self.bridge if shutting_down and server_own else removed
            if handler not in logger.handlers:
                logger.addHandler(handler)
        for logger, level in reversed(self.levels):
            logger.setLevel(level)
        for logger in self.bridged_loggers:
            # at shutdown the server's loggers keep the pipeline's console rendering for their last lines
            if not shutting_down and self.bridge in logger.handlers:
                logger.removeHandler(self.bridge)
        if self.access_filter is not None and not shutting_down:
            self.bridge.removeFilter(self.access_filter)
            self.access_filter = None


# What the running instance's install() changed in the logging module (None: none is installed).
_installed: _Installed | None = None


def _is_console_handler(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    return isinstance(handler, logging.StreamHandler) and stream in (
        sys.stdout,
        sys.stderr,
        sys.__stdout__,
        sys.__stderr__,
    )


def _is_server_handler(handler: logging.Handler) -> bool:
    """uvicorn's or gunicorn's own console handler, or a bridge an earlier signalfire left; anything else is the
    app's or the operator's. gunicorn's file and syslog handlers (``--access-logfile FILE``, ``--error-logfile FILE``,
    ``--log-syslog``) are where the operator asked for the lines to go: they are kept, as the app's are."""
    return (
        isinstance(handler, _StdlibBridge)
        or compat_uvicorn.is_server_log_handler(handler)
        or (compat_gunicorn.is_server_log_handler(handler) and type(handler) is logging.StreamHandler)
    )


def _is_pytest_capture(handler: logging.Handler) -> bool:
    """pytest's log capture (caplog, live logs): on the loggers while tests run, but not the application's."""
    return type(handler).__module__.startswith("_pytest")


def _reached_through_parents(logger: logging.Logger, handler: logging.Handler) -> bool:
    """The handler is also on one of the parents the logger's records reach: it would get each record twice, so the
    copy on the server's logger is set aside (and given back at shutdown). A non-propagating logger reaches none."""
    parent = logger.parent if logger.propagate else None
    while parent is not None:
        if handler in parent.handlers:
            return True
        parent = parent.parent if parent.propagate else None
    return False


def claim_server_loggers(*, at_install: bool = False) -> None:
    """Route uvicorn's and gunicorn's loggers to the root handler (once their own logging config has run).

    Servers configure logging when they start, which may be after init_observability(); the middleware calls this
    again at the app's lifespan startup so their records are never written twice or in another format.
    """
    installed = _installed
    if installed is None:
        return
    root = logging.getLogger()
    if installed.bridge not in root.handlers:
        # a logging configuration that ran after init with a "root" section (uvicorn's --log-config, the app's own
        # dictConfig) replaced the root's handlers, signalfire's among them: the others stay, ours comes back
        root.addHandler(installed.bridge)
    kept: list[str] = []
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if name.startswith("uvicorn") and any(not isinstance(h, _StdlibBridge) for h in logger.handlers):
            installed.uvicorn_seen = True
        for handler in list(logger.handlers):
            if handler is installed.bridge:
                continue
            if not _is_server_handler(handler) and not _reached_through_parents(logger, handler):
                # the application's own handler (a file, an audit handler, its own console handler): it stays and
                # keeps its format; the records still reach signalfire's pipeline once, through the root
                if handler not in installed.kept_server_handlers:
                    installed.kept_server_handlers.append(handler)
                    if not _is_pytest_capture(handler):
                        kept.append(f"{name}: {handler!r}")
                continue
            # the server's own handler, or the bridge an earlier shutdown left rendering its last lines
            logger.removeHandler(handler)
            installed.removed_handlers.append((logger, handler))
        if not logger.propagate and installed.bridge not in logger.handlers:
            # the logger stays non-propagating, as the server or the application set it (the root's other handlers
            # did not get the server's records and still do not); signalfire's handler goes on the logger itself
            logger.addHandler(installed.bridge)
            installed.bridged_loggers.append(logger)
        if name == "uvicorn.access" and installed.access_replaced:
            _replace_uvicorn_access_records(installed, logger)
        elif name in installed.server_levels:
            logger.setLevel(installed.server_levels[name])
    if kept:  # said once per handler, whenever it is first seen (at install or when the server configured it)
        _log.info(
            "signalfire: the application's own handlers on the server's loggers are kept (they receive the "
            "server's records in their own format, beside signalfire's line): %s",
            "; ".join(kept),
        )
    # The notice when uvicorn is seen serving (the middleware's call at lifespan startup), not at install; uvicorn's
    # command line configures its logging before it imports the app, so its handlers may be gone by then.
    if installed.access_notice and not at_install and installed.uvicorn_seen:
        installed.access_notice = False
        _log.info(
            "signalfire: uvicorn's access log is replaced by signalfire's (logger signalfire.access); "
            "SIGNALFIRE_ACCESS_LOG=false keeps uvicorn's"
        )


def _adopt_root_handlers(settings: Settings, obs: Observability, installed: _Installed, root: logging.Logger) -> None:
    """Keep the application's root handlers (the default), or remove its console ones when asked; say which."""
    replace = settings.log_root_handlers == "replace"
    for handler in list(root.handlers):
        if isinstance(handler, _StdlibBridge) or (replace and _is_console_handler(handler)):
            root.removeHandler(handler)
            installed.removed_handlers.append((root, handler))
            if not isinstance(handler, _StdlibBridge):
                obs.note_owner("logs", f"root handler {handler!r}", "removed (SIGNALFIRE_LOG_ROOT_HANDLERS=replace)")
        elif not _is_pytest_capture(handler):
            obs.note_owner(
                "logs",
                f"root handler {handler!r}",
                "kept: it receives every record beside signalfire's line (SIGNALFIRE_LOG_ROOT_HANDLERS=replace removes "
                "console handlers)",
            )


class _UvicornAccessFilter(logging.Filter):
    """On signalfire's handler: uvicorn's access records are not rendered (signalfire's access line says more)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "uvicorn.access" and record.levelno < logging.WARNING)


def _replace_uvicorn_access_records(installed: _Installed, access: logging.Logger) -> None:
    """uvicorn's access records are not written twice. With only uvicorn's own handler on ``uvicorn.access`` (set
    aside by now), the logger goes to WARNING and uvicorn does not even build the records. A handler the application
    put there (an audit file) keeps getting them: the logger keeps the level it had, and signalfire's handler skips
    them instead."""
    own = [h for h in access.handlers if h is not installed.bridge and not _is_pytest_capture(h)]
    if not own:
        access.setLevel(logging.WARNING)
        installed.access_level_raised = True
        if installed.access_filter is not None:
            installed.bridge.removeFilter(installed.access_filter)
            installed.access_filter = None
        return
    if installed.access_level_raised and access.level == logging.WARNING:  # signalfire's, from an earlier claim
        found = [level for logger, level in installed.levels if logger is access]
        access.setLevel(found[0] if found else logging.NOTSET)
    installed.access_level_raised = False
    if installed.access_filter is None:
        installed.access_filter = _UvicornAccessFilter()
        installed.bridge.addFilter(installed.access_filter)


def _replace_uvicorn_access_log(obs: Observability, installed: _Installed) -> None:
    """signalfire's access log replaces uvicorn's: one line per request, with route, duration, trace and request ids,
    rather than two lines saying the same thing (docs/logging.md). One setting gives uvicorn's back. An application's
    own handler on ``uvicorn.access`` still gets uvicorn's records (:func:`_replace_uvicorn_access_records`)."""
    installed.access_replaced = True
    access = logging.getLogger("uvicorn.access")
    installed.levels.append((access, access.level))
    obs.note_owner(
        "logs",
        "uvicorn's access log",
        "replaced by signalfire's (logger signalfire.access); SIGNALFIRE_ACCESS_LOG=false keeps uvicorn's, "
        "SIGNALFIRE_LOG_LEVELS=uvicorn.access=INFO keeps both",
    )
    installed.access_notice = True


def install(
    settings: Settings, obs: Observability, resource: Resource | None = None, *, stream: IO[str] | None = None
) -> None:
    """Configure structlog and the standard library for ``settings`` and register the flush/close with ``obs``."""
    global _installed, _pipeline  # noqa: PLW0603 - the one logging configuration of the process
    if _installed is not None:
        _installed.undo()
    installed = _Installed()
    otel_logger = None
    if "otlp" in settings.exporters("logs"):
        otel_logger, installed.provider = _otlp_logger(settings, resource)
    static = {"service": settings.service_name or "unknown_service:python", "environment": settings.environment or ""}
    if settings.service_version:
        static["version"] = settings.service_version
    _pipeline = _Pipeline(
        json_format=(settings.log_format or "json") == "json",
        static=static,
        scrubber=_scrub.active(),
        stream=stream,
        otel_logger=otel_logger,
    )
    if structlog_owner() == "application":
        obs.note_owner(
            "logs",
            "structlog configured by the application",
            "kept; put signalfire.logging_processors() into its chain for scrubbing, trace ids and OTLP export",
        )
    else:
        _configure_structlog()

    root = logging.getLogger()
    _adopt_root_handlers(settings, obs, installed, root)
    root.addHandler(installed.bridge)
    installed.levels.append((root, root.level))
    root.setLevel(settings.log_level)
    levels = dict(settings.log_levels)
    if settings.access_log and "uvicorn.access" not in levels:
        _replace_uvicorn_access_log(obs, installed)
    for name, level in levels.items():
        logger = logging.getLogger(name)
        installed.levels.append((logger, logger.level))
        logger.setLevel(level)
    installed.server_levels = {name: level for name, level in levels.items() if name in SERVER_LOGGERS}
    _installed = installed
    claim_server_loggers(at_install=True)
    installed.stderr_hooks.install()

    provider = installed.provider

    def close(timeout: float) -> None:
        global _installed  # noqa: PLW0603
        if _installed is installed:
            installed.undo(shutting_down=True)
            _installed = None
        pipeline = _pipeline
        if pipeline is not None and pipeline.otel_logger is otel_logger:
            # Lines logged after shutdown still reach stdout, at the level in force, without the exporter.
            pipeline.otel_logger = None
            pipeline.min_level = logging.getLevelName(settings.log_level)
            pipeline.detach_levels()
        if provider is not None:
            provider.shutdown()

    def flush(timeout: float) -> None:
        if provider is not None:
            provider.force_flush(int(timeout * 1000))

    obs.on_shutdown("logs", close, flush)


def _otlp_logger(settings: Settings, resource: Resource | None) -> tuple[Any, Any]:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    from signalfire._export._drops import CountingLogExporter, dropped, watch_batch_processor
    from signalfire._export._otlp import address, otlp_exporter
    from signalfire._scrub import _policy as _scrub
    from signalfire._scrub._wire import ScrubbingLogExporter

    target = settings.otlp_target("logs")
    if target is None:
        return None, None
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    # every record scrubbed at the wire by the one policy (body, attributes, resource, scope), whoever logged it
    exporter = ScrubbingLogExporter(otlp_exporter("logs", target), _scrub.active(), dropped)
    counting = CountingLogExporter(exporter, endpoint=address(target.endpoint, target.protocol))
    processor = BatchLogRecordProcessor(counting, **settings.batch_options())
    watch_batch_processor(processor, "logs", counting)
    provider.add_log_record_processor(processor)
    return provider.get_logger("signalfire"), provider
