"""The contrib instrumentation variables and hooks on signalfire's server span: header capture and sanitising, known
methods, excluded URLs, OTEL_SEMCONV_STABILITY_OPT_IN, the request and response hooks."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from opentelemetry.trace import SpanKind

import signalfire
from signalfire.testing import Telemetry


def record_request(span: Any, scope: dict[str, Any]) -> None:
    """A request hook named by SIGNALFIRE_SERVER_REQUEST_HOOK in a test below."""
    span.set_attribute("app.tenant", scope["path"].split("/")[1])


def _app() -> FastAPI:
    app = FastAPI()

    @app.api_route("/items/{item_id}", methods=["GET", "POST", "PURGE"])
    async def item(item_id: int) -> JSONResponse:
        return JSONResponse({"item_id": item_id}, headers={"x-cache": "hit", "set-cookie": "session=abc"})

    return app


async def _request(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        return await client.request(method, path, **kwargs)


def _server_span(telemetry: Telemetry) -> Any:
    (span,) = [s for s in telemetry.spans if s.kind is SpanKind.SERVER]
    return span


@pytest.mark.signalfire_settings(
    http_capture_headers_server_request="X-Tenant-.*,user-agent",
    http_capture_headers_server_response="x-cache,Set-Cookie",
    http_capture_headers_sanitize_fields="cookie,region",
)
async def test_header_capture_follows_contrib(telemetry: Telemetry) -> None:
    """Names matched whole and case-insensitively, attributes http.request.header.<name> as lists (repeats kept),
    sanitised names recorded as [REDACTED]."""
    app = _app()
    signalfire.instrument_fastapi(app)
    headers = [("X-Tenant-Id", "acme"), ("x-tenant-id", "beta"), ("x-tenant-region", "eu"), ("x-other", "no")]
    await _request(app, "GET", "/items/1", headers=headers)
    attributes = _server_span(telemetry).attributes
    assert attributes["http.request.header.x_tenant_id"] == ("acme", "beta")
    assert attributes["http.request.header.x_tenant_region"] == ("[REDACTED]",)
    assert attributes["http.request.header.user_agent"][0].startswith("python-httpx/")
    assert "http.request.header.x_other" not in attributes
    assert attributes["http.response.header.x_cache"] == ("hit",)
    # sanitised by the variable, and the wire scrubber would redact a cookie whatever the variables say
    assert "session=abc" not in str(attributes["http.response.header.set_cookie"])


async def test_no_header_is_captured_by_default(telemetry: Telemetry) -> None:
    """Without the variables no http.request.header.* or http.response.header.* attribute is recorded."""
    app = _app()
    signalfire.instrument_fastapi(app)
    await _request(app, "GET", "/items/1", headers={"x-tenant-id": "acme"})
    assert not [k for k in _server_span(telemetry).attributes if ".header." in k]


@pytest.mark.signalfire_settings(http_known_methods="GET,PURGE")
async def test_known_methods_replace_the_default_set(telemetry: Telemetry) -> None:
    """OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS=GET,PURGE: PURGE is a method, POST becomes _OTHER."""
    app = _app()
    signalfire.instrument_fastapi(app)
    await _request(app, "PURGE", "/items/1")
    await _request(app, "POST", "/items/2")
    purge, post = sorted(
        (s for s in telemetry.spans if s.kind is SpanKind.SERVER), key=lambda s: s.attributes["url.path"]
    )
    assert purge.name == "PURGE /items/{item_id}"
    assert purge.attributes["http.request.method"] == "PURGE"
    assert post.name == "HTTP /items/{item_id}"
    assert post.attributes["http.request.method"] == "_OTHER"
    assert post.attributes["http.request.method_original"] == "POST"


@pytest.mark.signalfire_settings(excluded_urls=r"shop\.test/items/1$", excluded_paths="none")
async def test_excluded_urls_are_searched_in_the_full_url(telemetry: Telemetry) -> None:
    """OTEL_PYTHON_FASTAPI_EXCLUDED_URLS is searched in scheme://host/path, as opentelemetry-util-http's ExcludeList."""
    app = _app()
    signalfire.instrument_fastapi(app)
    await _request(app, "GET", "/items/1")
    await _request(app, "GET", "/items/12")
    assert [s.attributes["url.path"] for s in telemetry.spans if s.kind is SpanKind.SERVER] == ["/items/12"]


@pytest.mark.parametrize("value", ["http", "http/dup", "http,database"])
def test_semconv_stability_opt_in_is_accepted(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SEMCONV_STABILITY_OPT_IN=http, http/dup and lists are accepted (signalfire emits the stable names)."""
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", value)
    assert "http" in ",".join(signalfire.Settings.resolve().semconv_stability_opt_in)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", "x-(unclosed"),
        ("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", "GET,NOT A METHOD"),
        ("SIGNALFIRE_SERVER_REQUEST_HOOK", "no_such_module_xyz:hook"),
    ],
)
def test_bad_values_are_rejected_naming_the_variable(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad regex, method or hook path fails at init with the variable's name."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(signalfire.ConfigurationError, match=variable):
        signalfire.Settings.resolve()


SEEN: list[Any] = []


def on_request(span: Any, scope: dict[str, Any]) -> None:
    span.set_attribute("app.path_seen", scope["path"])


def on_response(span: Any, scope: dict[str, Any], message: dict[str, Any]) -> None:
    span.set_attribute("app.status_seen", message["status"])
    SEEN.append(message["type"])


def broken(*_args: Any) -> None:
    raise RuntimeError("hook bug")


@pytest.mark.signalfire_settings(server_request_hook=on_request, server_response_hook=on_response)
async def test_request_and_response_hooks_see_the_span(telemetry: Telemetry) -> None:
    """server_request_hook(span, scope) at the start, server_response_hook(span, scope, message) at the response."""
    SEEN.clear()
    app = _app()
    signalfire.instrument_fastapi(app)
    await _request(app, "GET", "/items/3")
    attributes = _server_span(telemetry).attributes
    assert attributes["app.path_seen"] == "/items/3"
    assert attributes["app.status_seen"] == 200
    assert SEEN == ["http.response.start"]


@pytest.mark.signalfire_settings(server_request_hook=broken, server_response_hook=broken)
async def test_a_raising_hook_is_logged_once_and_counted(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    """A hook that raises never breaks the request: one warning per hook, and every failure counted as dropped."""
    app = _app()
    signalfire.instrument_fastapi(app)
    with caplog.at_level(logging.WARNING, logger="signalfire"):
        responses = [await _request(app, "GET", f"/items/{i}") for i in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "server_request_hook raised" in m]) == 1
    assert len([m for m in messages if "server_response_hook raised" in m]) == 1
    assert telemetry.metric_value("signalfire_telemetry_dropped_total", signal="traces", reason="hook_failed") == 6


def test_hook_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGNALFIRE_SERVER_REQUEST_HOOK=package.module:function names the hook."""
    monkeypatch.setenv("SIGNALFIRE_SERVER_REQUEST_HOOK", "tests.unit.test_http_contrib_settings:record_request")
    assert signalfire.Settings.resolve().server_request_hook is record_request
