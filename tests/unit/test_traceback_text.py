"""signalfire's traceback text (frames formatted once per process) is the standard library's, character for
character: chained causes and contexts, exception groups, recursion, syntax errors, frames seen before."""

from __future__ import annotations

import traceback
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalfire._traceback import format_exception


def _raise(make: Callable[[], None]) -> BaseException:
    try:
        make()
    except BaseException as exc:
        return exc
    raise AssertionError("nothing raised")


def plain() -> None:
    {"a": 1}["b"]


def chained() -> None:
    try:
        plain()
    except KeyError as exc:
        raise RuntimeError("wrapped") from exc


def context() -> None:
    try:
        plain()
    except KeyError:
        raise ValueError("while handling")  # noqa: B904 - an implicit context is the case under test


def group() -> None:
    raise ExceptionGroup("many", [_raise(plain), _raise(chained)])  # type: ignore[list-item]


def recursion(n: int = 0) -> None:
    recursion(n + 1)


def syntax() -> None:
    compile("def broken(:\n", "<input>", "exec")


def expression() -> None:
    values = [1, 2]
    print(values[0] + values[1] * values[7])


CASES = {f.__name__: f for f in (plain, chained, context, group, recursion, syntax, expression)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_text_is_the_standard_librarys(name: str) -> None:
    """Each kind of exception gives the text traceback.format_exception gives, the first time and every time after."""
    exc = _raise(CASES[name])
    expected = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    assert format_exception(type(exc), exc, exc.__traceback__) == expected
    assert format_exception(type(exc), exc, exc.__traceback__) == expected  # from the kept frames


def test_a_traceback_that_grew_is_formatted_as_it_is_now() -> None:
    """The same exception caught again further up has more frames: the text follows the traceback it is given."""

    def outer() -> BaseException:
        try:
            chained()
        except RuntimeError as exc:
            return exc
        raise AssertionError

    inner = _raise(chained)
    first = format_exception(type(inner), inner, inner.__traceback__)
    exc = outer()
    assert format_exception(type(exc), exc, exc.__traceback__) == "".join(traceback.format_exception(exc))
    assert first == "".join(traceback.format_exception(inner))


@given(st.text(max_size=200), st.integers(min_value=0, max_value=30))
def test_any_message_at_any_depth(message: str, depth: int) -> None:
    """Messages of any text and stacks of any depth: the standard library's text."""

    def dive(n: int) -> None:
        if n <= 0:
            raise LookupError(message)
        dive(n - 1)

    exc = _raise(lambda: dive(depth))
    assert format_exception(type(exc), exc, exc.__traceback__) == "".join(traceback.format_exception(exc))


def test_no_traceback() -> None:
    """An exception never raised (no traceback) is its type and message, as the standard library says."""
    exc = ValueError("never raised")
    assert format_exception(ValueError, exc, None) == "".join(traceback.format_exception(exc))


def test_frames_are_kept_for_the_next_traceback() -> None:
    """The frames of a formatted traceback are kept (the next error from the same code formats none of them again)."""
    from signalfire import _traceback

    _traceback._frames.clear()
    exc = _raise(chained)
    format_exception(type(exc), exc, exc.__traceback__)
    assert any(key[5] in ("chained", "plain") for key in _traceback._frames)


def test_a_failure_of_the_memo_gives_the_standard_librarys_text(monkeypatch):
    """Should the StackSummary subclass fail on a Python it was not written for (3.13 passes ``colorize``), the
    traceback is the standard library's, never an exception of its own."""
    import traceback

    from signalfire import _traceback

    def broken(*args, **kwargs):
        raise TypeError("format_frame_summary() got an unexpected keyword argument 'colorize'")

    monkeypatch.setattr(_traceback, "_format", broken)
    exc = _raise(chained)
    expected = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    assert _traceback.format_exception(type(exc), exc, exc.__traceback__) == expected


def test_options_newer_pythons_pass_to_format_frame_summary_are_handed_on():
    """Python 3.13 calls ``format_frame_summary(frame, colorize=...)``: accepted, and part of the memo's key."""
    import traceback

    from signalfire import _traceback

    frame = traceback.FrameSummary(__file__, 1, "f", line="x = 1")
    stack = _traceback._Stack([frame])
    assert stack.format_frame_summary(frame) == traceback.StackSummary().format_frame_summary(frame)
    assert stack.format_frame_summary(frame, **{}) == stack.format_frame_summary(frame)
