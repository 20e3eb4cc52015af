"""SQLAlchemy against real databases: PostgreSQL (psycopg, asyncpg) on loopback and SQLite, sync and async engines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import signalfire
from signalfire import _runtime
from signalfire._metrics import metrics as registry
from signalfire._metrics._otel import InMemoryRegistryReader
from signalfire._settings import Settings
from signalfire.testing import TEST_DEFAULTS, Telemetry
from tests.servers import PostgresServer

pytestmark = pytest.mark.integration


@pytest.fixture
def start() -> Iterator[Any]:
    """Start signalfire in memory when the test says so (engines can be created before)."""
    started: list[_runtime.Observability] = []

    def _start(**overrides: Any) -> Telemetry:
        spans, metrics = InMemorySpanExporter(), InMemoryRegistryReader(registry)
        settings = Settings.resolve(**{**TEST_DEFAULTS, **overrides})
        obs = _runtime.start(settings, span_exporters=[spans], metric_readers=[metrics])
        started.append(obs)
        return Telemetry(obs, spans, metrics)

    yield _start
    for obs in started:
        obs.shutdown()


def _db_spans(telemetry: Telemetry) -> list[Any]:
    return [s for s in telemetry.spans if s.kind is SpanKind.CLIENT and "db.system" in (s.attributes or {})]


def _durations(telemetry: Telemetry) -> dict[tuple[str, str, str | None], int]:
    found = {}
    for point in telemetry.metric_points("db.client.operation.duration"):
        attrs = dict(point.attributes)
        key = (attrs["db.system.name"], attrs["db.operation.name"], attrs.get("db.collection.name"))
        found[key] = point.count
    return found


def test_sync_postgres_engine_created_after_init_is_traced(postgres_server: PostgresServer, start) -> None:
    """An engine created after init (psycopg, real PostgreSQL): spans with db.system and a value-free statement."""
    telemetry = start()
    engine = sqlalchemy.create_engine(postgres_server.sqlalchemy_url("psycopg"))
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS accounts (id int, email text)"))
            conn.execute(text("INSERT INTO accounts VALUES (:id, :email)"), {"id": 1, "email": "alice@example.com"})
            conn.execute(text("SELECT email FROM accounts WHERE email = 'alice@example.com' AND id = 1")).all()
    finally:
        engine.dispose()
    spans = _db_spans(telemetry)
    statements = [s.attributes["db.statement"] for s in spans]
    assert "SELECT email FROM accounts WHERE email = ? AND id = ?" in statements
    assert all(s.attributes["db.system"] == "postgresql" for s in spans)
    assert "alice@example.com" not in " ".join(statements)
    telemetry.assert_no_secrets(["alice@example.com"])


def test_sync_postgres_queries_are_measured_by_operation_and_table(postgres_server: PostgresServer, start) -> None:
    """db.client.operation.duration counts each query under its operation and table."""
    telemetry = start()
    engine = sqlalchemy.create_engine(postgres_server.sqlalchemy_url("psycopg"))
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS orders (id int)"))
            conn.execute(text("INSERT INTO orders VALUES (1)"))
            conn.execute(text("SELECT id FROM orders")).all()
            conn.execute(text("SELECT id FROM orders WHERE id = 1")).all()
    finally:
        engine.dispose()
    durations = _durations(telemetry)
    assert durations[("postgresql", "SELECT", "orders")] == 2
    assert durations[("postgresql", "INSERT", "orders")] == 1


def test_async_postgres_engine_created_before_init_is_traced_when_instrumented(
    postgres_server: PostgresServer, start
) -> None:
    """An asyncpg engine created before init is traced once instrument_sqlalchemy(engine) is called explicitly."""
    import asyncio

    engine = create_async_engine(postgres_server.sqlalchemy_url("asyncpg"))
    telemetry = start(auto_instrument="none")
    signalfire.instrument_sqlalchemy(engine)

    async def work() -> None:
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1 AS one"))
        finally:
            await engine.dispose()

    asyncio.run(work())
    (span,) = [s for s in _db_spans(telemetry) if s.attributes["db.statement"].startswith("SELECT")]
    assert span.attributes["db.system"] == "postgresql"
    assert span.attributes["db.statement"] == "SELECT ? AS one"
    durations = _durations(telemetry)
    assert durations[("postgresql", "SELECT", None)] == 1  # no table: the label is left out


def test_engine_created_before_init_is_traced_automatically(tmp_path: Path, start) -> None:
    """An engine made before init is instrumented at its first connection after init, without any call."""
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'before.db'}")
    telemetry = start()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 2"))
    finally:
        engine.dispose()
    assert [s.attributes["db.statement"] for s in _db_spans(telemetry)] == ["SELECT ?"]


def test_without_auto_instrumentation_only_instrumented_engines_are_traced(tmp_path: Path, start) -> None:
    """SIGNALFIRE_AUTO_INSTRUMENT=none: an engine is traced only after instrument_sqlalchemy(engine)."""
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'manual.db'}")
    telemetry = start(auto_instrument="none")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert _db_spans(telemetry) == []
        signalfire.instrument_sqlalchemy(engine)
        with engine.connect() as conn:
            conn.execute(text("SELECT 2"))
    finally:
        engine.dispose()
    assert [s.attributes["db.statement"] for s in _db_spans(telemetry)] == ["SELECT ?"]


def test_sqlite_sync_and_async_engines_are_traced(tmp_path: Path, start) -> None:
    """SQLite through the sync driver and aiosqlite: spans with db.system=sqlite, metrics by table."""
    import asyncio

    telemetry = start()
    sync_engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    async_engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}")
    try:
        with sync_engine.begin() as conn:
            conn.execute(text("CREATE TABLE items (id INTEGER, name TEXT)"))
            conn.execute(text("INSERT INTO items VALUES (1, 'secret-name')"))

        async def read() -> None:
            async with async_engine.connect() as conn:
                await conn.execute(text("SELECT name FROM items WHERE id = 1"))

        asyncio.run(read())
    finally:
        sync_engine.dispose()
        asyncio.run(async_engine.dispose())
    statements = [s.attributes["db.statement"] for s in _db_spans(telemetry)]
    assert "INSERT INTO items VALUES (?, ?)" in statements
    assert "SELECT name FROM items WHERE id = ?" in statements
    assert {s.attributes["db.system"] for s in _db_spans(telemetry)} == {"sqlite"}
    durations = _durations(telemetry)
    assert durations[("sqlite", "SELECT", "items")] == 1
    assert durations[("sqlite", "CREATE", "items")] == 1


def test_failed_query_gives_an_error_span(tmp_path: Path, start) -> None:
    """A query the database rejects: an ERROR span, and the application still gets its exception."""
    telemetry = start()
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'err.db'}")
    try:
        with pytest.raises(sqlalchemy.exc.OperationalError), engine.connect() as conn:
            conn.execute(text("SELECT * FROM missing_table"))
    finally:
        engine.dispose()
    (span,) = _db_spans(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert _durations(telemetry)[("sqlite", "SELECT", "missing_table")] == 1


def _pool(telemetry: Telemetry, name: str) -> dict[str, float]:
    return {p.attributes["db.client.connection.state"]: p.value for p in telemetry.metric_points(name)}


def test_pool_usage_is_reported_as_idle_and_used(postgres_server: PostgresServer, start) -> None:
    """db.client.connection.count shows a checked-out connection as used and a returned one as idle."""
    telemetry = start()
    engine = sqlalchemy.create_engine(postgres_server.sqlalchemy_url("psycopg"))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            during = _pool(telemetry, "db.client.connection.count")
        after = _pool(telemetry, "db.client.connection.count")
    finally:
        engine.dispose()
    assert (during["used"], during["idle"]) == (1, 0)
    assert (after["used"], after["idle"]) == (0, 1)


def test_contrib_connection_usage_counter_starts_from_the_pool(postgres_server: PostgresServer, start) -> None:
    """The contrib db.client.connections.usage counter never goes negative for a connection opened before tracing."""
    telemetry = start()
    engine = sqlalchemy.create_engine(postgres_server.sqlalchemy_url("psycopg"))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        usage = {p.attributes["state"]: p.value for p in telemetry.metric_points("db.client.connections.usage")}
    finally:
        engine.dispose()
    assert (usage.get("used", 0), usage.get("idle", 0)) == (0, 1)


def test_uninstrument_stops_tracing_an_engine(tmp_path: Path, start) -> None:
    """After uninstrument_sqlalchemy(engine) its queries produce no spans."""
    telemetry = start()
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'u.db'}")
    try:
        signalfire.uninstrument_sqlalchemy(engine)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    assert _db_spans(telemetry) == []


def test_reinit_after_shutdown_traces_each_query_once(tmp_path: Path, start) -> None:
    """shutdown() then init again: one span per query, no listeners left over from the first instance."""
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        first = start()
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        first.obs.shutdown()
        second = start()
        with engine.connect() as conn:
            conn.execute(text("SELECT 2"))
    finally:
        engine.dispose()
    assert [s.attributes["db.statement"] for s in _db_spans(second)] == ["SELECT ?"]


def test_engines_follow_a_new_instance_when_the_old_one_could_not_uninstrument(
    start, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A shutdown whose uninstrumenting failed leaves no tracer of the dead instance: the next one traces engines."""
    from signalfire.integrations import sqlalchemy as integration

    first = start()
    monkeypatch.setattr(integration, "uninstrument_sqlalchemy", lambda engine=None: 1 / 0)
    first.obs.shutdown()  # the failure is swallowed: shutdown never raises
    monkeypatch.undo()
    second = start()
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'after.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT 1")).all()
    finally:
        engine.dispose()
    assert [s.attributes["db.statement"] for s in _db_spans(second)] == ["SELECT ?"]


def test_integrity_error_exports_no_bound_parameter(postgres_server: PostgresServer, start) -> None:
    """A unique violation on real PostgreSQL: neither SQLAlchemy's [parameters: ...] nor PostgreSQL's DETAIL value
    reaches the query span's status or the enclosing span's exception event."""
    telemetry = start()
    engine = sqlalchemy.create_engine(postgres_server.sqlalchemy_url("psycopg"))
    value = "integrity.secret.9f3@example.org"
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS members"))
            conn.execute(text("CREATE TABLE members (email text UNIQUE)"))
            conn.execute(text("INSERT INTO members VALUES (:email)"), {"email": value})
        with pytest.raises(sqlalchemy.exc.IntegrityError), signalfire.span("signup"), engine.begin() as conn:
            conn.execute(text("INSERT INTO members VALUES (:email)"), {"email": value})
    finally:
        engine.dispose()
    spans = telemetry.spans
    failed = [s for s in spans if s.status.status_code is StatusCode.ERROR]
    assert failed, "the failed query and the enclosing span are exported with an error status"
    exported = repr(
        [
            (s.name, dict(s.attributes), s.status.description, [(e.name, dict(e.attributes)) for e in s.events])
            for s in spans
        ]
    )
    assert value not in exported
    assert "[parameters: [REDACTED:parameters]]" in exported or "Key (email)=([REDACTED:parameters])" in exported


def test_sqlite_spans_are_named_by_operation_and_table_without_the_file_path(tmp_path: Path, start) -> None:
    """A SQLite span is "{operation} {table}" (the semantic conventions' query summary), db.operation the operation
    alone; the database file's path is in no span name, attribute or pool name."""
    telemetry = start()
    database = tmp_path / "private-dir" / "shop.db"
    database.parent.mkdir()
    engine = sqlalchemy.create_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE items (id INTEGER, name TEXT)"))
            conn.execute(text("INSERT INTO items VALUES (1, 'a')"))
            conn.execute(text("SELECT name FROM items WHERE id = 1")).all()
            conn.execute(text("SELECT 1")).all()
    finally:
        engine.dispose()
    spans = _db_spans(telemetry)
    assert [s.name for s in spans] == ["CREATE items", "INSERT items", "SELECT items", "SELECT"]
    assert [s.attributes["db.operation"] for s in spans] == ["CREATE", "INSERT", "SELECT", "SELECT"]
    assert not any(key in s.attributes for s in spans for key in ("db.name", "db.namespace"))
    exported = repr([(s.name, dict(s.attributes)) for s in telemetry.spans])
    exported += repr([dict(p.attributes) for p in telemetry.metric_points("db.client.connection.count")])
    assert "private-dir" not in exported
    assert str(tmp_path) not in exported


def test_postgres_spans_keep_the_database_name_out_of_the_span_name(postgres_server: PostgresServer, start) -> None:
    """On PostgreSQL the span is "SELECT accounts"; the database name stays where it belongs, in db.name."""
    telemetry = start()
    engine = sqlalchemy.create_engine(postgres_server.sqlalchemy_url("psycopg"))
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS accounts (id int, email text)"))
            conn.execute(text("SELECT email FROM accounts WHERE id = 1")).all()
    finally:
        engine.dispose()
    (select,) = [s for s in _db_spans(telemetry) if s.attributes["db.operation"] == "SELECT"]
    assert select.name == "SELECT accounts"
    assert select.attributes["db.name"]
    assert select.attributes["db.name"] not in select.name
