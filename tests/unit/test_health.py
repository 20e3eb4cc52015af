"""signalfire.health: the live / ready / deep endpoints, check semantics, timeouts, caching and scrubbing."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
import sqlalchemy
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import create_async_engine

import signalfire
from signalfire import ConfigurationError, Settings, health
from signalfire.health import CheckFailed, HealthCheck

# Generous: the scheduler of a loaded 2-core CI machine, not the code under test, decides most of it.
MARGIN_S = 2.0


def make_app(checks, **overrides) -> FastAPI:
    app = FastAPI()
    settings = Settings.resolve(**{"health_cache_s": 0, **overrides})
    app.include_router(health.router(checks, settings=settings))
    return app


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


class Counter:
    """A sync check that counts its calls and passes."""

    def __init__(self, result=None):
        self.calls = 0
        self.result = result

    def __call__(self):
        self.calls += 1
        return self.result


async def test_live_answers_200_without_calling_any_check():
    """/health/live is 200 and runs no dependency check."""
    counter = Counter()
    async with client(make_app([HealthCheck("db", counter)])) as c:
        response = await c.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}
    assert counter.calls == 0


async def test_ready_runs_only_critical_checks_and_answers_200():
    """/health/ready is 200 when every critical check passes; optional checks are not run."""
    critical, optional = Counter(), Counter()
    app = make_app([HealthCheck("db", critical), HealthCheck("search", optional, critical=False)])
    async with client(app) as c:
        response = await c.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"
    assert list(response.json()["checks"]) == ["db"]
    assert (critical.calls, optional.calls) == (1, 0)


async def test_ready_is_503_when_a_critical_check_fails_and_names_it():
    """A critical check that raises makes /health/ready 503 with the check's error."""

    def broken():
        raise ConnectionError("connection refused")

    async with client(make_app([HealthCheck("db", broken)])) as c:
        response = await c.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["db"]["status"] == "fail"
    assert body["checks"]["db"]["error"] == "ConnectionError: connection refused"
    assert response.headers["cache-control"] == "no-store"


async def test_failing_optional_check_degrades_deep_but_keeps_ready_200():
    """An optional failure: ready stays 200, deep says degraded with 200."""
    app = make_app([HealthCheck("db", Counter()), HealthCheck("search", lambda: False, critical=False)])
    async with client(app) as c:
        ready = await c.get("/health/ready")
        deep = await c.get("/health/deep")
    assert ready.status_code == 200
    assert deep.status_code == 200
    assert deep.json()["status"] == "degraded"
    assert deep.json()["checks"]["search"]["error"] == "check returned False"


async def test_deep_is_503_unhealthy_when_a_critical_check_fails():
    """A critical failure makes /health/deep unhealthy with 503."""

    async def broken():
        raise CheckFailed("replica lag too high", details={"lag_s": 42})

    async with client(make_app([HealthCheck("db", broken)])) as c:
        response = await c.get("/health/deep")
    assert response.status_code == 503
    check = response.json()["checks"]["db"]
    assert response.json()["status"] == "unhealthy"
    assert (check["status"], check["error"], check["details"]) == ("fail", "replica lag too high", {"lag_s": 42})


async def test_deep_reports_every_check_with_latency_details_and_service_identity():
    """/health/deep lists each check's status, criticality, latency, details, plus uptime, version, environment."""

    async def queue():
        return {"depth": 3}

    app = make_app(
        [HealthCheck("queue", queue, critical=False), HealthCheck("db", Counter())],
        service_name="checkout",
        service_version="1.4.2",
        environment="staging",
    )
    async with client(app) as c:
        response = await c.get("/health/deep")
    body = response.json()
    assert response.status_code == 200
    assert (body["status"], body["service"], body["version"], body["environment"]) == (
        "healthy",
        "checkout",
        "1.4.2",
        "staging",
    )
    assert body["uptime_s"] > 0
    assert body["checks"]["queue"]["details"] == {"depth": 3}
    assert body["checks"]["queue"]["critical"] is False
    assert body["checks"]["db"]["critical"] is True
    assert all(c["latency_ms"] >= 0 and c["checked_at"].endswith("Z") for c in body["checks"].values())


async def test_checks_run_concurrently():
    """Two checks that each wait for the other both pass: they run at the same time, not one after the other."""
    first, second = asyncio.Event(), asyncio.Event()

    async def a():
        first.set()
        await second.wait()

    async def b():
        second.set()
        await first.wait()

    app = make_app([HealthCheck("a", a, timeout=5), HealthCheck("b", b, timeout=5)])
    async with client(app) as c:
        response = await c.get("/health/ready")
    assert response.status_code == 200


async def test_a_hung_async_check_fails_at_its_timeout():
    """An async check that never returns fails at its timeout; the probe answers within timeout plus a margin."""
    timeout = 0.3

    async def hang():
        await asyncio.Event().wait()

    async with client(make_app([HealthCheck("hang", hang, timeout=timeout)])) as c:
        started = time.monotonic()
        response = await c.get("/health/ready")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["checks"]["hang"]["error"] == "timed out after 0.3 s"
    assert elapsed < timeout + MARGIN_S


async def test_a_check_that_swallows_cancellation_still_fails_at_its_timeout():
    """A check that ignores cancellation cannot hold the probe past its timeout."""
    timeout = 0.3
    release = asyncio.Event()
    returned = asyncio.Event()

    async def stubborn():
        while not release.is_set():
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue
        returned.set()
        return True

    async with client(make_app([HealthCheck("stubborn", stubborn, timeout=timeout)])) as c:
        started = time.monotonic()
        response = await c.get("/health/ready")
        elapsed = time.monotonic() - started
    release.set()
    await asyncio.wait_for(returned.wait(), 10)  # the abandoned check ends before the test's loop closes
    assert response.status_code == 503
    assert elapsed < timeout + MARGIN_S


async def test_a_sync_check_that_blocks_forever_does_not_block_the_event_loop():
    """A blocking sync check times out on its own thread while the live endpoint keeps answering."""
    timeout = 0.5
    release = threading.Event()
    try:
        app = make_app([HealthCheck("blocking", release.wait, timeout=timeout)])
        async with client(app) as c:
            started = time.monotonic()
            ready = asyncio.create_task(c.get("/health/ready"))
            live = await c.get("/health/live")
            live_done = time.monotonic()
            response = await ready
            ready_done = time.monotonic()
        assert live.status_code == 200
        assert live_done < ready_done, "live had to wait for the blocked check: the event loop was blocked"
        assert response.status_code == 503
        assert response.json()["checks"]["blocking"]["error"] == "timed out after 0.5 s"
        assert ready_done - started < timeout + MARGIN_S
    finally:
        release.set()


async def test_a_hung_sync_check_is_not_started_again_by_later_probes():
    """While a sync check is still blocked, further probes wait on that run instead of starting a thread each."""
    release = threading.Event()
    calls = []

    def blocking():
        calls.append(1)
        release.wait()

    try:
        async with client(make_app([HealthCheck("blocking", blocking, timeout=0.2)])) as c:
            for _ in range(3):
                assert (await c.get("/health/ready")).status_code == 503
        assert len(calls) == 1
    finally:
        release.set()


async def test_results_are_cached_for_the_configured_time():
    """Within SIGNALFIRE_HEALTH_CACHE_SECONDS a probe reuses the last result instead of calling the dependency."""
    counter = Counter()
    async with client(make_app([HealthCheck("db", counter)], health_cache_s=60)) as c:
        for _ in range(5):
            assert (await c.get("/health/ready")).status_code == 200
        await c.get("/health/deep")
    assert counter.calls == 1


async def test_cache_zero_runs_the_check_on_every_probe():
    """SIGNALFIRE_HEALTH_CACHE_SECONDS=0 runs every check on every probe."""
    counter = Counter()
    async with client(make_app([HealthCheck("db", counter)], health_cache_s=0)) as c:
        for _ in range(3):
            await c.get("/health/ready")
    assert counter.calls == 3


async def test_concurrent_probes_share_one_call_in_flight():
    """A burst of simultaneous probes calls an async check once, even with caching off."""
    calls = 0

    async def slow():
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)

    async with client(make_app([HealthCheck("db", slow)], health_cache_s=0)) as c:
        responses = await asyncio.gather(*(c.get("/health/ready") for _ in range(10)))
    assert {r.status_code for r in responses} == {200}
    assert calls == 1


async def test_a_password_in_an_error_never_reaches_the_response():
    """Passwords in URLs and key=value connection strings are redacted from errors and details."""

    def broken():
        raise RuntimeError(
            "could not connect to postgresql://app:hunter2-url@db:5432/app (dsn: host=db user=app password=hunter2-kv)"
        )

    async def detailed():
        raise CheckFailed("bad", details={"dsn": "redis://:hunter2-detail@cache:6379/0"})

    app = make_app([HealthCheck("db", broken), HealthCheck("cache", detailed, critical=False)])
    async with client(app) as c:
        texts = [(await c.get(path)).text for path in ("/health/ready", "/health/deep")]
    for text in texts:
        assert "hunter2" not in text
    assert "postgresql://app:[REDACTED:password]@db:5432/app" in texts[1]


async def test_a_check_secrets_are_redacted_wherever_they_appear():
    """A string given as a check's secret is redacted even when it is not in a URL."""

    def broken():
        raise RuntimeError("auth failed for token tok-abc123")

    async with client(make_app([HealthCheck("api", broken, secrets=["tok-abc123"])])) as c:
        response = await c.get("/health/ready")
    assert "tok-abc123" not in response.text
    assert "[REDACTED:secret]" in response.text


async def test_database_check_runs_select_1_on_sync_and_async_engines(tmp_path):
    """health.database() passes for a working sync Engine and AsyncEngine and names the dialect."""
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'sync.db'}")
    async_engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'async.db'}")
    try:
        app = make_app([health.database(engine, name="sync"), health.database(async_engine, name="async")])
        async with client(app) as c:
            response = await c.get("/health/deep")
        assert response.status_code == 200
        checks = response.json()["checks"]
        assert checks["sync"]["details"] == {"dialect": "sqlite"}
        assert checks["async"]["details"] == {"dialect": "sqlite"}
    finally:
        engine.dispose()
        await async_engine.dispose()


async def test_database_check_fails_for_an_unreachable_file(tmp_path):
    """health.database() fails (critical by default) when the database cannot be opened."""
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    try:
        async with client(make_app([health.database(engine)])) as c:
            response = await c.get("/health/ready")
        assert response.status_code == 503
        assert "OperationalError" in response.json()["checks"]["database"]["error"]
    finally:
        engine.dispose()


async def test_disk_space_fails_below_the_threshold_and_reports_free_space(tmp_path):
    """health.disk_space() passes above its threshold, fails below it, and reports free and total bytes."""
    ok = health.disk_space(tmp_path, min_free_percent=0, name="ok")
    full = health.disk_space(tmp_path, min_free_percent=None, min_free_bytes=2**62, name="full")
    async with client(make_app([ok, full])) as c:
        body = (await c.get("/health/deep")).json()
    assert body["status"] == "degraded"
    assert body["checks"]["ok"]["status"] == "pass"
    assert body["checks"]["ok"]["details"]["total_bytes"] > 0
    assert body["checks"]["full"]["status"] == "fail"
    assert body["checks"]["full"]["error"].endswith(f"bytes free, below {2**62}")
    assert body["checks"]["full"]["details"]["path"] == str(tmp_path)


async def test_memory_fails_above_the_threshold_and_reports_resident_size():
    """health.memory() reports this process's resident memory and fails above max_bytes."""
    ok = health.memory(max_percent=100, name="ok")
    over = health.memory(max_percent=None, max_bytes=1, name="over")
    async with client(make_app([ok, over])) as c:
        body = (await c.get("/health/deep")).json()
    assert body["checks"]["ok"]["status"] == "pass"
    assert body["checks"]["ok"]["details"]["rss_bytes"] > 1024 * 1024
    assert body["checks"]["ok"]["details"]["limit_bytes"] > body["checks"]["ok"]["details"]["rss_bytes"]
    assert body["checks"]["over"]["status"] == "fail"
    assert body["checks"]["over"]["error"].endswith("above 1")


async def test_paths_come_from_settings(monkeypatch):
    """SIGNALFIRE_HEALTH_*_PATH move the endpoints."""
    monkeypatch.setenv("SIGNALFIRE_HEALTH_LIVE_PATH", "/healthz")
    monkeypatch.setenv("SIGNALFIRE_HEALTH_READY_PATH", "/readyz")
    monkeypatch.setenv("SIGNALFIRE_HEALTH_DEEP_PATH", "/internal/health")
    app = FastAPI()
    app.include_router(health.router([]))
    async with client(app) as c:
        codes = [(await c.get(p)).status_code for p in ("/healthz", "/readyz", "/internal/health", "/health/live")]
    assert codes == [200, 200, 200, 404]


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("SIGNALFIRE_HEALTH_READY_PATH", "ready", "expected a URL path starting with '/'"),
        ("SIGNALFIRE_HEALTH_CACHE_SECONDS", "-1", "expected a number of seconds, 0 or more"),
        ("SIGNALFIRE_HEALTH_TIMEOUT_SECONDS", "0", "expected a number of seconds greater than 0"),
        ("SIGNALFIRE_HEALTH_LIVE_PATH", "/health/ready", "must differ"),
    ],
)
def test_bad_health_settings_are_rejected_naming_the_variable(monkeypatch, variable, value, reason):
    """A bad health setting fails init with the variable, its value and what is accepted."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable) as error:
        signalfire.init_observability()
    assert reason in str(error.value)


async def test_init_observability_adds_the_endpoints_with_the_checks():
    """init_observability(app, health_checks=[...]) serves live, ready and deep with those checks."""
    app = FastAPI()

    @app.get("/{path:path}")
    def catch_all(path: str):
        return {"page": path}

    signalfire.init_observability(app, traces_exporter="none", health_checks=[HealthCheck("db", lambda: False)])
    async with client(app) as c:
        assert (await c.get("/health/live")).status_code == 200
        assert (await c.get("/health/ready")).status_code == 503
        assert (await c.get("/health/deep")).json()["checks"]["db"]["status"] == "fail"


async def test_endpoints_are_served_when_telemetry_is_disabled(monkeypatch):
    """OTEL_SDK_DISABLED=true turns telemetry off but keeps the probes answering."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    app = FastAPI()
    signalfire.init_observability(app, health_checks=[HealthCheck("db", Counter())])
    async with client(app) as c:
        assert (await c.get("/health/ready")).status_code == 200


async def test_health_endpoints_can_be_turned_off(monkeypatch):
    """SIGNALFIRE_HEALTH_ENABLED=false adds no endpoints."""
    monkeypatch.setenv("SIGNALFIRE_HEALTH_ENABLED", "false")
    app = FastAPI()
    signalfire.init_observability(app, traces_exporter="none")
    async with client(app) as c:
        assert (await c.get("/health/live")).status_code == 404


def test_health_checks_without_an_app_is_a_configuration_error():
    """health_checks= without app= fails at init with a message saying what to do instead."""
    with pytest.raises(ConfigurationError, match=r"signalfire\.health\.router"):
        signalfire.init_observability(traces_exporter="none", health_checks=[HealthCheck("db", Counter())])


def test_two_checks_with_one_name_are_rejected():
    """Check names key the JSON and the gauge, so they must be unique."""
    with pytest.raises(ValueError, match="repeated: db"):
        health.router([HealthCheck("db", Counter()), HealthCheck("db", Counter())])


@pytest.mark.parametrize("name", ["", "has space", "x" * 65])
def test_a_bad_check_name_is_rejected(name):
    """A check name must be short and label-friendly."""
    with pytest.raises(ValueError, match="expected 1 to 64 letters"):
        HealthCheck(name, Counter())


async def test_plain_functions_become_checks_named_after_them():
    """A plain function in health_checks is a critical check named after the function."""

    def postgres():
        return {"ok": True}

    async with client(make_app([postgres])) as c:
        body = (await c.get("/health/deep")).json()
    assert body["checks"]["postgres"] == {
        **body["checks"]["postgres"],
        "status": "pass",
        "critical": True,
        "details": {"ok": True},
    }


async def test_checks_record_no_spans(telemetry):
    """Spans started inside a check (instrumented clients, signalfire.span) are not recorded for a probe."""

    def traced_check():
        with signalfire.span("inside-check"):
            pass

    async def traced_async_check():
        with signalfire.span("inside-async-check"):
            await asyncio.sleep(0)

    app = make_app([HealthCheck("s", traced_check), HealthCheck("a", traced_async_check)])
    async with client(app) as c:
        assert (await c.get("/health/deep")).status_code == 200
    with signalfire.span("outside"):
        pass
    names = {s.name for s in telemetry.spans}
    assert "outside" in names
    assert not names & {"inside-check", "inside-async-check"}


async def test_probes_produce_no_server_span_by_default(telemetry):
    """With signalfire's middleware in place, probes are not traced while the app's own routes are."""
    from signalfire import _runtime

    app = FastAPI()

    @app.get("/orders")
    def orders():
        return []

    _runtime.instrument_app(telemetry.obs, app, [HealthCheck("db", Counter())])
    async with client(app) as c:
        for path in ("/health/live", "/health/ready", "/health/deep", "/orders"):
            assert (await c.get(path)).status_code == 200
    assert [s.name for s in telemetry.spans] == ["GET /orders"]


def test_a_health_path_outside_the_excluded_paths_is_warned_about(caplog):
    """Moving a probe outside SIGNALFIRE_EXCLUDED_PATHS logs a warning naming both variables."""
    signalfire.init_observability(FastAPI(), traces_exporter="none", health_ready_path="/readyz")
    assert "SIGNALFIRE_HEALTH_READY_PATH=/readyz" in caplog.text
    assert "SIGNALFIRE_EXCLUDED_PATHS" in caplog.text


async def test_each_check_status_is_exported_as_a_gauge(telemetry):
    """health.check.status is 1 for a passing check and 0 for a failing one, labelled by check name."""
    app = make_app([HealthCheck("db", Counter()), HealthCheck("search", lambda: False, critical=False)])
    async with client(app) as c:
        await c.get("/health/deep")
    assert telemetry.metric_value("health.check.status", check="db") == 1
    assert telemetry.metric_value("health.check.status", check="search") == 0


async def test_the_gauge_follows_the_latest_run(telemetry):
    """When a check starts failing, its gauge turns from 1 to 0 at the next probe."""
    state = {"up": True}
    async with client(make_app([HealthCheck("db", lambda: state["up"])])) as c:
        await c.get("/health/ready")
        assert telemetry.metric_value("health.check.status", check="db") == 1
        state["up"] = False
        await c.get("/health/ready")
    assert telemetry.metric_value("health.check.status", check="db") == 0


async def test_details_of_any_shape_are_returned_as_json():
    """Nested mappings and lists stay JSON; other objects are shown by their repr, all scrubbed."""

    class Replica:
        def __repr__(self):
            return "Replica(url='postgresql://ro:hunter2-repr@replica/app')"

    def replicas():
        return {"replicas": [{"lag_s": 0.5}, Replica()], "zones": ("a", "b")}

    async with client(make_app([HealthCheck("db", replicas)])) as c:
        response = await c.get("/health/deep")
    details = response.json()["checks"]["db"]["details"]
    assert details["replicas"][0] == {"lag_s": 0.5}
    assert details["replicas"][1] == "Replica(url='postgresql://ro:[REDACTED:password]@replica/app')"
    assert details["zones"] == ["a", "b"]


async def test_head_requests_answer_like_get():
    """Load balancers that probe with HEAD get the same status codes."""
    app = make_app([HealthCheck("db", lambda: False)])
    async with client(app) as c:
        assert (await c.head("/health/live")).status_code == 200
        assert (await c.head("/health/ready")).status_code == 503


async def test_a_second_init_with_new_checks_replaces_the_checks():
    """init_observability(app) then init_observability(app, health_checks=[...]) serves the new checks, not none."""
    app = FastAPI()
    signalfire.init_observability(app, traces_exporter="none")
    signalfire.init_observability(app, traces_exporter="none", health_checks=[HealthCheck("db", lambda: False)])
    async with client(app) as c:
        response = await c.get("/health/ready")
    assert response.status_code == 503
    assert list(response.json()["checks"]) == ["db"]
    assert [getattr(r, "path", None) for r in app.router.routes].count("/health/ready") == 1


async def test_errors_and_details_go_through_the_shared_scrubber():
    """Tokens in errors and values under sensitive keys in details are redacted as in logs and spans."""
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"

    def upstream():
        raise CheckFailed(f"401 with Authorization: Bearer {jwt}", details={"api_key": "sk-live-abc", "region": "eu"})

    async with client(make_app([HealthCheck("upstream", upstream)])) as c:
        response = await c.get("/health/deep")
    check = response.json()["checks"]["upstream"]
    assert jwt not in response.text
    assert "sk-live-abc" not in response.text
    assert check["details"]["region"] == "eu"
    assert check["details"]["api_key"].startswith("[REDACTED")


async def test_the_apps_own_health_route_wins_over_signalfires():
    """An app that serves /health/live itself keeps it; signalfire leaves its liveness endpoint out, serves the
    others, and says so in the owners report."""
    app = FastAPI()

    @app.get("/health/live")
    def own_live():
        return {"own": True}

    obs = signalfire.init_observability(app, traces_exporter="none")
    async with client(app) as c:
        assert (await c.get("/health/live")).json() == {"own": True}
        assert (await c.get("/health/ready")).status_code == 200
    found = [o for o in obs.owners if o.signal == "routes"]
    assert len(found) == 1
    assert "/health/live" in found[0].found
    assert "SIGNALFIRE_HEALTH_LIVE_PATH" in found[0].action


async def test_a_route_the_app_adds_after_init_still_wins():
    """A health path the app adds after init_observability() is the app's once it serves its first request."""
    app = FastAPI()
    obs = signalfire.init_observability(app, traces_exporter="none")

    @app.get("/health/ready")
    def own_ready():
        return {"own": "ready"}

    async with client(app) as c:
        assert (await c.get("/health/ready")).json() == {"own": "ready"}
        assert (await c.get("/health/deep")).status_code == 200
    assert any("/health/ready" in o.found for o in obs.owners)
