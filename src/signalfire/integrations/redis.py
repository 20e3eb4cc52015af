"""Redis: opentelemetry-instrumentation-redis, configured with signalfire's tracer and extended through its hooks.

The contrib instrumentation records ``db.statement`` as the command with ``?`` for every argument (``SET ? ?``); with
SIGNALFIRE_REDIS_CAPTURE_ARGS=true signalfire's request hook records the command and its key (``SET user:42 ?``),
scrubbed: never a value, and never an argument of AUTH, HELLO, CONFIG, ACL or MIGRATE. The hooks
also record each command's duration (``db.client.operation.duration``, ``db.system.name=redis``, by command) whether
or not the span is sampled. Both ``redis.Redis`` and ``redis.asyncio.Redis`` (and their pipelines) are covered.
"""

from __future__ import annotations

import contextvars
import logging
import time
from typing import Any

from signalfire import integrations

__all__ = ["install", "instrument_redis", "uninstrument_redis"]

_log = logging.getLogger("signalfire")
_SCOPE = "signalfire.redis"
_MAX_ARGS_TEXT = 1000
# The start of the command in flight in this task or thread: the request and response hooks run in the same context.
_started: contextvars.ContextVar[tuple[str, float] | None] = contextvars.ContextVar("signalfire_redis", default=None)
_instrumented = integrations.ClientInstrumentation("redis", "opentelemetry.instrumentation.redis.RedisInstrumentor")


def _require() -> None:
    integrations.require("redis", "instrument_redis", "redis")
    integrations.require("opentelemetry.instrumentation.redis", "instrument_redis", "redis")


def _command_name(args: Any) -> str:
    if not args:
        return "OTHER"
    name = args[0]
    if isinstance(name, bytes):
        name = name.decode("latin-1", "replace")
    name = str(name).upper()
    # Commands are single words (or two: CLIENT LIST); anything else would be an unbounded label.
    return name if len(name) <= 32 and name.replace(" ", "").isalpha() else "OTHER"


# Commands whose arguments are credentials or configuration (passwords, ACL rules, MIGRATE's AUTH): never recorded.
_NO_ARGUMENTS = frozenset({"AUTH", "HELLO", "CONFIG", "ACL", "MIGRATE"})


def _text(arg: Any) -> str:
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def _render_args(args: Any) -> str:
    """The command and its key, with ``?`` for every other argument (values are never recorded); only ``?`` after
    AUTH, HELLO, CONFIG, ACL and MIGRATE, whose arguments are credentials."""
    if not args:
        return ""
    command = _command_name(args[:1])
    parts = [command if command != "OTHER" else "?"]
    rest = list(args[1:])
    if rest and command not in _NO_ARGUMENTS:
        parts.append(_text(rest[0]))
        rest = rest[1:]
    parts.extend("?" * len(rest))
    rendered = " ".join(parts)
    if len(rendered) > _MAX_ARGS_TEXT:
        rendered = rendered[: _MAX_ARGS_TEXT - 3] + "..."
    return integrations.scrub_text(rendered)


class _Hooks:
    """The request and response hooks: duration metric, optional argument capture. They never raise."""

    __slots__ = ("capture_args", "durations")

    def __init__(self, obs: Any) -> None:
        self.durations = integrations.DurationRecorder(obs, _SCOPE)
        self.capture_args = obs.settings.redis_capture_args

    def request(self, span: Any, _instance: Any, args: Any, _kwargs: Any) -> None:
        try:
            _started.set((_command_name(args), integrations.now()))
            if self.capture_args and span.is_recording():
                span.set_attribute("db.statement", _render_args(args))
        except Exception:
            _log.debug("signalfire: redis request hook failed", exc_info=True)

    def response(self, span: Any, _instance: Any, _response: Any) -> None:
        try:
            started = _started.get()
            if started is not None:
                _started.set(None)
                self.durations.record("redis", started[0], None, integrations.now() - started[1])
                return
            # Pipelines call only the response hook: their duration comes from the span (when it is recorded).
            start_ns = getattr(span, "start_time", None)
            if start_ns:
                self.durations.record("redis", "PIPELINE", None, (time.time_ns() - start_ns) / 1e9)
        except Exception:
            _log.debug("signalfire: redis response hook failed", exc_info=True)


def install(obs: Any) -> None:
    """Instrument every redis client, sync and asyncio (init_observability() calls this when redis is installed)."""
    hooks = _Hooks(obs)
    _instrumented.library(
        obs, tracer_provider=obs.tracer_provider, request_hook=hooks.request, response_hook=hooks.response
    )


def instrument_redis(client: Any = None) -> None:
    """Trace redis commands (``redis.Redis`` and ``redis.asyncio.Redis``) with the running signalfire instance.

    Spans carry db.system=redis and the command with ``?`` placeholders (SIGNALFIRE_REDIS_CAPTURE_ARGS=true records
    the key as well, never a value nor an argument of AUTH, HELLO, CONFIG, ACL or MIGRATE);
    ``db.client.operation.duration`` records each command's duration. Without ``client`` every client is
    instrumented (what init_observability() does when SIGNALFIRE_AUTO_INSTRUMENT includes redis); with one, only that
    client. Needs ``pip install "signalfire[redis]"``.

    Example::

        signalfire.init_observability(auto_instrument="none")
        signalfire.instrument_redis()
    """
    _require()
    obs = integrations.running("instrument_redis")
    if client is None:
        install(obs)
        return
    hooks = _Hooks(obs)
    _instrumented.client(
        obs, client, tracer_provider=obs.tracer_provider, request_hook=hooks.request, response_hook=hooks.response
    )


def uninstrument_redis(client: Any = None) -> None:
    """Stop tracing ``client``, or, without one, every redis client signalfire instrumented.

    Example::

        signalfire.uninstrument_redis()
    """
    _instrumented.undo(client)
