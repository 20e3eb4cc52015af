"""The one scrubber: a single redaction policy for log events, span attributes and Sentry events.

Three rules, applied together, identically in every sink (there are no per-sink variants):

- **by key**: a value stored under a sensitive key (``password``, ``Authorization``, ``x-api-key``, ``apiKey``, ...)
  is replaced whole. Keys are compared case- and separator-insensitively, word by word, so ``api_key``, ``API-Key``
  and ``apiKey`` are the same key and ``classname`` does not look like ``ssn``. Keys that name metadata about a secret
  (``token_expires_at``, ``api_key_id``, ``auth_latency_ms``, ``gen_ai.usage.input_tokens``) are kept, and so are
  booleans and numbers (unless the number is a card, a PIN, a CVV, an OTP or an SSN);
- **by value**: the secret values signalfire knows (the Sentry DSN's password, OTLP header values, environment
  variables whose names say they are secret, database and Redis URL passwords, and what the application registers
  with :func:`register_secret_values`) are redacted wherever they appear, whatever the key;
- **by value shape**, wherever the value sits (also inside longer strings, log messages and JSON held in strings):
  JWTs, bearer and basic credentials, vendor key formats, PEM private keys, card numbers (issuer prefix, length and
  Luhn), IBANs (mod 97), passwords in URLs, ``key=value`` pairs whose key is sensitive (placeholders such as
  ``%(name)s``, ``:name``, ``$1`` and ``?`` are not values), high-entropy strings right after a word such as ``key``
  or ``secret``, emails and phone numbers (SIGNALFIRE_SCRUB_EMAILS, SIGNALFIRE_SCRUB_PHONES).

Every redaction is a marker that names what was removed (``[REDACTED:jwt]``) and never keeps any part of the secret.
Scrubbing never raises: a value it cannot handle is replaced by ``[REDACTED:unscrubbable]``.

**Linear time, bounded input.** Strings longer than SIGNALFIRE_SCRUB_MAX_LENGTH are cut (``[TRUNCATED]``, counted as
dropped ``scrub``/``truncated``) before any pattern runs, and span attributes are cut to the OpenTelemetry attribute
value limit before they are scrubbed. Every pattern runs in time linear in its input: no pattern has nested or
adjacent overlapping quantifiers, every unbounded repetition is possessive (``++``, ``{n,}+``) and every pattern whose
body can fail after an unbounded run may start only where that run starts (a look-behind excludes the run's own
characters), so no two attempts scan the same characters. tests/unit/test_scrub_linear_time.py holds this with long
repetitions of every pattern's prefixes and separators; benchmarks/bench_hostile.py reports the cost per request part.
Per string, the Python work is bounded too: a long string scrubbed before is one memo lookup (``_text``), a rule that
calls back into Python per match stops doing so past a count (card candidates, ``key=value`` redactions and judged
keys: the rest is redacted whole), a rule's callback runs only where its gate says a match can change the text, and
the ``key=value`` pass judges each distinct candidate key once, after narrowing them in C (``_key_search``). Per
character, every pattern starts with a literal or a character class (a look-behind comes after the first character),
so the regex engine skips to candidates in C; gates are substring tests or ``bytes.translate`` skeletons, never
``str.islower()``-like scans of the Unicode database. A new rule joins these by its gate and, if it calls back per
match, a cap; tests/unit/test_scrub_fast_path.py compares each shortcut with the full path (or the rule as it was
written before) on hostile and random input, and ``python -m benchmarks.bench_hostile --rules`` times every rule on
every hostile shape.
"""

from __future__ import annotations

import binascii
import bisect
import dataclasses
import itertools
import logging
import operator
import re
import threading
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import orjson

if TYPE_CHECKING:
    from signalfire._settings import Settings

__all__ = [
    "CREDENTIAL_HEADERS",
    "DEFAULT_ALLOW_KEYS",
    "DEFAULT_MAX_LENGTH",
    "MIN_SECRET_LENGTH",
    "SENSITIVE_KEY_TERMS",
    "GeneratedId",
    "Scrubber",
    "active",
    "header_category",
    "install",
    "mask_config_value",
    "mask_url_userinfo",
    "register_secret",
    "register_secret_values",
    "register_url_secrets",
    "scrub",
    "scrub_attribute",
    "scrub_text",
    "unquote_plus",
]

_log = logging.getLogger("signalfire")

# --- keys -------------------------------------------------------------------------------------------------------------
# Terms that make a key sensitive wherever they appear in the key with separators removed ("x-api-key" -> "xapikey").
# Each maps to the category its marker names.
SENSITIVE_KEY_TERMS: dict[str, str] = {
    "password": "password",
    "passwd": "password",
    "passphrase": "password",
    "secret": "secret",
    "token": "token",
    "apikey": "api_key",
    "authorization": "authorization",
    "authentication": "authorization",
    "cookie": "cookie",
    "sessionid": "session",
    "sessid": "session",
    "sessionkey": "session",
    "creditcard": "card",
    "cardnumber": "card",
    "ccnumber": "card",
    "privatekey": "private_key",
    "accesskey": "access_key",
    "accountkey": "access_key",
    "credential": "credential",
    "signature": "signature",
    "encryptionkey": "secret",
    "signingkey": "secret",
    "masterkey": "secret",
}
# Short terms that are sensitive only as a whole word of the key ("user_ssn", "cvv", "X-Auth", "pass", "session"),
# never as part of a longer word ("classname", "mapping", "author", "passenger").
SENSITIVE_KEY_WORDS: dict[str, str] = {
    "ssn": "ssn",
    "cvv": "cvv",
    "cvv2": "cvv",
    "cvc": "cvv",
    "pwd": "password",
    "pass": "password",
    "pin": "pin",
    "auth": "authorization",
    "jwt": "jwt",
    "otp": "otp",
    "sid": "session",
    "session": "session",
    "csrf": "token",
    "xsrf": "token",
    "dsn": "dsn",
}
# Keys that contain a sensitive term but hold counts or metadata, kept readable (false-positive policy, see
# docs/scrubbing.md). Compared in the same normalized form as sensitive keys; values are still scrubbed by shape.
DEFAULT_ALLOW_KEYS: tuple[str, ...] = (
    "token_count",
    "tokens",
    "token_type",
    "token_usage",
    "tokens_used",
    "input_tokens",
    "output_tokens",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "max_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "session_count",
    "password_policy",
    "password_min_length",
    "secret_name",
    "cookie_count",
    "auth_method",
    "auth_provider",
    "auth_required",
)
# A key whose last word is one of these names metadata about a secret, not the secret itself: a quantity, a time, an
# identifier of the secret, a state ("token_expires", "password_changed_at", "api_key_id", "auth_latency_ms" stay
# readable; "password" does not). Any later word starting with "expir" does the same ("token_expires_in").
_SAFE_LAST_WORDS = frozenset(
    {
        "count",
        "total",
        "length",
        "len",
        "size",
        "limit",
        "ttl",
        "type",
        "used",
        "expires",
        "at",
        "id",
        "ids",
        "ms",
        "us",
        "ns",
        "seconds",
        "sec",
        "status",
        "required",
        "enabled",
        "latency",
        "duration",
        "version",
        "algorithm",
        "name",
        "kind",
        "provider",
        "method",
    }
)
# ... except where the id *is* the secret: a session id, a cloud access key id.
_SECRET_IDS = ("sessionid", "sessid", "accesskeyid")
# Semantic-convention namespaces whose "*_tokens" attributes are counts (gen_ai.usage.input_tokens).
_COUNT_NAMESPACES = ("genaiusage", "llmusage", "llmtokencount")
# Categories whose secrets are numbers: under such a key a number is redacted too (under "token" it is metadata).
_NUMERIC_SECRET_CATEGORIES = frozenset({"pin", "cvv", "otp", "ssn", "card"})

_WORD_SPLIT = re.compile(r"[^a-z0-9]++")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _words(key: str) -> list[str]:
    return [w for w in _WORD_SPLIT.split(_CAMEL.sub("_", key).lower()) if w]


def _normalize(key: str) -> str:
    return "".join(_words(key))


# --- value shapes -----------------------------------------------------------------------------------------------------
# Linear time: an unbounded run is possessive, and a pattern that can fail after one starts only where the run starts.
_B64URL = r"[A-Za-z0-9_\-]"
# Known token formats: (marker name, issuer prefixes, pattern of the rest). Every alternative of the combined regex
# starts with a literal, which lets the regex engine skip most positions; word boundaries are checked on each match.
# None of them can fail after an unbounded run except the JWT, which is therefore anchored where its run starts.
_AWS_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA")
_JWT_START = r"(?:(?<![A-Za-z0-9_\-]eyJ)|(?<=%[0-9A-Fa-f][0-9A-Fa-f]eyJ))"  # after the literal: keeps the prefix scan
_TOKEN_FORMATS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("jwt", ("eyJ",), rf"{_JWT_START}{_B64URL}{{5,}}+\.{_B64URL}{{2,}}+(?:\.{_B64URL}*+){{0,3}}+"),
    ("aws_access_key", _AWS_PREFIXES, r"[A-Z0-9]{16}(?![A-Z0-9])"),
    ("github_token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"[A-Za-z0-9]{30,255}+"),
    ("github_token", ("github_pat_",), r"[A-Za-z0-9_]{22,255}+"),
    ("slack_webhook", ("https://hooks.slack.com/",), r"(?:services|workflows|triggers)/[A-Za-z0-9/_\-]++"),
    ("slack_token", ("xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-", "xoxe-"), r"[A-Za-z0-9\-]{10,}+"),
    ("stripe_key", ("sk_live_", "sk_test_", "rk_live_", "rk_test_"), r"[A-Za-z0-9]{10,}+"),
    ("stripe_key", ("whsec_",), r"[A-Za-z0-9+/=]{20,}+"),
    ("google_api_key", ("AIza",), rf"{_B64URL}{{35}}"),
    ("google_oauth_token", ("ya29.",), r"[A-Za-z0-9_\-.]{20,}+"),
    ("api_key", ("sk-",), rf"(?:proj-|ant-|svcacct-)?+{_B64URL}{{20,}}+"),
    ("gitlab_token", ("glpat-",), rf"{_B64URL}{{20,}}+"),
    ("npm_token", ("npm_",), r"[A-Za-z0-9]{36}"),
    ("pypi_token", ("pypi-",), rf"{_B64URL}{{50,}}+"),
    ("sendgrid_key", ("SG.",), rf"{_B64URL}{{16,}}+\.{_B64URL}{{16,}}+"),
    ("vault_token", ("hvs.", "hvb.", "hvr."), rf"{_B64URL}{{24,}}+"),
    ("huggingface_token", ("hf_",), r"[A-Za-z0-9]{30,}+"),
    ("shopify_token", ("shpat_", "shpca_", "shppa_", "shpss_"), r"[a-fA-F0-9]{32}(?![A-Za-z0-9])"),
)
_TOKEN_KIND: dict[str, str] = {prefix: name for name, prefixes, _ in _TOKEN_FORMATS for prefix in prefixes}
_TOKEN_PREFIX_LENGTHS = sorted({len(prefix) for prefix in _TOKEN_KIND}, reverse=True)
# The lazy body meets its END at the first one; without an END the key runs to the end of the text (both linear).
_PEM = (
    r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|.*+\Z)"
)
# The user part cannot hold ':' and the password part cannot hold '/': two attempts never share a scanned span. A
# password may hold '?' or '#' (a client's error quotes "redis://:pa#ss@cache" as given) when it holds no '=' or '&',
# so "http://host:8080?email=ann@example.com" stays a port and a query; or both '=' and '#' when it holds no '?' or '&'
# ("postgres://u:p=ss#x@db/app"). Each alternative reads the same run once: three reads at most, no attempt shared.
_URL_CREDENTIALS = (
    # "\b" as a look-behind after the scheme's first letter: the regex engine skips to letters instead of trying
    # every position
    r"(?P<url_prefix>[A-Za-z](?<!\w[A-Za-z])[A-Za-z0-9+.\-]{0,20}+://[^\s:/?#@\[\]]*+)"
    # a port followed by a fragment ("http://h:80#a=b@c") is not a password
    r":(?!\d{1,5}+#)(?P<url_password>[^\s/?#]+|[^\s/=&]+|[^\s/?&]+)@"
)
# The words are alternations of literals (not "[Bb]earer"), so the regex engine skips to a "B" or "b" in C; the bearer
# and basic rules are separate passes, each behind its own word's gate.
_BEARER = r"(?:B(?:earer|EARER)|bearer)(?<![A-Za-z0-9][\s\S]{6})(?:\s++|%20|\+)[A-Za-z0-9\-._~+/]{8,}+=*+"
# "basic" may not follow a character of its own value, so "basic+basic+...===" is one failed attempt, not one each.
_BASIC = (
    r"(?:B(?:asic|ASIC)|basic)(?<![A-Za-z0-9+/][\s\S]{5})(?:\s++|%20|\+)"
    r"(?P<basic_value>[A-Za-z0-9+/]{6,}+={0,2}+)(?![A-Za-z0-9+/=])"
)
# A run of at least 13 digits, optionally grouped by single spaces or dashes; judged by _is_card_text (issuer prefix,
# length, grouping, Luhn), or searched for cards by _cards_within when longer. The run must stand on its own: digits
# inside a hex identifier (a UUID request id, a trace id) are part of that identifier.
# The run is read group by group (digits, then a separator and digits, ...) once its first 13 digits are seen: the
# same match as "(?:[ \-]?+[0-9]){12,}+", at one step per group instead of one per digit.
_CARD = r"[2-6](?<![A-Za-z0-9][2-6])(?=(?:[ \-]?+[0-9]){12})[0-9]*+(?:[ \-][0-9]++)*+(?![A-Za-z0-9])"
# Labels are possessive and the top-level domain is checked on the match, so an address is one pass over its labels.
# The last label (the top-level domain) is 2 to 24 ASCII letters, checked in the pattern (an address-like string that
# is none, "a@a.a@a.a", costs no Python call): the labels are taken one by one until one of letters ends the run of
# labels (no word character, "-", or "." and a label character after it). Each attempt reads its labels once; the
# look-behind follows the first character, so the regex engine skips to candidates.
_EMAIL = (
    r"[A-Za-z0-9._%+\-](?<![\w.%+\-\]][A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{0,63}+@[A-Za-z0-9\-]{1,63}+"
    r"(?:\.[A-Za-z0-9\-]{1,63}+)*?"
    r"\.[A-Za-z]{2,24}+(?![\w\-]|\.[A-Za-z0-9\-])"
)
# Three forms (after "+", in "(415) 555-0100", "415-555-0100"), each behind a substring gate; the look-behind
# follows the first character so the regex engine can skip to candidates.
_PHONE_FORMS = (
    r"\+(?<![\w+\]]\+)[1-9][0-9]{0,2}[ .\-]?(?:\([0-9]{1,4}\)[ .\-]?)?[0-9]{1,4}(?:[ .\-]?[0-9]{2,4}){1,4}(?!\w)",
    r"\((?<![\w+\]]\()[0-9]{3}\)[ ]?[0-9]{3}[ .\-][0-9]{4}(?!\w)",
    r"[0-9](?<![\w+\]][0-9])[0-9]{2}[.\-][0-9]{3}[.\-][0-9]{4}(?!\w)",
)
# Two letters (country), two check digits, 11 to 30 more letters or digits, unbroken or in groups of four.
_IBAN = (
    r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z][0-9]{2}(?:[A-Z0-9]{11,30}+|(?: [A-Z0-9]{4}){2,7}+(?: [A-Z0-9]{1,3})?+)"
    r"(?![A-Za-z0-9])"
)
# A high-entropy string right after a word that names a secret ("key hkTU9xZr...", "secret: 5lb2Vsh..."); the string
# is judged by _looks_random on the match (mixed classes), so hashes and trace ids (lower-case hex) are kept.
# The word's first letter comes first (a character class: the regex engine skips to candidates in C; a look-behind
# in front made it try every position), with the letters case-insensitive matching also takes ("\u212a" KELVIN SIGN
# for k, "\u017f" LONG S for s); each rest follows its own first letter, as the alternation of words did.
_NEAR_WORD_FIRST = "KSTPCAkstpca\u017f\u212a"
_NEAR_WORD = (
    rf"(?P<word>[{_NEAR_WORD_FIRST}](?<![A-Za-z0-9][{_NEAR_WORD_FIRST}])"
    r"(?:(?<=[Kk\u212a])(?i:ey)|(?<=[Ss\u017f])(?i:ecret)|(?<=[Tt])(?i:oken)|(?<=[Pp])(?i:assword|asswd)"
    r"|(?<=[Cc])(?i:redentials?)|(?<=[Aa])(?i:pi[_\-]?key|ccess[_\-]?key)))"
    r"(?P<sep>[\s:=\"'`]{1,4}+|\s{1,3}+is\s{1,3}+)(?P<value>[A-Za-z0-9+/_\-]{20,}+={0,2}+)(?![A-Za-z0-9+/=])"
)
# key=value / key: value / "key": "value" wherever a sensitive-looking key appears; the key is confirmed with
# key_category, so the term list only has to find candidates. Every branch is a single possessive run.
_KV_VALUE = (
    r"(?P<kv_value>\"(?:[^\"\\]++|\\.)*+\"?|'(?:[^'\\]++|\\.)*+'?"
    r"|(?:(?:[Bb]earer|BEARER|[Bb]asic|BASIC|[Tt]oken|[Dd]igest)\s++)?+[^\s&,;\"'<>\]\[)(}{]++)"
)
# Placeholders of parameterised statements and templates are never values: %(name)s, %s, :name, $1, ?, {name}, @p1.
_PLACEHOLDER = re.compile(
    r"(?:%\([A-Za-z0-9_.]{1,64}+\)[a-z]|%[sdifr]|:[A-Za-z_][A-Za-z0-9_]{0,63}+|\$\d{1,3}+|\?"
    r"|\{[A-Za-z0-9_]{0,64}+\}|@[A-Za-z_][A-Za-z0-9_]{0,63}+)(?![A-Za-z0-9_])"
)
# A value that is a word, not a secret: "token: refreshed", "password: changed". Only after ':' (prose); after '='
# every value is redacted.
_PROSE_WORD = re.compile(r"[a-z]{2,24}")
_LITERALS = frozenset({"true", "false", "null", "none", "True", "False", "None", "TRUE", "FALSE", "NULL", "NONE"})

# Characters at least one of which every value-shape rule needs (digits for cards and phones, '=' and ':' for
# key=value, '.' for JWTs, '@' for emails and URLs, '_' and '-' for token prefixes); strings without any of them
# are checked only for the few letter-only shapes below.
_SUSPICIOUS = re.compile(r"[0-9=:@/+_.\-]")
_MIN_SCAN_LENGTH = 8  # the shortest shape we redact ("pin=1234") is this long

# Each rule is a separate regex behind a cheap gate (a substring test), because one alternation of every rule defeats
# the regex engine's prefix scan and costs tens of microseconds per string; gated passes cost well under one.
_PEM_RE = re.compile(_PEM, re.DOTALL)
_URL_RE = re.compile(_URL_CREDENTIALS)
_QUERY_RE = re.compile(r"\?([^\s?#\"'<>=]*+=[^\s?#\"'<>]*+)")


def _by_first_character(alternatives: Iterable[tuple[str, str]]) -> str:
    """``prefix + rest`` alternatives grouped by the prefix's first character (in their order within a group): at a
    position only one group can match, so the result is the plain alternation's, but the regex engine tries one
    group's few alternatives at a candidate position instead of all forty."""
    groups: dict[str, list[str]] = {}
    for prefix, rest in alternatives:
        groups.setdefault(prefix[0], []).append(re.escape(prefix[1:]) + rest)
    return "|".join(f"{re.escape(first)}(?:{'|'.join(bodies)})" for first, bodies in groups.items())


_TOKENS_RE = re.compile(
    _by_first_character((prefix, rest) for _, prefixes, rest in _TOKEN_FORMATS for prefix in prefixes)
)
_TOKEN_RUN_LENGTH = 14  # every token format has at least this many token characters in a row
# The token characters as b"a", every other byte (non-ASCII included) as b" ": a run is found by bytes.translate
# and a substring search, both in C at about a byte a nanosecond, where a regex tries every position.
_TOKEN_CHARS = bytes(
    ord("a") if chr(byte) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=." else ord(" ")
    for byte in range(256)
)
_TOKEN_RUN = b"a" * _TOKEN_RUN_LENGTH


def _has_token_run(text: str) -> bool:
    """``text`` holds a run of at least _TOKEN_RUN_LENGTH token characters (letters, digits and ``_-+/=.``)."""
    return _TOKEN_RUN in text.encode("utf-8", "surrogatepass").translate(_TOKEN_CHARS)


_BEARER_RE = re.compile(_BEARER)
_BASIC_RE = re.compile(_BASIC)
_CARD_RE = re.compile(_CARD)
_EMAIL_RE = re.compile(_EMAIL)
_PHONE_RES = tuple(re.compile(pattern) for pattern in _PHONE_FORMS)
_IBAN_RE = re.compile(_IBAN)
_NEAR_WORD_RE = re.compile(_NEAR_WORD)


# ASCII digits as b"d", capitals as b"A", "." and "-" as b"s", "+", "(" and ")" as themselves, every other byte
# (non-ASCII included) as b"x".
_DIGIT_CLASSES = bytes(
    ord("d") if 48 <= b <= 57 else ord("A") if 65 <= b <= 90 else ord("s") if b in b".-" else b if b in b"+()" else 120
    for b in range(256)
)
_PHONE_DIGITS = (8, 15)  # E.164 allows at most 15 digits; fewer than 8 is an extension or a code, not a number
# A key (optionally quoted) and its separator; the key is judged by key_category, so extra keys need no pattern.
# A key may follow "[" ("options [password=...]"), but the word of a marker ("[REDACTED:password]") is no key.
_KV_KEY = re.compile(r"(?<![A-Za-z0-9_.\-])(?!REDACTED:)([\"']?)(?P<key>[A-Za-z0-9_.\-]{1,60}+)\1\s{0,3}+[:=]\s{0,3}+")
# Every key _KV_KEY can find, and more (no quote matching): one string per match, no tuple, no group. It starts only
# where a run of key characters starts (the look-behind after the first character keeps the engine's skip to one).
_KV_KEY_CANDIDATE = re.compile(
    r"[A-Za-z0-9_.\-](?<![A-Za-z0-9_.\-][A-Za-z0-9_.\-])[A-Za-z0-9_.\-]{0,59}+(?=[\"']?\s{0,3}+[:=])"
)
# _KV_KEY for given keys (an alternation of whole runs of key characters).
# A value can follow only where its first character can start one (_KV_VALUE: a quote or a character of an unquoted
# value); elsewhere the pass would skip the key anyway.
_VALUE_AHEAD = r"(?=[^\s&,;<>\]\[)(}{])"
_KV_KEY_OF = (  # around an alternation of keys
    r"(?<![A-Za-z0-9_.\-])(?!REDACTED:)([\"']?)(?P<key>",
    r")(?![A-Za-z0-9_.\-])\1\s{0,3}+[:=]\s{0,3}+" + _VALUE_AHEAD,
)
_KV_KEY_WITH_VALUE = re.compile(_KV_KEY.pattern + _VALUE_AHEAD)
_KV_VALUE_RE = re.compile(_KV_VALUE)
# A value that ends with an authorization scheme's word ("secret=x:Bearer abc..."): the credential after the space is
# part of it, or redacting the value up to the space would take away the word the bearer and basic passes look for.
_ENDS_WITH_SCHEME = re.compile(r"(?i:bearer|basic)\Z")
_SCHEME_CREDENTIAL = re.compile(r"[ \t]{1,8}+[^\s]++")
# The key=value search narrowed to a few sensitive keys is compiled once per key set, only for short sets (a compile
# costs about a microsecond per character of pattern): longer or more sets use the general search.
_KEY_SEARCH_NAMES_MAX = 160
_KEY_SEARCHES_MAX = 256
_key_searches: dict[str, Callable[[str, int], re.Match[str] | None]] = {}
_FIELD_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  # a header or field name in a (name, value) pair


# Percent-decoding as urllib.parse.unquote_plus does it (UTF-8, invalid sequences replaced), with the scan in C:
# urllib splits at every "%" and joins in Python, about 0.3 us per "%" of a hostile "%(%(%(..." value.
_PERCENT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})++")


def _decode_percent_run(match: re.Match[str]) -> str:
    return bytes.fromhex(match.group(0).replace("%", "")).decode("utf-8", "replace")


def unquote_plus(text: str) -> str:
    """``urllib.parse.unquote_plus(text)``, the same result (tests/unit/test_scrub_fast_path.py), in linear C scans:
    "+" is a space, each run of ``%XX`` escapes is decoded as UTF-8 with invalid sequences replaced."""
    text = text.replace("+", " ")
    if "%" not in text:
        return text
    return _PERCENT_RUN.sub(_decode_percent_run, text)


def _is_field_name(name: Any) -> bool:
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    return isinstance(name, str) and _FIELD_NAME.fullmatch(name) is not None


# Fragments one of which every sensitive key contains, in lower case (with any separators): the key=value pass runs
# only on text that has one. Extra keys add their words.
_KV_GATE_FRAGMENTS = (
    "pass",
    "secret",
    "token",
    "key",
    "auth",
    "cookie",
    "sess",
    "card",
    r"cc[^a-z0-9]?num",
    "cvv",
    "cvc",
    "ssn",
    "pwd",
    "pin",
    "jwt",
    "otp",
    "sid",
    "csrf",
    "xsrf",
    "dsn",
    "signature",
    "credential",
)
_KV_GATE_LITERALS = tuple(fragment for fragment in _KV_GATE_FRAGMENTS if fragment.isalpha())
# After a fragment: the rest of its run of letters and digits, then the separator of a key=value pair.
_RUN_THEN_SEPARATOR = r"[a-z0-9]*+[\"']?\s{0,3}+[:=]"
_FEW_KEYS = 32  # distinct candidate keys judged one by one; more are first narrowed by their fragments

_UNKNOWN: Any = object()
_CLEAN_CACHE_SIZE = 4096
_CLEAN_CACHE_MAX_LENGTH = 256
_MEMO_MAX_CHARS = 1 << 20  # characters held by one scrubber's memo of long strings (inputs and outputs): 1-4 MiB
_MARKER_PREFIX = "[REDACTED:"
TRUNCATED = "[TRUNCATED]"
UNSCRUBBABLE = "[REDACTED:unscrubbable]"
DEFAULT_MAX_LENGTH = 65_536  # SIGNALFIRE_SCRUB_MAX_LENGTH's default
DEFAULT_ATTRIBUTE_LIMIT = 4_096  # OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT's default in signalfire
MIN_SECRET_LENGTH = 6  # shorter known values are ignored: they would destroy ordinary text
_MAX_KNOWN_SECRETS = 4_096


def marker(category: str) -> str:
    """The text that replaces a removed value: ``[REDACTED:<category>]``."""
    return f"{_MARKER_PREFIX}{category}]"


_LUHN_DOUBLED = bytes((0, 2, 4, 6, 8, 1, 3, 5, 7, 9)).maketrans(b"0123456789", bytes((0, 2, 4, 6, 8, 1, 3, 5, 7, 9)))
_LUHN_PLAIN = bytes.maketrans(b"0123456789", bytes(range(10)))


def _luhn_ok(digits: str) -> bool:
    raw = digits.encode("ascii")
    # every second digit from the right doubled (digit sums precomputed); C-level translate and sum, no Python loop
    return (sum(raw[-1::-2].translate(_LUHN_PLAIN)) + sum(raw[-2::-2].translate(_LUHN_DOUBLED))) % 10 == 0


def _issuer_accepts(digits: str) -> bool:
    """The issuer prefix (IIN range) of a major card network allows this many digits."""
    length = len(digits)
    two, three, four = int(digits[:2]), int(digits[:3]), int(digits[:4])
    return (
        (digits[0] == "4" and length in (13, 16, 19))  # Visa
        or ((51 <= two <= 55 or 2221 <= four <= 2720) and length == 16)  # Mastercard
        or (two in (34, 37) and length == 15)  # American Express
        or ((four == 6011 or 644 <= three <= 649 or two == 65) and 16 <= length <= 19)  # Discover
        or (3528 <= four <= 3589 and 16 <= length <= 19)  # JCB
        or ((300 <= three <= 305 or two in (36, 38, 39)) and 14 <= length <= 19)  # Diners Club
        or (two == 62 and 16 <= length <= 19)  # UnionPay
    )


def _is_card_number(digits: str) -> bool:
    """A run of digits is a card: 13 to 19 digits, a card network's prefix for that length, and the Luhn check.

    Luhn alone is one number in ten: order numbers, 15-digit IMEIs and long numeric ids would match."""
    return 13 <= len(digits) <= 19 and digits.isdigit() and _issuer_accepts(digits) and _luhn_ok(digits)


# Groupings printed on cards and typed by people: 4-4-4-4(-3), 4-6-5 (Amex), 4-6-4 (Diners).
_CARD_GROUPS = frozenset({(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4), (4, 4, 4, 1), (4, 4, 4, 4, 1, 2)})
_CARD_GROUPS_LONGEST_FIRST = [list(shape) for shape in sorted(_CARD_GROUPS, key=len, reverse=True)]


def _is_card_text(text: str) -> bool:
    """``text`` (digits, maybe grouped by one kind of separator) is a card number written as cards are written."""
    separators = {char for char in text if not char.isdigit()}
    if not separators:
        return _is_card_number(text)
    if len(separators) > 1:
        return False
    groups = tuple(len(group) for group in text.split(separators.pop()))
    return groups in _CARD_GROUPS and _is_card_number("".join(text.split(text[groups[0]])))


def _is_card_int(value: int) -> bool:
    return 10**12 <= value < 10**19 and _is_card_number(str(value))


# IBAN length by country (ISO 13616 registry): a wrong length is rejected before the checksum is computed.
_IBAN_LENGTHS = {
    **dict.fromkeys(("NO",), 15),
    **dict.fromkeys(("BE",), 16),
    **dict.fromkeys(("DK", "FI", "FO", "GL", "NL"), 18),
    **dict.fromkeys(("MK", "SI"), 19),
    **dict.fromkeys(("AT", "BA", "EE", "KZ", "LT", "LU", "XK"), 20),
    **dict.fromkeys(("CH", "HR", "LI", "LV"), 21),
    **dict.fromkeys(("BG", "BH", "CR", "DE", "GB", "GE", "IE", "ME", "RS"), 22),
    **dict.fromkeys(("AE", "GI", "IL"), 23),
    **dict.fromkeys(("AD", "CZ", "ES", "MD", "PK", "RO", "SA", "SE", "SK", "TN", "VG"), 24),
    **dict.fromkeys(("PT",), 25),
    **dict.fromkeys(("IS", "TR"), 26),
    **dict.fromkeys(("FR", "GR", "IT", "MC", "MR", "SM"), 27),
    **dict.fromkeys(("AL", "AZ", "CY", "DO", "GT", "HU", "LB", "PL"), 28),
    **dict.fromkeys(("BR", "PS", "QA", "UA"), 29),
    **dict.fromkeys(("JO", "KW", "MU"), 30),
    **dict.fromkeys(("MT",), 31),
}
_IBAN_DIGITS = str.maketrans({chr(code): str(code - 55) for code in range(ord("A"), ord("Z") + 1)})


def _iban_ok(text: str) -> bool:
    compact = text.replace(" ", "")
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    # mod 97 of the number the rearranged IBAN spells, letters as 10..35 (ISO 7064), in C: translate and int()
    return int((compact[4:] + compact[:4]).translate(_IBAN_DIGITS)) % 97 == 1


def _looks_random(value: str) -> bool:
    """Mixed character classes, as in generated keys: upper case, lower case and digits (or a symbol)."""
    classes = (
        any(char.isupper() for char in value)
        + any(char.islower() for char in value)
        + any(char.isdigit() for char in value)
        + any(char in "+/_-" for char in value)
    )
    return classes >= 3 and len(set(value)) >= min(len(value) // 2, 16)


def _is_basic_credential(value: str) -> bool:
    # "basic" is an English word; only a base64 value that decodes to user:password is a credential.
    try:
        decoded = binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


_PRIVATE_KEY_MARKER = marker("private_key")
_PHONE_MARKER = marker("phone")
_SECRET_MARKER = marker("secret")


def _replace_url(match: re.Match[str]) -> str:
    return f"{match.group('url_prefix')}:{marker('password')}@"


def _preceded_by_word(match: re.Match[str]) -> bool:
    start = match.start()
    # "]" ends a marker: what follows one is judged as it was before the marker replaced its neighbour
    return start > 0 and (match.string[start - 1].isalnum() or match.string[start - 1] == "]")


def _replace_token(match: re.Match[str]) -> str:
    text = match.group(0)
    if _preceded_by_word(match) and not text.startswith("eyJ"):
        return text
    for length in _TOKEN_PREFIX_LENGTHS:
        kind = _TOKEN_KIND.get(text[:length])
        if kind is not None:
            return marker(kind)
    return _SECRET_MARKER


def _replace_bearer(match: re.Match[str]) -> str:
    return f"{match.group(0)[:6]} {marker('bearer')}"  # the word as written: Bearer, bearer or BEARER


def _replace_basic(match: re.Match[str]) -> str:
    if _is_basic_credential(match.group("basic_value")):
        return f"{match.group(0)[:5]} {marker('basic')}"
    return match.group(0)


def _replace_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(char.isdigit() for char in text)
    return _PHONE_MARKER if _PHONE_DIGITS[0] <= digits <= _PHONE_DIGITS[1] else text


_CARD_SPLIT = re.compile(r"([ \-])")
# Where a card can start inside a run of digit groups: a group of four whose first digit is 2 to 6, or a long group.
_CARD_GROUP_START = re.compile(r"(?<![0-9])(?:[2-6][0-9]{3}(?![0-9])|[0-9]{13})")
_MAX_CARD_CANDIDATES = 64  # card-shaped group runs checked in one run of digit groups; a receipt has a few
_MAX_KV_REDACTIONS = 64  # sensitive key=value pairs redacted one by one in one string; past them the rest is dropped
_KV_JUDGED_PER_REDACTION = 4  # sensitive keys judged per string (kept values too): 4 x _MAX_KV_REDACTIONS
_CARD_MARKER = marker("card")


def _cards_within(text: str) -> str:
    """``text`` (digit groups and single separators) with every run of whole groups that is written as a card and is
    one redacted: "44 20 7946 0958 4111 1111 1111 1111" is a phone's digits, then a card. Linear: a card starts with
    a group of four (or is one group of 13 to 19), so each group is tried against a handful of groupings."""
    if _CARD_GROUP_START.search(text) is None:
        return text  # no group of four from 2 to 6 and no group of 13 or more digits: no card, and no Python loop
    parts = _CARD_SPLIT.split(text)
    groups, seps = parts[0::2], parts[1::2]
    lengths = [len(group) for group in groups]
    out: list[str] = []
    i = 0
    count = len(groups)
    candidates = 0
    while i < count:
        end = i + 1
        if 13 <= lengths[i] <= 19 and _is_card_number(groups[i]):
            out.append(_CARD_MARKER)
        elif lengths[i] == 4 and groups[i][0] in "23456":
            candidates += 1
            if candidates > _MAX_CARD_CANDIDATES:
                # a hostile run of card-shaped groups: the rest is dropped whole, never checked group by group
                out.append(_CARD_MARKER)
                break
            for shape in _CARD_GROUPS_LONGEST_FIRST:
                stop = i + len(shape)
                if (
                    lengths[i:stop] == shape
                    and seps[i : stop - 1].count(seps[i]) == len(shape) - 1
                    and _is_card_number("".join(groups[i:stop]))
                ):
                    out.append(_CARD_MARKER)
                    end = stop
                    break
            else:
                out.append(groups[i])
        else:
            out.append(groups[i])
        if end < count:
            out.append(seps[end - 1])
        i = end
    return "".join(out)


def _replace_card(match: re.Match[str]) -> str:
    text = match.group(0)
    start = match.start()
    if start > 0 and match.string[start - 1] in "0123456789.]":
        return text
    if len(text) <= 23 and _is_card_text(text):
        return _CARD_MARKER
    return _cards_within(text) if ("-" in text or " " in text) else text


_EMAIL_MARKER = marker("email")


_FEW_ATS = 64  # a string with more "@" is read by one pass of the email pattern


def _emails(text: str) -> str:
    """``text`` with every email redacted: what ``_EMAIL_RE.sub`` gives, read only around each "@" when there are
    few. An address holds one "@", its local part (at most 64 characters) before it and no other "@" after it, so the
    match holding the i-th "@" starts after the (i-1)-th and at most 64 characters before it, and ends before the
    next one (where the pattern's closing look-ahead judges "@" as it judges the end of the text)."""
    if text.count("@") > _FEW_ATS:
        return _EMAIL_RE.sub(_EMAIL_MARKER, text)
    pieces: list[str] = []
    done = previous = 0
    at = text.find("@")
    while at >= 0:
        following = text.find("@", at + 1)
        end = len(text) if following < 0 else following
        match = _EMAIL_RE.search(text, max(done, previous, at - 64), end)
        if match is not None:
            pieces.append(text[done : match.start()])
            pieces.append(_EMAIL_MARKER)
            done = match.end()
        previous, at = at + 1, following
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def _replace_iban(match: re.Match[str]) -> str:
    return marker("iban") if _iban_ok(match.group(0)) else match.group(0)


def _replace_near_word(match: re.Match[str]) -> str:
    if not _looks_random(match.group("value")):
        return match.group(0)
    return f"{match.group('word')}{match.group('sep')}{_SECRET_MARKER}"


# --- known secret values ----------------------------------------------------------------------------------------------
def _not_counted(signal: str, reason: str) -> None:
    """The loss counter of a scrubber nobody handed one (tests, the CLI, before init)."""
    _log.debug("signalfire: dropped %s (%s) before init; not counted", signal, reason)


class GeneratedId(str):
    """A string signalfire made itself from random bits: the request id of a request that came without one.

    It holds nothing of the application's or of its users, so :meth:`Scrubber.scrub_text` runs none of the shape rules
    over it (they all look for what a person or a program put in a value; a 32-digit hexadecimal id cost about 46k
    instructions per scan, once per exported span, as it never repeats). A known secret value is still redacted in it,
    and the key it is stored under is still judged (a key the policy finds sensitive redacts it like any value). Only
    signalfire constructs it; anything derived from it (a slice, a replacement) is a plain ``str`` and scrubbed as one.
    """

    __slots__ = ()


class _KnownSecrets:
    """Exact values redacted wherever they appear: one compiled alternation (longest first), swapped whole."""

    __slots__ = ("pattern", "values")

    def __init__(self, values: Iterable[str]) -> None:
        self.values = tuple(sorted(set(values), key=lambda v: (-len(v), v)))
        self.pattern = re.compile("|".join(re.escape(v) for v in self.values)) if self.values else None

    def sub(self, text: str) -> str:
        # A literal alternation is linear in the text (each attempt is bounded by the longest value).
        if self.pattern is None or len(text) < MIN_SECRET_LENGTH:
            return text
        return self.pattern.sub(_SECRET_MARKER, text)


_registry_lock = threading.Lock()
_registered: frozenset[str] = frozenset()  # the application's and the integrations' values, kept across inits
_generation = 0  # bumped on every registration: scrubbers rebuild their matcher and forget strings seen clean


def registry_generation() -> int:
    """Bumped whenever a secret value is registered or forgotten: a cache of scrubbed output is stale once it moves."""
    return _generation


def _acceptable_secret(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text: str = value.strip()
    if len(text) < MIN_SECRET_LENGTH or len(text) > DEFAULT_ATTRIBUTE_LIMIT or text.startswith(_MARKER_PREFIX):
        return None
    return text


def register_secret_values(*values: Any) -> int:
    """Redact these exact values wherever they appear, whatever the key, in every signal; returns how many were new.

    For the integrations (an engine URL's password, a Redis password) and :func:`signalfire.register_secret`. Values
    shorter than MIN_SECRET_LENGTH (6) characters, non-strings and empty values are ignored: redacting "admin" or
    "1234" everywhere would destroy ordinary text. Never raises.
    """
    global _registered, _generation  # noqa: PLW0603 - the process's one registry, replaced whole under the lock
    try:
        accepted = {v for v in map(_acceptable_secret, values) if v is not None}
        with _registry_lock:
            new = accepted - _registered
            if not new or len(_registered) + len(new) > _MAX_KNOWN_SECRETS:
                return 0
            _registered = _registered | new
            _generation += 1
        return len(new)
    except Exception:
        _log.debug("signalfire: registering secret values failed", exc_info=True)
        return 0


def _forget_registered() -> None:
    """Forget every registered value (tests: one test's secrets must not redact another's text)."""
    global _registered, _generation  # noqa: PLW0603
    with _registry_lock:
        _registered = frozenset()
        _generation += 1


def url_secrets(url: Any) -> tuple[str, ...]:
    """The secret parts of a URL (the password of its user-info), percent-decoded and as written; never raises."""
    try:
        text = url if isinstance(url, str) else str(url)
        if "@" not in text:
            return ()
        password = urlsplit(text).password
    except Exception:
        return ()
    if not password:
        return ()
    return tuple({password, unquote(password)})


def register_url_secrets(*urls: Any) -> int:
    """Register the passwords of these URLs (database, Redis, broker URLs) with :func:`register_secret_values`.

    For the integrations: ``instrument_sqlalchemy`` passes ``engine.url`` (a ``sqlalchemy.URL`` renders its password
    only with ``render_as_string(hide_password=False)``; pass that string), ``instrument_redis`` the connection URL or
    password. Never raises; returns how many values were new.
    """
    return register_secret_values(*(secret for url in urls for secret in url_secrets(url)))


def register_secret(*values: str) -> None:
    """Redact these exact values wherever they appear in logs, spans, metrics and Sentry events, whatever the key.

    signalfire already registers what it is configured with: the password of the Sentry DSN (SENTRY_DSN), the values
    of OTEL_EXPORTER_OTLP_HEADERS, the values of environment variables whose names say they are secret
    (``*_PASSWORD``, ``*_SECRET``, ``*_TOKEN``, ``*_API_KEY``, ...) and the passwords of URLs in the environment and of
    the database and Redis connections it instruments. Register the application's own (a key fetched from a vault at
    start-up, a webhook secret) here, before or after ``init_observability()``. Values shorter than 6 characters are
    ignored, because redacting them everywhere would destroy ordinary text. Never raises.

    Example::

        import signalfire

        signalfire.register_secret(vault.read("payments/webhook-secret"))
        signalfire.scrub("signature was computed with wh-7Tq9Lz2Kp")  # "... computed with [REDACTED:secret]"
    """
    register_secret_values(*values)


def settings_secrets(settings: Settings) -> tuple[str, ...]:
    """The secret values the settings hold: the DSN's and OTLP endpoints' passwords, the OTLP header values that are
    credentials, and the environment's secret-named variables that Settings collected when it read the environment.

    An OTLP header's value is a credential when the header's name says so (``authorization``, ``x-api-key``) or when
    it looks generated (a key, ``Bearer <token>``); a routing header such as ``x-team=payments`` is not registered,
    or every "payments" in every signal would be redacted.
    """
    found: list[str] = []
    found.extend(url_secrets(getattr(settings, "sentry_dsn", None) or ""))
    names = Scrubber(emails=False, phones=False)
    for signal in ("", "traces_", "metrics_", "logs_"):
        found.extend(url_secrets(getattr(settings, f"otlp_{signal}endpoint", None) or ""))
        headers = getattr(settings, f"otlp_{signal}headers", None) or {}
        for name, value in headers.items():
            if not isinstance(value, str):
                continue
            scheme, _, credential = value.strip().partition(" ")
            credential = credential if credential and scheme.isalpha() else ""
            if names.is_sensitive_key(name) or _looks_random(credential or value.strip()):
                found.append(value)
                if credential:
                    found.append(credential)  # "Bearer <token>": the token alone, as it may be logged
    found.extend(getattr(settings, "secret_values", ()) or ())
    return tuple(found)


class Scrubber:
    """Redacts secrets and personal data from any nested value; one instance holds one policy.

    The running instance is configured from Settings by ``init_observability()`` (SIGNALFIRE_SCRUB_KEYS,
    SIGNALFIRE_SCRUB_ALLOW_KEYS, SIGNALFIRE_SCRUB_EMAILS, SIGNALFIRE_SCRUB_PHONES, SIGNALFIRE_SCRUB_MAX_LENGTH and
    OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT); :func:`active` returns it.

    Example::

        scrubber = Scrubber(extra_keys=["internal_ref"])
        scrubber.scrub({"user": "ann@example.com", "internal_ref": "x-1"})
        # {'user': '[REDACTED:email]', 'internal_ref': '[REDACTED:internal_ref]'}
    """

    __slots__ = (
        "_allow",
        "_clean",
        "_extra_terms",
        "_generation",
        "_key_cache",
        "_key_fragments",
        "_known",
        "_lock",
        "_memo",
        "_memo_chars",
        "attribute_limit",
        "dropped",
        "emails",
        "max_depth",
        "max_items",
        "max_string",
        "phones",
        "secret_values",
    )

    def __init__(
        self,
        *,
        extra_keys: Iterable[str] = (),
        allow_keys: Iterable[str] = (),
        emails: bool = True,
        phones: bool = True,
        max_depth: int = 16,
        max_items: int = 1_000,
        max_string: int = DEFAULT_MAX_LENGTH,
        attribute_limit: int = DEFAULT_ATTRIBUTE_LIMIT,
        secret_values: Iterable[str] = (),
        dropped: Callable[[str, str], object] | None = None,
    ) -> None:
        # The loss counter (_export._drops.dropped, handed down by the runtime): a cut string is counted there.
        self.dropped: Callable[[str, str], object] = dropped or _not_counted
        self.emails = emails
        self.phones = phones
        self.max_depth = max_depth
        self.max_items = max_items
        self.max_string = max(1, max_string)
        self.attribute_limit = max(1, attribute_limit)
        self.secret_values = tuple(v for v in map(_acceptable_secret, secret_values) if v is not None)
        self._allow = frozenset(_normalize(key) for key in (*DEFAULT_ALLOW_KEYS, *allow_keys))
        self._extra_terms = {
            normalized: "_".join(_words(key)) for key in extra_keys if (normalized := _normalize(key.strip()))
        }
        extra_words = [word for key in extra_keys for word in _words(key)]
        # The gate's fragments as literals in keys with separators removed ("cc_num" is "ccnum"), searched with str's
        # own substring search (in C, a few per nanosecond; the alternation as one regex cost 50 ns per character).
        fragments = dict.fromkeys([*_KV_GATE_LITERALS, "ccnum", *extra_words])
        self._key_fragments = tuple((f, re.compile(re.escape(f) + _RUN_THEN_SEPARATOR)) for f in fragments)
        self._key_cache: dict[Any, str | None] = {}
        self._clean: dict[str, None] = {}
        self._memo: dict[str, str] = {}  # long string -> its scrubbed form (see _text)
        self._memo_chars = 0
        self._lock = threading.Lock()
        self._generation = -1
        self._known = _KnownSecrets(())
        self._refresh()

    def _refresh(self) -> None:
        """Take in newly registered values; strings seen clean before may hold one now."""
        with _registry_lock:
            generation, registered = _generation, _registered
        self._known = _KnownSecrets((*self.secret_values, *registered))
        self._clean.clear()
        self._memo.clear()
        self._memo_chars = 0
        self._generation = generation

    @classmethod
    def from_settings(cls, settings: Settings, dropped: Callable[[str, str], object] | None = None) -> Scrubber:
        """The scrubber the settings describe (the ``scrub_*`` fields, the attribute limit, the known secrets);
        ``dropped(signal, reason)`` counts what it cuts."""
        limit = settings.span_attribute_value_length_limit or settings.attribute_value_length_limit
        return cls(
            extra_keys=settings.scrub_keys,
            allow_keys=settings.scrub_allow_keys,
            emails=settings.scrub_emails,
            phones=settings.scrub_phones,
            max_string=settings.scrub_max_length,
            attribute_limit=limit,
            secret_values=settings_secrets(settings),
            dropped=dropped,
        )

    # --- keys -----------------------------------------------------------------------------------------------------
    def key_category(self, key: Any) -> str | None:
        """The category a key's value is redacted as (``password``, ``token``, ...), or None for a readable key."""
        try:
            return self._key_cache[key]
        except KeyError:
            pass
        except TypeError:  # unhashable
            return None
        category = self._classify(key)
        # The cache is bounded: keys are usually a small fixed set, but a dict keyed by user ids must not grow it.
        if len(self._key_cache) >= 4096:
            with self._lock:
                self._key_cache.clear()
        self._key_cache[key] = category
        return category

    def _classify(self, key: Any) -> str | None:
        if isinstance(key, bytes | bytearray):
            key = bytes(key).decode("latin-1")
        if not isinstance(key, str) or not key or len(key) > 200 or key.startswith(_MARKER_PREFIX):
            return None
        words = _words(key)
        joined = "".join(words)
        if not joined or joined in self._allow:
            return None
        if joined in self._extra_terms:
            return self._extra_terms[joined]
        for term, category in self._extra_terms.items():
            if term in joined:
                return category
        if len(words) > 1 and not joined.endswith(_SECRET_IDS):
            if words[-1] in _SAFE_LAST_WORDS or any(word.startswith("expir") for word in words[1:]):
                return None
            if words[-1] == "tokens" and joined.startswith(_COUNT_NAMESPACES):
                return None
        for word in words:
            if word in SENSITIVE_KEY_WORDS:
                return SENSITIVE_KEY_WORDS[word]
        for term, category in SENSITIVE_KEY_TERMS.items():
            if term in joined:
                return category
        # A custom HTTP header named "X-...-Key" (X-Service-Key, X-Signing-Key) carries a credential by convention;
        # other "*_key" names (cache_key, sort_key, idempotency_key) are identifiers and stay readable.
        if len(words) > 2 and words[0] == "x" and words[-1] == "key":
            return "api_key"
        return None

    def is_sensitive_key(self, key: Any) -> bool:
        """True when a value stored under ``key`` is redacted whole (``Authorization``, ``x-api-key``, ``apiKey``)."""
        return self.key_category(key) is not None

    def redact_under(self, category: str, value: Any) -> Any:
        """What a value under a key of ``category`` becomes: the marker, except for None and empty strings (kept),
        booleans and numbers (kept: a flag or a count, not a secret) unless the number is a card or the category's
        secrets are numbers (pin, cvv, otp, ssn, card)."""
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            if category in _NUMERIC_SECRET_CATEGORIES or (isinstance(value, int) and _is_card_int(value)):
                return marker(category if category in _NUMERIC_SECRET_CATEGORIES else "card")
            return value
        if isinstance(value, str | bytes) and not value:
            return value
        return marker(category)

    # --- text -----------------------------------------------------------------------------------------------------
    def scrub_text(self, text: str) -> str:
        """``text`` with every secret-shaped part replaced by a marker; never raises. The email and phone policy
        (SIGNALFIRE_SCRUB_EMAILS, SIGNALFIRE_SCRUB_PHONES) is the scrubber's, the same in every sink."""
        try:
            if type(text) is GeneratedId:
                return self._generated(text)
            # Span attributes, routes, user agents and label values repeat: a string seen clean costs one lookup.
            clean = self._clean
            if self._generation == _generation and text in clean:
                return text
            scrubbed = self._text(text)
            if scrubbed is text and len(text) <= _CLEAN_CACHE_MAX_LENGTH:
                if len(clean) >= _CLEAN_CACHE_SIZE:
                    clean.clear()
                clean[text] = None
            return scrubbed
        except Exception:  # a scrubber bug must never leak the value nor break the caller
            _log.debug("signalfire: scrubbing a string failed", exc_info=True)
            return UNSCRUBBABLE

    def _generated(self, text: GeneratedId) -> str:
        """A generated id as it leaves: itself, unless a known secret value occurs in it (never kept as clean: such
        ids are unique, they would only push repeating strings out of the cache)."""
        if self._generation != _generation:
            self._refresh()
        if self._known.pattern is None:
            return text
        found = self._known.sub(text)
        return text if found == text else found

    def _truncate(self, text: str, limit: int) -> str:
        self._count_truncated()
        return text[:limit] + TRUNCATED

    def _count_truncated(self) -> None:
        try:
            self.dropped("scrub", "truncated")
        except Exception:  # counting must not become a failure of its own
            _log.debug("signalfire: counting a truncated string failed", exc_info=True)

    def _text(self, text: str, *_ignored: Any) -> str:
        length = len(text)
        if length <= _CLEAN_CACHE_MAX_LENGTH:
            return self._scan(text, length) if length >= MIN_SECRET_LENGTH else text
        # A long value is often scrubbed more than once on its way out (a query value in the middleware, the access
        # line and the handler's own log line; a logged value rendered and then exported): the second time costs a
        # hash and a comparison. The memo is bounded by the characters it holds and follows the secret registry.
        if self._generation != _generation:
            self._refresh()
        memo = self._memo
        found = memo.get(text)
        if found is not None:
            if length > self.max_string:
                self._count_truncated()  # every cut is counted, as the scan would
            return found
        scrubbed = self._scan(text, length)
        held = self._memo_chars + length + len(scrubbed)
        if held > _MEMO_MAX_CHARS:
            memo.clear()
            held = length + len(scrubbed)
        if held <= _MEMO_MAX_CHARS:
            memo[text] = scrubbed
            self._memo_chars = held
        return scrubbed

    def _scan(self, text: str, length: int) -> str:
        """Every rule over ``text`` (at least MIN_SECRET_LENGTH characters long)."""
        if length > self.max_string:
            text = self._truncate(text, self.max_string)
        if self._generation != _generation:
            self._refresh()
        known = self._known.pattern
        if known is not None:  # one literal alternation, linear in the text
            text = known.sub(_SECRET_MARKER, text)
        if length < _MIN_SCAN_LENGTH:
            return text
        bearer_word = "earer" in text or "EARER" in text
        basic_word = "asic" in text or "ASIC" in text
        # A high-entropy string after "key" has a digit or a symbol, so the near-word rule needs no gate of its own.
        if _SUSPICIOUS.search(text) is None and not (bearer_word or basic_word or "AKIA" in text or "ASIA" in text):
            return text
        first = text.lstrip()[:1]
        if first in ("{", "[") and text.rstrip()[-1:] in ("}", "]"):
            embedded = self._json_text(text)
            if embedded is not None:
                return embedded
        if "-----BEGIN" in text:
            text = _PEM_RE.sub(_PRIVATE_KEY_MARKER, text)
        if ("=" in text or ":" in text) and self._kv_gate_passes(text.lower()):
            text = self._key_values(text)
        if "%" in text and "?" in text:
            # percent-encoded query values ("q=Bearer%20..."), as in URLs that clients and servers log
            text = _QUERY_RE.sub(lambda m: "?" + self.scrub_query(m.group(1)), text)
        if "://" in text:
            text = _URL_RE.sub(_replace_url, text)
        if _has_token_run(text):
            text = _TOKENS_RE.sub(_replace_token, text)
            lower = text.lower()
            if "key" in lower or "secret" in lower or "token" in lower or "passw" in lower or "credential" in lower:
                text = _NEAR_WORD_RE.sub(_replace_near_word, text)
        if bearer_word:
            text = _BEARER_RE.sub(_replace_bearer, text)
        if basic_word:
            text = _BASIC_RE.sub(_replace_basic, text)
        # The digit rules' skeletons in the text's character classes (bytes.translate, in C, where str.islower() read
        # the Unicode database per character) gate their passes: a card has a group of four digits, an IBAN two
        # capitals and two digits, each phone form its own. A marker holds no digit, so no pass makes one appear.
        classes = text.encode("utf-8", "surrogatepass").translate(_DIGIT_CLASSES)
        if b"dddd" in classes:
            text = _CARD_RE.sub(_replace_card, text)
        if b"AAdd" in classes:
            text = _IBAN_RE.sub(_replace_iban, text)
        if self.phones:
            plus, paren, dotted = _PHONE_RES
            if b"+d" in classes:
                text = plus.sub(_replace_phone, text)
            if b"(ddd)" in classes:
                text = paren.sub(_replace_phone, text)
            if b"dddsdddsdddd" in classes:
                text = dotted.sub(_replace_phone, text)
        if self.emails and "@" in text:
            text = _emails(text)
        return text

    def _kv_gate_passes(self, lower: str) -> bool:
        """``lower`` (a lower-cased text) may hold a sensitive key followed by its separator: a run of key characters
        whose letters and digits hold one of the gate's fragments (every sensitive key's do), then ``:`` or ``=``.

        With ``_``, ``.`` and ``-`` removed, each run of key characters is a run of letters and digits (the key's
        words joined, as key_category reads it) and what follows it is kept. A fragment is looked for by str.find,
        and only where it occurs is its pattern (the fragment, the rest of the run, a separator) searched; both
        scan in C, so an occurrence that is no key ("key Aa1+key Aa1+...") costs no Python call."""
        joined = lower.replace("_", "").replace(".", "").replace("-", "")
        for fragment, then_separator in self._key_fragments:
            if fragment in joined and then_separator.search(joined) is not None:
                return True
        return False

    def _sensitive_keys(self, keys: set[str]) -> dict[str, str]:
        """The sensitive ones of these distinct candidate keys, with their category. Many keys (a hostile
        ``k1=k2=k3=...``) are first narrowed, in C, to those whose letters hold one of the gate's fragments -- which
        every sensitive key does -- so a key that cannot be sensitive costs no Python call."""
        if len(keys) > _FEW_KEYS:
            ordered = list(keys)
            # one line per key, lower case, separators removed: key_category's joined words
            lines = "\n".join(ordered).lower().replace("_", "").replace(".", "").replace("-", "")
            ends = list(itertools.accumulate(map(operator.add, map(len, lines.split("\n")), itertools.repeat(1))))
            held: set[int] = set()
            for fragment, _then_separator in self._key_fragments:
                at = lines.find(fragment)
                while at >= 0:
                    index = bisect.bisect_right(ends, at)
                    held.add(index)
                    at = lines.find(fragment, ends[index])
            keys = {ordered[index] for index in held}
        found = {}
        for key in keys:
            category = self.key_category(key)
            if category is not None:
                found[key] = category
        return found

    def _key_search(self, text: str) -> tuple[Callable[[str, int], re.Match[str] | None], dict[str, str]] | None:
        """A search for the key=value candidates of ``text`` whose key is sensitive, and their keys' categories; None
        when there is none. The search finds what ``_KV_KEY`` finds, less the keys that are not sensitive and the
        keys followed by no value, so those cost no Python work per match."""
        sensitive = self._sensitive_keys(set(_KV_KEY_CANDIDATE.findall(text)))
        if not sensitive:
            return None
        if len(sensitive) > _FEW_KEYS:
            return _KV_KEY_WITH_VALUE.search, sensitive
        # The same pattern with the key one of these (a whole run of key characters, as the possessive run is): a
        # key that is not sensitive never starts a match, and cannot hide one (no key starts inside another's match).
        names = "|".join(re.escape(key) for key in sorted(sensitive, key=len, reverse=True))
        search = _key_searches.get(names)
        if search is None:
            if len(names) > _KEY_SEARCH_NAMES_MAX or len(_key_searches) >= _KEY_SEARCHES_MAX:
                # hostile or unusual key sets would compile a pattern per string: the general search costs less
                return _KV_KEY_WITH_VALUE.search, sensitive
            search = _key_searches[names] = re.compile(names.join(_KV_KEY_OF)).search
        return search, sensitive

    def _key_values(self, text: str) -> str:
        """Redact the value of every ``key=value`` / ``key: value`` / ``"key": "value"`` whose key is sensitive."""
        found_keys = self._key_search(text)
        if found_keys is None:
            return text
        search, sensitive = found_keys
        pieces: list[str] = []
        done = position = 0
        judged = 0
        while (match := search(text, position)) is not None:
            position = start = match.end()
            category = sensitive.get(match.group("key"))
            if category is None:
                continue
            judged += 1
            if judged > _KV_JUDGED_PER_REDACTION * _MAX_KV_REDACTIONS:
                # a hostile run of sensitive keys whose values are kept (placeholders, literals, words): the rest is
                # dropped whole, counted, never judged pair by pair in Python
                pieces.append(text[done:start])
                pieces.append(marker(category))
                self._count_truncated()
                return "".join(pieces)
            if _PLACEHOLDER.match(text, start) is not None:
                continue  # "password=%(password)s", "token = :token", "pin=$1", "secret = ?"
            value = _KV_VALUE_RE.match(text, start)
            if value is None:
                continue
            found = value.group(0)
            if found in _LITERALS or (
                match.group(0).rstrip()[-1] == ":"
                and category not in _NUMERIC_SECRET_CATEGORIES
                and _PROSE_WORD.fullmatch(found) is not None
            ):
                continue  # "token: refreshed", "password=null": a word or a literal, not a secret
            quote_char = found[0]
            end = value.end()
            if _ENDS_WITH_SCHEME.search(found) is not None:
                credential = _SCHEME_CREDENTIAL.match(text, end)
                if credential is not None:
                    end = credential.end()
            redacted = marker(category)
            pieces.append(text[done:start])
            if len(pieces) >= 2 * _MAX_KV_REDACTIONS:
                # a hostile run of key=value pairs: the rest is dropped whole (more redaction, never less), never
                # judged pair by pair in Python; what is dropped is counted, as a cut string is
                pieces.append(redacted)
                self._count_truncated()
                return "".join(pieces)
            pieces.append(f"{quote_char}{redacted}{quote_char}" if quote_char in "'\"" else redacted)
            # the next key is searched after the value: a key inside a redacted value is never judged
            done = position = end
        if not pieces:
            return text
        pieces.append(text[done:])
        return "".join(pieces)

    def _json_text(self, text: str) -> str | None:
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(parsed, dict | list):
            return None
        scrubbed = self._value(parsed, 0)
        if scrubbed == parsed:
            return text
        return orjson.dumps(scrubbed).decode()

    def scrub_query(self, query: str) -> str:
        """A URL query string with sensitive parameters' values (by name or by shape, after percent-decoding)
        replaced by markers; other parameters are kept byte for byte. At most SIGNALFIRE_SCRUB_MAX_LENGTH characters
        are read (the rest becomes ``[TRUNCATED]``). Never raises."""
        if not query:
            return query
        try:
            truncated = len(query) > self.max_string
            if truncated:
                self._count_truncated()
                query = query[: self.max_string]
            parts = []
            categories: dict[str, str | None] = {}  # a name repeated a thousand times is judged once
            for item in query.split("&"):
                name, sep, raw = item.partition("=")
                if not sep:
                    parts.append(self._text(item) if len(item) >= MIN_SECRET_LENGTH else item)
                    continue
                category = categories.get(name, _UNKNOWN)
                if category is _UNKNOWN:
                    category = categories[name] = self.key_category(unquote_plus(name))
                if category is None and len(raw) < MIN_SECRET_LENGTH:
                    parts.append(item)  # decoding never lengthens a value, and shorter ones are never changed
                    continue
                if category is not None and raw:
                    parts.append(f"{name}={marker(category)}")
                    continue
                value = unquote_plus(raw)
                scrubbed = self._text(value)
                parts.append(item if scrubbed == value else f"{name}={quote(scrubbed, safe='[]:')}")
            return "&".join(parts) + (TRUNCATED if truncated else "")
        except Exception:
            _log.debug("signalfire: scrubbing a query string failed", exc_info=True)
            return UNSCRUBBABLE

    # --- nested values ----------------------------------------------------------------------------------------------
    def scrub(self, value: Any) -> Any:
        """A scrubbed copy of ``value``: dicts, lists, tuples, sets, dataclasses and pydantic models (as dicts), JSON
        held in strings, bytes. Never raises; values without anything to redact come back equal (often identical)."""
        try:
            return self._value(value, 0)
        except Exception:
            _log.debug("signalfire: scrubbing a value failed", exc_info=True)
            return UNSCRUBBABLE

    def scrub_fields(self, fields: MutableMapping[Any, Any]) -> MutableMapping[Any, Any]:
        """Scrub a mapping of fields (a log event, span attributes) in place and return it; never raises.

        The hot-path form of :meth:`scrub`: only values that change are written back, and strings already seen
        clean (event names, enum-like values) are recognised by one dictionary lookup.
        """
        if self._generation != _generation:
            self._refresh()
        key_cache = self._key_cache
        clean = self._clean
        try:
            for key, value in fields.items():
                category = key_cache.get(key, _UNKNOWN) if type(key) is str else self.key_category(key)
                if category is _UNKNOWN:
                    category = self.key_category(key)
                if category is not None:
                    redacted = self.redact_under(category, value)
                    if redacted is not value:
                        fields[key] = redacted
                    continue
                kind = type(value)
                if kind is str:
                    if len(value) < MIN_SECRET_LENGTH or value in clean:
                        continue
                    scrubbed = self._text(value)
                    if scrubbed is not value:
                        fields[key] = scrubbed
                    elif len(value) <= _CLEAN_CACHE_MAX_LENGTH:
                        if len(clean) >= _CLEAN_CACHE_SIZE:
                            clean.clear()
                        clean[value] = None
                elif kind is int:
                    if value >= 10**12 and _is_card_int(value):
                        fields[key] = marker("card")
                elif not (value is None or kind is float or kind is bool):
                    fields[key] = self._value(value, 1)
        except Exception:
            _log.debug("signalfire: scrubbing fields failed", exc_info=True)
            for key in list(fields):
                fields[key] = UNSCRUBBABLE
        return fields

    def _value(self, value: Any, depth: int, *_ignored: Any) -> Any:
        if value is None or isinstance(value, bool | float):
            return value
        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, int):
            return marker("card") if _is_card_int(value) else value
        if depth >= self.max_depth:
            return marker("too_deep")
        if isinstance(value, Mapping):
            return self._mapping(value, depth)
        if isinstance(value, list | tuple):
            return self._sequence(value, depth)
        if isinstance(value, set | frozenset):
            items = self._sequence(list(value), depth)
            try:
                return type(value)(items)
            except TypeError:
                return items
        if isinstance(value, bytes | bytearray | memoryview):
            raw = bytes(value[: self.max_string])
            text = raw.decode("utf-8", errors="replace")
            scrubbed = self._text(text)
            if len(value) > self.max_string:
                return self._truncate(scrubbed, len(scrubbed))
            return value if scrubbed == text else scrubbed
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
            return self._mapping(fields, depth)
        dump: Callable[..., Any] | None = getattr(type(value), "model_dump", None)
        if dump is not None and hasattr(type(value), "model_fields"):
            return self._value(dump(value, mode="python"), depth + 1)
        if isinstance(value, BaseException):
            return self._text(f"{type(value).__name__}: {value}")
        return value

    def _known_only(self, name: Any) -> Any:
        """A sensitive key or pair name with the known secret values in it redacted (a key is shown, not judged)."""
        if not isinstance(name, str):
            return name
        if self._generation != _generation:
            self._refresh()
        return self._known.sub(name)

    def _mapping(self, value: Mapping[Any, Any], depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        counters: dict[Any, int] = {}  # keys that scrubbed to the same text as an earlier one (see _unique_key)
        for count, (key, item) in enumerate(value.items()):
            if count >= self.max_items:
                result[TRUNCATED] = f"{len(value) - count} more items"
                break
            category = self.key_category(key)
            if category is not None:
                redacted = self.redact_under(category, item)
                # a sensitive key is kept (it names what was removed), but not a secret in it: a key may carry one
                # itself ("password=hunter22"), so it is scrubbed as text (known values and shapes)
                shown = self.scrub_text(key) if isinstance(key, str) else key
                shown = _unique_key(result, shown, counters)
                result[shown] = redacted if redacted is not item else self._value(item, depth + 1)
            else:
                new_key = self._text(key) if isinstance(key, str) else key
                result[_unique_key(result, new_key, counters)] = self._value(item, depth + 1)
        return result

    def _sequence(self, value: list[Any] | tuple[Any, ...], depth: int) -> Any:
        # A (name, value) pair whose name is sensitive, as in ASGI and HTTP header lists.
        if len(value) == 2 and isinstance(value[1], str | bytes) and value[1] and _is_field_name(value[0]):
            category = self.key_category(value[0])
            if category is not None:
                name = value[0]
                if self._known.pattern is not None or self._generation != _generation:
                    name = self._known_only(name)
                pair = (name, marker(category))
                return list(pair) if isinstance(value, list) else pair
        items = [self._value(item, depth + 1) for item in value[: self.max_items]]
        if len(value) > self.max_items:
            items.append(TRUNCATED)
        return items if isinstance(value, list) else tuple(items)


# --- the running policy -----------------------------------------------------------------------------------------------
_active = Scrubber()


def active() -> Scrubber:
    """The scrubber of the running ``init_observability()`` (a default policy before init and after shutdown)."""
    return _active


def install(settings: Settings, dropped: Callable[[str, str], object] | None = None) -> Scrubber:
    """Make the policy described by ``settings`` the active one (with the secret values the settings hold); returns
    it. ``dropped`` is the loss counter (``_export._drops.dropped``): strings cut at SIGNALFIRE_SCRUB_MAX_LENGTH
    are counted as ``scrub``/``truncated``."""
    global _active  # noqa: PLW0603 - the one policy of the process, replaced whole
    _active = Scrubber.from_settings(settings, dropped)
    return _active


def reset(installed: Scrubber | None = None) -> None:
    """Back to the default policy (at shutdown), unless a newer init installed another one than ``installed``."""
    global _active  # noqa: PLW0603
    if installed is None or _active is installed:
        _active = Scrubber()


def scrub(value: Any) -> Any:
    """Return a scrubbed copy of ``value``: secrets and credentials replaced by markers such as ``[REDACTED:jwt]``.

    Works on any nested value (dicts, lists, tuples, sets, dataclasses and pydantic models as dicts, JSON held in
    strings) and never raises. Values under sensitive keys (password, token, api key, authorization, cookie, ...) are
    redacted whole (booleans and numbers there are kept unless they are card numbers); registered secret values
    (:func:`signalfire.register_secret`), JWTs, bearer/basic credentials, vendor keys (AWS, GitHub, Slack, Stripe,
    Google, Vault, Hugging Face, Shopify, ...), PEM private keys, card numbers, IBANs, passwords in URLs, sensitive
    query parameters, emails and phone numbers are redacted wherever they appear. The policy is the one
    ``init_observability()`` configured: SIGNALFIRE_SCRUB_KEYS adds sensitive keys, SIGNALFIRE_SCRUB_ALLOW_KEYS keeps
    keys readable, SIGNALFIRE_SCRUB_EMAILS=false and SIGNALFIRE_SCRUB_PHONES=false keep emails and phone numbers, and
    SIGNALFIRE_SCRUB_MAX_LENGTH bounds the strings it reads.

    Example::

        >>> import signalfire
        >>> signalfire.scrub({"user": "ann", "password": "hunter2", "url": "https://ann:pw@db.internal/x"})
        {'user': 'ann', 'password': '[REDACTED:password]', 'url': 'https://ann:[REDACTED:password]@db.internal/x'}
    """
    return _active.scrub(value)


# --- the adapters' entry points: health responses, the CLI's output, Sentry events ----------------------------------
# Header names whose value is a credential whatever SIGNALFIRE_SCRUB_ALLOW_KEYS says (an application may keep a
# "cookie" field readable in its logs; a request's Cookie header still never reaches Sentry). Compared normalized.
CREDENTIAL_HEADERS: frozenset[str] = frozenset(
    {
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "x-auth-token",
        "x-access-token", "x-csrf-token", "x-xsrf-token", "x-amz-security-token", "x-goog-api-key",
    }
)  # fmt: skip
_CREDENTIAL_HEADER_KEYS = frozenset(_normalize(name) for name in CREDENTIAL_HEADERS)
_MAX_NAME_LENGTH = 200  # longer names are no header or field name a rule knows (key_category ignores them too)


def header_category(name: Any, scrubber: Scrubber | None = None) -> str | None:
    """The category a header's value is redacted as: the policy's for a sensitive key (``cookie``, ``api_key``),
    ``authorization`` for a credential header the policy's allow-list would keep, None for a header that may be
    shown. ``name`` may be bytes. Never raises."""
    policy = scrubber or _active
    try:
        category = policy.key_category(name)
        if category is not None:
            return category
        if isinstance(name, bytes | bytearray):
            name = bytes(name).decode("latin-1")
        if isinstance(name, str) and len(name) <= _MAX_NAME_LENGTH and _normalize(name) in _CREDENTIAL_HEADER_KEYS:
            return "authorization"
        return None
    except Exception:  # fail closed: a name the policy cannot judge is a credential's
        _log.debug("signalfire: judging a header name failed", exc_info=True)
        return "authorization"


def _per_call_secrets(values: Iterable[Any]) -> tuple[str, ...]:
    """Non-empty values, also percent-decoded (a URL's password as urlsplit gives it), longest first so that a longer
    secret is not cut by a shorter one inside it."""
    found: set[str] = set()
    for value in values:
        text = bytes(value).decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else value
        if isinstance(text, str) and text:
            found.add(text)
            decoded = unquote(text)
            if decoded:
                found.add(decoded)
    return tuple(sorted(found, key=len, reverse=True))


def _replace_each(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:  # str.replace: linear in the text for each value
        if secret in text:
            text = text.replace(secret, _SECRET_MARKER)
    return text


def scrub_text(text: Any, extra_secrets: Iterable[Any] = (), scrubber: Scrubber | None = None) -> str:
    """``text`` under the one policy (the running one unless ``scrubber`` is given), with ``extra_secrets`` redacted
    too: values one call knows, such as a health check's configured password or its request's header values. Those
    are redacted wherever they appear, however short (they are this text's own secrets, not a process-wide rule), and
    also percent-decoded. Any value is accepted (bytes decoded, others by ``str()``); never raises."""
    try:
        policy = scrubber or _active
        if isinstance(text, bytes | bytearray | memoryview):
            text = bytes(text[: policy.max_string]).decode("utf-8", "replace")
        elif not isinstance(text, str):
            text = str(text)
        secrets = _per_call_secrets(extra_secrets)
        scrubbed = policy.scrub_text(_replace_each(text, secrets))
        # The policy decodes JSON held in the text and encodes it again: a value escaped there ("\u0041") shows now.
        return _replace_each(scrubbed, secrets) if secrets else scrubbed
    except Exception:
        _log.debug("signalfire: scrubbing a text failed", exc_info=True)
        return UNSCRUBBABLE


def mask_url_userinfo(url: str, replacement: str) -> str | None:
    """``url`` with its whole user-info (a Sentry DSN's key is its user; a user and a password) replaced by
    ``replacement``, the host and the rest kept as written; None when ``url`` is not a URL with user-info. The
    user-info ends at the last ``@`` before the path, so a password holding ``@``, ``#`` or ``?`` is masked whole."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme[:1].isalpha() or not all(char.isalnum() or char in "+.-" for char in scheme):
        return None
    path_at = rest.find("/")
    authority = rest if path_at < 0 else rest[:path_at]
    _userinfo, at, host = authority.rpartition("@")
    if not at or not host or any(char.isspace() for char in authority):
        return None
    return f"{scheme}://{replacement}@{host}{rest[len(authority) :]}"


def mask_config_value(field: Any, value: Any, whole: str, scrubber: Scrubber | None = None) -> Any:
    """A configuration value fit to show (``signalfire config`` and ``doctor``): ``whole`` replaces every value of a
    header mapping (a ``*headers`` field), the user-info of a URL and the value of a field whose name is a sensitive
    key; every other string (and every mapping key) is scrubbed by the policy; None, booleans and numbers are kept.
    Never raises: a value it cannot judge is shown as ``whole``."""
    policy = scrubber or _active
    try:
        return _config_value(str(field), value, whole, policy, 0)
    except Exception:
        _log.debug("signalfire: masking a configuration value failed", exc_info=True)
        return whole


def _config_value(field: str, value: Any, whole: str, policy: Scrubber, depth: int) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= policy.max_depth:
        return whole
    if field.endswith("headers") and isinstance(value, Mapping):
        return {policy.scrub_text(str(name)): whole for name in value}
    if isinstance(value, str):
        masked = mask_url_userinfo(value[: policy.max_string], whole)
        if masked is not None:
            return policy.scrub_text(masked)
        return whole if policy.is_sensitive_key(field) else policy.scrub_text(value)
    if isinstance(value, Mapping):
        return {
            policy.scrub_text(str(key)): _config_value(str(key), item, whole, policy, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, tuple | list):
        return [_config_value(field, item, whole, policy, depth + 1) for item in value]
    return scrub_text(value, scrubber=policy)


# --- spans --------------------------------------------------------------------------------------------------------
def _bounded(scrubber: Scrubber, text: str) -> str:
    """An attribute string cut to the attribute value limit, then scrubbed: the limit bounds the work."""
    if len(text) > scrubber.attribute_limit:
        text = text[: scrubber.attribute_limit]
    return scrubber.scrub_text(text)


def scrub_attribute(scrubber: Scrubber, key: Any, value: Any) -> Any:
    """A span or event attribute's value as it is exported: the marker under a sensitive key (booleans and numbers
    kept unless they are cards), strings (and sequences of strings) cut to the attribute value limit
    (OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT) and then scrubbed, card numbers held as integers redacted, anything else as
    it is."""
    category = scrubber.key_category(key)
    if category is not None:
        if isinstance(value, tuple | list):
            items = tuple(scrubber.redact_under(category, v) for v in value)
            return value if items == tuple(value) else items
        return scrubber.redact_under(category, value) if value not in ("", ()) else value
    if isinstance(value, str):
        return _bounded(scrubber, value)
    if type(value) is int:
        return marker("card") if _is_card_int(value) else value
    if isinstance(value, tuple | list) and value:
        if isinstance(value[0], str):
            items = tuple(_bounded(scrubber, v) if isinstance(v, str) else v for v in value)
        elif type(value[0]) is int:
            items = tuple(marker("card") if type(v) is int and _is_card_int(v) else v for v in value)
        else:
            return value
        return value if items == tuple(value) else items
    return value


def _unique_key(result: dict[Any, Any], shown: Any, counters: dict[Any, int]) -> Any:
    """``shown`` (a scrubbed key) or, when another key of the mapping already scrubbed to the same text
    (``{"password=a": 1, "password=b": 2}``), that text with a counter: no item of the mapping is lost. ``counters``
    holds the last counter given per text, so a hostile mapping of keys that all scrub alike stays linear."""
    if shown not in result:
        return shown
    count = counters.get(shown, 1) + 1
    while f"{shown} ({count})" in result:
        count += 1
    counters[shown] = count
    return f"{shown} ({count})"
