"""Scrubbing a Sentry event's exception with library frames taken from the memo gives exactly what scrubbing every
frame again gives: for any frames and values (hypothesis, with the shared secret corpus), and after secrets are
registered between two events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signalfire import _errors
from signalfire._scrub import _policy as _scrub

CORPUS = [
    entry["text"]
    for entry in json.loads((Path(__file__).parent.parent / "data" / "secrets.json").read_text())["secrets"]
]

texts = st.one_of(
    st.sampled_from(CORPUS), st.text(max_size=60), st.sampled_from(["/app/main.py", "handler", "app.views"])
)
scalars = st.one_of(texts, st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))
plain_frame = st.dictionaries(
    st.sampled_from(["filename", "abs_path", "function", "module", "lineno", "in_app", "context_line", "password"]),
    scalars,
    max_size=8,
)
vars_frame = st.fixed_dictionaries(
    {"function": texts, "vars": st.dictionaries(texts, st.one_of(scalars, st.lists(texts, max_size=3)), max_size=4)}
)
frames = st.lists(st.one_of(plain_frame, vars_frame), max_size=12)
values = st.lists(
    st.fixed_dictionaries(
        {"type": texts, "value": texts, "stacktrace": st.fixed_dictionaries({"frames": frames})},
        optional={"mechanism": st.fixed_dictionaries({"type": st.just("signalfire.asgi"), "handled": st.booleans()})},
    ),
    max_size=3,
)


def both(exception: Any, scrubber: _scrub.Scrubber) -> tuple[Any, Any]:
    return (
        _errors._scrub_exception(exception, scrubber, memo=False),
        _errors._scrub_exception(exception, scrubber),
    )


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_frames_from_the_memo_are_what_scrubbing_gives(exception_values: list[Any]) -> None:
    """Any exception values: the memo's result equals the general path's, the first time and the second."""
    scrubber = _scrub.Scrubber()
    exception = {"values": exception_values}
    reference, first = both(exception, scrubber)
    assert first == reference
    assert _errors._scrub_exception(exception, scrubber) == reference


def test_a_secret_registered_later_is_redacted_in_a_remembered_frame() -> None:
    """A frame remembered before a secret value was registered is scrubbed again afterwards."""
    scrubber = _scrub.active()
    secret = "frame-secret-4b9d2e7a"
    exception = {"values": [{"type": "E", "stacktrace": {"frames": [{"function": f"load_{secret}", "lineno": 3}]}}]}
    before = _errors._scrub_exception(exception, scrubber)
    assert secret in json.dumps(before)
    _scrub.register_secret_values(secret)
    try:
        after = _errors._scrub_exception(exception, scrubber)
        assert secret not in json.dumps(after)
        assert after == _errors._scrub_exception(exception, scrubber, memo=False)
    finally:
        _scrub._forget_registered()  # one test's secrets must not redact another's text


def test_a_whole_event_is_scrubbed_as_before() -> None:
    """scrub_event with library frames, an app frame with locals and a secret in the message: all redacted."""
    token = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
    event = {
        "exception": {
            "values": [
                {
                    "type": "RuntimeError",
                    "value": f"failed with {token}",
                    "stacktrace": {
                        "frames": [
                            {"filename": "starlette/routing.py", "function": "handle", "lineno": 289, "in_app": False},
                            {"filename": "app.py", "function": "pay", "lineno": 3, "vars": {"token": token}},
                        ]
                    },
                }
            ]
        }
    }
    scrubbed = _errors.scrub_event(event)
    assert token not in json.dumps(scrubbed)
    frames = scrubbed["exception"]["values"][0]["stacktrace"]["frames"]
    assert frames[0] == {"filename": "starlette/routing.py", "function": "handle", "lineno": 289, "in_app": False}
