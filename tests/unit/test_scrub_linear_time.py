"""Every scrubber pattern runs in time linear in its input: hostile strings built from each pattern's own prefixes and
separators cost, relative to an innocent string of the same length, no more at 8x the length than at 1x.

A pattern with backtracking over overlapping quantifiers (the reported killers: ``basic+`` repeated then ``===``, a
long run of ``eyJ``) costs ~8x more relative to the innocent string each time the input grows 8x; a linear one costs
the same ratio. The measure is a ratio of ratios taken in one process with paired, interleaved timings (min of
several), so it holds on a loaded machine; no absolute wall-clock threshold is asserted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signalfire._scrub import _policy as _scrub
from signalfire._scrub._policy import Scrubber

# Each pattern's prefixes, separators and body characters: what a hostile client would repeat.
FRAGMENTS: dict[str, list[str]] = {
    "jwt": ["eyJ", ".", "a", "%20", "_", "-"],
    "vendor_tokens": [
        "ghp_",
        "github_pat_",
        "sk-",
        "sk_live_",
        "xoxb-",
        "https://hooks.slack.com/",
        "services/",
        "SG.",
        "hvs.",
        "ya29.",
        "hf_",
        "shpat_",
        "AKIA",
        "AIza",
        "whsec_",
        "glpat-",
        "npm_",
        "pypi-",
        "a",
        "0",
        "-",
        "_",
        ".",
    ],
    "bearer_basic": ["basic", "Basic", "+", " ", "%20", "=", "Bearer", "bearer", "a", "/", "dXNl"],
    "url_password": ["a://", ":", "@", "x", "/", "+", "postgresql://", "#", "?", "=", "redis://:"],
    "query": ["?", "=", "&", "%", "q", "%3D", "%2B", "basic%2B", "token="],
    "key_value": ["password", "=", ":", "'", '"', "\\", "token", " ", "x", "Bearer ", "[", "REDACTED:"],
    "placeholders": ["password=", "%(", "name", ")s", ":", "$", "1", "?", "{", "}"],
    "card": ["4", "1", " ", "-", "5"],
    "email": ["a", "@", ".", "%", "-", "1", "+"],
    "phone": ["+", "1", " ", "(", ")", ".", "-", "4"],
    "iban": ["DE", "89", " ", "A", "0", "GB"],
    "near_word": ["key", "secret", " ", "A", "a", "1", "+", "=", ":"],
    "pem": ["-----BEGIN ", "RSA ", "PRIVATE KEY-----", "-----END ", "x", "\n"],
    "json": ["{", '"password"', ":", '"', "[", ",", "}", "]"],
    "known_secret": ["known-secr", "et-", "value-1", "known-secret-value-"],
    "adapters": ["a://", "@", "/", ":", "#", "?", "pc-Secr", "pc-Secret-42", "%40", "b'", "'", "password="],
}
INNOCENT = "GET /items/42 took 12.5 ms for user 1234 from 10.0.0.1, status=200 ok; cache hit. "
SIZE = 2_048
GROWTH = 8  # the long input is this many times the short one
# Linear patterns keep the ratio (measured: 0.7x to 2.4x, the larger where many matches outgrow the CPU caches); a
# quadratic one multiplies it by GROWTH (the patterns this replaced: 11x to 36x).
ALLOWED_RATIO_GROWTH = 4.0


def make(unit: str, length: int) -> str:
    return (unit * (length // len(unit) + 1))[:length]


def paired_ratio(call: Callable[[str], object], hostile: str, innocent: str, rounds: int = 5) -> float:
    """min cost of ``hostile`` / min cost of ``innocent``, timed alternately in one process."""
    best_hostile = best_innocent = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        call(hostile)
        best_hostile = min(best_hostile, time.perf_counter() - start)
        start = time.perf_counter()
        call(innocent)
        best_innocent = min(best_innocent, time.perf_counter() - start)
    return best_hostile / max(best_innocent, 1e-9)


def growth_of_ratio(call: Callable[[str], object], unit: str, tail: str = "") -> float:
    """How much the hostile/innocent cost ratio grows from SIZE to GROWTH*SIZE characters (1 for linear)."""
    short = paired_ratio(call, make(unit, SIZE) + tail, make(INNOCENT, SIZE + len(tail)))
    long = paired_ratio(call, make(unit, SIZE * GROWTH) + tail, make(INNOCENT, SIZE * GROWTH + len(tail)))
    return long / short


def assert_linear(call: Callable[[str], object], unit: str, tail: str = "") -> None:
    # A busy machine can disturb one measurement; a quadratic pattern fails every one.
    growths = []
    for _ in range(4):
        growths.append(growth_of_ratio(call, unit, tail))
        if growths[-1] <= ALLOWED_RATIO_GROWTH:
            return
    pytest.fail(f"cost relative to innocent text grew {min(growths):.1f}x for 8x the input: {unit!r} + {tail!r}")


@pytest.fixture(scope="module")
def unbounded() -> Iterator[Scrubber]:
    """A scrubber whose length cap is out of the way, so the patterns themselves are measured."""
    _scrub.register_secret_values("known-secret-value-1", "known-secret-value-2")
    # The memo of long strings would answer every repeated call with one lookup and hide the patterns' cost.
    memo = _scrub._MEMO_MAX_CHARS
    _scrub._MEMO_MAX_CHARS = 0
    yield Scrubber(max_string=10**7)
    _scrub._MEMO_MAX_CHARS = memo
    _scrub._forget_registered()


def _pieces(name: str, min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(FRAGMENTS[name]), min_size=min_size, max_size=max_size).map("".join)


@pytest.mark.parametrize("name", sorted(FRAGMENTS))
def test_every_pattern_is_linear_in_its_input(unbounded, name):
    """Repetitions of each pattern's prefixes and separators cost what innocent text of the same length costs,
    at 2 KiB and at 16 KiB alike (strings and query strings)."""

    @settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(_pieces(name, 1, 6), _pieces(name, 0, 4))
    def check(unit: str, tail: str) -> None:
        # a long repetition, then a short tail that makes the match fail at the very end
        assert_linear(unbounded.scrub_text, unit, tail)

    check()


@pytest.mark.parametrize("adapter", ["health", "cli", "sentry_pairs"])
def test_the_adapters_entry_points_are_linear_in_their_input(unbounded, adapter):
    """A health check's error (with its own secrets), a CLI value (URL user-info masking) and a Sentry header pair
    cost what innocent text of the same length costs: the policy's entry points add no pattern of their own."""
    from signalfire import _errors, cli, health

    calls: dict[str, Callable[[str], object]] = {
        "health": lambda text: health._scrub_text(text, ("pc-Secret-42", "pc-")),
        "cli": lambda text: cli.mask("otlp_endpoint", text, unbounded),
        "sentry_pairs": lambda text: _errors._redact_pairs([["b'" + text[:300] + "'", text]], unbounded),
    }

    @settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(_pieces("adapters", 1, 6), _pieces("adapters", 0, 4))
    def check(unit: str, tail: str) -> None:
        assert_linear(calls[adapter], unit, tail)

    assert_linear(calls[adapter], "ab+1.c-", "://")  # a scheme-like run: health's own URL pattern was quadratic here
    check()


@pytest.mark.parametrize(
    "unit",
    ["basic%2B", "q=basic%2B", "eyJ", "Bearer%20", "token=eyJ", "%3D", "a%40b.", "basic+", "password%3D%25%28"],
)
def test_reported_query_killers_are_linear(unbounded, unit):
    """The reported hostile query strings (``basic%2B`` repeated, then ``%3D%3D%3D``; long runs of ``eyJ``) cost what
    an innocent query of the same length costs."""
    assert_linear(lambda text: unbounded.scrub_query("q=" + text), unit, "%3D%3D%3D")


@pytest.mark.parametrize(("unit", "tail"), [("basic+", "==="), ("eyJ", "."), ("eyJ", "=")])
def test_reported_log_value_killers_are_linear(unbounded, unit, tail):
    """A log value of ``basic+`` repeated and ending in ``===``, or a long run of ``eyJ``, costs what an innocent log
    value costs."""
    assert_linear(lambda text: unbounded.scrub_fields({"data": text}), unit, tail)


def test_strings_beyond_the_cap_are_cut_before_scanning_and_counted():
    """A string longer than SIGNALFIRE_SCRUB_MAX_LENGTH is cut, marked and counted as dropped scrub/truncated."""
    counted: list[tuple[str, str]] = []
    scrubber = Scrubber(max_string=100, dropped=lambda signal, reason: counted.append((signal, reason)))
    scrubbed = scrubber.scrub_text("x" * 90 + " password=hunter22 " + "y" * 1000)
    assert scrubbed.endswith("[TRUNCATED]")
    assert len(scrubbed) == 100 + len("[TRUNCATED]")
    assert "hunter" not in scrubbed
    assert scrubber.scrub_query("a=" + "b" * 500).endswith("[TRUNCATED]")
    assert counted == [("scrub", "truncated"), ("scrub", "truncated")]


def test_attributes_are_cut_to_the_attribute_limit_before_scrubbing():
    """A span attribute longer than the attribute value limit is cut to it first, then scrubbed."""
    scrubber = Scrubber(attribute_limit=64)
    value = "token=" + "a1" * 10_000
    scrubbed = _scrub.scrub_attribute(scrubber, "note", value)
    assert scrubbed == "token=[REDACTED:token]"
    assert _scrub.scrub_attribute(scrubber, "note", "z " * 100) == ("z " * 100)[:64]


def test_the_running_scrubber_counts_what_it_cuts():
    """After init, the scrubber counts a cut string with the runtime's loss counter (telemetry_dropped_total)."""
    import signalfire
    from signalfire._export import _drops

    signalfire.init_observability(traces_exporter="none", scrub_max_length=64)
    try:
        assert _scrub.active().dropped is _drops.dropped
        assert signalfire.scrub("x" * 100).endswith("[TRUNCATED]")
    finally:
        signalfire.shutdown()


def test_scrub_max_length_is_a_setting(monkeypatch):
    """SIGNALFIRE_SCRUB_MAX_LENGTH configures the cap of the installed scrubber; nonsense is refused by name."""
    from signalfire._settings import ConfigurationError, Settings

    monkeypatch.setenv("SIGNALFIRE_SCRUB_MAX_LENGTH", "1000")
    assert Scrubber.from_settings(Settings.resolve()).max_string == 1000
    monkeypatch.setenv("SIGNALFIRE_SCRUB_MAX_LENGTH", "ten")
    with pytest.raises(ConfigurationError, match="SIGNALFIRE_SCRUB_MAX_LENGTH"):
        Settings.resolve()


def test_many_keys_scrubbing_to_the_same_text_keep_every_item():
    """1,000 keys that all scrub to one text (a hostile mapping) keep all 1,000 items under distinct keys."""
    scrubbed = Scrubber().scrub({f"password={i:06x}zz": i for i in range(1_000)})
    assert len(scrubbed) == 1_000
    assert sorted(scrubbed.values()) == list(range(1_000))
