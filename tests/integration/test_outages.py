"""Backend outages against a real app under uvicorn: the OTLP endpoint down, refusing, slow or black-holed, and the
Sentry endpoint down or black-holed. Requests are served unchanged, queues stay bounded, every loss is counted in
signalfire_telemetry_dropped_total and warned about once, and export resumes when the backend comes back."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import grpc
import httpx
import pytest

from tests.integration.reliability_server import Server, dropped, serve
from tests.receivers import BlackHoleServer, GrpcOtlpServer, HttpOtlpServer, OtlpReceiver, attributes, free_port

pytestmark = pytest.mark.integration

PROTOCOLS = ["http/protobuf", "grpc"]


def _otlp_env(endpoint: str, protocol: str, **extra: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_LOGS_EXPORTER": "otlp",  # logs leave over OTLP only when asked
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1000",
        **extra,
    }


def _receiver_server(protocol: str, receiver: OtlpReceiver, port: int = 0) -> GrpcOtlpServer | HttpOtlpServer:
    return GrpcOtlpServer(receiver, port) if protocol == "grpc" else HttpOtlpServer(receiver, port)


def _wait(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _get_all(server: Server, paths: list[str], headers: list[dict[str, str]] | None = None) -> list[httpx.Response]:
    """GET every path, 8 at a time, each on its own connection (uvicorn closes one whose request raised)."""
    per_request = headers or [{}] * len(paths)
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(
            pool.map(lambda i: httpx.get(server.url + paths[i], headers=per_request[i], timeout=30), range(len(paths)))
        )


def _warnings(server: Server, signal: str, reason: str) -> list[str]:
    return [
        line["event"]
        for line in server.log_lines()
        if line.get("logger") == "signalfire" and f" {signal} ({reason})" in str(line.get("event"))
    ]


def _exit_lines(server: Server) -> list[dict[str, object]]:
    """The structured warning lines signalfire gives at exit for what it lost (one per exit)."""
    return [
        line
        for line in server.log_lines()
        if line.get("logger") == "signalfire" and str(line.get("event")).startswith("signalfire: telemetry lost at")
    ]


def _server_request_ids(receiver: OtlpReceiver) -> set[str]:
    return {
        str(attributes(span.attributes).get("request.id"))
        for _, span in receiver.spans()
        if span.kind == 2  # SPAN_KIND_SERVER
    }


@contextmanager
def _failing_backend(mode: str, protocol: str) -> Iterator[str]:
    """An OTLP endpoint that is down (nothing listening) or refusing (503 / UNAVAILABLE); yields its URL."""
    if mode == "down":
        yield f"http://127.0.0.1:{free_port()}"
        return
    status = grpc.StatusCode.UNAVAILABLE if protocol == "grpc" else 503
    with _receiver_server(protocol, OtlpReceiver(fail_with=lambda: status)) as backend:
        yield backend.endpoint


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("mode", ["down", "refusing"])
def test_failing_backend_costs_requests_nothing_and_every_loss_is_counted(
    tmp_path: Path, mode: str, protocol: str
) -> None:
    """With the collector down or refusing, every request gets its normal answer and all three signals count drops."""
    with _failing_backend(mode, protocol) as endpoint, serve(tmp_path, **_otlp_env(endpoint, protocol)) as server:
        responses = _get_all(server, [f"/work/{i}" for i in range(30)])
        assert [(r.status_code, r.json()) for r in responses] == [(200, {"n": i}) for i in range(30)]
        # 30 server spans and 30 inner spans, plus the /ready probe's span: all lost, all counted.
        assert _wait(lambda: dropped(server.scrape(), "traces", "export_failed") >= 61), server.scrape()
        # The log batch is exported on its own schedule, independently of the span batches: wait for it too.
        assert _wait(lambda: dropped(server.scrape(), "logs", "export_failed") > 0), server.scrape()
        assert _wait(lambda: dropped(server.scrape(), "metrics", "export_failed") > 0)
        assert len(_warnings(server, "traces", "export_failed")) == 1
        assert len(_warnings(server, "logs", "export_failed")) == 1


def test_slow_backend_delays_nothing_and_receives_everything(tmp_path: Path) -> None:
    """A collector that takes 0.3 s per export still receives every span, and nothing is counted as dropped."""
    receiver = OtlpReceiver(delay=0.3)
    # slow, yet within the exporter's timeout (a loaded test machine must not turn "slow" into "timing out")
    env = _otlp_env("", "http/protobuf", OTEL_EXPORTER_OTLP_TIMEOUT="10000")
    with (
        HttpOtlpServer(receiver) as backend,
        serve(tmp_path, **{**env, "OTEL_EXPORTER_OTLP_ENDPOINT": backend.endpoint}) as server,
    ):
        ids = [uuid.uuid4().hex for _ in range(30)]
        responses = _get_all(server, [f"/work/{i}" for i in range(30)], [{"X-Request-ID": i} for i in ids])
        assert [r.status_code for r in responses] == [200] * 30
        assert receiver.wait_for(lambda r: set(ids) <= _server_request_ids(r), timeout=30)
        assert "signalfire_telemetry_dropped_total{" not in server.scrape()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_black_hole_keeps_the_queue_bounded_and_shutdown_within_its_timeout(tmp_path: Path, protocol: str) -> None:
    """A collector that never answers: 20k spans leave at most queue + one batch pending, the rest counted as
    queue_full, and SIGTERM returns within SIGNALFIRE_SHUTDOWN_TIMEOUT, not the exporter's 60 s."""
    queue, batch = 512, 128
    with BlackHoleServer() as hole:
        env = _otlp_env(
            f"http://127.0.0.1:{hole.port}",
            protocol,
            OTEL_EXPORTER_OTLP_TIMEOUT="60000",
            OTEL_BSP_MAX_QUEUE_SIZE=str(queue),
            OTEL_BSP_MAX_EXPORT_BATCH_SIZE=str(batch),
            SIGNALFIRE_SHUTDOWN_TIMEOUT="2",
        )
        with serve(tmp_path, **env) as server:
            responses = _get_all(server, ["/spans/1000"] * 20)
            assert [r.status_code for r in responses] == [200] * 20
            created = 20 * 1000 + 20 + 1  # burst spans, server spans, the /ready probe
            assert dropped(server.scrape(), "traces", "queue_full") >= created - queue - batch
            assert len(_warnings(server, "traces", "queue_full")) == 1
            elapsed = server.stop()
        # 2 s of budget; the slack is for a loaded machine, far below the exporter's 60 s timeout.
        assert elapsed < 20
        # At most the queue and the batch in flight were abandoned, and they were counted, in the exit's one
        # structured warning line (through signalfire's pipeline), with no traceback.
        (line,) = _exit_lines(server)
        assert 0 < line["dropped"]["traces"]["shutdown_timeout"] <= queue + batch
        assert line["budget_exhausted"] is True
        assert b"Traceback" not in server.output()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_export_resumes_when_the_backend_comes_back(tmp_path: Path, protocol: str) -> None:
    """Spans are lost while the collector is down; once it listens on the same port, later requests arrive."""
    port = free_port()
    env = _otlp_env(f"http://127.0.0.1:{port}", protocol)
    with serve(tmp_path, **env) as server:
        assert [r.status_code for r in _get_all(server, [f"/work/{i}" for i in range(10)])] == [200] * 10
        assert _wait(lambda: dropped(server.scrape(), "traces", "export_failed") >= 20)
        receiver = OtlpReceiver()
        with _receiver_server(protocol, receiver, port):
            ids = [uuid.uuid4().hex for _ in range(10)]

            def arrived() -> bool:
                # gRPC reconnects with backoff: keep sending until it has (each round has fresh request ids).
                if set(ids) <= _server_request_ids(receiver):
                    return True
                _get_all(server, ["/work/0"] * len(ids), [{"X-Request-ID": i} for i in ids])
                return receiver.wait_for(lambda r: set(ids) <= _server_request_ids(r), timeout=2)

            assert _wait(arrived, timeout=60)


def test_sentry_down_errors_answered_and_losses_counted(tmp_path: Path) -> None:
    """With nothing listening at the Sentry DSN, failing requests still answer 500 and lost events are counted."""
    with serve(tmp_path, SENTRY_DSN=f"http://public@127.0.0.1:{free_port()}/1") as server:
        responses = _get_all(server, [f"/boom/{i}" for i in range(10)])
        assert [r.status_code for r in responses] == [500] * 10
        assert _wait(lambda: dropped(server.scrape(), "errors", "network_error") >= 10), server.scrape()
        assert len(_warnings(server, "errors", "network_error")) == 1


def test_sentry_black_hole_answers_and_shuts_down_in_time(tmp_path: Path) -> None:
    """A Sentry endpoint that never answers changes no response, and SIGTERM still exits within the budget."""
    with BlackHoleServer() as hole:
        env = {"SENTRY_DSN": f"http://public@127.0.0.1:{hole.port}/1", "SIGNALFIRE_SHUTDOWN_TIMEOUT": "2"}
        with serve(tmp_path, **env) as server:
            responses = _get_all(server, [f"/boom/{i}" for i in range(10)] + ["/work/1"])
            assert [r.status_code for r in responses] == [500] * 10 + [200]
            elapsed = server.stop()
        assert elapsed < 20
