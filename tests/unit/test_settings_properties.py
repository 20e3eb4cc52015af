"""Property tests: any value of any variable either parses or fails with a ConfigurationError naming the variable."""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signalfire import ConfigurationError, Settings
from signalfire._settings import env_names

VARIABLES = sorted({names[0] for field in Settings.model_fields if (names := env_names(field))})

# Printable text, the shapes environment values take, plus values near the edges of the accepted ranges.
values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=("Cs",)), max_size=40),
    st.sampled_from(
        ["", " ", "0", "-1", "1e309", "nan", "inf", "true", "false", "1.0", "a=b", "a=b,c", "=", ",", "http://"]
    ),
    st.integers().map(str),
    st.floats(allow_nan=True).map(str),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(variable=st.sampled_from(VARIABLES), value=values)
def test_any_value_parses_or_names_the_variable(variable: str, value: str) -> None:
    """Settings.resolve() never leaks a dependency's traceback: it succeeds or names the variable it rejected."""
    if "\x00" in value:
        return  # the operating system cannot hold NUL in an environment variable
    previous = os.environ.get(variable)
    os.environ[variable] = value
    message = ""
    try:
        Settings.resolve()
    except ConfigurationError as error:
        message = str(error)
    finally:
        if previous is None:
            del os.environ[variable]
        else:
            os.environ[variable] = previous
    assert not message or variable in message


ODD_VALUES = [None, 5, 1.5, True, [1, "a"], {"a": 1}, object(), b"x", ("a",), {"x"}]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_any_keyword_argument_of_any_type_parses_or_is_a_configuration_error(value: object) -> None:
    """An oddly typed keyword argument (or config-file value) for any field is a ConfigurationError, not a TypeError."""
    for name in Settings.model_fields:
        with contextlib.suppress(ConfigurationError):
            Settings.resolve(**{name: value})
