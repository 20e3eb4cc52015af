"""The scrubber's shortcuts on hostile and repeated input give what the full path gives (or redact more, never less)."""

from __future__ import annotations

import re
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signalfire._scrub import _policy as _scrub
from signalfire._scrub._policy import Scrubber
from signalfire._web import _url

# Every pattern's prefixes and separators, as benchmarks/bench_hostile.py repeats them, plus a few real secrets.
UNITS = [
    "basic%2B", "basic+", "Bearer%20", "eyJ", "eyJ.", "%3D", "a://", ":@", "password=", "password='", 'token="\\',
    "4111 ", "4-1", "4-14", "+1 ", "(415) ", "a@a.", "%(", "DE89 ", "key Aa1+", "ghp_", "sk-", "xoxb-", "1111-",
    "-----BEGIN RSA PRIVATE KEY-----", '{"password":', " ", "=", "&", "4111 1111 1111 1111", "ann@example.com",
    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "https://u:hunter22@db.internal/x",
]  # fmt: skip
hostile_text = st.lists(st.tuples(st.sampled_from(UNITS), st.integers(1, 60)), min_size=1, max_size=12).map(
    lambda parts: "".join(unit * count for unit, count in parts)
)
any_text = st.one_of(hostile_text, st.text(min_size=257, max_size=2000), st.text(alphabet="0123456789 -", max_size=400))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def _no_registered_secrets():
    _scrub._forget_registered()
    yield
    _scrub._forget_registered()


@SETTINGS
@given(text=any_text)
def test_a_repeated_long_string_is_scrubbed_as_the_first_time(text):
    """The memo of long strings returns exactly what a fresh scrubber's full scan returns."""
    warm = Scrubber()
    first = warm.scrub_text(text)
    assert warm.scrub_text(text) == first
    assert warm.scrub_text(str(text)) == Scrubber().scrub_text(text) == first
    assert Scrubber()._scan(text, len(text)) == first if len(text) >= _scrub.MIN_SECRET_LENGTH else True


@SETTINGS
@given(text=st.text(alphabet="0123456789 -", min_size=1, max_size=600))
def test_the_card_gate_gives_what_the_group_by_group_search_gives(text):
    """_cards_within returns early only where the group-by-group search would change nothing."""
    gated = _scrub._cards_within(text)
    original = _scrub._CARD_GROUP_START
    try:
        _scrub._CARD_GROUP_START = re.compile("")  # always "found": the full search
        full = _scrub._cards_within(text)
    finally:
        _scrub._CARD_GROUP_START = original
    assert gated == full


@SETTINGS
@given(text=any_text)
def test_capped_key_values_redact_at_least_what_the_full_path_redacts(text):
    """Past the cap of key=value redactions the rest of the string is dropped: the output is the full path's up to
    there, and nothing the full path redacted survives."""
    scrubber = Scrubber()
    capped = scrubber._key_values(text)
    original = _scrub._MAX_KV_REDACTIONS
    try:
        _scrub._MAX_KV_REDACTIONS = 10**9
        full = scrubber._key_values(text)
    finally:
        _scrub._MAX_KV_REDACTIONS = original
    if capped != full:
        marker_at = capped.rindex("[REDACTED:")
        assert full.startswith(capped[:marker_at])
        assert capped.endswith("]")
        assert len(capped) <= len(full)


def test_a_hostile_run_of_key_values_is_dropped_after_the_cap():
    """200 password=... pairs: no value is left, and only the first 64 are judged one by one."""
    text = " ".join(f"password=pw-{i:04d}-x" for i in range(200))
    scrubbed = Scrubber().scrub_text(text)
    assert "pw-" not in scrubbed
    assert scrubbed.count("[REDACTED:password]") == _scrub._MAX_KV_REDACTIONS + 1


def test_the_memo_follows_the_secret_registry():
    """A long string scrubbed before a secret is registered is scrubbed again after it."""
    scrubber = Scrubber()
    text = "payload " * 60 + "value wh-7Tq9Lz2Kp end"
    assert scrubber.scrub_text(text) == text
    _scrub.register_secret_values("wh-7Tq9Lz2Kp")
    assert "wh-7Tq9Lz2Kp" not in scrubber.scrub_text(text)


def test_a_cut_string_is_counted_each_time_it_is_scrubbed():
    """The memo does not hide a cut: every scrub of an over-long string counts one truncation."""
    cuts = []
    scrubber = Scrubber(max_string=300, dropped=lambda signal, reason: cuts.append((signal, reason)))
    text = "x" * 1000
    assert scrubber.scrub_text(text) == scrubber.scrub_text(text)
    assert cuts == [("scrub", "truncated")] * 2


def test_the_recorded_query_memo_follows_the_secret_registry():
    """The middleware's and the access line's query are one computation, redone once a secret is registered."""
    query = "q=searching+for+wh-7Tq9Lz2Kp&page=2"
    assert _url.recorded_query(query) == _url.recorded_query(query) == query
    _scrub.register_secret_values("wh-7Tq9Lz2Kp")
    assert "wh-7Tq9Lz2Kp" not in _url.recorded_query(query)


percent_text = st.lists(
    st.one_of(
        st.sampled_from(["%", "%2", "%3D", "%e2%82%ac", "%E2%82", "%AC", "%C3", "%zz", "+", "%(", "%%", "a", " "]),
        st.text(max_size=3),
    ),
    max_size=40,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=percent_text)
def test_unquote_plus_is_urllibs(text):
    """The scrubber's percent-decoding gives exactly what urllib.parse.unquote_plus gives."""
    assert _scrub.unquote_plus(text) == urllib.parse.unquote_plus(text)


def test_the_access_line_cuts_the_path_at_the_attribute_limit():
    """A hostile path is cut where the span's url.path is cut, before it is scrubbed."""
    from signalfire._settings import Settings
    from signalfire._web._access import AccessLog

    lines = []
    access = AccessLog(Settings.resolve(attribute_value_length_limit=100))
    access._logger = type("L", (), {"log": lambda self, method, event, fields: lines.append(fields)})()
    access.write({"path": "/x", "query_string": b""}, "GET", "/x", 200, 0.001, path="/" + "a" * 500)
    assert lines[0]["path"] == "/" + "a" * 99
