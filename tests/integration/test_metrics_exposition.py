"""Prometheus exposition from real servers on loopback, scraped over HTTP and parsed with prometheus-client's parser;
the same instruments pushed to a real OTLP receiver."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

import signalfire
from signalfire import metrics

pytestmark = pytest.mark.integration


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code, ""


def parse(text: str) -> dict[str, list]:
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


class UvicornThread:
    """A real uvicorn server for ``app`` on a free loopback port, served from a thread."""

    def __init__(self, app: FastAPI) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self.socket])))

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def served_app() -> Iterator[UvicornThread]:
    app = FastAPI()

    @app.get("/bookings/{booking_id}")
    async def booking(booking_id: str) -> dict[str, str]:
        metrics.record_cache_miss("booking")
        return {"id": booking_id}

    signalfire.init_observability(app, traces_exporter="none", handle_sigterm=False)
    with UvicornThread(app) as server:
        yield server


def test_500_raw_paths_make_one_series(served_app):
    """500 distinct booking ids requested over HTTP make one series per route template, not 500."""
    for i in range(500):
        assert get(f"{served_app.url}/bookings/b-{i}")[0] == 200
    status, text = get(f"{served_app.url}/metrics")
    assert status == 200
    samples = parse(text)
    counts = samples["http_server_request_duration_seconds_count"]
    assert [(s.labels["http_route"], s.value) for s in counts] == [("/bookings/{booking_id}", 500.0)]
    assert (
        len(samples["http_server_request_duration_seconds_bucket"]) == 15
    )  # the 14 semantic-convention boundaries and +Inf, for the one series
    assert samples["cache_misses_total"][0].value == 500


def test_scrape_of_a_real_server_negotiates_openmetrics(served_app):
    """Prometheus's Accept header gets OpenMetrics, which prometheus-client's OpenMetrics parser reads."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

    get(f"{served_app.url}/bookings/b-1")
    status, text = get(f"{served_app.url}/metrics", {"Accept": "application/openmetrics-text;version=1.0.0"})
    assert status == 200
    families = {f.name: f for f in parse_openmetrics(text)}
    assert families["http_server_request_duration_seconds"].unit == "seconds"
    assert families["http_server_request_duration_seconds"].type == "histogram"


def test_standalone_port_serves_metrics_without_an_app():
    """SIGNALFIRE_METRICS_PORT serves the exposition for a service without ASGI (a worker, a cron job)."""
    signalfire.init_observability(
        traces_exporter="none", handle_sigterm=False, metrics_port=0, metrics_host="127.0.0.1"
    )
    with metrics.time_job("reindex"):
        pass
    from signalfire._metrics import _prometheus

    backend = _prometheus.current()
    assert backend is not None
    port = backend.server_port
    status, text = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    [sample] = parse(text)["jobs_processed_total"]
    assert sample.labels == {"job_type": "reindex", "status": "success"}
    signalfire.shutdown()
    with pytest.raises(urllib.error.URLError, match="refused"):  # the server is gone after shutdown
        get(f"http://127.0.0.1:{port}/metrics")


def test_registry_instruments_arrive_over_otlp(otlp_server):
    """HTTP RED and catalog metrics reach the OTLP receiver with OpenTelemetry names, units, buckets and attributes."""
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    obs = signalfire.init_observability(
        app,
        traces_exporter="none",
        handle_sigterm=False,
        otlp_endpoint=otlp_server.endpoint,
        otlp_protocol=otlp_server.protocol,
        metric_export_interval_ms=60_000,
        metrics_prefix="tvl",
    )
    metrics.record_payment(amount=49.0, currency="USD", status="succeeded")
    with UvicornThread(app) as server:
        for i in range(3):
            get(f"{server.url}/items/{i}")
    assert obs.shutdown(timeout=10)

    received = {m.name: m for _, m in otlp_server.receiver.metrics()}
    http = received["http.server.request.duration"]
    assert http.unit == "s"
    [point] = http.histogram.data_points
    assert point.count == 3
    assert list(point.explicit_bounds) == [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
    from tests.receivers import attributes

    assert attributes(point.attributes) == {
        "http.request.method": "GET",
        "http.route": "/items/{item_id}",
        "http.response.status_code": 200,
        "url.scheme": "http",
        "network.protocol.version": "1.1",
    }
    payments = received["tvl.payments.processed"]
    assert payments.unit == "{payment}"
    assert attributes(payments.sum.data_points[0].attributes) == {"status": "succeeded", "currency": "USD"}
    assert payments.sum.data_points[0].as_int == 1
