"""HTTP RED metrics recorded by the ASGI middleware, and the /metrics endpoint on the instrumented app."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

import signalfire

DURATION = "http_server_request_duration_seconds"


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise ValueError("boom")

    @app.get("/healthz")
    async def health() -> str:
        return "ok"

    @app.get("/teapot")
    async def teapot() -> None:
        from fastapi import HTTPException

        raise HTTPException(status_code=503)

    return app


async def scrape(client: httpx.AsyncClient, path: str = "/metrics") -> dict[str, list]:
    response = await client.get(path)
    assert response.status_code == 200
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


@pytest.fixture
async def client():
    app = make_app()
    signalfire.init_observability(app, traces_exporter="none", handle_sigterm=False, excluded_paths="/healthz")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_requests_are_labelled_by_route_template(client):
    """Ten item ids make one series labelled /items/{item_id}."""
    for i in range(10):
        await client.get(f"/items/{i}")
    counts = [s for s in (await scrape(client))[DURATION + "_count"] if s.labels["http_route"] == "/items/{item_id}"]
    assert [(s.labels["http_response_status_code"], s.value) for s in counts] == [("200", 10.0)]


async def test_unmatched_paths_share_one_series_without_a_route(client):
    """Paths that match no route share one series, which has no http.route (HTTP metrics semconv: http.route is
    conditionally required "if and only if it's available"; Prometheus reads an empty label as an absent one)."""
    for path in ("/nope", "/wp-admin.php", "/.env"):
        await client.get(path)
    counts = [s for s in (await scrape(client))[DURATION + "_count"] if s.labels["http_response_status_code"] == "404"]
    assert [(s.labels.get("http_route", ""), s.value) for s in counts] == [("", 3.0)]


async def test_exceptions_carry_error_type(client):
    """An unhandled exception is a 500 with error.type set to its class."""
    await client.get("/boom")
    [sample] = [s for s in (await scrape(client))[DURATION + "_count"] if s.labels["http_route"] == "/boom"]
    assert sample.labels["error_type"] == "ValueError"
    assert sample.labels["http_response_status_code"] == "500"


async def test_server_error_status_carries_error_type(client):
    """A 5xx response without an exception reaching the middleware has error.type = the status code."""
    await client.get("/teapot")
    [sample] = [s for s in (await scrape(client))[DURATION + "_count"] if s.labels["http_route"] == "/teapot"]
    assert sample.labels["error_type"] == "503"


async def test_excluded_paths_and_the_exposition_are_not_recorded(client):
    """SIGNALFIRE_EXCLUDED_PATHS and /metrics itself never appear in the HTTP metrics."""
    await client.get("/healthz")
    await scrape(client)
    routes = {s.labels["http_route"] for s in (await scrape(client)).get(DURATION + "_count", [])}
    assert "/healthz" not in routes
    assert "/metrics" not in routes


async def test_in_flight_requests_return_to_zero(client):
    """http.server.active_requests goes back to 0 when requests finish, errors included."""
    await client.get("/items/1")
    await client.get("/boom")
    [active] = (await scrape(client))["http_server_active_requests"]
    assert active.value == 0


async def test_unknown_methods_are_bucketed(client):
    """A made-up HTTP method is recorded as _OTHER, as the semantic conventions say."""
    await client.request("BREW", "/items/1")
    methods = {s.labels["http_request_method"] for s in (await scrape(client))[DURATION + "_count"]}
    assert methods == {"_OTHER"}


async def test_metrics_path_is_configurable():
    """SIGNALFIRE_METRICS_PATH moves the exposition."""
    app = make_app()
    signalfire.init_observability(app, traces_exporter="none", handle_sigterm=False, metrics_path="/internal/prom")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        await http.get("/items/1")
        assert DURATION + "_count" in await scrape(http, "/internal/prom")
        assert (await http.get("/metrics")).status_code == 404


async def test_openmetrics_is_negotiated(client):
    """An OpenMetrics Accept header gets OpenMetrics with trace exemplars on the request histogram."""
    await client.get("/items/1")
    response = await client.get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
    assert 'trace_id="' in response.text


async def test_scrapes_are_gzipped_when_asked(client):
    """A scrape that accepts gzip gets it."""
    response = await client.get("/metrics", headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert "process_resident_memory_bytes" in response.text


async def test_no_metrics_backend_means_no_endpoint_and_no_recording():
    """With OTEL_METRICS_EXPORTER=none nothing is served or recorded, and requests still work."""
    app = make_app()
    signalfire.init_observability(app, traces_exporter="none", handle_sigterm=False, metrics_exporter="none")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        assert (await http.get("/items/1")).status_code == 200
        assert (await http.get("/metrics")).status_code == 404
    assert signalfire.metrics.render()[0] == b""
