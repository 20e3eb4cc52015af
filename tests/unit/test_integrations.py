"""Integrations without servers: extras, settings, statement hygiene, httpx over an in-process transport."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import signalfire
from signalfire import ConfigurationError, Settings
from signalfire.integrations import sanitize_sql
from signalfire.integrations.sqlalchemy import operation_and_table, query_summary
from signalfire.testing import Telemetry


@pytest.mark.parametrize(
    ("function", "module", "extra"),
    [
        ("instrument_sqlalchemy", "sqlalchemy", "sqlalchemy"),
        ("instrument_redis", "redis", "redis"),
        ("instrument_httpx", "httpx", "httpx"),
        ("instrument_sqlalchemy", "opentelemetry.instrumentation.sqlalchemy", "sqlalchemy"),
    ],
)
def test_missing_package_raises_import_error_naming_the_extra(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch, function: str, module: str, extra: str
) -> None:
    """Without the library (or its instrumentation) the call says which extra to install."""
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=rf'pip install "signalfire\[{extra}\]"'):
        getattr(signalfire, function)()


@pytest.mark.parametrize("function", ["instrument_sqlalchemy", "instrument_redis", "instrument_httpx"])
def test_instrumenting_before_init_is_an_error_saying_so(function: str) -> None:
    """instrument_*() before init_observability() raises a RuntimeError naming what to call first."""
    with pytest.raises(RuntimeError, match=r"init_observability\(\) to run first"):
        getattr(signalfire, function)()


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("SELECT * FROM users WHERE email = 'a@b.c' AND id = 42", "SELECT * FROM users WHERE email = ? AND id = ?"),
        ("INSERT INTO t (a, b) VALUES (%(a)s, %(b)s)", "INSERT INTO t (a, b) VALUES (%(a)s, %(b)s)"),
        ("SELECT $1, :name, ? FROM t2 LIMIT 10", "SELECT $1, :name, ? FROM t2 LIMIT ?"),
        ("SELECT 'it''s' , -3.5e2 FROM table_1", "SELECT ? , ? FROM table_1"),
    ],
)
def test_sql_statements_lose_their_inline_values(statement: str, expected: str) -> None:
    """Quoted strings and numbers become ?; placeholders and identifiers with digits stay."""
    assert sanitize_sql(statement) == expected


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("SELECT a FROM public.orders o JOIN items i ON 1=1", ("SELECT", "public.orders")),
        ('/* app */ insert into "Users" values (1)', ("INSERT", "users")),
        ("UPDATE accounts SET x = 1", ("UPDATE", "accounts")),
        ("CREATE TABLE IF NOT EXISTS logs (id int)", ("CREATE", "logs")),
        ("VACUUM", ("OTHER", None)),
    ],
)
def test_operation_and_table_are_read_from_the_statement(statement: str, expected: tuple[str, str | None]) -> None:
    """The metric labels: first keyword (known ones only) and the first table named."""
    assert operation_and_table(statement) == expected


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("SELECT name FROM items WHERE id = ?", "SELECT items"),
        ("select 1", "select"),
        ('/* app */ INSERT INTO "Orders" VALUES (?)', "INSERT orders"),
        ("-- note\nUPDATE accounts SET email = ?", "UPDATE accounts"),
        ("CREATE TABLE IF NOT EXISTS items (id INTEGER)", "CREATE items"),
        ("VACUUM", None),
        ("", None),
        ("/* only a comment */", None),
    ],
)
def test_the_span_name_is_the_query_summary(statement: str, expected: str | None) -> None:
    """The SQL span name: the operation as written and the first table named (None leaves the contrib name)."""
    assert query_summary(statement) == expected


@given(st.text(max_size=2000))
def test_the_query_summary_never_raises_and_names_at_most_two_words(statement: str) -> None:
    """Any text: no exception, and a name of at most an operation and one table (never the statement's rest)."""
    name = query_summary(statement)
    assert name is None or len(name.split(" ")) <= 2


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SIGNALFIRE_EXCLUDED_PATHS", "health", "expected comma-separated paths starting with /"),
        ("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "a(b", "expected comma-separated regular expressions"),
        ("SIGNALFIRE_AUTO_INSTRUMENT", "sqlalchemy,django", "expected a comma-separated list of sqlalchemy"),
        # a pattern `re` only warns about (a possible nested set) is refused at start-up, not a warning later
        ("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS", "[[a]", "expected comma-separated regular"),
    ],
)
def test_bad_integration_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    """A rejected value names the variable, the value and what is accepted."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(
        ConfigurationError,
        match=rf"{variable}={value!r} is not accepted: {message}".replace("(", r"\(").replace("[", r"\["),
    ):
        Settings.resolve()


def test_integration_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGNALFIRE_EXCLUDED_PATHS, OTEL_PYTHON_EXCLUDED_URLS and SIGNALFIRE_AUTO_INSTRUMENT parse into tuples."""
    monkeypatch.setenv("SIGNALFIRE_EXCLUDED_PATHS", "/internal*, /ping")
    monkeypatch.setenv("OTEL_PYTHON_EXCLUDED_URLS", "client/.*/info,healthcheck")
    monkeypatch.setenv("SIGNALFIRE_AUTO_INSTRUMENT", "none")
    settings = Settings.resolve()
    assert settings.excluded_paths == ("/internal*", "/ping")
    assert settings.excluded_urls == ("client/.*/info", "healthcheck")
    assert settings.auto_instrument == ()


def test_sql_statements_go_through_the_scrubber() -> None:
    """A credential outside any literal (here in a comment) is redacted by the shared scrubber."""
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    sanitized = sanitize_sql(f"SELECT id FROM users /* auth {token} */")
    assert token not in sanitized
    assert sanitized.startswith("SELECT id FROM users /* auth [REDACTED")
