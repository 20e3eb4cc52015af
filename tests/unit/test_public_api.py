"""The public face: an explicit, sorted __all__, and a docstring with an example on every public name."""

from __future__ import annotations

import inspect

import pytest

import signalfire

PUBLIC = [name for name in signalfire.__all__ if name != "__version__"]


def test_all_is_sorted_and_complete():
    """__all__ is sorted, and every name in it exists."""
    assert signalfire.__all__ == sorted(signalfire.__all__)
    for name in signalfire.__all__:
        assert hasattr(signalfire, name), name


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_has_a_docstring_with_an_example(name):
    """Each public name explains itself and shows how it is used."""
    doc = inspect.getdoc(getattr(signalfire, name)) or ""
    assert len(doc) > 40, f"{name} needs a docstring"
    assert "Example" in doc or "::" in doc or ">>>" in doc, f"{name}'s docstring needs an example"
