"""httpx under the one URL policy, against a real HTTP server on loopback: client spans and httpx's own log line."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from opentelemetry.trace import SpanKind

import signalfire
from signalfire.testing import Telemetry
from tests.integration.test_httpx import echo_url  # noqa: F401  (the loopback server fixture)

pytestmark = pytest.mark.integration
SECRET = "sk_live_51Hx9Zq2eZvKYlo2C0123456789"


def _client_spans(telemetry: Telemetry) -> list[Any]:
    return [s for s in telemetry.spans if s.kind is SpanKind.CLIENT]


def _url_with_secrets(base: str) -> str:
    host = base.removeprefix("http://")
    return f"http://user:{SECRET}@{host}/v1/charges?api_key={SECRET}&page=2&sig=abc123&code=oauthcode42"


def test_client_span_url_full_follows_the_url_policy(telemetry: Telemetry, echo_url: str) -> None:  # noqa: F811
    """url.full has no userinfo and no secret query values (api_key, sig, code); other parameters are kept."""
    with httpx.Client() as client:
        client.get(_url_with_secrets(echo_url))
    (span,) = _client_spans(telemetry)
    url_full = span.attributes["url.full"]
    assert SECRET not in url_full
    assert "user" not in url_full
    assert "abc123" not in url_full
    assert "oauthcode42" not in url_full
    assert url_full.startswith(f"{echo_url}/v1/charges?api_key=[REDACTED")
    assert "&page=2&" in url_full


async def test_async_client_span_url_full_follows_the_url_policy(telemetry: Telemetry, echo_url: str) -> None:  # noqa: F811
    """The same for httpx.AsyncClient."""
    async with httpx.AsyncClient() as client:
        await client.get(_url_with_secrets(echo_url))
    (span,) = _client_spans(telemetry)
    assert SECRET not in span.attributes["url.full"]
    assert "oauthcode42" not in span.attributes["url.full"]


def test_httpx_log_line_follows_the_url_policy(
    telemetry: Telemetry,
    echo_url: str,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """httpx's INFO line "HTTP Request: GET ..." carries the recorded URL, not the one with the key."""
    with caplog.at_level(logging.INFO, logger="httpx"), httpx.Client() as client:
        client.get(_url_with_secrets(echo_url))
    lines = [record.getMessage() for record in caplog.records if record.name == "httpx"]
    assert len(lines) == 1
    assert lines[0].startswith(f"HTTP Request: GET {echo_url}/v1/charges?api_key=[REDACTED")
    assert SECRET not in lines[0]
    assert SECRET not in "".join(telemetry.log_lines)


@pytest.mark.signalfire_settings(auto_instrument="none")
def test_one_instrumented_client_gets_the_policy_too(telemetry: Telemetry, echo_url: str) -> None:  # noqa: F811
    """instrument_httpx(client) applies the same policy to that client's spans."""
    client = httpx.Client()
    signalfire.instrument_httpx(client)
    with client:
        client.get(_url_with_secrets(echo_url))
    (span,) = _client_spans(telemetry)
    assert SECRET not in span.attributes["url.full"]
