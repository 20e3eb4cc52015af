"""An app with its own Sentry client (default integrations, LoggingIntegration among them) under a real uvicorn, to a
real ingest endpoint: an unhandled error is one event, and uvicorn's "Exception in ASGI application" record about it
becomes no second event, not even one built and then dropped (which Sentry would count as filtered by the SDK), while
every other error record still reaches Sentry and the app's own handler on uvicorn.error still gets uvicorn's."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.reliability_server import ROOT, Server, serve
from tests.receivers import SentryIngestServer, free_port

pytestmark = pytest.mark.integration

APP = "tests.apps.own_sentry_app:app"
SECRET = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"


@pytest.fixture
def ingest() -> Iterator[SentryIngestServer]:
    with SentryIngestServer() as server:
        yield server


def discarded_errors(ingest: SentryIngestServer) -> list[dict[str, Any]]:
    """The error events sentry-sdk reported (client reports) as built and then discarded."""
    found = []
    for envelope in ingest.received():
        for report in envelope.payloads("client_report"):
            found += [d for d in report.get("discarded_events", ()) if d.get("category") == "error"]
    return found


# Who reports the unhandled error: sentry-sdk's auto-enabled Starlette integration (the app's defaults), or signalfire's
# middleware (the app left the auto-enabled integrations out); the event's mechanism says which.
REPORTERS = {"on": "starlette", "off": "signalfire.asgi"}


@pytest.fixture(params=sorted(REPORTERS))
def web(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def served_boom(tmp_path: Path, ingest: SentryIngestServer, web: str) -> Iterator[tuple[Server, list[dict[str, Any]]]]:
    """The app served, one GET /boom, the server stopped (SIGTERM: lifespan shutdown flushes): server and events."""
    with serve(tmp_path, app=APP, SENTRY_DSN=ingest.dsn, APP_SENTRY_WEB=web) as server:
        assert httpx.get(f"{server.url}/boom", timeout=10).status_code == 500
        server.stop()
        yield server, ingest.events()


def test_one_unhandled_error_is_one_event_linked_and_scrubbed(
    served_boom: tuple[Server, list[dict[str, Any]]], ingest: SentryIngestServer, web: str
) -> None:
    """One report is the only event: the exception, the trace link, the request id; the secret gone."""
    server, events = served_boom
    (event,) = events
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["mechanism"]["type"] == REPORTERS[web]
    assert event["environment"] == "own-client"  # the app's client, kept
    trace_id = event["contexts"]["trace"]["trace_id"]
    assert len(trace_id) == 32
    assert int(trace_id, 16)
    (line,) = [ln for ln in server.log_lines() if "Exception in ASGI application" in ln.get("event", "")]
    assert line["trace_id"] == trace_id
    assert event["tags"]["request_id"] == line["request_id"]
    assert SECRET.encode() not in ingest.raw()


def test_the_servers_record_of_it_is_never_built_into_an_event(
    served_boom: tuple[Server, list[dict[str, Any]]], ingest: SentryIngestServer
) -> None:
    """No error event was built and discarded for uvicorn's record (sentry-sdk counts those in its client reports)."""
    assert discarded_errors(ingest) == []


def test_the_apps_own_handler_on_uvicorn_error_still_receives_the_record(
    served_boom: tuple[Server, list[dict[str, Any]]],
) -> None:
    """Only Sentry's event handler is filtered: the app's handler on uvicorn.error gets uvicorn's record."""
    server, _ = served_boom
    assert b"APP-HANDLER uvicorn.error Exception in ASGI application" in server.output()


def test_a_logged_unrelated_exception_is_still_an_event(tmp_path: Path, ingest: SentryIngestServer) -> None:
    """A record with exc_info of an exception signalfire did not report reaches Sentry through the app's integration."""
    with serve(tmp_path, app=APP, SENTRY_DSN=ingest.dsn) as server:
        assert httpx.get(f"{server.url}/logged", timeout=10).status_code == 200
        server.stop()
    (event,) = ingest.events()
    assert event["logger"] == "shop.inventory"
    assert event["logentry"]["formatted"] == "inventory lookup failed"
    assert event["exception"]["values"][-1]["type"] == "KeyError"
    assert discarded_errors(ingest) == []


def test_a_lifespan_startup_failure_is_still_an_event(tmp_path: Path, ingest: SentryIngestServer) -> None:
    """uvicorn's record of a failed lifespan start-up (on uvicorn.error too) still reaches Sentry."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SIGNALFIRE_", "SENTRY_"))}
    environment.update(
        ENVIRONMENT="production",
        SIGNALFIRE_LOG_FORMAT="json",
        SENTRY_DSN=ingest.dsn,
        APP_FAIL_STARTUP="1",
        PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}",
    )
    command = [sys.executable, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(free_port())]
    command += ["--no-access-log", "--log-level", "warning"]
    proc = subprocess.run(command, env=environment, cwd=ROOT, capture_output=True, timeout=60, check=False)
    assert proc.returncode != 0, proc.stdout.decode(errors="replace")[-2000:]
    events = ingest.events()
    startup = [e for e in events if "the database is unreachable" in str(e.get("logentry") or e.get("exception"))]
    assert startup, f"no start-up failure event among {events}"
    assert startup[0]["logger"] == "uvicorn.error"
