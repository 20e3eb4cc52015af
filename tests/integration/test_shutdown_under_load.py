"""SIGTERM under load: every request a client saw completed has its spans, metric increments, log records and Sentry
events delivered to the loopback receivers before the process exits. Counted: zero lost."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.integration.reliability_server import serve
from tests.receivers import HttpOtlpServer, OtlpReceiver, SentryIngestServer, attributes

pytestmark = pytest.mark.integration

WORKERS = 8
BEFORE_SIGTERM = 150  # completed requests before the signal is sent
MAX_REQUESTS = 2000  # bound on the load, whatever happens


class Load:
    """WORKERS threads sending /work and /boom requests until told to stop or the server goes away."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.completed: list[tuple[str, str, int, int]] = []  # (request id, kind, status, n)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.sent = 0
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(WORKERS)]

    def _next(self) -> int | None:
        with self.lock:
            if self.stop.is_set() or self.sent >= MAX_REQUESTS:
                return None
            self.sent += 1
            return self.sent

    def _run(self) -> None:
        while (n := self._next()) is not None:
            request_id = uuid.uuid4().hex
            kind = "boom" if n % 10 == 0 else "work"
            try:
                # a fresh connection per request: uvicorn closes one whose request raised
                response = httpx.get(f"{self.url}/{kind}/{n}", headers={"X-Request-ID": request_id}, timeout=30)
            except httpx.TransportError:
                return  # the server is shutting down: no new connections
            with self.lock:
                self.completed.append((request_id, kind, response.status_code, n))

    def count(self) -> int:
        with self.lock:
            return len(self.completed)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def _counter_total(receiver: OtlpReceiver, name: str) -> float:
    """The last cumulative value of a monotonic counter as pushed over OTLP (summed over its series)."""
    latest = 0.0
    for _, metric in receiver.metrics():
        if metric.name == name:
            latest = sum(point.as_double or point.as_int for point in metric.sum.data_points)
    return latest


@pytest.mark.parametrize("server_name", ["uvicorn", "gunicorn"])
def test_sigterm_under_load_loses_nothing_that_completed(tmp_path: Path, server_name: str) -> None:
    """Spans, metric increments, OTLP log records and Sentry events of every completed request arrive after SIGTERM,
    under uvicorn and under gunicorn with one uvicorn worker."""
    receiver = OtlpReceiver()
    with HttpOtlpServer(receiver) as otlp, SentryIngestServer() as sentry:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_LOGS_EXPORTER": "otlp",  # logs leave over OTLP only when asked
            # Long intervals: what arrives was flushed by the shutdown, not exported along the way.
            "OTEL_BSP_SCHEDULE_DELAY": "30000",
            "OTEL_METRIC_EXPORT_INTERVAL": "60000",
            "SENTRY_DSN": sentry.dsn,
            "SIGNALFIRE_SHUTDOWN_TIMEOUT": "10",
        }
        with serve(tmp_path, server=server_name, **env) as server:
            with Load(server.url) as load:
                deadline = time.monotonic() + 120
                while load.count() < BEFORE_SIGTERM and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert load.count() >= BEFORE_SIGTERM, "the load did not get going"
                server.proc.send_signal(15)  # SIGTERM while requests are in flight
                server.proc.wait(60)
            assert server.proc.returncode is not None

        completed = list(load.completed)
        statuses = {(kind, status) for _, kind, status, _ in completed}
        assert statuses <= {("work", 200), ("boom", 500)}, statuses
        work_ids = {rid for rid, kind, _, _ in completed if kind == "work"}
        boom_ids = {rid for rid, kind, _, _ in completed if kind == "boom"}
        assert len(work_ids) + len(boom_ids) >= BEFORE_SIGTERM

        # spans: one server span per completed request
        server_spans = {
            str(attributes(span.attributes).get("request.id")) for _, span in receiver.spans() if span.kind == 2
        }
        assert work_ids | boom_ids <= server_spans, f"lost {len((work_ids | boom_ids) - server_spans)} spans"

        # metrics: the counter the /work route increments counts every completed /work request
        assert _counter_total(receiver, "reliability.work") >= len(work_ids)

        # logs: the route's own log record of every completed request, exported over OTLP
        logged = {
            str(attributes(record.attributes).get("request_id"))
            for _, record in receiver.logs()
            if record.body.string_value in ("work done", "about to fail")
        }
        assert work_ids | boom_ids <= logged, f"lost {len((work_ids | boom_ids) - logged)} log records"

        # Sentry: one event per completed failing request
        events = sentry.events()
        messages = {value["value"] for event in events for value in (event.get("exception") or {}).get("values", [])}
        expected = {f"boom {n}" for _, kind, _, n in completed if kind == "boom"}
        assert expected <= messages, f"lost {len(expected - messages)} of {len(expected)} Sentry events"
