"""The scrubber's shortcuts on hostile and repeated input give what the full path gives (or redact more, never less)."""

from __future__ import annotations

import re
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import signalfire
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


# --- the rules as they were written before their fast forms: each fast form gives what its reference gives ---------
_OLD_EMAIL = re.compile(
    r"(?<![\w.%+\-\]])[A-Za-z0-9._%+\-]{1,64}+@[A-Za-z0-9\-]{1,63}+(?:\.[A-Za-z0-9\-]{1,63}+)++(?![\w\-])"
)
_OLD_BEARER = r"(?P<bearer_word>[Bb]earer|BEARER)(?<![A-Za-z0-9][\s\S]{6})(?:\s++|%20|\+)[A-Za-z0-9\-._~+/]{8,}+=*+"
_OLD_BASIC = (
    r"(?P<basic_word>[Bb]asic|BASIC)(?<![A-Za-z0-9+/][\s\S]{5})(?:\s++|%20|\+)"
    r"(?P<basic_value>[A-Za-z0-9+/]{6,}+={0,2}+)(?![A-Za-z0-9+/=])"
)
_OLD_TOKENS = re.compile(
    "|".join(re.escape(prefix) + rest for _, prefixes, rest in _scrub._TOKEN_FORMATS for prefix in prefixes)
)
_OLD_LONG_RUN = re.compile(r"[A-Za-z0-9_\-+/=.]{14}")
_OLD_KV_GATE = re.compile("|".join(_scrub._KV_GATE_FRAGMENTS))


def _old_email_every_position(text: str) -> str:
    """The email rule as the old pattern and its callback, with every position the callback rejected tried again."""
    out, position, last = [], 0, 0
    while (match := _OLD_EMAIL.search(text, position)) is not None:
        top = match.group(0).rsplit(".", 1)[1]
        if 2 <= len(top) <= 24 and top.isalpha() and top.isascii():
            out += [text[last : match.start()], "[REDACTED:email]"]
            last = position = match.end()
        else:
            position = match.start() + 1
    return "".join([*out, text[last:]])


def _old_auth(pattern: str, text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        groups = match.groupdict()
        if groups.get("bearer_word") is not None:
            return f"{groups['bearer_word']} [REDACTED:bearer]"
        if _scrub._is_basic_credential(groups["basic_value"]):
            return f"{groups['basic_word']} [REDACTED:basic]"
        return match.group(0)

    return re.sub(pattern, replace, text)


def _old_key_values(scrubber: Scrubber, text: str) -> str:
    """The key=value pass as it was: every _KV_KEY candidate judged in Python, no cap."""
    pieces: list[str] = []
    done = 0
    for match in _scrub._KV_KEY.finditer(text):
        if match.start() < done:
            continue
        category = scrubber.key_category(match.group("key"))
        if category is None:
            continue
        start = match.end()
        if _scrub._PLACEHOLDER.match(text, start) is not None:
            continue
        value = _scrub._KV_VALUE_RE.match(text, start)
        if value is None:
            continue
        found = value.group(0)
        if found in _scrub._LITERALS or (
            match.group(0).rstrip()[-1] == ":"
            and category not in _scrub._NUMERIC_SECRET_CATEGORIES
            and _scrub._PROSE_WORD.fullmatch(found) is not None
        ):
            continue
        pieces.append(text[done:start])
        redacted = _scrub.marker(category)
        pieces.append(f"{found[0]}{redacted}{found[0]}" if found[0] in "'\"" else redacted)
        done = value.end()
        if _scrub._ENDS_WITH_SCHEME.search(found) and (credential := _scrub._SCHEME_CREDENTIAL.match(text, done)):
            done = credential.end()  # "secret=x:Bearer abc": the credential after the scheme word is the value's
    return "".join([*pieces, text[done:]]) if pieces else text


RULE_UNITS = [
    *UNITS, "a.a@ann.com", "x@a.com.", "ann@mail.example.com", "b@c.d", "@", ".", "-", "1", "x=", "x=1&", "k1=", "k2:",
    '"token"', "'", ": ", "null", "token: refreshed ", "Basic ", "dXNlcjpwYXNz", "BEARER ", "bearer+", "basic",
    "BASIC%20", "AKIA", "ya29.", "hvs.", "SG.", "npm_", "github_pat_", "shpat_", "0123456789abcdef", "AB",
]  # fmt: skip
rule_text = st.one_of(
    st.lists(st.tuples(st.sampled_from(RULE_UNITS), st.integers(1, 12)), min_size=1, max_size=16).map(
        lambda parts: "".join(unit * count for unit, count in parts)
    ),
    st.text(min_size=1, max_size=300),
    st.lists(st.sampled_from(RULE_UNITS), max_size=40).map("".join),
)


@SETTINGS
@given(text=rule_text)
def test_the_email_pattern_gives_what_the_pattern_and_its_callback_gave(text):
    """The top-level domain checked in the pattern redacts what the old pattern and callback redacted, plus the
    addresses its rejected matches hid ("a.a@ann.com" after "a@a.a"): every position is judged."""
    assert _scrub._EMAIL_RE.sub("[REDACTED:email]", text) == _old_email_every_position(text)


@SETTINGS
@given(text=rule_text)
def test_the_bearer_and_basic_passes_give_what_the_old_patterns_give(text):
    """The literal word alternations match what "[Bb]earer|BEARER" and "[Bb]asic|BASIC" matched, pass by pass."""
    new = _scrub._BASIC_RE.sub(_scrub._replace_basic, _scrub._BEARER_RE.sub(_scrub._replace_bearer, text))
    assert new == _old_auth(_OLD_BASIC, _old_auth(_OLD_BEARER, text))


def test_a_bearer_token_after_basic_is_redacted():
    """One pass of both rules skipped a bearer token that a rejected basic match had swallowed; two passes do not."""
    token = "eyJhbGciOiJIUzI1NiJ9abcdefgh"
    assert token in _old_auth(f"{_OLD_BEARER}|{_OLD_BASIC}", f"Basic Bearer {token}")
    assert token not in Scrubber().scrub_text(f"Basic Bearer {token}")


@SETTINGS
@given(text=rule_text)
def test_the_token_formats_grouped_by_first_character_match_the_plain_alternation(text):
    """Grouping the vendor token prefixes by their first character changes no match."""
    assert _scrub._TOKENS_RE.sub(_scrub._replace_token, text) == _OLD_TOKENS.sub(_scrub._replace_token, text)


@SETTINGS
@given(text=st.one_of(rule_text, st.text(alphabet="aZ9_-+/=. \u00e9\ud800", max_size=60)))
def test_the_token_run_gate_is_the_regex_gate(text):
    """bytes.translate and a substring search find a run of 14 token characters where the regex did."""
    assert _scrub._has_token_run(text) == (_OLD_LONG_RUN.search(text) is not None)


key_text = st.lists(
    st.sampled_from(
        ["pass", "word", "se", "_", "cret", "-", ".", "token", "cc", "num", "ber", "api", "Key", "internal", "ref",
         "=", ":", '"', "'", " ", "  ", "x", "1", "null", "pin", "user", "%(a)s", "ssn", "REDACTED:"]
    ),
    max_size=30,
).map("".join)  # fmt: skip


@SETTINGS
@given(text=st.one_of(rule_text, key_text))
def test_the_key_value_gate_closes_only_where_no_pair_is_redacted(text):
    """Where the gate says no sensitive key is followed by a separator, the full key=value pass changes nothing;
    and it opens wherever the old gate (one regex of the fragments, over the raw text) opened and a pair is
    redacted."""
    scrubber = Scrubber(extra_keys=["internal_ref"])
    lower = text.lower()
    full = _old_key_values(scrubber, text)
    if not scrubber._kv_gate_passes(lower):
        assert full == text
    if _OLD_KV_GATE.search(lower) is not None and full != text:
        assert scrubber._kv_gate_passes(lower)


def test_a_key_spelled_with_separators_opens_the_gate():
    """ "se_cret=..." alone opened no gate before (no fragment in the raw text); its joined words do now."""
    assert _OLD_KV_GATE.search("se_cret=hunter22") is None
    assert Scrubber().scrub_text("se_cret=hunter22") == "se_cret=[REDACTED:secret]"


@SETTINGS
@given(text=rule_text)
def test_the_key_value_pass_gives_what_judging_every_candidate_gave(text):
    """Candidates narrowed to sensitive keys (by one regex per string, or their fragments when there are many) and
    to keys a value can follow give what judging every _KV_KEY candidate in Python gave (caps out of the way)."""
    original = _scrub._MAX_KV_REDACTIONS
    _scrub._MAX_KV_REDACTIONS = 10**9
    try:
        scrubber = Scrubber(extra_keys=["internal_ref"])
        assert scrubber._key_values(text) == _old_key_values(scrubber, text)
    finally:
        _scrub._MAX_KV_REDACTIONS = original


@pytest.mark.parametrize("few", [0, 10**9])
def test_many_distinct_keys_give_what_judging_each_gave(few, monkeypatch):
    """Past _FEW_KEYS distinct keys the fragment narrowing finds every sensitive key (also spelled with separators
    or in camel case), and so does the one-by-one path."""
    monkeypatch.setattr(_scrub, "_FEW_KEYS", few)
    keys = [f"k{i}" for i in range(200)] + ["pass_word", "apiKey", "X-Service-Key", "cc_number", "user.pin", "sessID"]
    text = " ".join(f"{key}={i}x{i}" for i, key in enumerate(keys * 2))
    scrubber = Scrubber()
    assert scrubber._key_values(text) == _old_key_values(scrubber, text)
    assert scrubber._key_values(text).count("[REDACTED:") == 12


def test_distinct_keys_that_cannot_be_sensitive_are_not_judged_one_by_one(monkeypatch):
    """4,000 distinct keys ("k1=k2=...") with a sensitive word elsewhere: a handful of key judgements, not one per
    key (they cost 1-2 us per byte before)."""
    judged = []
    original = Scrubber._classify
    monkeypatch.setattr(Scrubber, "_classify", lambda self, key: judged.append(key) or original(self, key))
    text = "".join(f"k{i}=" for i in range(4000)) + " password"
    assert Scrubber().scrub_text(text) == text
    assert len(judged) < 10


def test_a_hostile_run_of_kept_values_is_dropped_after_the_cap():
    """300 "password=null" pairs (a literal, kept): past 4 x _MAX_KV_REDACTIONS judged keys the rest is dropped."""
    cuts = []
    scrubber = Scrubber(dropped=lambda signal, reason: cuts.append(reason))
    text = " ".join(["password=null"] * 300) + " password=hunter22"
    scrubbed = scrubber.scrub_text(text)
    assert "hunter22" not in scrubbed
    assert scrubbed.count("password=null") == 4 * _scrub._MAX_KV_REDACTIONS
    assert cuts == ["truncated"]


_OLD_NEAR_WORD = re.compile(
    r"(?<![A-Za-z0-9])(?P<word>(?i:key|secret|token|password|passwd|credentials?|api[_\-]?key|access[_\-]?key))"
    r"(?P<sep>[\s:=\"'`]{1,4}+|\s{1,3}+is\s{1,3}+)(?P<value>[A-Za-z0-9+/_\-]{20,}+={0,2}+)(?![A-Za-z0-9+/=])"
)
near_word_text = st.lists(
    st.sampled_from(
        ["key", "KEY", "Secret", "\u017fecret", "\u212aey", "token", "password", "passwd", "credential", "credentials",
         "api_key", "apikey", "access-key", " ", ": ", "=", " is ", "x", "hkTU9xZrQ2mB7pLs4VwN8c", "==", "1", "a"]
    ),
    max_size=30,
).map("".join)  # fmt: skip


@SETTINGS
@given(text=st.one_of(rule_text, near_word_text))
def test_the_near_word_pattern_matches_what_the_alternation_of_words_matched(text):
    """The word's first letter in front (so the engine skips to it) changes no match, Unicode case folding included."""
    assert _scrub._NEAR_WORD_RE.sub(_scrub._replace_near_word, text) == _OLD_NEAR_WORD.sub(
        _scrub._replace_near_word, text
    )


_OLD_URL = re.compile(
    r"(?P<url_prefix>\b[A-Za-z][A-Za-z0-9+.\-]{0,20}+://[^\s:/?#@\[\]]*+):(?P<url_password>[^\s/?#]+|[^\s/=&]+)@"
)
_OLD_CARD = re.compile(r"[2-6](?<![A-Za-z0-9][2-6])(?:[ \-]?+[0-9]){12,}+(?![A-Za-z0-9])")
digit_text = st.lists(
    st.sampled_from(
        ["4", "1", "5", "0", " ", "-", "--", "  ", "4111", "x", "(", ")", "+", ".", "é", "٣", "555", "a://", "DE", "89",
         "G", "B"]
    ),
    max_size=60,
).map("".join)  # fmt: skip


@SETTINGS
@given(text=st.one_of(rule_text, digit_text))
def test_the_url_and_card_patterns_match_what_they_matched(text):
    """ "\\b" written as a look-behind and the card run read group by group change no match."""
    assert _scrub._URL_RE.sub(_scrub._replace_url, text) == _OLD_URL.sub(_scrub._replace_url, text)
    assert _scrub._CARD_RE.sub(_scrub._replace_card, text) == _OLD_CARD.sub(_scrub._replace_card, text)


@SETTINGS
@given(text=st.one_of(rule_text, digit_text))
def test_the_digit_gates_close_only_where_the_pattern_changes_nothing(text):
    """A phone form's, the IBAN's and the card's pass is skipped only where it would change nothing."""
    classes = text.encode("utf-8", "surrogatepass").translate(_scrub._DIGIT_CLASSES)
    for skeleton, pattern in zip((b"+d", b"(ddd)", b"dddsdddsdddd"), _scrub._PHONE_RES, strict=True):
        if skeleton not in classes:
            assert pattern.search(text) is None
    if b"AAdd" not in classes:
        assert _scrub._IBAN_RE.search(text) is None
    if b"dddd" not in classes:
        assert _scrub._CARD_RE.sub(_scrub._replace_card, text) == text


def _recorded_query_item_by_item(query: str) -> str:
    """recorded_query as it was: every parameter's name and value judged on its own."""
    scrubber = _scrub.active()
    parts = []
    for item in query[: _url.MAX_QUERY].split("&"):
        name, sep, raw = item.partition("=")
        if not sep:
            value = _scrub.unquote_plus(item)
            scrubbed = scrubber.scrub_text(value)
            parts.append(item if scrubbed == value else urllib.parse.quote(scrubbed, safe="[]:"))
            continue
        category = _url._name_category(_scrub.unquote_plus(name), scrubber)
        if category is not None:
            parts.append(f"{name}={_scrub.marker(category)}" if raw else item)
            continue
        value = _scrub.unquote_plus(raw)
        scrubbed = scrubber.scrub_text(value)
        parts.append(item if scrubbed == value else f"{name}={urllib.parse.quote(scrubbed, safe='[]:')}")
    return "&".join(parts)


query_text = st.lists(
    st.tuples(
        st.sampled_from(["x", "q", "token", "code", "a%20b", "pass+word", "", "sig", "%41PI_KEY"]),
        st.sampled_from(["=", ""]),
        st.sampled_from(["1", "", "abcde", "abcdef", "%2B%2B%2B%2B%2B%2B", "4111+1111+1111+1111", "ann%40ex.com",
                         "Bearer+abcdefghij", "%e2%82%ac%e2", "+++++", "x" * 300]),
    ),
    max_size=40,
).map(lambda items: "&".join(f"{name}{sep}{value}" for name, sep, value in items))  # fmt: skip


@SETTINGS
@given(query=query_text)
def test_the_recorded_query_judges_each_name_once_and_gives_the_same(query):
    """Names judged once per query and short values kept without a scrub give what judging each item gave."""
    _url._last_query = (None, -1, "", "")
    assert _url.recorded_query(query) == _recorded_query_item_by_item(query)


def _scrub_query_item_by_item(scrubber: Scrubber, query: str) -> str:
    """Scrubber.scrub_query as it was: every parameter judged on its own."""
    parts = []
    for item in query.split("&"):
        name, sep, raw = item.partition("=")
        if not sep:
            parts.append(scrubber._text(item) if len(item) >= _scrub.MIN_SECRET_LENGTH else item)
            continue
        category = scrubber.key_category(_scrub.unquote_plus(name))
        if category is not None and raw:
            parts.append(f"{name}={_scrub.marker(category)}")
            continue
        value = _scrub.unquote_plus(raw)
        scrubbed = scrubber._text(value)
        parts.append(item if scrubbed == value else f"{name}={urllib.parse.quote(scrubbed, safe='[]:')}")
    return "&".join(parts)


@SETTINGS
@given(query=query_text)
def test_scrub_query_judges_each_name_once_and_gives_the_same(query):
    """The scrubber's own query pass (URLs in log text) gives what judging each item gave."""
    assert Scrubber().scrub_query(query) == _scrub_query_item_by_item(Scrubber(), query)


email_text = st.lists(
    st.sampled_from(["a", "@", ".", "-", "com", "ann", "@example.com", " ", "x" * 70, "é", "+", "%", "]", "_", "1"]),
    max_size=40,
).map("".join)


@SETTINGS
@given(text=st.one_of(rule_text, email_text))
def test_emails_read_around_each_at_give_what_one_pass_gives(text):
    """The email pass read only around each "@" gives what the pattern over the whole text gives."""
    assert _scrub._emails(text) == _scrub._EMAIL_RE.sub("[REDACTED:email]", text)


@pytest.mark.parametrize(
    "text",
    ["secret=x:Bearer abcdefghijklmnop", "se_cret=x:Bearer abcdefghijklmnop", "password=a:basic dXNlcjpwYXNzd29yZA=="],
)
def test_a_credential_after_the_scheme_word_ending_a_sensitive_value_is_redacted(text):
    """Redacting ``x:Bearer`` up to the space took away the word the bearer pass looks for; the value runs through
    the credential."""
    scrubbed = signalfire.scrub(text)
    assert "abcdefghijklmnop" not in scrubbed
    assert "dXNlcjpwYXNzd29yZA" not in scrubbed


def test_the_narrowed_key_searches_are_compiled_for_short_key_sets_only_and_bounded():
    """A string of long or ever-new sensitive keys uses the general search instead of compiling a pattern per string;
    the compiled ones are kept, at most _KEY_SEARCHES_MAX (counted, not timed)."""
    from signalfire._scrub import _policy

    _policy._key_searches.clear()
    long_keys = " ".join(f"password_{'q' * 40}{i}=hunter{i}x" for i in range(4))
    assert "hunter0x" not in signalfire.scrub(long_keys)
    assert _policy._key_searches == {}
    for i in range(_policy._KEY_SEARCHES_MAX + 50):
        assert f"s3cr3t{i}" not in signalfire.scrub(f"password_{i}=s3cr3t{i} user=ann")
    assert len(_policy._key_searches) == _policy._KEY_SEARCHES_MAX


@SETTINGS
@given(
    digits=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    secret=st.one_of(st.none(), st.text(alphabet="0123456789abcdef", min_size=6, max_size=12)),
)
def test_a_generated_id_is_scrubbed_as_the_full_scan_scrubs_the_same_text(digits, secret):
    """A GeneratedId skips the shape rules: on any 32-digit hex id that loses nothing the full scan would redact,
    and a known secret value inside it is still redacted."""
    text = digits if secret is None else digits[:10] + secret + digits[10 + len(secret) :]
    known = [secret] if secret else []
    assert Scrubber(secret_values=known).scrub_text(_scrub.GeneratedId(text)) == Scrubber(
        secret_values=known
    ).scrub_text(text)


def test_a_generated_id_is_judged_by_its_key_and_keeps_nothing_in_the_clean_cache():
    scrubber = Scrubber()
    generated = _scrub.GeneratedId("4111111111111111")  # not an id signalfire would make: the rules are skipped
    assert scrubber.scrub_text(generated) is generated
    assert scrubber.scrub_text(str(generated)) == "[REDACTED:card]"  # the same text as a plain str is scanned
    assert scrubber.scrub_text(generated[:16]) == "[REDACTED:card]"  # a slice is a plain str
    assert _scrub.scrub_attribute(scrubber, "api_key", _scrub.GeneratedId("0123456789abcdef")) == "[REDACTED:api_key]"
    assert not any(type(text) is _scrub.GeneratedId for text in scrubber._clean)


def test_a_secret_registered_after_an_id_was_scrubbed_is_redacted_in_the_next():
    scrubber = Scrubber()
    generated = _scrub.GeneratedId("00deadbeefcafe0000000000000000ff")
    assert scrubber.scrub_text(generated) is generated
    signalfire.register_secret("deadbeefcafe")
    assert scrubber.scrub_text(generated) == "00[REDACTED:secret]0000000000000000ff"
