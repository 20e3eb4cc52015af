"""Process exit with a dead, a black-holed and a healthy backend, under a real uvicorn and gunicorn (uvicorn worker).

SIGNALFIRE_SHUTDOWN_TIMEOUT is one budget from SIGTERM to exit, shared by the SIGTERM handler, the lifespan flush and
the final shutdown; a collector that refuses connections is known at once and not retried; what is lost is one
structured warning line through signalfire's pipeline, never a traceback; with a healthy collector nothing is lost.
The application's own SIGTERM handler still runs, whether it was installed before or after init."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.reliability_server import Server, serve
from tests.receivers import BlackHoleServer, HttpOtlpServer, OtlpReceiver, SentryIngestServer, attributes, free_port

pytestmark = pytest.mark.integration

SERVERS = ["uvicorn", "gunicorn"]
REQUESTS = 20
# What uvicorn and gunicorn return when their worker ends by SIGTERM (as without signalfire).
EXIT_CODES = {"uvicorn": -15, "gunicorn": 0}
# What the SDK's exporters print while they retry or give up: summed up in signalfire's one line instead.
SDK_NOISE = ("Transient error", "retrying in", "Failed to export", "Exporter already shutdown", "flushing")


def _noise(server: Server) -> list[str]:
    """Lines about exporting that are not signalfire's one line: the SDK's retries and failures, any traceback from
    the telemetry path (the app's own /boom errors, logged by uvicorn, are not telemetry's)."""
    found = []
    for raw in server.output().splitlines():
        text = raw.decode("utf-8", "replace")
        try:
            line = json.loads(text)
        except ValueError:
            if "Traceback" in text or any(noise in text for noise in SDK_NOISE):
                found.append(text)
            continue
        logger = str(line.get("logger", ""))
        sdk_line = logger.startswith("opentelemetry") or any(noise in str(line.get("event")) for noise in SDK_NOISE)
        if sdk_line or (logger == "signalfire" and "exception" in line):
            found.append(text)
    return found


def _env(endpoint: str, dsn: str, **extra: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_LOGS_EXPORTER": "otlp",
        # nothing leaves along the way: what arrives (or is lost) is the exit's doing
        "OTEL_BSP_SCHEDULE_DELAY": "60000",
        "OTEL_METRIC_EXPORT_INTERVAL": "60000",
        "SENTRY_DSN": dsn,
        **extra,
    }


def _exit_lines(server: Server) -> list[dict[str, Any]]:
    return [
        line
        for line in server.log_lines()
        if line.get("logger") == "signalfire" and str(line.get("event")).startswith("signalfire: telemetry lost at")
    ]


def _traffic(server: Server) -> list[str]:
    """REQUESTS /work requests and two /boom ones; returns the request ids of the /work ones."""
    ids = [uuid.uuid4().hex for _ in range(REQUESTS)]
    for n, request_id in enumerate(ids):
        assert httpx.get(f"{server.url}/work/{n}", headers={"X-Request-ID": request_id}, timeout=10).status_code == 200
    for n in range(2):
        assert httpx.get(f"{server.url}/boom/{n}", timeout=10).status_code == 500
    return ids


@pytest.mark.parametrize("server_name", SERVERS)
def test_a_refusing_collector_is_given_up_at_once_and_reported_in_one_line(tmp_path: Path, server_name: str) -> None:
    """Nothing listens at the OTLP endpoint or the Sentry DSN: the exit does not retry (well under the budget), every
    signal's loss is one structured line with reason collector_unreachable, and no SDK line or traceback is printed."""
    budget = 5.0
    port = free_port()
    env = _env(f"http://127.0.0.1:{port}", f"http://public@127.0.0.1:{port}/1", SIGNALFIRE_SHUTDOWN_TIMEOUT="5")
    with serve(tmp_path, server=server_name, **env) as server:
        _traffic(server)
        elapsed = server.stop()
    assert server.proc.returncode == EXIT_CODES[server_name]
    (line,) = _exit_lines(server)
    assert line["level"] == "warning"
    # Sentry sends each event at once: the two /boom events are lost (and warned about) while serving, or at exit
    assert set(line["dropped"]) - {"errors"} == {"traces", "metrics", "logs"}
    assert set(line["dropped"].get("errors", {"network_error": 1})) == {"network_error"}
    # detected, not retried: no batch ended as export_failed (what a retry loop running out ends in)
    for otlp_signal in ("traces", "metrics", "logs"):
        assert set(line["dropped"][otlp_signal]) == {"collector_unreachable"}
    assert line["dropped"]["traces"]["collector_unreachable"] >= 2 * REQUESTS
    assert line["unreachable"] == [f"127.0.0.1:{port}"]
    assert b"dropped" not in server.output().split(b"telemetry lost at shutdown", 1)[1].split(b"\n", 1)[1]
    assert _noise(server) == []
    # the budget is not what ended it (a retried export would spend all of it)
    assert "budget_exhausted" not in line
    assert elapsed < budget


@pytest.mark.parametrize("server_name", SERVERS)
def test_a_black_hole_costs_one_budget_from_sigterm_to_exit(tmp_path: Path, server_name: str) -> None:
    """A collector and a Sentry endpoint that accept and never answer: SIGTERM to exit takes about one budget, not
    one per hook, and what is left is one line with the budget marked as spent."""
    budget = 3.0
    with BlackHoleServer() as hole:
        endpoint = f"http://127.0.0.1:{hole.port}"
        env = _env(endpoint, f"http://public@127.0.0.1:{hole.port}/1", SIGNALFIRE_SHUTDOWN_TIMEOUT=str(budget))
        with serve(tmp_path, server=server_name, **env) as server:
            _traffic(server)
            elapsed = server.stop()
    assert server.proc.returncode == EXIT_CODES[server_name]
    (line,) = _exit_lines(server)
    assert line["budget_exhausted"] is True
    assert line["dropped"]["traces"]["shutdown_timeout"] > 0
    assert "unreachable" not in line  # it accepted connections: not taken for a refusing one
    assert _noise(server) == []
    # the spec is "at most the budget plus 1 s"; two hooks each spending it would be 2 budgets
    assert elapsed < 2 * budget


@pytest.mark.parametrize("server_name", SERVERS)
def test_a_healthy_collector_receives_everything_the_completed_requests_produced(
    tmp_path: Path, server_name: str
) -> None:
    """Spans, the metric increment and the log record of every completed request, and every Sentry event, arrive;
    nothing is reported lost."""
    receiver = OtlpReceiver()
    with HttpOtlpServer(receiver) as otlp, SentryIngestServer() as sentry:
        with serve(tmp_path, server=server_name, **_env(otlp.endpoint, sentry.dsn)) as server:
            ids = _traffic(server)
            server.stop()
        assert server.proc.returncode == EXIT_CODES[server_name]
        spans = {str(attributes(s.attributes).get("request.id")) for _, s in receiver.spans() if s.kind == 2}
        assert set(ids) <= spans
        logged = {
            str(attributes(r.attributes).get("request_id"))
            for _, r in receiver.logs()
            if r.body.string_value == "work done"
        }
        assert set(ids) <= logged
        work = [
            sum(p.as_double or p.as_int for p in m.sum.data_points)
            for _, m in receiver.metrics()
            if m.name == "reliability.work"
        ]
        assert work
        assert work[-1] >= REQUESTS
        messages = {v["value"] for e in sentry.events() for v in (e.get("exception") or {}).get("values", [])}
        assert {"boom 0", "boom 1"} <= messages
    assert _exit_lines(server) == []
    assert _noise(server) == []


@pytest.mark.parametrize("server_name", SERVERS)
@pytest.mark.parametrize("when", ["before", "after"])
def test_the_applications_sigterm_handler_still_runs(tmp_path: Path, server_name: str, when: str) -> None:
    """An app that installs its own SIGTERM handler before or after init: it runs once on SIGTERM, after signalfire's
    flush has delivered every span. While serving, uvicorn holds the signal (it imports the app first, then replaces
    whatever handler is there, the app's included, and gives it back when it has drained); signalfire's handler sits
    in front of uvicorn's, never in front of the app's once the app has installed its own."""
    receiver = OtlpReceiver()
    with HttpOtlpServer(receiver) as otlp:
        env = {**_env(otlp.endpoint, ""), "APP_SIGTERM": when}
        env.pop("SENTRY_DSN")
        with serve(tmp_path, server=server_name, app="tests.apps.sigterm_app:app", **env) as server:
            ids = [uuid.uuid4().hex for _ in range(5)]
            for n, request_id in enumerate(ids):
                response = httpx.get(f"{server.url}/work/{n}", headers={"X-Request-ID": request_id}, timeout=10)
                assert response.status_code == 200
            holder = httpx.get(f"{server.url}/handler", timeout=10).json()["handler"]
            server.stop()
        spans = {str(attributes(s.attributes).get("request.id")) for _, s in receiver.spans() if s.kind == 2}
    output = server.output()
    assert output.count(b"app handler ran") == 1, output[-3000:]
    assert set(ids) <= spans
    assert holder == "signalfire"  # in front of uvicorn's, which replaced the app's while serving
    assert _noise(server) == []


async def _serve_once(app: Any) -> int:
    """What ``with TestClient(app) as client: client.get("/work")`` does: lifespan startup, a request, shutdown."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    sent: list[str] = []

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])

    await inbox.put({"type": "lifespan.startup"})
    lifespan = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)
    )
    while not sent:
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        status = (await client.get("/work")).status_code
    await inbox.put({"type": "lifespan.shutdown"})
    await lifespan
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    return status


def test_testclient_exit_with_a_refusing_collector_does_not_retry(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Leaving a TestClient (a lifespan shutdown without SIGTERM) with the collector down does not flush (nor retry)
    what is queued for it: one warning names the endpoint, nothing is lost, and it is delivered once a collector
    listens there again."""
    from fastapi import FastAPI

    import signalfire
    from signalfire import _runtime

    port = free_port()
    for key, value in {
        "ENVIRONMENT": "production",
        "OTEL_TRACES_SAMPLER_ARG": "1.0",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "60000",
        "OTEL_METRICS_EXPORTER": "none",
    }.items():
        monkeypatch.setenv(key, value)
    _runtime.reset()
    app = FastAPI()

    @app.get("/work")
    async def work() -> dict[str, bool]:
        return {"ok": True}

    obs = signalfire.init_observability(app)
    try:
        with caplog.at_level(logging.WARNING, logger="signalfire"):
            for _ in range(3):  # three tests' worth of TestClient: warned once
                assert asyncio.run(_serve_once(app)) == 200
        assert obs.active
        # the warnings (init's info line naming the owners is not one)
        warned = [r for r in caplog.records if r.name == "signalfire" and r.levelno >= logging.WARNING]
        assert [r.getMessage() for r in warned] == [
            f"signalfire: the collector at 127.0.0.1:{port} refuses connections; traces not flushed at lifespan "
            "shutdown (kept queued, not retried now)"
        ]
        receiver = OtlpReceiver()
        with HttpOtlpServer(receiver, port):
            assert obs.force_flush()
            assert [s.name for _, s in receiver.spans() if s.kind == 2] == ["GET /work"] * 3
    finally:
        signalfire.shutdown()
