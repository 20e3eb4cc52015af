"""The one scrubber: a single redaction policy for log events, span attributes and Sentry events.

Two rules, applied together:

- **by key**: a value stored under a sensitive key (``password``, ``Authorization``, ``x-api-key``, ``apiKey``, ...)
  is replaced whole. Keys are compared case- and separator-insensitively, word by word, so ``api_key``, ``API-Key``
  and ``apiKey`` are the same key and ``classname`` does not look like ``ssn``;
- **by value shape**, wherever the value sits (also inside longer strings, log messages and JSON held in strings):
  JWTs, bearer and basic credentials, well-known key formats, PEM private keys, Luhn-valid card numbers, passwords in
  URLs, ``key=value`` pairs whose key is sensitive; emails and phone numbers when asked for.

Every redaction is a marker that names what was removed (``[REDACTED:jwt]``) and never keeps any part of the secret.
Scrubbing never raises: a value it cannot handle is replaced by ``[REDACTED:unscrubbable]``. It is bounded in depth,
container size and string length, and a short string without a suspicious character costs a length check and one
character-class scan.
"""

from __future__ import annotations

import binascii
import dataclasses
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote_plus

import orjson

if TYPE_CHECKING:
    from signalfire._settings import Settings

__all__ = [
    "DEFAULT_ALLOW_KEYS",
    "SENSITIVE_KEY_TERMS",
    "Scrubber",
    "active",
    "install",
    "scrub",
    "scrub_attribute",
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
    "credential": "credential",
    "signature": "signature",
    "encryptionkey": "secret",
    "signingkey": "secret",
    "masterkey": "secret",
}
# Short terms that are sensitive only as a whole word of the key ("user_ssn", "cvv", "X-Auth"), never as part of a
# longer word ("classname", "mapping", "author").
SENSITIVE_KEY_WORDS: dict[str, str] = {
    "ssn": "ssn",
    "cvv": "cvv",
    "cvv2": "cvv",
    "cvc": "cvv",
    "pwd": "password",
    "pin": "pin",
    "auth": "authorization",
    "jwt": "jwt",
    "otp": "otp",
    "sid": "session",
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
)
# A key whose last word is one of these names a quantity or a kind, not the secret itself ("token_expires",
# "session_id_length" stays readable; "password" does not).
_SAFE_LAST_WORDS = frozenset({"count", "total", "length", "len", "size", "limit", "ttl", "type", "used", "expires"})

_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _words(key: str) -> list[str]:
    return [w for w in _WORD_SPLIT.split(_CAMEL.sub("_", key).lower()) if w]


def _normalize(key: str) -> str:
    return "".join(_words(key))


# --- value shapes -----------------------------------------------------------------------------------------------------
_B64URL = r"[A-Za-z0-9_\-]"
_KEY_CHARS = r"[A-Za-z0-9_.\-]"
# Known token formats: (marker name, issuer prefixes, pattern of the rest). Every alternative of the combined regex
# starts with a literal, which lets the regex engine skip most positions; word boundaries are checked on each match.
_AWS_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA")
_TOKEN_FORMATS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("jwt", ("eyJ",), rf"{_B64URL}{{5,}}\.{_B64URL}{{2,}}(?:\.{_B64URL}*){{0,3}}"),
    ("aws_access_key", _AWS_PREFIXES, r"[A-Z0-9]{16}(?![A-Z0-9])"),
    ("github_token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"[A-Za-z0-9]{30,255}"),
    ("github_token", ("github_pat_",), r"[A-Za-z0-9_]{22,255}"),
    ("slack_webhook", ("https://hooks.slack.com/",), r"(?:services|workflows|triggers)/[A-Za-z0-9/_\-]+"),
    ("slack_token", ("xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-", "xoxe-"), r"[A-Za-z0-9\-]{10,}"),
    ("stripe_key", ("sk_live_", "sk_test_", "rk_live_", "rk_test_"), r"[A-Za-z0-9]{10,}"),
    ("stripe_key", ("whsec_",), r"[A-Za-z0-9+/=]{20,}"),
    ("google_api_key", ("AIza",), rf"{_B64URL}{{35}}"),
    ("api_key", ("sk-",), rf"(?:proj-|ant-|svcacct-)?{_B64URL}{{20,}}"),
    ("gitlab_token", ("glpat-",), rf"{_B64URL}{{20,}}"),
    ("npm_token", ("npm_",), r"[A-Za-z0-9]{36}"),
    ("pypi_token", ("pypi-",), rf"{_B64URL}{{50,}}"),
    ("sendgrid_key", ("SG.",), rf"{_B64URL}{{16,}}\.{_B64URL}{{16,}}"),
)
_TOKEN_KIND: dict[str, str] = {prefix: name for name, prefixes, _ in _TOKEN_FORMATS for prefix in prefixes}
_TOKEN_PREFIX_LENGTHS = sorted({len(prefix) for prefix in _TOKEN_KIND}, reverse=True)
_PEM = r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY( BLOCK)?-----(?:.*?-----END[A-Z0-9 ]{0,40}PRIVATE KEY( BLOCK)?-----|.*\Z)"
_URL_CREDENTIALS = r"(?P<url_prefix>\b[A-Za-z][A-Za-z0-9+.\-]{0,20}://[^\s:/?#@\[\]]*):(?P<url_password>[^\s/?#]+)@"
_BEARER = r"(?<![A-Za-z0-9])(?P<bearer_word>[Bb]earer|BEARER)(?:\s+|%20|\+)[A-Za-z0-9\-._~+/]{8,}=*"
_BASIC = (
    r"(?<![A-Za-z0-9])(?P<basic_word>[Bb]asic|BASIC)(?:\s+|%20|\+)"
    r"(?P<basic_value>[A-Za-z0-9+/]{6,}={0,2})(?![A-Za-z0-9+/=])"
)
# 13 to 19 digits, optionally grouped by single spaces or dashes, starting 2-6 (Visa, Mastercard, Amex, Discover, JCB,
# Diners, UnionPay); validated with Luhn. Millisecond and nanosecond timestamps start with 1 and never match. The run
# must stand on its own: digits inside a hex identifier (a UUID request id, a trace id) are part of that identifier,
# and about one random 32-hex id in 250 holds a Luhn-valid 13+ digit run (found by tests/integration/test_concurrency).
_CARD = r"(?<![A-Za-z0-9])[2-6](?:[ \-]?\d){12,18}(?![A-Za-z0-9])"
_EMAIL = (
    r"(?<![\w.+\-\]])[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})*\.[A-Za-z]{2,24}(?![\w\-])"
)
_PHONE = (
    r"(?<![\w+\]])(?:\+[1-9]\d{0,2}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}(?:[ .\-]?\d{2,4}){1,4}"
    r"|\(\d{3}\)[ ]?\d{3}[ .\-]\d{4}|\d{3}[.\-]\d{3}[.\-]\d{4})(?![\w])"
)
# key=value / key: value / "key": "value" wherever a sensitive-looking key appears; the key is confirmed with
# is_sensitive_key, so the term list only has to find candidates.
_KV_VALUE = (
    r"(?P<kv_value>\"(?:[^\"\\]|\\.)*\"?|'(?:[^'\\]|\\.)*'?"
    r"|(?:(?:[Bb]earer|BEARER|[Bb]asic|BASIC|[Tt]oken|[Dd]igest)\s+)?[^\s&,;\"'<>\]\[)(}{]+)"
)

# Characters at least one of which every value-shape rule needs (digits for cards and phones, '=' and ':' for
# key=value, '.' for JWTs, '@' for emails and URLs, '_' and '-' for token prefixes); strings without any of them
# are checked only for the few letter-only shapes below.
_SUSPICIOUS = re.compile(r"[0-9=:@/+_.\-]")
_LETTER_ONLY_TRIGGERS = ("earer", "EARER", "asic", "ASIC", "AKIA", "ASIA")
_MIN_SCAN_LENGTH = 8  # the shortest shape we redact ("pin=1234") is this long

# Each rule is a separate regex behind a cheap gate (a substring test), because one alternation of every rule defeats
# the regex engine's prefix scan and costs tens of microseconds per string; gated passes cost well under one.
_PEM_RE = re.compile(_PEM, re.DOTALL)
_URL_RE = re.compile(_URL_CREDENTIALS)
_QUERY_RE = re.compile(r"\?([^\s?#\"'<>]*=[^\s?#\"'<>]*)")
_TOKENS_RE = re.compile(
    "|".join(re.escape(prefix) + rest for _, prefixes, rest in _TOKEN_FORMATS for prefix in prefixes)
)
_LONG_RUN = re.compile(r"[A-Za-z0-9_\-+/=.]{14}")  # every token format has at least this many token characters
_AUTH_RE = re.compile(f"{_BEARER}|{_BASIC}")
_CARD_RE = re.compile(_CARD)
_EMAIL_RE = re.compile(_EMAIL)
_PHONE_RE = re.compile(_PHONE)
_PHONE_DIGITS = (8, 15)  # E.164 allows at most 15 digits; fewer than 8 is an extension or a code, not a number
# A key (optionally quoted) and its separator; the key is judged by key_category, so extra keys need no pattern.
_KV_KEY = re.compile(r"(?<![A-Za-z0-9_.\-\[])([\"']?)(?P<key>[A-Za-z0-9_.\-]{1,60}+)\1\s{0,3}[:=]\s{0,3}")
_KV_VALUE_RE = re.compile(_KV_VALUE)
_FIELD_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  # a header or field name in a (name, value) pair


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

_UNKNOWN: Any = object()
_CLEAN_CACHE_SIZE = 4096
_CLEAN_CACHE_MAX_LENGTH = 256
_MARKER_PREFIX = "[REDACTED:"
TRUNCATED = "[TRUNCATED]"
UNSCRUBBABLE = "[REDACTED:unscrubbable]"


def marker(category: str) -> str:
    """The text that replaces a removed value: ``[REDACTED:<category>]``."""
    return f"{_MARKER_PREFIX}{category}]"


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = ord(char) - 48
        if index % 2 == 1:
            number *= 2
            if number > 9:
                number -= 9
        total += number
    return total % 10 == 0


def _is_card_number(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn_ok(digits)


def _is_basic_credential(value: str) -> bool:
    # "basic" is an English word; only a base64 value that decodes to user:password is a credential.
    try:
        decoded = binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


_PRIVATE_KEY_MARKER = marker("private_key")
_EMAIL_MARKER = marker("email")
_PHONE_MARKER = marker("phone")


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
    return marker("secret")


def _replace_auth(match: re.Match[str]) -> str:
    if match.group("bearer_word") is not None:
        return f"{match.group('bearer_word')} {marker('bearer')}"
    if _is_basic_credential(match.group("basic_value")):
        return f"{match.group('basic_word')} {marker('basic')}"
    return match.group(0)


def _replace_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(char.isdigit() for char in text)
    return _PHONE_MARKER if _PHONE_DIGITS[0] <= digits <= _PHONE_DIGITS[1] else text


def _replace_card(match: re.Match[str]) -> str:
    text = match.group(0)
    start = match.start()
    if start > 0 and match.string[start - 1] in "0123456789.]":
        return text
    return marker("card") if _is_card_number(text.replace(" ", "").replace("-", "")) else text


class Scrubber:
    """Redacts secrets and personal data from any nested value; one instance holds one policy.

    The running instance is configured from Settings by ``init_observability()`` (SIGNALFIRE_SCRUB_KEYS,
    SIGNALFIRE_SCRUB_ALLOW_KEYS, SIGNALFIRE_SCRUB_EMAILS, SIGNALFIRE_SCRUB_PHONES); :func:`active` returns it.

    Example::

        scrubber = Scrubber(extra_keys=["internal_ref"], emails=True)
        scrubber.scrub({"user": "ann@example.com", "internal_ref": "x-1"})
        # {'user': '[REDACTED:email]', 'internal_ref': '[REDACTED:internal_ref]'}
    """

    __slots__ = (
        "_allow",
        "_clean",
        "_extra_terms",
        "_key_cache",
        "_kv_gate",
        "_lock",
        "emails",
        "max_depth",
        "max_items",
        "max_string",
        "phones",
    )

    def __init__(
        self,
        *,
        extra_keys: Iterable[str] = (),
        allow_keys: Iterable[str] = (),
        emails: bool = False,
        phones: bool = False,
        max_depth: int = 16,
        max_items: int = 1_000,
        max_string: int = 65_536,
    ) -> None:
        self.emails = emails
        self.phones = phones
        self.max_depth = max_depth
        self.max_items = max_items
        self.max_string = max_string
        self._extra_terms: dict[str, str] = {}
        for key in extra_keys:
            normalized = _normalize(key)
            if normalized:
                self._extra_terms[normalized] = "_".join(_words(key))
        self._allow = frozenset(_normalize(k) for k in (*DEFAULT_ALLOW_KEYS, *allow_keys)) - set(self._extra_terms)
        self._key_cache: dict[Any, str | None] = {}
        # Strings found clean under this policy; log events repeat their messages and enum-like values.
        self._clean: dict[str, None] = {}
        self._lock = threading.Lock()
        extra_words = {word for name in self._extra_terms.values() for word in name.split("_")}
        self._kv_gate = re.compile("|".join([*_KV_GATE_FRAGMENTS, *map(re.escape, sorted(extra_words))]))

    @classmethod
    def from_settings(cls, settings: Settings) -> Scrubber:
        """The scrubber the settings describe (the ``scrub_*`` fields)."""
        return cls(
            extra_keys=settings.scrub_keys,
            allow_keys=settings.scrub_allow_keys,
            emails=settings.scrub_emails,
            phones=settings.scrub_phones,
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
        if words[-1] in _SAFE_LAST_WORDS and len(words) > 1:
            return None
        for word in words:
            if word in SENSITIVE_KEY_WORDS:
                return SENSITIVE_KEY_WORDS[word]
        for term, category in SENSITIVE_KEY_TERMS.items():
            if term in joined:
                return category
        return None

    def is_sensitive_key(self, key: Any) -> bool:
        """True when a value stored under ``key`` is redacted whole (``Authorization``, ``x-api-key``, ``apiKey``)."""
        return self.key_category(key) is not None

    # --- text -----------------------------------------------------------------------------------------------------
    def scrub_text(self, text: str, *, emails: bool | None = None, phones: bool | None = None) -> str:
        """``text`` with every secret-shaped part replaced by a marker; never raises."""
        try:
            return self._text(
                text, self.emails if emails is None else emails, self.phones if phones is None else phones
            )
        except Exception:  # a scrubber bug must never leak the value nor break the caller
            _log.debug("signalfire: scrubbing a string failed", exc_info=True)
            return UNSCRUBBABLE

    def _text(self, text: str, emails: bool, phones: bool) -> str:
        if len(text) < _MIN_SCAN_LENGTH:
            return text
        if len(text) > self.max_string:
            text = text[: self.max_string] + TRUNCATED
        auth_word = "earer" in text or "EARER" in text or "asic" in text or "ASIC" in text
        if _SUSPICIOUS.search(text) is None and not (auth_word or "AKIA" in text or "ASIA" in text):
            return text
        first = text.lstrip()[:1]
        if first in ("{", "[") and text.rstrip()[-1:] in ("}", "]"):
            embedded = self._json_text(text, emails, phones)
            if embedded is not None:
                return embedded
        if "-----BEGIN" in text:
            text = _PEM_RE.sub(_PRIVATE_KEY_MARKER, text)
        if ("=" in text or ":" in text) and self._kv_gate.search(text.lower()) is not None:
            text = self._key_values(text)
        if "%" in text and "?" in text:
            # percent-encoded query values ("q=Bearer%20..."), as in URLs that clients and servers log
            text = _QUERY_RE.sub(lambda m: "?" + self.scrub_query(m.group(1)), text)
        if "://" in text:
            text = _URL_RE.sub(_replace_url, text)
        if _LONG_RUN.search(text) is not None:
            text = _TOKENS_RE.sub(_replace_token, text)
        if auth_word:
            text = _AUTH_RE.sub(_replace_auth, text)
        text = _CARD_RE.sub(_replace_card, text)
        if emails and "@" in text:
            text = _EMAIL_RE.sub(_EMAIL_MARKER, text)
        if phones:
            text = _PHONE_RE.sub(_replace_phone, text)
        return text

    def _key_values(self, text: str) -> str:
        """Redact the value of every ``key=value`` / ``key: value`` / ``"key": "value"`` whose key is sensitive."""
        pieces: list[str] = []
        done = 0
        for match in _KV_KEY.finditer(text):
            if match.start() < done:
                continue  # inside a value already redacted
            category = self.key_category(match.group("key"))
            if category is None:
                continue
            value = _KV_VALUE_RE.match(text, match.end())
            if value is None:
                continue
            quote_char = value.group(0)[0]
            redacted = marker(category)
            pieces.append(text[done : match.end()])
            pieces.append(f"{quote_char}{redacted}{quote_char}" if quote_char in "'\"" else redacted)
            done = value.end()
        if not pieces:
            return text
        pieces.append(text[done:])
        return "".join(pieces)

    def _json_text(self, text: str, emails: bool, phones: bool) -> str | None:
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(parsed, dict | list):
            return None
        scrubbed = self._value(parsed, 0, emails, phones)
        if scrubbed == parsed:
            return text
        return orjson.dumps(scrubbed).decode()

    def scrub_query(self, query: str) -> str:
        """A URL query string with sensitive parameters' values (by name or by shape, after percent-decoding)
        replaced by markers; other parameters are kept byte for byte. Never raises."""
        if not query:
            return query
        try:
            parts = []
            for item in query.split("&"):
                name, sep, raw = item.partition("=")
                if not sep:
                    parts.append(item)
                    continue
                category = self.key_category(unquote_plus(name))
                if category is not None and raw:
                    parts.append(f"{name}={marker(category)}")
                    continue
                value = unquote_plus(raw)
                scrubbed = self.scrub_text(value)
                parts.append(item if scrubbed == value else f"{name}={quote(scrubbed, safe='[]:')}")
            return "&".join(parts)
        except Exception:
            _log.debug("signalfire: scrubbing a query string failed", exc_info=True)
            return UNSCRUBBABLE

    # --- nested values ----------------------------------------------------------------------------------------------
    def scrub(self, value: Any, *, emails: bool | None = None, phones: bool | None = None) -> Any:
        """A scrubbed copy of ``value``: dicts, lists, tuples, sets, dataclasses and pydantic models (as dicts), JSON
        held in strings, bytes. Never raises; values without anything to redact come back equal (often identical).

        ``emails`` / ``phones`` override this scrubber's setting for one call (Sentry events pass ``True``).
        """
        try:
            return self._value(
                value, 0, self.emails if emails is None else emails, self.phones if phones is None else phones
            )
        except Exception:
            _log.debug("signalfire: scrubbing a value failed", exc_info=True)
            return UNSCRUBBABLE

    def scrub_mapping(
        self, mapping: Mapping[Any, Any], *, emails: bool | None = None, phones: bool | None = None
    ) -> dict[Any, Any]:
        """A scrubbed copy of a flat-or-nested mapping (a log event, span attributes); never raises."""
        result = self.scrub(dict(mapping), emails=emails, phones=phones)
        return result if isinstance(result, dict) else {"value": result}

    def scrub_fields(self, fields: MutableMapping[Any, Any]) -> MutableMapping[Any, Any]:
        """Scrub a mapping of fields (a log event, span attributes) in place and return it; never raises.

        The hot-path form of :meth:`scrub`: only values that change are written back, and strings already seen
        clean (event names, enum-like values) are recognised by one dictionary lookup.
        """
        emails, phones = self.emails, self.phones
        key_cache = self._key_cache
        clean = self._clean
        try:
            for key, value in fields.items():
                category = key_cache.get(key, _UNKNOWN) if type(key) is str else self.key_category(key)
                if category is _UNKNOWN:
                    category = self.key_category(key)
                if category is not None:
                    if value is not None and not (isinstance(value, str | bytes) and not value):
                        fields[key] = marker(category)
                    continue
                kind = type(value)
                if kind is str:
                    if len(value) < _MIN_SCAN_LENGTH or value in clean:
                        continue
                    scrubbed = self._text(value, emails, phones)
                    if scrubbed is not value:
                        fields[key] = scrubbed
                    elif len(value) <= _CLEAN_CACHE_MAX_LENGTH:
                        if len(clean) >= _CLEAN_CACHE_SIZE:
                            clean.clear()
                        clean[value] = None
                elif kind is int:
                    if value >= 10**12 and _is_card_number(str(value)):
                        fields[key] = marker("card")
                elif not (value is None or kind is float or kind is bool):
                    fields[key] = self._value(value, 1, emails, phones)
        except Exception:
            _log.debug("signalfire: scrubbing fields failed", exc_info=True)
            for key in list(fields):
                fields[key] = UNSCRUBBABLE
        return fields

    def _value(self, value: Any, depth: int, emails: bool, phones: bool) -> Any:
        if value is None or isinstance(value, bool | float):
            return value
        if isinstance(value, str):
            return self._text(value, emails, phones)
        if isinstance(value, int):
            if 10**12 <= value < 10**19 and _is_card_number(str(value)):
                return marker("card")
            return value
        if depth >= self.max_depth:
            return marker("too_deep")
        if isinstance(value, Mapping):
            return self._mapping(value, depth, emails, phones)
        if isinstance(value, list | tuple):
            return self._sequence(value, depth, emails, phones)
        if isinstance(value, set | frozenset):
            items = self._sequence(list(value), depth, emails, phones)
            try:
                return type(value)(items)
            except TypeError:
                return items
        if isinstance(value, bytes | bytearray | memoryview):
            raw = bytes(value[: self.max_string])
            text = raw.decode("utf-8", errors="replace")
            scrubbed = self._text(text, emails, phones)
            return value if scrubbed == text and len(value) <= self.max_string else scrubbed
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
            return self._mapping(fields, depth, emails, phones)
        dump: Callable[..., Any] | None = getattr(type(value), "model_dump", None)
        if dump is not None and hasattr(type(value), "model_fields"):
            return self._value(dump(value, mode="python"), depth + 1, emails, phones)
        if isinstance(value, BaseException):
            return self._text(f"{type(value).__name__}: {value}", emails, phones)
        return value

    def _mapping(self, value: Mapping[Any, Any], depth: int, emails: bool, phones: bool) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for count, (key, item) in enumerate(value.items()):
            if count >= self.max_items:
                result[TRUNCATED] = f"{len(value) - count} more items"
                break
            category = self.key_category(key)
            if category is not None and item is not None and not (isinstance(item, str | bytes) and not item):
                result[key] = marker(category)
            else:
                new_key = self._text(key, emails, phones) if isinstance(key, str) else key
                result[new_key] = self._value(item, depth + 1, emails, phones)
        return result

    def _sequence(self, value: list[Any] | tuple[Any, ...], depth: int, emails: bool, phones: bool) -> Any:
        # A (name, value) pair whose name is sensitive, as in ASGI and HTTP header lists.
        if len(value) == 2 and isinstance(value[1], str | bytes) and value[1] and _is_field_name(value[0]):
            category = self.key_category(value[0])
            if category is not None:
                pair = (value[0], marker(category))
                return list(pair) if isinstance(value, list) else pair
        items = [self._value(item, depth + 1, emails, phones) for item in value[: self.max_items]]
        if len(value) > self.max_items:
            items.append(TRUNCATED)
        return items if isinstance(value, list) else tuple(items)


# --- the running policy -----------------------------------------------------------------------------------------------
_active = Scrubber()


def active() -> Scrubber:
    """The scrubber of the running ``init_observability()`` (a default policy before init and after shutdown)."""
    return _active


def install(settings: Settings) -> Scrubber:
    """Make the policy described by ``settings`` the active one; returns it."""
    global _active  # noqa: PLW0603 - the one policy of the process, replaced whole
    _active = Scrubber.from_settings(settings)
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
    redacted whole; JWTs, bearer/basic credentials, AWS/GitHub/Slack/Stripe keys, PEM private keys, Luhn-valid card
    numbers, passwords in URLs and sensitive query parameters are redacted wherever they appear. The policy is the
    one ``init_observability()`` configured: SIGNALFIRE_SCRUB_KEYS adds sensitive keys, SIGNALFIRE_SCRUB_ALLOW_KEYS
    keeps keys readable, SIGNALFIRE_SCRUB_EMAILS and SIGNALFIRE_SCRUB_PHONES redact emails and phone numbers.

    Example::

        >>> import signalfire
        >>> signalfire.scrub({"user": "ann", "password": "hunter2", "url": "https://ann:pw@db.internal/x"})
        {'user': 'ann', 'password': '[REDACTED:password]', 'url': 'https://ann:[REDACTED:password]@db.internal/x'}
    """
    return _active.scrub(value)


# --- spans --------------------------------------------------------------------------------------------------------
def scrub_attribute(scrubber: Scrubber, key: Any, value: Any) -> Any:
    """A span or event attribute's value as it is exported: the marker under a sensitive key, strings (and sequences
    of strings) scrubbed by shape, anything else as it is."""
    category = scrubber.key_category(key)
    if category is not None:
        return marker(category) if value not in (None, "", ()) else value
    if isinstance(value, str):
        return scrubber.scrub_text(value)
    if isinstance(value, tuple | list) and value and isinstance(value[0], str):
        items = tuple(scrubber.scrub_text(v) if isinstance(v, str) else v for v in value)
        return value if items == tuple(value) else items
    return value
