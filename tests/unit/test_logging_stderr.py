"""Nothing reaches stderr unrendered: warnings and uncaught exceptions (threads, main thread) go through the log
pipeline, scrubbed; the hooks that were there before are chained and given back at shutdown."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import warnings

import signalfire

TOKEN = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"

SCRIPT = f"""
import threading, warnings
import signalfire
signalfire.init_observability(log_format="json", traces_exporter="none", metrics_exporter="none",
                              handle_sigterm=False, environment="development")
warnings.warn("token {TOKEN} leaked", UserWarning)
def work():
    raise RuntimeError("thread failed with {TOKEN}")
thread = threading.Thread(target=work, name="worker-1")
thread.start()
thread.join()
raise ValueError("main failed with {TOKEN}")
"""


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "default", "-c", script], check=False, capture_output=True, text=True, timeout=60
    )


def test_warnings_and_uncaught_exceptions_are_log_lines_not_stderr_text() -> None:
    """A warning, a thread's uncaught exception and the main thread's each become one scrubbed JSON line."""
    result = _run(SCRIPT)
    assert result.returncode == 1
    assert result.stderr == ""
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    by_logger = {line["logger"]: line for line in lines}
    assert by_logger["py.warnings"]["warning_category"] == "UserWarning"
    assert by_logger["threading"]["exception"]["type"] == "RuntimeError"
    assert by_logger["signalfire.uncaught"]["exception"]["type"] == "ValueError"
    assert TOKEN not in result.stdout


def test_a_previous_thread_hook_is_chained_and_python_default_printer_is_not() -> None:
    """An application's own threading.excepthook still runs (after signalfire's line)."""
    script = """
import threading, signalfire
calls = []
threading.excepthook = lambda args: calls.append(args.exc_type.__name__)
signalfire.init_observability(log_format="json", traces_exporter="none", metrics_exporter="none", handle_sigterm=False)
thread = threading.Thread(target=lambda: 1 / 0)
thread.start()
thread.join()
print("CALLS", calls)
"""
    result = _run(script)
    assert result.returncode == 0, result.stderr
    assert "CALLS ['ZeroDivisionError']" in result.stdout
    assert '"logger":"threading"' in result.stdout


def test_ignored_warnings_stay_ignored() -> None:
    """The warnings filters still decide: an ignored category is not logged."""
    script = """
import warnings, signalfire
signalfire.init_observability(log_format="json", traces_exporter="none", metrics_exporter="none", handle_sigterm=False)
warnings.simplefilter("ignore", DeprecationWarning)
warnings.warn("old api", DeprecationWarning)
"""
    result = _run(script)
    assert "old api" not in result.stdout + result.stderr


def test_hooks_are_given_back_at_shutdown() -> None:
    """After shutdown() warnings.showwarning, threading.excepthook and sys.excepthook are what they were."""
    before = (warnings.showwarning, threading.excepthook, sys.excepthook)
    signalfire.init_observability(traces_exporter="none", metrics_exporter="none")
    assert sys.excepthook is not before[2]
    signalfire.shutdown()
    assert (warnings.showwarning, threading.excepthook, sys.excepthook) == before
