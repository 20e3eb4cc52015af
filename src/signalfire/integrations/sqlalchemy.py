"""SQLAlchemy: opentelemetry-instrumentation-sqlalchemy's EngineTracer, configured, with signalfire's metrics beside it.

signalfire builds one contrib ``EngineTracer`` per engine with its own tracer and meter (what it relies on of the
contrib package is in ``signalfire._compat.opentelemetry``), and adds through SQLAlchemy's public events: every
query's duration by operation and table (``db.client.operation.duration`` in signalfire's metric registry); and the
pool read at each scrape (``db.client.connection.count``, state ``used`` / ``idle``). The ``db.statement`` leaves with
inline literal values replaced by ``?`` and database errors without their bound parameters: that is done at the wire
(``signalfire._scrub._wire``), for every span, so no override of the tracer is needed for it. The
instrumentation's own ``db.client.connections.usage`` counter is kept, started from the pool's real counts for an
engine instrumented while connections are open.

Automatic instrumentation does not wrap ``create_engine`` (a ``create_engine`` imported by name before init would
escape it, and engines created before init would too): one class-level ``engine_connect`` listener instruments each
engine, sync or async, created before or after init, the first time it opens a connection.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from typing import Any

from signalfire import integrations
from signalfire._compat import opentelemetry as compat

__all__ = ["install", "instrument_sqlalchemy", "uninstrument_sqlalchemy"]

_log = logging.getLogger("signalfire")
_SCOPE = "signalfire.sqlalchemy"
_OPERATIONS = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "WITH", "CREATE", "DROP", "ALTER", "TRUNCATE",
     "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "SET", "SHOW", "EXPLAIN", "PRAGMA", "CALL", "COPY"}
)  # fmt: skip
_LEADING_COMMENT = re.compile(r"^\s*(?:/\*.*?\*/\s*|--[^\n]*\n\s*)*", re.DOTALL)
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE(?:\s+IF\s+(?:NOT\s+)?EXISTS)?)\s+([\"`\[]?[\w.]+[\"`\]]?)", re.I)

_lock = threading.Lock()
# Engines signalfire instruments, by id, with what undoes it; weak, so an engine that is dropped is not kept alive.
_tracers: dict[int, tuple[weakref.ref[Any], Any]] = {}
_state: _State | None = None
# Engines uninstrument_sqlalchemy(engine) was called for: the automatic instrumentation leaves them alone.
_opted_out: weakref.WeakSet[Any] = weakref.WeakSet()


def _require() -> None:
    integrations.require("sqlalchemy", "instrument_sqlalchemy", "sqlalchemy")
    integrations.require("opentelemetry.instrumentation.sqlalchemy", "instrument_sqlalchemy", "sqlalchemy")


def query_summary(statement: str) -> str | None:
    """The span name of a query: "{operation} {table}" (``SELECT items``), the operation alone when no table is
    named, None when the statement starts with no known operation (the instrumentation's name stays). Never a
    database name or file path: the database semantic conventions name spans by operation and a low-cardinality
    target."""
    body = _LEADING_COMMENT.sub("", statement, count=1)
    words = body.split(None, 1)
    if not words or words[0].upper() not in _OPERATIONS:
        return None
    operation = words[0]  # as written, like db.operation
    match = _TABLE.search(body)
    if match is None:
        return operation
    table = match.group(1).strip('"`[]').lower()
    return f"{operation} {table}"


def operation_and_table(statement: str) -> tuple[str, str | None]:
    """The statement's operation (its first keyword, or OTHER) and the first table it names (None if none)."""
    body = _LEADING_COMMENT.sub("", statement, count=1)
    first = body.split(None, 1)[0].upper() if body.strip() else ""
    operation = first if first in _OPERATIONS else "OTHER"
    match = _TABLE.search(body)
    table = match.group(1).strip('"`[]').lower() if match else None
    return operation, table


class _State:
    """The tracer, meter and duration recorder of the running instance, shared by every engine it instruments."""

    def __init__(self, obs: Any) -> None:
        from opentelemetry.instrumentation.sqlalchemy.version import __version__
        from opentelemetry.semconv.metrics import MetricInstruments

        self.tracer = obs.tracer_provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", __version__)
        meter = obs.meter_provider.get_meter("opentelemetry.instrumentation.sqlalchemy", __version__)
        self.connections_usage = meter.create_up_down_counter(
            name=MetricInstruments.DB_CLIENT_CONNECTIONS_USAGE,
            unit="connections",
            description="The number of connections that are currently in state described by the state attribute.",
        )
        self.durations = integrations.DurationRecorder(obs, _SCOPE)
        self.automatic = False
        self.obs = obs


class _EngineHooks:
    """What signalfire adds to one engine: the contrib EngineTracer (spans, connection usage), the duration metric
    through SQLAlchemy's public events, and the pool observation; ``stop()`` undoes it all."""

    def __init__(self, state: _State, engine: Any, tracer_class: type | None) -> None:
        from sqlalchemy import event

        self._durations = state.durations
        self.vendor = engine.dialect.name
        self.engine = weakref.ref(engine)
        self._listeners = [
            ("before_cursor_execute", self._start_timer),
            ("after_cursor_execute", self._record_duration),
            ("handle_error", self._record_failed),
        ]
        self.tracer: Any = None
        if tracer_class is not None:
            self.tracer = tracer_class(state.tracer, engine, state.connections_usage)
            self._count_open_connections(engine.pool)
        for name, listener in self._listeners:
            event.listen(engine, name, listener)
        self._stop_observing = self._observe_pool(engine)

    @staticmethod
    def _observe_pool(engine: Any) -> Any:
        # The registry's db.client.connection.count reads the pool itself at each scrape: always exact.
        from signalfire._metrics import metrics

        pool = engine.pool
        if not (hasattr(pool, "checkedout") and hasattr(pool, "checkedin")):
            return None
        url = engine.url
        database = url.database or ""
        if engine.dialect.name == "sqlite":  # a file path: its directories say nothing about the pool, and may leak
            database = database.replace("\\", "/").rsplit("/", 1)[-1]
        address = f"{url.drivername}://{url.host or ''}:{url.port or ''}/{database}"
        name = getattr(pool, "logging_name", None) or address

        def counts() -> dict[str, int]:
            return {"used": int(pool.checkedout()), "idle": int(pool.checkedin())}

        try:
            return metrics.observe_db_pool(counts, pool=name)
        except Exception:
            _log.debug("signalfire: observing a SQLAlchemy pool failed", exc_info=True)
            return None

    def stop(self) -> None:
        """Stop observing the pool and remove the duration listeners (the tracer's are removed by the caller)."""
        from sqlalchemy import event

        engine = self.engine()
        if engine is not None:
            for name, listener in self._listeners:
                if event.contains(engine, name, listener):
                    event.remove(engine, name, listener)
        if self._stop_observing is not None:
            try:
                self._stop_observing()
            except Exception:
                _log.debug("signalfire: stopping a pool observation failed", exc_info=True)
            self._stop_observing = None

    def _count_open_connections(self, pool: Any) -> None:
        # Connections opened before this tracer existed would otherwise drive the gauges below zero at check-in.
        try:
            used, idle = int(pool.checkedout()), int(pool.checkedin())
        except Exception:  # pools without counts (NullPool, StaticPool) start from zero
            return
        compat.sqlalchemy_start_usage(self.tracer, used, idle)

    # Signatures of SQLAlchemy's before/after_cursor_execute and handle_error events. The start time is kept in the
    # connection's public ``info`` dict (a connection runs one cursor execution at a time), never on SQLAlchemy's
    # own objects.
    def _start_timer(self, *args: Any) -> None:
        try:
            args[0].info[_STARTED] = integrations.now()
        except Exception:  # telemetry never breaks the query
            _log.debug("signalfire: timing a query failed", exc_info=True)

    def _record_duration(self, *args: Any) -> None:
        self._finish(args[0], args[2])

    def _record_failed(self, exception_context: Any) -> None:
        self._finish(exception_context.connection, exception_context.statement)

    def _finish(self, connection: Any, statement: Any) -> None:
        try:
            start = connection.info.pop(_STARTED, None) if connection is not None else None
            if start is None or not isinstance(statement, str):
                return
            operation, table = operation_and_table(statement)
            self._durations.record(self.vendor, operation, table, integrations.now() - start)
        except Exception:  # telemetry never breaks the query
            _log.debug("signalfire: recording a query duration failed", exc_info=True)


# The key of a cursor execution's start time in ``Connection.info``.
_STARTED = "signalfire.query_started"
_tracer_class: type | None = None
_tracer_class_built = False


def _contrib_tracer_class() -> type | None:
    """The contrib EngineTracer as signalfire uses it (built once), or None, said once, when its contract changed."""
    global _tracer_class, _tracer_class_built  # noqa: PLW0603 - built once, at first use (an optional package)
    if not _tracer_class_built:
        _tracer_class = compat.sqlalchemy_tracer_class(query_summary)
        _tracer_class_built = True
        if _tracer_class is None:
            _log.warning(
                "signalfire: this opentelemetry-instrumentation-sqlalchemy release is not one signalfire knows; "
                "SQLAlchemy queries are measured but not traced"
            )
    return _tracer_class


def _instrument_engine(state: _State, engine: Any) -> None:
    sync_engine = getattr(engine, "sync_engine", engine)
    existing = _tracers.get(id(sync_engine))
    if existing is not None and existing[0]() is sync_engine:
        return  # the common case, on every connection: no lock
    with _lock:
        existing = _tracers.get(id(sync_engine))
        if existing is not None and existing[0]() is sync_engine:
            return
        hooks = _EngineHooks(state, sync_engine, _contrib_tracer_class())
        _tracers[id(sync_engine)] = (weakref.ref(sync_engine), hooks)


def _ensure_state(obs: Any) -> _State:
    global _state  # noqa: PLW0603 - one state per running instance; reset by uninstrument_sqlalchemy()
    with _lock:
        if _state is not None and _state.obs is not obs:
            # left by an instance whose shutdown could not uninstrument (it failed, or never ran): its engine tracers
            # hold a provider that is shut down, so every engine starts over with this instance's
            _forget_engines()
            _state = None
        if _state is None:
            _state = _State(obs)
            obs.on_shutdown("sqlalchemy", lambda _timeout: uninstrument_sqlalchemy())
        return _state


def _on_engine_connect(connection: Any, *_args: Any) -> None:
    state = _state
    if state is None or not state.automatic or connection.engine in _opted_out:
        return
    try:
        _instrument_engine(state, connection.engine)
    except Exception:  # an engine that cannot be traced still works
        _log.warning("signalfire: instrumenting a SQLAlchemy engine failed; it is not traced", exc_info=True)


def install(obs: Any) -> None:
    """Instrument every engine at its next connection (init_observability() calls this when SQLAlchemy is installed)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    state = _ensure_state(obs)
    with _lock:
        if state.automatic:
            return
        state.automatic = True
        if not event.contains(Engine, "engine_connect", _on_engine_connect):
            event.listen(Engine, "engine_connect", _on_engine_connect)


def instrument_sqlalchemy(engine: Any = None) -> None:
    """Trace a SQLAlchemy engine (sync ``Engine`` or ``AsyncEngine``) with the running signalfire instance.

    Spans are named by operation and table (``SELECT items``, never the database name or a SQLite file path) and
    carry db.system, db.operation and a db.statement whose inline values are replaced by ``?`` and scrubbed;
    the ``db.client.operation.duration`` histogram records each query by operation and table, and
    ``db.client.connections.usage`` the pool's idle and used connections. With SIGNALFIRE_AUTO_INSTRUMENT including
    sqlalchemy (the default) every engine is instrumented at its first connection, whenever it was created; call this
    to instrument an engine now, or, without ``engine``, to turn the automatic instrumentation on. Instrumenting
    twice does nothing more. Needs ``pip install "signalfire[sqlalchemy]"``.

    Example::

        engine = create_engine("sqlite://")
        signalfire.init_observability()
        signalfire.instrument_sqlalchemy(engine)
    """
    _require()
    obs = integrations.running("instrument_sqlalchemy")
    state = _ensure_state(obs)
    if engine is None:
        install(obs)
        return
    _opted_out.discard(getattr(engine, "sync_engine", engine))
    _instrument_engine(state, engine)


def _forget_engines() -> None:
    """Stop every engine's hooks (called with _lock held)."""
    if _tracer_class is not None:
        compat.sqlalchemy_remove_all(_tracer_class)
    for _ref, hooks in _tracers.values():
        hooks.stop()
    _tracers.clear()


def uninstrument_sqlalchemy(engine: Any = None) -> None:
    """Stop tracing ``engine``, or, without one, every engine and the automatic instrumentation of new ones.

    Example::

        signalfire.uninstrument_sqlalchemy(engine)
    """
    global _state  # noqa: PLW0603 - see _ensure_state
    from sqlalchemy import event

    with _lock:
        if engine is not None:
            sync_engine = getattr(engine, "sync_engine", engine)
            _opted_out.add(sync_engine)
            entry = _tracers.pop(id(sync_engine), None)
            if entry is not None:
                entry[1].stop()
            if entry is not None and _tracer_class is not None:
                compat.sqlalchemy_remove_engine(_tracer_class, sync_engine)
            return
        _forget_engines()
        _state = None
    from sqlalchemy.engine import Engine

    if event.contains(Engine, "engine_connect", _on_engine_connect):
        event.remove(Engine, "engine_connect", _on_engine_connect)
