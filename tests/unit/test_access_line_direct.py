"""The access line skips structlog's wrapper layers only while structlog's chain is signalfire's own, and then writes
exactly the line structlog would have written."""

from __future__ import annotations

import time
import types
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import signalfire
from signalfire import _logging

# Values an access line (or any caller of DirectLogger) could carry: hostile text, odd types, huge numbers.
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from("/?%&=:@[]{}() \\\"'\n\x00\u2028\ud800Key[parameters: "), max_size=60),
    st.sampled_from(["password=hunter2", "Bearer abcdefghijklmnopqrstuvwx", "4111111111111111", "a@b.example"]),
    st.binary(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
FIELDS = st.fixed_dictionaries(
    {"method": VALUES, "route": VALUES, "path": VALUES, "status": VALUES, "duration_ms": VALUES}
)
EVENTS = st.one_of(st.text(max_size=30), st.sampled_from(["GET /items/{item_id} 200", "%s %d", "token=abcdef123456"]))
METHODS = st.sampled_from(["info", "warning", "error"])


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every line rendered while a JSON-logging instance runs, with a frozen clock (both paths render the same
    second)."""
    frozen = types.SimpleNamespace(time=lambda: 1_780_000_000.25, strftime=time.strftime, gmtime=time.gmtime)
    monkeypatch.setattr(_logging, "time", frozen)
    signalfire.init_observability(log_format="json", traces_exporter="none", metrics_prometheus=False)
    seen: list[str] = []

    def tap(_fields: dict[str, Any], line: str) -> None:
        seen.append(line)

    _logging.add_tap(tap)
    try:
        yield seen
    finally:
        _logging.remove_tap(tap)
        signalfire.shutdown()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=FIELDS, event=EVENTS, method=METHODS)
def test_the_direct_line_is_structlogs_line(lines: list[str], fields: dict[str, Any], event: str, method: str):
    """For any values, DirectLogger writes what structlog's logger writes, byte for byte (in a span and a request)."""
    import structlog

    direct = _logging.DirectLogger("signalfire.access")
    token = _logging.bind_request_id("0123456789abcdef0123456789abcdef")
    try:
        with signalfire.span("request"):
            lines.clear()
            getattr(structlog.get_logger("signalfire.access"), method)(event, **dict(fields))
            direct.log(method, event, dict(fields))
    finally:
        _logging.reset_request_id(token)
    assert len(lines) == 2
    assert lines[0] == lines[1]
    assert direct._chain  # it did take the direct path


def test_an_application_chain_configured_before_first_use_is_respected(lines: list[str]):
    """structlog.configure() by the application before the first line: every line goes through its chain."""
    import structlog

    seen: list[dict[str, Any]] = []

    def capture(_logger: Any, _method: str, event_dict: Any) -> str:
        seen.append(dict(event_dict))
        return "captured"

    structlog.configure(processors=[capture], logger_factory=structlog.ReturnLoggerFactory())
    try:
        direct = _logging.DirectLogger("signalfire.access")
        direct.log("info", "GET / 200", {"method": "GET", "status": 200})
        direct.log("error", "GET / 500", {"method": "GET", "status": 500})
    finally:
        structlog.reset_defaults()
    assert seen == [
        {"method": "GET", "status": 200, "event": "GET / 200"},
        {"method": "GET", "status": 500, "event": "GET / 500"},
    ]
    assert lines == []


def test_a_chain_changed_in_place_after_first_use_is_respected(lines: list[str]):
    """A processor inserted into structlog's list after the first line runs for the next lines, as structlog runs it."""
    import structlog

    direct = _logging.DirectLogger("signalfire.access")
    direct.log("info", "first", {"n": 1})
    seen: list[str] = []

    def capture(_logger: Any, _method: str, event_dict: Any) -> Any:
        seen.append(event_dict["event"])
        event_dict["added"] = True
        return event_dict

    processors = structlog.get_config()["processors"]
    processors.insert(0, capture)
    try:
        direct.log("info", "second", {"n": 2})
    finally:
        processors.remove(capture)
    assert seen == ["second"]
    assert '"added":true' in lines[-1]
    assert '"event":"first"' in lines[0]


def test_the_access_log_writes_through_the_direct_path(lines: list[str]):
    """The middleware's access line is written by the direct path under signalfire's own structlog configuration."""
    from signalfire._settings import Settings
    from signalfire._web._access import AccessLog

    access = AccessLog(Settings.resolve(log_format="json"))
    access.write({"path": "/items/42", "query_string": b"q=1"}, "GET", "/items/{item_id}", 200, 0.0012)
    assert access._logger._chain
    assert '"event":"GET /items/{item_id} 200"' in lines[-1]
    assert '"path":"/items/42?q=1"' in lines[-1]
