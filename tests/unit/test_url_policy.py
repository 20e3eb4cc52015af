"""The one URL policy (signalfire._web._url): what of a URL the span, the access log, Sentry and httpx record."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st

import signalfire
from signalfire._web import _url
from signalfire.testing import Telemetry

TOKEN = "k3Jd9sQ0vLm2Xz8Rt5Yp"


@pytest.mark.parametrize(
    "name",
    [
        "AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature",  # opentelemetry-util-http 0.66 PARAMS_TO_REDACT
        "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token",  # the conventions' url.query list
        "code", "state", "access_token", "id_token", "refresh_token", "client_secret",  # OAuth 2.0
        "key", "api_key", "apikey", "token", "password",
        "sv", "ss", "srt", "sp", "se", "st", "spr", "sr", "si", "skoid", "sktid", "skt", "ske", "sks", "skv",  # SAS
    ],
)  # fmt: skip
def test_secret_query_parameters_lose_their_value(name: str) -> None:
    """Every name OpenTelemetry redacts, OAuth's code/state, API keys and the Azure SAS set: value replaced."""
    recorded = _url.recorded_query(f"page=2&{name}={TOKEN}&sort=asc")
    assert TOKEN not in recorded
    assert recorded.startswith(f"page=2&{name}=[REDACTED:")
    assert recorded.endswith("&sort=asc")


def test_secret_query_names_are_case_insensitive() -> None:
    """x-amz-signature and X-AMZ-SIGNATURE are the same parameter to the policy."""
    assert TOKEN not in _url.recorded_query(f"x-amz-signature={TOKEN}&X-AMZ-CREDENTIAL={TOKEN}")


def test_secret_shaped_query_values_lose_their_value_whatever_the_name() -> None:
    """A JWT under an innocent name is found by the scrubber's shape rules."""
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    recorded = _url.recorded_query(f"note={jwt}&page=2")
    assert "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c" not in recorded
    assert recorded.endswith("&page=2")


def test_a_bare_query_item_is_judged_by_its_shape() -> None:
    """A query item without "=" (``?sk_live_...``) is scrubbed like a value; a plain flag is kept."""
    recorded = _url.recorded_query("a=1&sk_live_abcdefghijklmnop1234&verbose")
    assert "sk_live_abcdefghijklmnop1234" not in recorded
    assert recorded.startswith("a=1&")
    assert recorded.endswith("&verbose")


def test_ordinary_query_is_kept_byte_for_byte() -> None:
    """Parameters that are not secret keep their exact spelling (encoding, order, empty values)."""
    query = "q=red+shoes&page=2&filter=a%2Cb&flag&empty="
    assert _url.recorded_query(query) == query


@pytest.mark.parametrize(
    ("template_param", "secret"),
    [
        ("token", True), ("reset_token", True), ("inviteCode", True), ("code", True), ("secret", True),
        ("key", True), ("api_key", True), ("signature", True), ("otp", True),
        ("item_id", False), ("user_id", False), ("slug", False), ("status_code", False), ("country_code", False),
        ("key_id", False), ("token_type", False),
    ],
)  # fmt: skip
def test_route_parameters_are_judged_by_name(template_param: str, secret: bool) -> None:
    """{token}, {code}, {secret}, {key}... are secret; ids and codes qualified as plain values are not."""
    assert _url.is_secret_name(template_param) is secret


def test_path_segment_of_a_secret_parameter_is_redacted() -> None:
    """/password-reset/{token}: the matched segment becomes a marker, the rest stays."""
    assert _url.recorded_path(f"/password-reset/{TOKEN}", {"token": TOKEN}) == "/password-reset/[REDACTED:token]"
    assert _url.recorded_path("/items/42", {"item_id": 42}) == "/items/42"


def test_secret_parameter_spelled_differently_takes_its_whole_segment_or_the_path() -> None:
    """A segment that contains the value ("007" for an int 7, "{token}.json") goes whole; a value that is nowhere in
    the path (a converter respelled it) makes the whole path a marker: fail closed."""
    assert _url.recorded_path("/codes/007", {"code": 7}) == "/codes/[REDACTED:code]"
    assert _url.recorded_path(f"/files/{TOKEN}.json", {"token": TOKEN}) == "/files/[REDACTED:token]"
    assert _url.recorded_path("/codes/x", {"code": 7}) == "[REDACTED:path]"
    assert _url.recorded_path(f"/s/{TOKEN}/a/b", {"key": f"{TOKEN}/a"}) == "/s/[REDACTED:key]/b"


def test_full_url_loses_userinfo_fragment_and_secret_query_values() -> None:
    """url.full and httpx's log line: no user:password@, no #fragment, secret parameters redacted."""
    recorded = _url.recorded_url(f"https://svc:{TOKEN}@api.example.com/v1/x?api_key={TOKEN}&page=1#{TOKEN}")
    assert recorded == "https://api.example.com/v1/x?api_key=[REDACTED:api_key]&page=1"
    assert _url.recorded_url("https://api.example.com/v1/x?page=1") == "https://api.example.com/v1/x?page=1"


def test_sentry_request_headers_are_allow_listed() -> None:
    """Custom headers keep their name and lose their value; documented safe headers are sent as they are."""
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "scheme": "https",
        "path": f"/password-reset/{TOKEN}",
        "root_path": "",
        "query_string": f"code={TOKEN}&page=2".encode(),
        "path_params": {"token": TOKEN},
        "headers": [
            (b"host", b"shop.test"),
            (b"user-agent", b"probe/1.0"),
            (b"x-internal-secret", TOKEN.encode()),
            (b"x-service-key", TOKEN.encode()),
            (b"x-request-id", b"req-1"),
        ],
    }
    request = _url.sentry_request(scope)
    assert TOKEN not in repr(request)
    assert request["url"] == "https://shop.test/password-reset/[REDACTED:token]"
    assert request["query_string"] == "code=[REDACTED:token]&page=2"
    assert request["headers"] == {
        "host": "shop.test",
        "user-agent": "probe/1.0",
        "x-internal-secret": "[REDACTED:header]",
        "x-service-key": "[REDACTED:header]",
        "x-request-id": "req-1",
    }


def test_error_type_of_an_exception_is_its_qualified_name() -> None:
    """error.type: json.decoder.JSONDecodeError; built-ins keep their short name (ValueError)."""
    import json

    with pytest.raises(json.JSONDecodeError) as caught:
        json.loads("{")
    assert _url.error_type_of_exception(caught.value) == "json.decoder.JSONDecodeError"
    assert _url.error_type_of_exception(ValueError()) == "ValueError"
    assert _url.error_type_of_status(503) == "503"
    assert _url.error_type_of_status(404) is None


def test_http_method_table() -> None:
    """Known methods as they are (case-insensitively), anything else _OTHER; a custom table replaces the default."""
    assert _url.http_method("GET") == "GET"
    assert _url.http_method("get") == "GET"
    assert _url.http_method("PURGE") == "_OTHER"
    assert _url.http_method("PURGE", frozenset({"PURGE"})) == "PURGE"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=600), st.text(max_size=300))
def test_hostile_urls_never_raise_and_stay_bounded(query: str, path: str) -> None:
    """Any text as a query, a path or a URL: the policy answers a string, never raises, and a query stays bounded."""
    recorded = _url.recorded_query(query)
    assert isinstance(recorded, str)
    assert isinstance(_url.recorded_url(f"http://h/{path}?{query}"), str)
    assert isinstance(_url.recorded_path(path, {"token": query or "x"}), str)


def test_oversized_query_is_cut_before_it_is_judged() -> None:
    """A 100 000-parameter query string is cut to MAX_QUERY characters (plus markers) before the policy runs."""
    recorded = _url.recorded_query("&".join(f"p{i}=v" for i in range(100_000)))
    assert len(recorded) <= _url.MAX_QUERY


def test_a_repeated_query_item_is_judged_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thousand copies of one item are one scrub, and the query is kept (or rebuilt) item for item."""
    seen: list[str] = []

    class Counting(_url._scrub.Scrubber):
        def scrub_text(self, text: str) -> str:
            seen.append(text)
            return super().scrub_text(text)

    counting = Counting()
    monkeypatch.setattr(_url._scrub, "active", lambda: counting)
    query = "&".join(["note=hello+there", f"token={TOKEN}"] * 500)
    recorded = _url.recorded_query(query)
    assert seen == ["hello there"]  # "token" is a secret-like name: its value is replaced without a scan
    cut = query[: _url.MAX_QUERY].split("&")
    assert recorded == "&".join("token=[REDACTED:token]" if item.startswith("token=") else item for item in cut)


def test_query_names_are_judged_again_under_another_policy() -> None:
    """The cache of judged parameter names belongs to one policy: a re-initialisation with SIGNALFIRE_SCRUB_KEYS
    judges a name already seen again."""
    _url._last_query = (None, -1, "", "")
    assert _url.recorded_query("internal_ref=abc") == "internal_ref=abc"
    signalfire.init_observability(scrub_keys="internal_ref", traces_exporter="none")
    try:
        assert _url.recorded_query("internal_ref=abc") == "internal_ref=[REDACTED:internal_ref]"
    finally:
        signalfire.shutdown()
    assert _url.recorded_query("internal_ref=abc") == "internal_ref=abc"


def test_a_name_judged_under_an_older_policy_is_never_read_under_the_new_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request still judging a name under the old policy while init_observability installs a new one (and another
    request starts under it) must not leave its verdict where the new policy's requests read."""
    import threading

    old, new = _url._scrub.Scrubber(), _url._scrub.Scrubber(extra_keys=["internal_ref"])
    active = [old]
    monkeypatch.setattr(_url._scrub, "active", lambda: active[0])
    real = _url._name_category
    judging, resume = threading.Event(), threading.Event()

    def paused(name: str, scrubber: Any) -> str | None:
        category = real(name, scrubber)
        if scrubber is old and name == "internal_ref":
            judging.set()
            resume.wait(10)
        return category

    monkeypatch.setattr(_url, "_name_category", paused)
    _url._last_query = (None, -1, "", "")
    earlier = threading.Thread(target=_url.recorded_query, args=("internal_ref=abc",))
    earlier.start()
    assert judging.wait(10)
    active[0] = new
    _url.recorded_query("y=1")  # a request under the new policy meanwhile
    resume.set()
    earlier.join(10)
    _url._last_query = (None, -1, "", "")
    assert _url.recorded_query("internal_ref=abc") == "internal_ref=[REDACTED:internal_ref]"


def test_the_cache_of_query_names_stays_bounded() -> None:
    """A client sending fresh names on every request does not grow the cache past its bound."""
    for request in range(20):
        _url.recorded_query("&".join(f"n{request}x{i}=1" for i in range(600)))
    held = _url._query_names.under(_url._scrub.active())
    assert len(held) <= _url._JUDGED_NAMES_MAX + 600
    _url.recorded_query("long" * 100 + "=1")
    assert "long" * 100 not in held  # a long name is judged, never held


# --- the policy where signalfire records URLs ---------------------------------------------------------------------
def _reset_app() -> FastAPI:
    app = FastAPI()

    @app.get("/password-reset/{token}")
    async def reset(token: str) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/fail/{token}")
    async def fail(token: str) -> None:
        raise RuntimeError("boom")

    return app


async def _get(app: Any, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        return await client.get(path, **kwargs)


async def test_server_span_and_access_log_record_the_redacted_path(telemetry: Telemetry) -> None:
    """url.path and the access line's path carry the marker for {token}; the span name stays the route template."""
    app = _reset_app()
    signalfire.instrument_fastapi(app)
    await _get(app, f"/password-reset/{TOKEN}?state={TOKEN}&page=2")
    (span,) = [s for s in telemetry.spans if s.name == "GET /password-reset/{token}"]
    assert span.attributes["url.path"] == "/password-reset/[REDACTED:token]"
    assert span.attributes["url.query"] == "state=[REDACTED:token]&page=2"
    (line,) = telemetry.find_logs(route="/password-reset/{token}")
    assert line["path"] == "/password-reset/[REDACTED:token]?state=[REDACTED:token]&page=2"
    # (the test's own httpx client logs the URL it was given: only the server knows the route)
    assert all(TOKEN not in str(value) for s in telemetry.spans for value in s.attributes.values())
    assert TOKEN not in repr(telemetry.find_logs(route="/password-reset/{token}"))


async def test_sentry_request_data_follows_the_policy(telemetry: Telemetry) -> None:
    """An unhandled error's Sentry event: url, query_string and headers under the policy."""
    app = _reset_app()
    signalfire.instrument_fastapi(app)
    headers = {"x-internal-secret": TOKEN, "x-service-key": TOKEN, "user-agent": "probe/1.0"}
    await _get(app, f"/fail/{TOKEN}?code={TOKEN}", headers=headers)
    (event,) = telemetry.sentry_events
    request = event["request"]
    assert request["url"] == "http://shop.test/fail/[REDACTED:token]"
    assert TOKEN not in request["query_string"]
    assert request["headers"]["x-internal-secret"] != TOKEN
    assert request["headers"]["x-service-key"] != TOKEN
    assert request["headers"]["user-agent"] == "probe/1.0"
    assert TOKEN not in repr(event)
