"""Health endpoints served by a real uvicorn on loopback, checking a real PostgreSQL and a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator

import httpx
import psycopg
import pytest
import redis
import redis.asyncio
import sqlalchemy
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import create_async_engine

import signalfire
from signalfire import health
from signalfire.health import HealthCheck
from tests.servers import free_port

pytestmark = pytest.mark.integration

# Generous: on a loaded 2-core CI machine the scheduler, not the code under test, decides most of it.
MARGIN_S = 2.0
RECOVERY_S = 15.0


class UvicornServer:
    """A real uvicorn serving ``app`` on 127.0.0.1 in a background thread, stopped on exit."""

    def __init__(self, app: FastAPI, port: int) -> None:
        self.port = port
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> UvicornServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextlib.contextmanager
def serve(checks, *, port: int | None = None, on_shutdown=None, **settings) -> Iterator[httpx.Client]:
    """init_observability(app, health_checks=checks) on a FastAPI app under uvicorn; yields a client for it.

    ``on_shutdown`` runs on uvicorn's loop as the app stops: async clients close their connections on the loop that
    opened them.
    """

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        if on_shutdown is not None:
            await on_shutdown()

    app = FastAPI(lifespan=lifespan)

    @app.get("/upstream/{code}")
    def upstream(code: int):
        return JSONResponse({"code": code}, status_code=code)

    signalfire.init_observability(app, traces_exporter="none", health_checks=checks, **settings)
    with UvicornServer(app, port or free_port()) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def wait_for(client: httpx.Client, path: str, status: int) -> httpx.Response:
    """Probe ``path`` until it answers ``status`` (bounded by RECOVERY_S), as a Kubernetes probe would."""
    deadline = time.monotonic() + RECOVERY_S
    while True:
        response = client.get(path)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


@pytest.fixture(params=["sync", "async"])
def clients(request, postgres_server, redis_server):
    """A SQLAlchemy engine, a redis client for the real servers (sync or async), and how to close them."""
    if request.param == "sync":
        engine = sqlalchemy.create_engine(postgres_server.sqlalchemy_url("psycopg"))
        cache = redis.Redis.from_url(redis_server.url)

        async def close():
            engine.dispose()
            cache.close()

    else:
        engine = create_async_engine(postgres_server.sqlalchemy_url("asyncpg"))
        cache = redis.asyncio.Redis.from_url(redis_server.url)

        async def close():
            await engine.dispose()
            await cache.aclose()

    return engine, cache, close


def test_ready_follows_a_critical_redis_through_an_outage(clients, redis_server):
    """Redis critical: ready 200, 503 while redis-server is stopped, 200 again after restart; live 200 throughout."""
    engine, cache, close = clients
    checks = [health.database(engine, name="postgres"), health.redis(cache)]
    with serve(checks, on_shutdown=close, health_cache_s=0) as client:
        assert client.get("/health/live").status_code == 200
        ready = client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["postgres"]["status"] == "pass"

        redis_server.stop()
        try:
            down = client.get("/health/ready")
            assert down.status_code == 503
            assert down.json()["checks"]["redis"]["status"] == "fail"
            assert down.json()["checks"]["postgres"]["status"] == "pass"
            assert client.get("/health/live").status_code == 200
            assert client.get("/health/deep").json()["status"] == "unhealthy"
            assert 'health_check_status{check="redis"} 0.0' in client.get("/metrics").text
        finally:
            redis_server.start()

        recovered = wait_for(client, "/health/ready", 200)
        assert recovered.status_code == 200, recovered.text
        assert client.get("/health/live").status_code == 200
        scraped = client.get("/metrics").text
        assert 'health_check_status{check="redis"} 1.0' in scraped
        assert 'health_check_status{check="postgres"} 1.0' in scraped
        assert "/health" not in scraped  # probes are not counted as HTTP requests


def test_deep_is_degraded_while_an_optional_redis_is_down(clients, redis_server):
    """Redis optional: while it is down deep says degraded (200) and ready stays 200."""
    engine, cache, close = clients
    checks = [health.database(engine, name="postgres"), health.redis(cache, critical=False)]
    with serve(checks, on_shutdown=close, health_cache_s=0) as client:
        assert client.get("/health/deep").json()["status"] == "healthy"
        redis_server.stop()
        try:
            deep = client.get("/health/deep")
            assert deep.status_code == 200
            assert deep.json()["status"] == "degraded"
            assert deep.json()["checks"]["redis"]["error"]
            assert client.get("/health/ready").status_code == 200
            assert client.get("/health/live").status_code == 200
        finally:
            redis_server.start()
        assert wait_for(client, "/health/deep", 200).json()["status"] == "healthy"


def test_deep_reports_database_latency_and_identity(postgres_server):
    """The PostgreSQL check reports its dialect and latency; deep carries version, environment and uptime."""
    engine = sqlalchemy.create_engine(postgres_server.sqlalchemy_url("psycopg"))
    try:
        with serve([health.database(engine)], service_version="2.0.1", environment="staging") as client:
            body = client.get("/health/deep").json()
        check = body["checks"]["database"]
        assert check["status"] == "pass"
        assert check["details"] == {"dialect": "postgresql"}
        assert check["latency_ms"] > 0
        assert (body["version"], body["environment"]) == ("2.0.1", "staging")
        assert body["uptime_s"] > 0
    finally:
        engine.dispose()


def test_a_database_password_never_appears_in_a_response(postgres_server):
    """Failing PostgreSQL checks whose errors involve the DSN and its password answer without the password."""
    wrong = "Wr0ng-pa55word-xyz"
    bad_url = postgres_server.sqlalchemy_url("psycopg").replace(postgres_server.password, wrong)
    engine = sqlalchemy.create_engine(bad_url)
    dsn = postgres_server.dsn.replace("/signalfire", "/no_such_database")

    def reporting():
        # What application code often does: put the DSN it could not reach in the error.
        try:
            psycopg.connect(dsn, connect_timeout=5).close()
        except psycopg.OperationalError as exc:
            raise RuntimeError(f"cannot reach {dsn}: {exc}") from exc

    try:
        checks = [health.database(engine, name="wrong-password"), HealthCheck("reporting", reporting)]
        with serve(checks) as client:
            responses = [client.get(path) for path in ("/health/ready", "/health/deep")]
        deep = responses[1].json()["checks"]
        assert responses[0].status_code == 503
        assert "password authentication failed" in deep["wrong-password"]["error"]
        assert "no_such_database" in deep["reporting"]["error"]
        for response in responses:
            assert wrong not in response.text
            assert postgres_server.password not in response.text
    finally:
        engine.dispose()


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A TCP port on loopback that accepts connections and never answers: a hung dependency."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_a_hung_dependency_fails_at_its_timeout_and_the_probe_answers(black_hole):
    """A redis that never answers (sync and async clients, no socket timeout) fails at the check's timeout."""
    timeout = 1.0
    sync_client = redis.Redis(host="127.0.0.1", port=black_hole)
    async_client = redis.asyncio.Redis(host="127.0.0.1", port=black_hole)
    checks = [
        health.redis(sync_client, name="sync", timeout=timeout),
        health.redis(async_client, name="async", timeout=timeout),
    ]
    with serve(checks, on_shutdown=async_client.aclose) as client:
        started = time.monotonic()
        response = client.get("/health/ready")
        elapsed = time.monotonic() - started
        assert client.get("/health/live").status_code == 200
    assert response.status_code == 503
    assert {c["error"] for c in response.json()["checks"].values()} == {"timed out after 1 s"}
    assert elapsed < timeout + MARGIN_S


def test_http_dependency_check_passes_on_2xx_and_fails_on_5xx():
    """health.http() against a real HTTP server: 200 passes, 503 fails with the status in its details."""
    port = free_port()
    checks = [
        health.http(f"http://127.0.0.1:{port}/upstream/200", name="ok"),
        health.http(f"http://127.0.0.1:{port}/upstream/503", name="failing"),
    ]
    with serve(checks, port=port) as client:
        body = client.get("/health/deep").json()
    assert body["status"] == "degraded"
    assert body["checks"]["ok"]["status"] == "pass"
    assert body["checks"]["ok"]["details"] == {"status_code": 200}
    assert body["checks"]["failing"]["error"] == "unexpected status 503"
    assert body["checks"]["failing"]["details"] == {"status_code": 503}


def test_concurrent_probe_storm_calls_redis_once_per_cache_period(redis_server):
    """Fifty simultaneous probes within SIGNALFIRE_HEALTH_CACHE_SECONDS send one PING to redis."""
    cache = redis.Redis.from_url(redis_server.url)
    before = _pings(redis_server)
    try:
        with serve([health.redis(cache)], health_cache_s=60) as client:

            async def storm() -> list[int]:
                async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as storm_client:
                    responses = await asyncio.gather(*(storm_client.get("/health/ready") for _ in range(50)))
                return [r.status_code for r in responses]

            assert set(asyncio.run(storm())) == {200}
        assert _pings(redis_server) - before == 1
    finally:
        cache.close()


def _pings(redis_server) -> int:
    """How many PING commands the server has processed (INFO commandstats)."""
    import redis as redis_lib

    with redis_lib.Redis.from_url(redis_server.url) as admin:
        stats = admin.info("commandstats")
    return int(stats.get("cmdstat_ping", {}).get("calls", 0))


def test_probes_leave_no_span_with_instrumented_clients(telemetry, redis_server, postgres_server):
    """Under uvicorn, probes whose checks use instrumented redis and SQLAlchemy clients record no span at all, while
    the app's own redis call is traced."""
    from signalfire import _runtime

    cache = redis.Redis.from_url(redis_server.url)  # created after init: instrumented by signalfire
    engine = sqlalchemy.create_engine(postgres_server.sqlalchemy_url("psycopg"))
    app = FastAPI()

    @app.get("/work")
    def work():
        cache.ping()
        return {}

    def get(url: str) -> int:
        # urllib, not httpx: the test's own requests must not add client spans
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status

    try:
        _runtime.instrument_app(telemetry.obs, app, [health.redis(cache), health.database(engine)])
        with UvicornServer(app, free_port()) as server:
            for path in ("/health/live", "/health/ready", "/health/deep"):
                assert get(server.url + path) == 200
            assert [(s.name, dict(s.attributes or {})) for s in telemetry.spans] == []
            assert get(server.url + "/work") == 200
        names = sorted(s.name for s in telemetry.spans)
        assert "GET /work" in names
        assert len(names) == 2, names  # the request and its PING
    finally:
        cache.close()
        engine.dispose()
