"""Rendering never raises: any structure a user can log becomes a line, in JSON, on the console and from stdlib."""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import signalfire
from signalfire import _logging


class Color(enum.Enum):
    RED = "red"


class Unprintable:
    """An object whose __repr__ and __str__ raise."""

    def __repr__(self) -> str:
        raise RuntimeError("repr is broken")

    def __str__(self) -> str:
        raise RuntimeError("str is broken")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how hypothesis reports an example
        printer.text("Unprintable()")


class Opaque:
    """An object orjson cannot serialize, with an ordinary repr."""

    __slots__ = ()


KEYS = st.one_of(
    st.text(max_size=8),
    st.binary(max_size=8),
    st.integers(),
    st.tuples(st.integers(), st.text(max_size=3)),
    st.sampled_from([Color.RED, None, True, 1.5]),
    st.frozensets(st.integers(), max_size=3),
)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.builds(Unprintable),
    st.builds(Opaque),
    st.sampled_from([Color.RED]),
)
VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.frozensets(st.integers() | st.text(max_size=4), max_size=4),
        st.sets(st.integers(), max_size=4),
        st.dictionaries(KEYS, children, max_size=4),
    ),
    max_leaves=25,
)


@pytest.fixture(params=["json", "console"])
def lines(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """signalfire running with the given log format; yields every line rendered from then on."""
    signalfire.init_observability(log_format=request.param, traces_exporter="none", metrics_exporter="none")
    captured: list[str] = []

    def tap(_fields: dict[str, Any], line: str) -> None:
        captured.append(line)

    _logging.add_tap(tap)
    try:
        yield captured
    finally:
        _logging.remove_tap(tap)
        signalfire.shutdown()


def _cycle() -> dict[str, Any]:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    return loop


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"d": [value]}
    return value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=VALUES)
def test_any_nested_value_is_rendered_by_structlog_and_stdlib(lines: list[str], value: Any) -> None:
    """Arbitrary nested values (odd keys, sets, bytes, unprintable objects) never raise from either logger."""
    lines.clear()
    signalfire.get_logger("hypo").info("value", data=value)
    # (as extra= only: pytest's own capture handler, on the root logger too, would raise formatting the message)
    logging.getLogger("hypo.std").warning("value", extra={"data": value})
    assert len(lines) == 2


@pytest.mark.parametrize(
    "value",
    [
        {b"k": 1},
        {(1, 2): "tuple key"},
        {Color.RED: 1, 7: 2, None: 3},
        {1, 2, 3},
        Unprintable(),
        {"inner": Unprintable()},
        _cycle(),
        _deep(1000),
        [_deep(1000)],
        2**100,
    ],
    ids=[
        "bytes-key",
        "tuple-key",
        "enum-int-none-keys",
        "set",
        "unprintable",
        "nested-unprintable",
        "cycle",
        "depth-1000",
        "list-depth-1000",
        "int-beyond-64-bits",
    ],
)
def test_hostile_value_becomes_a_line(lines: list[str], value: Any) -> None:
    """Each value the issue names is rendered (as valid JSON in the JSON format) instead of raising."""
    signalfire.get_logger("hostile").info("x", data=value)
    (line,) = lines
    if line.startswith("{"):
        assert json.loads(line)["event"] == "x"


def test_keys_are_stringified_and_failures_name_the_type() -> None:
    """A bytes key becomes its text; an object whose repr raises becomes a marker naming its type."""
    signalfire.init_observability(log_format="json", traces_exporter="none", metrics_exporter="none")
    captured: list[str] = []
    _logging.add_tap(lambda _f, line: captured.append(line))
    try:
        signalfire.get_logger("keys").info("x", data={b"k": 1, (1, 2): 2}, obj=Unprintable())
    finally:
        _logging._taps.clear()
    line = json.loads(captured[-1])
    assert line["data"] == {"k": 1, "(1, 2)": 2}
    assert line["obj"] == "<unrepresentable Unprintable>"


def test_a_stdlib_record_whose_arguments_do_not_fit_is_rendered_not_printed_as_a_logging_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """'%s %s' with one argument: a line with the format and arguments, nothing on stderr."""
    signalfire.init_observability(log_format="json", traces_exporter="none", metrics_exporter="none")
    # Straight to signalfire's root handler: pytest's own capture handler on the root would raise on this record.
    (bridge,) = [h for h in logging.getLogger().handlers if isinstance(h, _logging._StdlibBridge)]
    bridge.handle(logging.LogRecord("lib", logging.WARNING, __file__, 1, "%s and %s", ("one",), None))
    bridge.handle(logging.LogRecord("lib", logging.WARNING, __file__, 1, "%s", (Unprintable(),), None))
    out = capsys.readouterr()
    assert "Logging error" not in out.err
    assert any("and" in json.loads(line)["event"] for line in out.out.splitlines() if line.startswith("{"))


def test_an_exception_whose_str_raises_is_rendered(lines: list[str]) -> None:
    """log.exception() of an exception that cannot print itself still gives a line."""

    class Mute(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    try:
        raise Mute
    except Mute:
        signalfire.get_logger("exc").exception("failed")
    assert len(lines) == 1


def test_the_span_tree_exporter_survives_a_closed_stream() -> None:
    """The development span tree printer reports a failed export instead of raising when its stream is closed."""
    import io

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from signalfire._export._console import SpanTreeExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("root"):
        pass
    stream = io.StringIO()
    stream.close()
    assert SpanTreeExporter(stream, color=False).export(memory.get_finished_spans()) is SpanExportResult.FAILURE
    provider.shutdown()
