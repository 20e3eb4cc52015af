"""The scrubber: key rules, value shapes, the secret corpus, nesting, bounds, and its properties."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import signalfire
from signalfire._scrub._policy import DEFAULT_ALLOW_KEYS, SENSITIVE_KEY_TERMS, SENSITIVE_KEY_WORDS, Scrubber, active

CORPUS = json.loads((Path(__file__).parent.parent / "data" / "secrets.json").read_text())["secrets"]


def leaked_fragments(secret: str, rendered: str, width: int = 6) -> list[str]:
    """Every ``width``-character piece of ``secret`` that appears in ``rendered``."""
    return [secret[i : i + width] for i in range(len(secret) - width + 1) if secret[i : i + width] in rendered]


@pytest.fixture
def scrubber() -> Scrubber:
    return Scrubber()


def test_corpus_is_large_and_varied():
    """The corpus holds at least 40 fake secrets of at least 20 different kinds."""
    assert len(CORPUS) >= 40
    assert len({entry["kind"].split("_")[0] for entry in CORPUS}) >= 15


@pytest.mark.parametrize("entry", CORPUS, ids=[e["kind"] for e in CORPUS])
def test_corpus_secret_in_text_leaks_nothing(scrubber, entry):
    """No 6-character piece of any corpus secret survives scrubbing of the text that holds it."""
    rendered = scrubber.scrub_text(entry["text"])
    assert leaked_fragments(entry["secret"], rendered) == []
    assert "[REDACTED:" in rendered


@pytest.mark.parametrize("entry", CORPUS, ids=[e["kind"] for e in CORPUS])
def test_corpus_secret_nested_leaks_nothing(scrubber, entry):
    """A corpus secret deep in dicts, lists, tuples and a JSON string leaks nothing."""
    value = {"outer": [{"inner": (entry["text"],)}, json.dumps({"note": entry["text"]})], "plain": "ok"}
    rendered = repr(scrubber.scrub(value))
    assert leaked_fragments(entry["secret"], rendered) == []
    assert "'plain': 'ok'" in rendered


@pytest.mark.parametrize("entry", CORPUS, ids=[e["kind"] for e in CORPUS])
def test_corpus_secret_in_query_string_leaks_nothing(scrubber, entry):
    """A corpus secret as a percent-encoded query parameter value leaks nothing."""
    from urllib.parse import quote

    query = f"page=2&q={quote(entry['text'])}&token={quote(entry['secret'])}"
    rendered = scrubber.scrub_query(query)
    assert leaked_fragments(entry["secret"], rendered) == []
    assert leaked_fragments(quote(entry["secret"]), rendered) == []
    assert rendered.startswith("page=2&")


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "user_password",
        "passwd",
        "secret",
        "client_secret",
        "clientSecret",
        "token",
        "access_token",
        "refreshToken",
        "api_key",
        "apiKey",
        "API-KEY",
        "x-api-key",
        "Authorization",
        "proxy-authorization",
        "cookie",
        "Set-Cookie",
        "session_id",
        "sessionId",
        "PHPSESSID",
        "credit_card",
        "card_number",
        "cardNumber",
        "cvv",
        "ssn",
        "user_ssn",
        "private_key",
        "privateKey",
        "aws_access_key_id",
        "X-Auth",
    ],
)
def test_sensitive_keys_are_found_case_and_separator_insensitively(scrubber, key):
    """Values under sensitive keys are replaced whole, whatever the case and separators."""
    assert scrubber.is_sensitive_key(key)
    assert scrubber.scrub({key: "some value 123"})[key].startswith("[REDACTED:")


@pytest.mark.parametrize(
    "key", ["user", "classname", "mapping", "author", "description", "token_count", "session_count", "tokens", "pinned"]
)
def test_ordinary_and_allowed_keys_stay_readable(scrubber, key):
    """Keys that only look sensitive in part, and the built-in allow-list, keep their values."""
    assert not scrubber.is_sensitive_key(key)
    assert scrubber.scrub({key: 42}) == {key: 42}


def test_allow_list_covers_llm_token_counters():
    """The built-in allow-list keeps the usual token counters readable."""
    scrubbed = Scrubber().scrub(dict.fromkeys(DEFAULT_ALLOW_KEYS, 7))
    assert all(value == 7 for value in scrubbed.values())


def test_extra_and_allowed_keys_are_configurable():
    """extra_keys adds sensitive keys (marker named after the key); allow_keys keeps keys readable."""
    scrubber = Scrubber(extra_keys=["internal-ref"], allow_keys=["secret_santa"])
    assert scrubber.scrub({"InternalRef": "r-1", "secret_santa": "bob"}) == {
        "InternalRef": "[REDACTED:internal_ref]",
        "secret_santa": "bob",
    }
    assert scrubber.scrub_text("lookup internal_ref=r-12345 done") == "lookup internal_ref=[REDACTED:internal_ref] done"


def test_allowed_key_values_still_get_the_shape_rules(scrubber):
    """An allow-listed key keeps its value readable, but a JWT stored there is still redacted."""
    jwt = CORPUS[0]["secret"]
    assert scrubber.scrub({"token_count": jwt}) == {"token_count": "[REDACTED:jwt]"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bearer abcDEF123456789xyz0", "Bearer [REDACTED:bearer]"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: [REDACTED:authorization]"),
        ("proxy says basic dXNlcjpwYXNzd29yZA==", "proxy says basic [REDACTED:basic]"),
        ("https://ann:pw12345@db.internal/x", "https://ann:[REDACTED:password]@db.internal/x"),
        ("key AKIAIOSFODNN7EXAMPLE used", "key [REDACTED:aws_access_key] used"),
        ("GET /items?api_key=abcd1234&page=2", "GET /items?api_key=[REDACTED:api_key]&page=2"),
        ('{"password": "hunter2", "user": "ann"}', '{"password":"[REDACTED:password]","user":"ann"}'),
        ("paid with 4111 1111 1111 1111 today", "paid with [REDACTED:card] today"),
        ("login failed password='a b c'", "login failed password='[REDACTED:password]'"),
    ],
)
def test_shapes_are_redacted_inside_longer_text(scrubber, text, expected):
    """Secret shapes are found anywhere in a string and only they are replaced."""
    assert scrubber.scrub_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "basic settings were saved",
        "the bearer of this note",
        "order 1732252540123 shipped",  # a millisecond timestamp, not a card
        "4111 1111 1111 1112 is not Luhn-valid",
        "classname=Foo mapping=bar",
        "token_count=12 total",
        "GET /items/42 took 12.5 ms",
        "trace 4bf92f3577b34da6a3ce929d0e0e4736",
    ],
)
def test_ordinary_text_is_kept(scrubber, text):
    """Text that only resembles a secret comes back unchanged (the false-positive policy)."""
    assert scrubber.scrub_text(text) == text


def test_card_numbers_as_integers_are_redacted(scrubber):
    """A Luhn-valid card number held as an int is redacted; other big ints are kept."""
    assert scrubber.scrub({"n": 4111111111111111, "ts": 1732252540123}) == {"n": "[REDACTED:card]", "ts": 1732252540123}


def test_emails_and_phones_follow_one_policy_in_every_call():
    """Emails and phones are redacted by default and kept only when the policy says so, whatever the caller asks."""
    text = "ann@example.com called from +44 20 7946 0958"
    assert Scrubber().scrub_text(text) == "[REDACTED:email] called from [REDACTED:phone]"
    assert Scrubber(emails=False, phones=False).scrub_text(text) == text
    assert Scrubber(emails=False, phones=False).scrub({"m": text}) == {"m": text}


def test_dataclasses_and_pydantic_models_become_scrubbed_dicts(scrubber):
    """Dataclasses and pydantic models are scrubbed as dicts of their fields."""

    @dataclasses.dataclass
    class Login:
        user: str
        password: str

    class Signup(pydantic.BaseModel):
        email: str
        api_key: str

    assert scrubber.scrub(Login("ann", "pw")) == {"user": "ann", "password": "[REDACTED:password]"}
    assert scrubber.scrub([Signup(email="a@b.io", api_key="k")]) == [
        {"email": "a@b.io", "api_key": "[REDACTED:api_key]"}
    ]


def test_header_pairs_and_bytes_are_scrubbed(scrubber):
    """(name, value) header pairs with a sensitive name, and bytes holding a secret, are redacted."""
    headers = [(b"authorization", b"Bearer abcdefgh12345"), (b"accept", b"*/*")]
    assert scrubber.scrub(headers) == [(b"authorization", "[REDACTED:authorization]"), (b"accept", b"*/*")]
    assert scrubber.scrub(b"url redis://:pw123456@cache:6379") == "url redis://:[REDACTED:password]@cache:6379"


def test_sets_and_tuples_keep_their_type(scrubber):
    """Tuples stay tuples and sets stay sets."""
    assert scrubber.scrub(("a", "Bearer abcdefgh12345")) == ("a", "Bearer [REDACTED:bearer]")
    assert scrubber.scrub({"x", "y"}) == {"x", "y"}


def test_markers_never_repeat_part_of_the_secret(scrubber):
    """The marker for a redacted value names the kind only."""
    secret = "sk_live_" + "Zq8" * 20
    assert scrubber.scrub_text(f"key {secret}") == "key [REDACTED:stripe_key]"


def test_depth_and_size_are_bounded():
    """Nesting deeper than max_depth, containers longer than max_items and huge strings are cut, never leaked."""
    scrubber = Scrubber(max_depth=3, max_items=5, max_string=100)
    deep: Any = "password=hunter2"
    for _ in range(10):
        deep = [deep]
    assert "hunter2" not in repr(scrubber.scrub(deep))
    assert scrubber.scrub(list(range(10))) == [0, 1, 2, 3, 4, "[TRUNCATED]"]
    assert len(scrubber.scrub_text("x." * 1000)) <= 100 + len("[TRUNCATED]")


def test_objects_that_break_are_replaced_not_raised(scrubber):
    """A value whose inspection raises becomes a marker; scrub itself never raises."""

    class Hostile(dict):
        def items(self):
            raise RuntimeError("boom")

    assert scrubber.scrub(Hostile(a=1)) == "[REDACTED:unscrubbable]"


def test_exceptions_are_scrubbed_as_text(scrubber):
    """An exception value becomes 'Type: message' with its secrets redacted."""
    assert scrubber.scrub(ValueError("bad password=hunter22")) == "ValueError: bad password=[REDACTED:password]"


def test_public_scrub_uses_the_policy_of_the_running_init():
    """signalfire.scrub follows SIGNALFIRE_SCRUB_KEYS of the running init and the default policy after shutdown."""
    assert signalfire.scrub({"internal_ref": "r-1"}) == {"internal_ref": "r-1"}
    signalfire.init_observability(scrub_keys="internal_ref", traces_exporter="none")
    assert signalfire.scrub({"internal_ref": "r-1"}) == {"internal_ref": "[REDACTED:internal_ref]"}
    assert active().is_sensitive_key("Internal-Ref")
    signalfire.shutdown()
    assert signalfire.scrub({"internal_ref": "r-1"}) == {"internal_ref": "r-1"}


def test_settings_read_scrub_variables(monkeypatch):
    """SIGNALFIRE_SCRUB_* variables configure the scrubber the runtime installs."""
    monkeypatch.setenv("SIGNALFIRE_SCRUB_KEYS", "internal_ref, legacy-pin")
    monkeypatch.setenv("SIGNALFIRE_SCRUB_ALLOW_KEYS", "secret_santa")
    monkeypatch.setenv("SIGNALFIRE_SCRUB_EMAILS", "true")
    signalfire.init_observability(traces_exporter="none")
    scrubbed = signalfire.scrub({"legacy_pin": "1", "secret_santa": "bob", "to": "ann@example.com"})
    assert scrubbed == {"legacy_pin": "[REDACTED:legacy_pin]", "secret_santa": "bob", "to": "[REDACTED:email]"}


# --- properties ---------------------------------------------------------------------------------------------------
_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=80)
    | st.binary(max_size=40)
    | st.sampled_from([e["text"] for e in CORPUS])
    | st.sampled_from(["password=x1", "Bearer abcdefgh123", "4111111111111111", "a@b.io +1 415 555 2671"])
)
_keys = st.text(max_size=20) | st.sampled_from(["password", "token_count", "Authorization", "apiKey", "x"])
_values = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=5) | st.tuples(children, children) | st.dictionaries(_keys, children, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_scrub_never_raises(value):
    """scrub returns for any nested value without raising."""
    Scrubber(emails=True, phones=True).scrub(value)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_scrub_is_idempotent(value):
    """Scrubbing a scrubbed value changes nothing."""
    scrubber = Scrubber(emails=True, phones=True)
    once = scrubber.scrub(value)
    assert scrubber.scrub(once) == once


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_scrub_text_is_idempotent(text):
    """Scrubbing scrubbed text changes nothing."""
    scrubber = Scrubber(emails=True, phones=True)
    once = scrubber.scrub_text(text)
    assert scrubber.scrub_text(once) == once


@pytest.mark.parametrize("term", sorted({*SENSITIVE_KEY_TERMS, *SENSITIVE_KEY_WORDS}))
def test_every_sensitive_term_is_found_in_key_value_text(scrubber, term):
    """key=value text is redacted for every built-in sensitive term, also written snake_case or camelCase."""
    for key in (term, f"my_{term}", f"my{term.capitalize()}"):
        assert scrubber.scrub_text(f"got {key}=zq8Xv4Tw0 ok") == f"got {key}=[REDACTED:{scrubber.key_category(key)}] ok"


def test_digits_inside_a_hex_identifier_are_not_a_card() -> None:
    """A UUID request id whose digits happen to form a card number is kept; the same digits alone are redacted."""
    request_id = "4111111111111111d46b0f0cb10e45ed"  # "4111111111111111" is a Visa test number
    assert signalfire.scrub(request_id) == request_id
    assert signalfire.scrub("card 4111111111111111 declined") == "card [REDACTED:card] declined"
    # a Luhn-valid run without a card network's prefix for its length is an identifier, not a card
    assert signalfire.scrub("card 2923947932084 declined") == "card 2923947932084 declined"


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CORPUS), _values, st.integers(min_value=0, max_value=3))
def test_a_secret_anywhere_in_random_structure_never_leaks(entry, value, depth):
    """A corpus secret placed in random nested data leaves no 6-character piece in the scrubbed result."""
    placed: Any = entry["text"]
    for _ in range(depth):
        placed = {"k": [placed, value]}
    scrubber = Scrubber()
    rendered = repr(scrubber.scrub(placed))
    # random text may by chance hold a piece of the secret on its own; only pieces beyond that count as leaks
    background = repr(scrubber.scrub(value))
    assert [piece for piece in leaked_fragments(entry["secret"], rendered) if piece not in background] == []


def test_a_sensitive_key_carrying_its_own_secret_is_scrubbed():
    """A mapping key that holds a secret itself ("password=hunter22") loses the secret, not only its value."""
    scrubbed = signalfire.scrub({"password=hunter22": 1, "password": "x1"})
    assert "hunter22" not in repr(scrubbed)
    assert scrubbed["password"] == "[REDACTED:password]"


def test_a_url_password_holding_equals_and_hash_is_redacted_whole():
    """A URL password with both "=" and "#" in it ("p=ss#x") is redacted whole, the host kept."""
    scrubbed = signalfire.scrub("postgres://u:p=ss#x@db/app")
    assert "ss#x" not in scrubbed
    assert "p=ss" not in scrubbed
    assert scrubbed.endswith("@db/app")


def test_two_keys_scrubbed_to_the_same_text_both_stay_in_the_mapping():
    """Two sensitive keys whose scrubbed text is the same keep both items, the second with a counter."""
    scrubbed = signalfire.scrub({"password=a1b2c3": 1, "password=d4e5f6": 2, "password=[REDACTED:password]": 3})
    assert "a1b2c3" not in repr(scrubbed)
    assert "d4e5f6" not in repr(scrubbed)
    assert sorted(scrubbed.values()) == [1, 2, 3]
    assert len(scrubbed) == 3


def test_a_port_followed_by_a_fragment_is_not_taken_for_a_url_password():
    """ "http://h:80#a=b@c" is a host, a port and a fragment: nothing in it is redacted."""
    assert signalfire.scrub("see http://h:80#a=b@c") == "see http://h:80#a=b@c"
    assert signalfire.scrub("redis://:pa#ss@cache") == "redis://:[REDACTED:password]@cache"
