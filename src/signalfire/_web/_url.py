"""The one URL policy, and the HTTP tables the request path shares.

One set of functions decides what of a URL signalfire records, wherever it records it: the server span (``url.path``,
``url.query``), the access log (``path``), Sentry's request data (``url``, ``query_string``, ``headers``), the httpx
client spans (``url.full``) and httpx's own ``HTTP Request: ...`` log line.

- **userinfo** (``user:password@``) is always removed;
- a **path segment** matched by a route parameter whose name is secret-like (``{token}``, ``{code}``, ``{secret}``,
  ``{key}``, ``{signature}``, ...) is replaced by a marker; other segments are kept as sent;
- a **query value** is kept only when its parameter's name is not secret-like (everything OpenTelemetry's own
  ``redact_url`` strips, the names signalfire's scrubber treats as sensitive, OAuth ``code``/``state``, ``key``,
  ``api_key``, ``sig`` and the Azure shared-access-signature set) and its value does not look like a secret to the
  scrubber (``signalfire.scrub``'s shape rules);
- **request headers** sent to Sentry are allow-listed (:data:`SAFE_HEADERS`): any other header keeps its name and
  loses its value, so ``X-Internal-Secret`` or ``X-Service-Key`` never go out, whatever they are called.

A leaf module: it imports only the standard library and the scrubber, never the runtime.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from signalfire._scrub import _policy as _scrub
from signalfire._scrub._policy import unquote_plus

__all__ = [
    "HTTP_METHODS",
    "SAFE_HEADERS",
    "SCHEMA_URL",
    "SECRET_QUERY_NAMES",
    "error_type_of_exception",
    "error_type_of_status",
    "http_method",
    "is_secret_name",
    "recorded_path",
    "recorded_query",
    "recorded_url",
    "route_template",
    "sentry_request",
]

# The semantic-conventions schema of what the request path records (the stable HTTP conventions), on the
# instrumentation scope of the server span's tracer and of the registry's meter (signalfire._metrics._otel).
SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"
# The methods the HTTP semantic conventions know (RFC 9110, RFC 5789 PATCH, QUERY); any other is "_OTHER".
# OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS replaces this set (Settings.http_known_methods).
HTTP_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"})

# Query parameters whose value is never recorded, compared case-insensitively. OpenTelemetry's redact_url
# (opentelemetry-util-http 0.66: AWSAccessKeyId, Signature, sig, X-Goog-Signature) and the semantic conventions' list
# (X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token), OAuth 2.0 (code, state, tokens, client secret),
# API keys, and the Azure shared-access-signature parameters (sv, ss, srt, sp, se, st, spr, sig, sr, si, sdd, and the
# user-delegation skoid, sktid, skt, ske, sks, skv, saoid, suoid, scid).
SECRET_QUERY_NAMES = frozenset(
    name.lower()
    for name in (
        "AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature", "X-Goog-Credential",
        "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token",
        "code", "state", "access_token", "id_token", "refresh_token", "token", "client_secret", "client_assertion",
        "code_verifier", "password", "passwd", "pwd", "secret", "key", "api_key", "apikey", "api-key", "auth",
        "signature", "session", "session_id", "sessionid", "jwt", "otp", "nonce", "hmac", "hash",
        "sv", "ss", "srt", "sp", "se", "st", "spr", "sr", "si", "sdd", "ses",
        "skoid", "sktid", "skt", "ske", "sks", "skv", "saoid", "suoid", "scid",
    )
)  # fmt: skip
# Words that make a route parameter secret-like ({token}, {reset_token}, {inviteCode}, {api_key}, {sig}, ...).
_SECRET_PARAM_WORDS = frozenset(
    {
        "token", "code", "secret", "key", "password", "passwd", "pwd", "signature", "sig", "otp", "nonce", "hash",
        "hmac", "credential", "credentials", "auth", "session", "jwt", "apikey", "sas", "magic", "ticket",
    }
)  # fmt: skip
# A first word that makes "code"/"key" a plain value ({status_code}, {country_code}, {sort_key}), and last words that
# name metadata about a secret ({key_id}, {token_type}); the scrubber's key rules follow the same idea.
_PLAIN_QUALIFIERS = frozenset(
    {
        "status", "country", "zip", "postal", "post", "currency", "language", "lang", "locale", "region", "area",
        "product", "error", "http", "response", "iso", "airport", "color", "colour", "sort", "partition", "primary",
        "foreign", "hot", "short", "shortcut", "keyboard", "music", "unit", "tax", "discount", "coupon",
    }
)  # fmt: skip
_METADATA_WORDS = frozenset({"id", "ids", "type", "kind", "name", "count", "length", "size", "at", "version"})
# Request headers whose value goes to Sentry; every other header is sent with its value replaced by a marker.
SAFE_HEADERS = frozenset(
    {
        "accept", "accept-encoding", "accept-language", "cache-control", "connection", "content-encoding",
        "content-length", "content-type", "host", "origin", "pragma", "referer", "traceparent", "tracestate",
        "user-agent", "via", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port", "x-request-id",
        "x-correlation-id", "x-amzn-trace-id", "x-cloud-trace-context", "sec-fetch-dest", "sec-fetch-mode",
        "sec-fetch-site", "sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform", "upgrade",
    }
)  # fmt: skip
_HEADER_MARKER = _scrub.marker("header")
_PATH_MARKER = _scrub.marker("path")
# Query strings longer than this are cut before they are judged (the default attribute value limit): the work per
# request stays bounded whatever a client sends.
MAX_QUERY = 4096
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_UNJUDGED: Any = object()


class _JudgedNames:
    """Names and what the policy in force made of them, held for one scrubber: replaced whole (never cleared in
    place) when another scrubber is active or more than :data:`_JUDGED_NAMES_MAX` are held, so a call still running
    under an older policy fills the dict it started with, which nobody reads any more."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: tuple[object, dict[str, Any]] = (None, {})

    def under(self, scrubber: _scrub.Scrubber) -> dict[str, Any]:
        policy, names = self._held
        if policy is not scrubber or len(names) > _JUDGED_NAMES_MAX:
            names = {}
            self._held = (scrubber, names)
        return names


# A client can send a thousand distinct names; names longer than this are judged every time and never held (the
# policy reads no key longer than 200 characters).
_JUDGED_NAMES_MAX = 4096
_JUDGED_NAME_HELD_MAX = 200
# Route parameter names (from route definitions: bounded) and whether they are secret-like.
_route_params = _JudgedNames()
# Query parameter names (as sent, before percent-decoding) and their category.
_query_names = _JudgedNames()
# The last query recorded: (scrubber, secret registry generation, query, what was recorded).
_last_query: tuple[object, int, str, str] = (None, -1, "", "")


def http_method(raw: str, known: frozenset[str] = HTTP_METHODS) -> str:
    """The method as the semantic conventions record it: ``raw`` if known (case-insensitively), else ``_OTHER``."""
    if raw in known:
        return raw
    upper = raw.upper()
    return upper if upper in known else "_OTHER"


def error_type_of_status(status_code: int) -> str | None:
    """``error.type`` of a server response without an exception: the status code for 5xx, else None (4xx are the
    client's errors on a server span, HTTP semantic conventions, "Status")."""
    return str(status_code) if status_code >= 500 else None


def error_type_of_exception(exc: BaseException) -> str:
    """``error.type`` of an exception: its fully qualified class name (``json.decoder.JSONDecodeError``), the short
    name for built-in exceptions (``ValueError``), as the semantic conventions' ``error.type`` asks ("the canonical
    class name identifying the type within the artifact") and as FastAPI's own telemetry records it."""
    cls = type(exc)
    module = getattr(cls, "__module__", None)
    return cls.__qualname__ if module in (None, "builtins") else f"{module}.{cls.__qualname__}"


def is_secret_name(name: str) -> bool:
    """True when a route parameter called ``name`` holds a secret (``token``, ``reset_code``, ``apiKey``...)."""
    scrubber = _scrub.active()
    judged = _route_params.under(scrubber)
    try:
        return bool(judged[name])
    except KeyError:
        pass
    words = [word for word in _WORD_SPLIT.split(_CAMEL.sub("_", name).lower()) if word]
    if len(words) > 1 and (words[0] in _PLAIN_QUALIFIERS or words[-1] in _METADATA_WORDS):
        secret = False  # {status_code}, {country_code}, {key_id}, {token_type}: about a code or key, not one
    else:
        secret = any(word in _SECRET_PARAM_WORDS for word in words) or name.lower() in SECRET_QUERY_NAMES
    if not secret and words[-1:] != ["id"]:
        try:
            secret = scrubber.is_sensitive_key(name)
        except Exception:  # the scrubber never raises; if it did, fail closed
            secret = True
    if len(name) <= _JUDGED_NAME_HELD_MAX:
        judged[name] = secret
    return secret


def recorded_path(path: str, path_params: Mapping[str, Any] | None) -> str:
    """``path`` with every segment matched by a secret-like route parameter replaced by ``[REDACTED:<name>]``.

    ``path_params`` is what the router matched (``scope["path_params"]``). A secret value that cannot be located in
    the path (a converter changed its spelling) makes the whole path a marker: fail closed.
    """
    if not path_params:
        return path
    for name, value in path_params.items():
        if not isinstance(name, str) or not is_secret_name(name):
            continue
        text = str(value)
        if not text:
            continue
        replacement = _scrub.marker(name[:64])
        found = False
        for spelling in dict.fromkeys((text, quote(text, safe="/:@!$&'()*+,;="))):
            if "/" in spelling.strip("/"):  # a {name:path} parameter spans segments
                if spelling in path:
                    path, found = path.replace(spelling, replacement), True
                continue
            segments = path.split("/")
            for index, segment in enumerate(segments):
                if spelling in segment:  # the segment itself, or one like "{token}.json": the whole segment goes
                    segments[index], found = replacement, True
            path = "/".join(segments)
            if found:
                break
        if not found:
            return _PATH_MARKER
    return path


def _name_category(name: str, scrubber: _scrub.Scrubber) -> str | None:
    category = scrubber.key_category(name)
    if category is None and name.lower() in SECRET_QUERY_NAMES:
        return "token"
    return category


def recorded_query(query: str) -> str:
    """A query string with the value of every secret-like parameter (by name, or by shape after percent-decoding)
    replaced by a marker; other parameters are kept byte for byte. Cut at :data:`MAX_QUERY` characters first."""
    if not query:
        return query
    if len(query) > MAX_QUERY:
        query = query[:MAX_QUERY]
    global _last_query  # noqa: PLW0603 - one entry, replaced whole
    try:
        scrubber = _scrub.active()
        generation = _scrub.registry_generation()
        last = _last_query
        # The middleware and the access line record the same query of the same request: the second costs a compare.
        if last[0] is scrubber and last[1] == generation and last[2] == query:
            return last[3]
        names = _query_names.under(scrubber)
        items = query.split("&")
        # Each distinct item is judged once (a hostile query of a thousand "x=1" is two items to judge, not a
        # thousand), each distinct name once per policy; the query is rebuilt only when an item changed.
        changed: dict[str, str] = {}
        for item in set(items) if len(items) > 1 else items:
            recorded = _recorded_item(item, scrubber, names)
            if recorded != item:
                changed[item] = recorded
        recorded = "&".join(map(changed.get, items, items)) if changed else query
        _last_query = (scrubber, generation, query, recorded)
        return recorded
    except Exception:  # the policy must not break the request; record nothing rather than the raw query
        return _scrub.marker("query")


def _recorded_item(item: str, scrubber: _scrub.Scrubber, categories: dict[str, str | None]) -> str:
    """One query item as :func:`recorded_query` records it; ``categories`` holds the names judged so far under
    ``scrubber``'s policy."""
    name, sep, raw = item.partition("=")
    if not sep:  # a bare item ("?sk_live_..."): judged by its shape alone
        if len(item) < _scrub.MIN_SECRET_LENGTH:
            return item  # decoding never lengthens a value, and shorter ones are never changed
        value = unquote_plus(item)
        scrubbed = scrubber.scrub_text(value)
        return item if scrubbed == value else quote(scrubbed, safe="[]:")
    category = categories.get(name, _UNJUDGED)
    if category is _UNJUDGED:
        category = _name_category(unquote_plus(name), scrubber)
        if len(name) <= _JUDGED_NAME_HELD_MAX:
            categories[name] = category
    if category is not None:
        return f"{name}={_scrub.marker(category)}" if raw else item
    if len(raw) < _scrub.MIN_SECRET_LENGTH:
        return item
    value = unquote_plus(raw)
    scrubbed = scrubber.scrub_text(value)
    return item if scrubbed == value else f"{name}={quote(scrubbed, safe='[]:')}"


def recorded_url(url: str) -> str:
    """A full URL as signalfire records it (httpx client spans, httpx's log line): no userinfo, no fragment, the
    query through :func:`recorded_query`. A URL that does not parse becomes a marker."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2] if "@" in parts.netloc else parts.netloc
        query = recorded_query(parts.query) if parts.query else ""
        if netloc == parts.netloc and query == parts.query and not parts.fragment:
            return url
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except Exception:
        return _scrub.marker("url")


def _decoded_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1") if name in SAFE_HEADERS else _HEADER_MARKER
        headers[name] = f"{headers[name]}, {value}" if name in headers and value != _HEADER_MARKER else value
    return headers


def sentry_request(scope: Mapping[str, Any]) -> dict[str, Any]:
    """Sentry's ``request`` interface for an ASGI request, under this policy: method, URL without userinfo or query
    and with secret path segments redacted, the recorded query string, and the allow-listed headers (others keep their
    name, their value becomes ``[REDACTED:header]``). No body: reading it would mean buffering every request."""
    headers = _decoded_headers(scope.get("headers") or ())
    host = headers.get("host")
    if not host:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else "localhost"
    host = host.rpartition("@")[2]
    path = recorded_path(f"{scope.get('root_path', '')}{scope.get('path', '')}", scope.get("path_params"))
    info: dict[str, Any] = {
        "method": scope.get("method"),
        "url": f"{scope.get('scheme', 'http')}://{host}{path}",
        "headers": headers,
    }
    query: bytes = scope.get("query_string") or b""
    if query:
        info["query_string"] = recorded_query(query.decode("latin-1"))
    return info


def route_template(scope: Mapping[str, Any]) -> str | None:
    """The matched route's template, with the prefixes of the mounts it sits under (``/api/items/{item_id}``).

    FastAPI (>= 0.140) keeps routes of included routers relative to their router and records the full template in its
    effective route context; Starlette and older FastAPI store the route itself in ``scope["route"]``. A route that is
    a Mount (a sub-application without a router, such as StaticFiles) is labelled by its prefix and ``/{path}``.
    """
    path: str | None = None
    fastapi_scope = scope.get("fastapi")
    if fastapi_scope is not None:
        context = fastapi_scope.get("effective_route_context")
        if context is not None:
            path = getattr(context.starlette_route, "path_format", None) or getattr(context, "path_format", None)
    route = scope.get("route")
    if path is None:
        if route is None:
            return None
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
        if path is None:
            return None
    mount_prefix = scope.get("root_path", "")[len(scope.get("app_root_path", "")) :]
    if type(route).__name__ == "Mount" and path is not None and mount_prefix.endswith(path.rstrip("/")):
        # The Mount's own path is already part of root_path.
        return f"{mount_prefix}/{{path}}"
    return f"{mount_prefix}{path}" if mount_prefix else path
