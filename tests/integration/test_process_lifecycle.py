"""Real processes: spans survive a normal exit, a SIGTERM and a fork, delivered to a real OTLP receiver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.support import read_line, stop

pytestmark = pytest.mark.integration

SPANS = 200


def _env(server, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SIGNALFIRE_", "SENTRY_"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=server.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=server.protocol,
        OTEL_SERVICE_NAME="lifecycle",
        OTEL_BSP_SCHEDULE_DELAY="60000",  # nothing is sent before exit: the exit path must flush
        ENVIRONMENT="production",
        OTEL_TRACES_SAMPLER_ARG="1.0",
        **extra,
    )
    return env


_started: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _stop_started_processes():
    """Whatever a test's assertions did, each process it started has ended (killed if need be) and its pipes are closed,
    so that no ResourceWarning of a running Popen fails a later test."""
    yield
    while _started:
        stop(_started.pop(), signal.SIGKILL, timeout=10)


def _script_line(stream) -> str:
    """The script's next own line on stdout, after the log lines signalfire writes there (init's owners line)."""
    line = read_line(stream)
    while line.startswith("{"):
        line = read_line(stream)
    return line


def _run(code: str, env: dict[str, str], **kwargs) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )
    _started.append(proc)
    return proc


def test_normal_exit_loses_no_span(otlp_server):
    """A script that creates spans and simply ends delivers all of them (the atexit hook flushes)."""
    proc = _run(
        f"""
        import signalfire
        signalfire.init_observability()
        for i in range({SPANS}):
            with signalfire.span("work", i=i):
                pass
        """,
        _env(otlp_server),
    )
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert len(otlp_server.receiver.spans()) == SPANS


def test_sigterm_loses_no_span_and_still_terminates(otlp_server):
    """SIGTERM flushes every span, then the process ends by the signal as it would have without signalfire."""
    proc = _run(
        f"""
        import sys, time
        import signalfire
        signalfire.init_observability()
        for i in range({SPANS}):
            with signalfire.span("work", i=i):
                pass
        print("ready", flush=True)
        time.sleep(60)
        """,
        _env(otlp_server),
    )
    assert _script_line(proc.stdout).strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM
    assert len(otlp_server.receiver.spans()) == SPANS


def test_sigterm_runs_the_applications_own_handler(otlp_server):
    """An application's SIGTERM handler installed before init still runs, after the flush."""
    proc = _run(
        """
        import signal, sys, time
        def handler(signum, frame):
            print("app handler ran", flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, handler)
        import signalfire
        signalfire.init_observability()
        with signalfire.span("work"):
            pass
        print("ready", flush=True)
        time.sleep(60)
        """,
        _env(otlp_server),
    )
    assert _script_line(proc.stdout).strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert "app handler ran" in out
    assert proc.returncode == 3
    assert len(otlp_server.receiver.spans()) == 1


def test_forked_child_exports_with_its_own_instance_id(otlp_server):
    """Spans from a forked child arrive, carrying a service.instance.id different from the parent's."""
    proc = _run(
        """
        import os
        import signalfire
        signalfire.init_observability()
        with signalfire.span("in-parent"):
            pass
        pid = os.fork()
        if pid == 0:
            with signalfire.span("in-child"):
                pass
            signalfire.shutdown()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
        """,
        _env(otlp_server),
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    by_name = {span.name: resource for resource, span in otlp_server.receiver.spans()}
    assert set(by_name) == {"in-parent", "in-child"}
    assert by_name["in-child"]["service.instance.id"] != by_name["in-parent"]["service.instance.id"]
    assert by_name["in-child"]["service.name"] == "lifecycle"


def test_fork_after_the_executor_module_is_imported_late_does_not_hang():
    """A child forked after init never hangs in the SDK's after-fork hook, whatever imported concurrent.futures when.

    The SDK's providers re-detect resources after fork through a ThreadPoolExecutor whose global lock is held across
    the fork until its own after-fork hook releases it; signalfire registers that hook first (regression: a gunicorn
    --preload worker hung for ever at start-up)."""
    code = textwrap.dedent(
        """
        import os
        import signalfire
        signalfire.init_observability(traces_exporter="none", metrics_exporter="none")
        import concurrent.futures.thread  # what a server may import only after the app initialised
        pid = os.fork()
        if pid == 0:
            with signalfire.span("child"):
                pass
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("child status", status)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "child status 0" in result.stdout


def test_sigterm_leaves_a_handler_installed_after_init_in_place(otlp_server):
    """A handler the application installs after init is not taken back by signalfire; when it hands the signal on
    (to the handler it replaced, signalfire's), the spans are flushed and the process ends by the signal."""
    proc = _run(
        """
        import os, signal, sys, time
        import signalfire
        signalfire.init_observability()
        replaced = None
        def handler(signum, frame):
            print("app handler ran", flush=True)
            replaced(signum, frame)
        replaced = signal.signal(signal.SIGTERM, handler)
        with signalfire.span("work"):
            pass
        print("ready", "app" if signal.getsignal(signal.SIGTERM) is handler else "other", flush=True)
        time.sleep(60)
        """,
        _env(otlp_server),
    )
    assert _script_line(proc.stdout).split() == ["ready", "app"]
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert out.count("app handler ran") == 1
    assert proc.returncode == -signal.SIGTERM
    assert len(otlp_server.receiver.spans()) == 1


def test_sigterm_with_a_refusing_collector_gives_it_up_and_says_so_once():
    """Nothing listens at the endpoint: SIGTERM is not held up by the exporters' retries (what they hold is counted
    as collector_unreachable), one JSON warning line says so, and no SDK retry line or traceback is printed."""
    from tests.receivers import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SIGNALFIRE_", "SENTRY_"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_LOGS_EXPORTER="otlp",
        ENVIRONMENT="production",
        OTEL_TRACES_SAMPLER_ARG="1.0",
        SIGNALFIRE_LOG_FORMAT="json",
        # a short export interval, so that the exporters are already retrying when the signal arrives
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    proc = _run(
        f"""
        import time
        import signalfire
        signalfire.init_observability()
        log = signalfire.get_logger("app")
        for i in range({SPANS}):
            with signalfire.span("work", i=i):
                log.info("step", i=i)
        time.sleep(0.5)
        print("ready", flush=True)
        time.sleep(60)
        """,
        env,
    )
    try:
        before = []  # the app's log lines come first, on the same stdout
        for _ in range(10 * SPANS):
            before.append(proc.stdout.readline())
            if before[-1].strip() in ("ready", ""):
                break
        assert before[-1].strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGTERM
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    (lost,) = [line for line in lines if str(line["event"]).startswith("signalfire: telemetry lost at shutdown")]
    assert lost["logger"] == "signalfire"
    assert "unreachable" in lost
    assert "budget_exhausted" not in lost
    # only what was still queued or retrying at the signal: given up, not retried
    assert set(lost["dropped"]["traces"]) <= {"collector_unreachable"}
    exit_part = out[out.index('"signalfire: telemetry lost') :] + err
    assert "Transient error" not in exit_part
    assert "Traceback" not in out + err
