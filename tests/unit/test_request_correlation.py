"""Request correlation in the ASGI middleware: the request id, the 500 that keeps it, and the access log."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

import signalfire
from signalfire._web._access import ACCESS_LOGGER


def make_app() -> FastAPI:
    # FastAPI's own native telemetry would add a second server span; signalfire's middleware is the one under test.
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})
    log = signalfire.get_logger("shop")

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict:
        log.info("loading item", item_id=item_id)
        return {"id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    @app.get("/health/live")
    async def live() -> str:
        return "ok"

    @app.get("/metrics")
    async def metrics() -> str:
        return "# nothing"

    return app


@pytest.fixture
def app(telemetry) -> FastAPI:
    application = make_app()
    signalfire.instrument_fastapi(application)
    return application


async def get(app: FastAPI, path: str, **kwargs) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, **kwargs)


def access_lines(telemetry) -> list[dict]:
    return [line for line in telemetry.logs if line["logger"] == ACCESS_LOGGER]


async def test_incoming_request_id_is_returned_and_on_every_line(app, telemetry):
    """A sane X-Request-ID comes back on the response and is on the app's and the access log's lines."""
    response = await get(app, "/items/7", headers={"X-Request-ID": "0af7651916cd43dd8448eb211c80319c"})
    assert response.headers["x-request-id"] == "0af7651916cd43dd8448eb211c80319c"
    (app_line,) = telemetry.find_logs("loading item")
    (access,) = access_lines(telemetry)
    assert app_line["request_id"] == access["request_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert app_line["trace_id"] == access["trace_id"]
    (server,) = telemetry.find_spans("GET /items/{item_id}")
    assert access["trace_id"] == f"{server.context.trace_id:032x}"


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "tab\tinside"])
async def test_insane_request_id_is_replaced(app, bad):
    """An unprintable or too long X-Request-ID is replaced by a generated one."""
    response = await get(app, "/items/1", headers={"X-Request-ID": bad})
    returned = response.headers["x-request-id"]
    assert returned != bad
    assert len(returned) == 32


async def test_request_id_is_generated_when_absent(app, telemetry):
    """Without X-Request-ID a fresh id is generated, returned and logged."""
    response = await get(app, "/items/1")
    (access,) = access_lines(telemetry)
    assert access["request_id"] == response.headers["x-request-id"]


@pytest.mark.signalfire_settings(request_id_header="X-Correlation-ID")
async def test_request_id_header_is_configurable(app, telemetry):
    """SIGNALFIRE_REQUEST_ID_HEADER names the header read and returned."""
    response = await get(app, "/items/1", headers={"X-Correlation-ID": "corr-1", "X-Request-ID": "other"})
    assert response.headers["x-correlation-id"] == "corr-1"
    assert access_lines(telemetry)[0]["request_id"] == "corr-1"


async def test_unhandled_exception_returns_500_with_request_id(app, telemetry):
    """An exception the app does not handle still answers 500 with the request id, and is logged as an error."""
    response = await get(app, "/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-500"
    (access,) = access_lines(telemetry)
    assert (access["status"], access["level"], access["route"]) == (500, "error", "/boom")


async def test_access_line_has_the_request_fields(app, telemetry):
    """The access line has method, route template, path with a scrubbed query, status and duration."""
    await get(app, "/items/5?page=2&api_key=s3cr3tvalue&q=Bearer%20abcdefgh12345")
    (access,) = access_lines(telemetry)
    assert access["event"] == "GET /items/{item_id} 200"
    assert (access["method"], access["route"], access["status"]) == ("GET", "/items/{item_id}", 200)
    assert access["path"] == "/items/5?page=2&api_key=[REDACTED:api_key]&q=Bearer%20[REDACTED:bearer]"
    assert isinstance(access["duration_ms"], float)
    assert access["duration_ms"] >= 0
    telemetry.assert_no_secrets(["s3cr3tvalue", "abcdefgh12345"])


async def test_health_and_metrics_have_no_access_line(app, telemetry):
    """/health* and /metrics are excluded from the access log by default."""
    await get(app, "/health/live")
    await get(app, "/metrics")
    assert access_lines(telemetry) == []


@pytest.mark.signalfire_settings(access_log_sample_rate=0.0)
async def test_sampling_keeps_errors(app, telemetry):
    """With a sample rate of 0, successful requests are not logged but 5xx responses are."""
    await get(app, "/items/1")
    await get(app, "/boom")
    assert [line["status"] for line in access_lines(telemetry)] == [500]


@pytest.mark.signalfire_settings(access_log_sample_rate=0.0, access_log_slow_ms=0.0)
async def test_sampling_keeps_slow_requests(app, telemetry):
    """Requests slower than SIGNALFIRE_ACCESS_LOG_SLOW_MS are logged (as warnings) whatever the sample rate."""
    await get(app, "/items/1")
    (access,) = access_lines(telemetry)
    assert access["level"] == "warning"


@pytest.mark.signalfire_settings(access_log=False)
async def test_access_log_can_be_turned_off(app, telemetry):
    """SIGNALFIRE_ACCESS_LOG=false writes no access line; the request id still works."""
    response = await get(app, "/items/1")
    assert response.headers["x-request-id"]
    assert access_lines(telemetry) == []


@pytest.mark.signalfire_settings(traces_sampler="parentbased_traceidratio", traces_sampler_arg=0.0)
async def test_an_unsampled_request_still_has_metrics_access_line_and_request_id(app, telemetry):
    """A request the sampler drops records no span but keeps its RED metrics, access line, request id and trace ids."""
    response = await get(app, "/items/3", headers={"X-Request-ID": "unsampled-1"})
    assert response.headers["x-request-id"] == "unsampled-1"
    assert telemetry.spans == []
    (access,) = access_lines(telemetry)
    assert (access["route"], access["status"], access["request_id"]) == ("/items/{item_id}", 200, "unsampled-1")
    assert len(access["trace_id"]) == 32
    assert int(access["trace_flags"], 16) & 1 == 0  # not sampled
    labels = {"http.request.method": "GET", "http.route": "/items/{item_id}", "http.response.status_code": 200}
    point = telemetry.metric_point(
        "http.server.request.duration", **labels, **{"url.scheme": "http", "network.protocol.version": "1.1"}
    )
    assert point.count == 1


async def test_span_processors_see_the_request_attributes_when_the_server_span_starts(app, telemetry):
    """The HTTP semantic conventions give the server span its request attributes at creation: a span processor's
    on_start (and any sampler) sees them."""
    from opentelemetry.sdk.trace import SpanProcessor

    seen: list[dict] = []

    class AtStart(SpanProcessor):
        def on_start(self, span, parent_context=None):
            seen.append(dict(span.attributes or {}))

    telemetry.obs.tracer_provider.add_span_processor(AtStart())
    await get(app, "/items/5?x=1")
    (attributes,) = seen
    assert (attributes["http.request.method"], attributes["url.path"], attributes["url.query"]) == (
        "GET",
        "/items/5",
        "x=1",
    )
    assert attributes["server.address"] == "test"


@pytest.mark.parametrize(
    ("sent", "logged"),
    [
        ("password=hunter22", "password=[REDACTED:password]"),
        ("AKIAIOSFODNN7EXAMPLE", "[REDACTED:aws_access_key]"),
        ("0af7651916cd43dd8448eb211c80319c", "0af7651916cd43dd8448eb211c80319c"),
    ],
)
async def test_a_client_sent_request_id_is_scrubbed_on_the_lines_and_echoed_as_sent(app, telemetry, sent, logged):
    """X-Request-ID is whatever the client sent: the response echoes it, the log lines carry it scrubbed like any
    other value the request brought (the span's request.id is scrubbed at the wire)."""
    response = await get(app, "/items/7", headers={"X-Request-ID": sent})
    assert response.headers["x-request-id"] == sent
    (app_line,) = telemetry.find_logs("loading item")
    (access,) = access_lines(telemetry)
    assert app_line["request_id"] == access["request_id"] == logged
    assert signalfire.scrub(sent) == logged  # the lines say what the policy says of the value itself


async def test_a_generated_request_id_is_on_the_lines_as_returned(app, telemetry):
    response = await get(app, "/items/7")
    (access,) = access_lines(telemetry)
    assert access["request_id"] == response.headers["x-request-id"]
    assert len(access["request_id"]) == 32
