"""Synchronisation and subprocess helpers shared by the tests: wait on a condition (never a bare sleep), and start a
process that is always stopped and waited for, whatever the test does in between.

    with started([sys.executable, "-m", "uvicorn", ...], stdout=subprocess.PIPE, text=True) as proc:
        wait_until(lambda: port_open(port), timeout=30, message="uvicorn did not listen")
        ...
    # here the process has ended (SIGTERM, then SIGKILL after stop_timeout) and its pipes are closed
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

__all__ = ["port_open", "read_line", "started", "stop", "wait_until"]

T = TypeVar("T")

# How often a condition is polled: short enough not to slow a test, long enough not to load a busy machine.
_POLL_S = 0.02


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, *, interval: float = _POLL_S, message: str | None = None
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that; fail the test after ``timeout`` seconds.

    An exception from the predicate counts as "not yet" (a server not listening yet refuses connections); the last one
    is chained to the failure, so the reason is in the report.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except Exception as error:
            last_error = error
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            text = message or f"condition not met within {timeout} s"
            raise AssertionError(text + (f" (last error: {last_error!r})" if last_error else "")) from last_error
        time.sleep(interval)  # polling a condition, not synchronising on time


def read_line(stream: Any, timeout: float = 30.0) -> Any:
    """One line from a subprocess's pipe; fails after ``timeout`` seconds instead of blocking for ever on a child that
    hangs before it prints (the reader thread ends when the process is stopped and the pipe closes)."""
    line: list[Any] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not line:
        raise AssertionError(f"no line from the process within {timeout} s")
    return line[0]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 30.0) -> tuple[Any, Any]:
    """Send ``sig`` (if the process still runs), wait up to ``timeout`` seconds, then SIGKILL; returns what it wrote to
    its pipes (``communicate()``), and the process is reaped and its pipes closed in every case."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


@contextlib.contextmanager
def started(
    argv: Sequence[str], *, stop_signal: int = signal.SIGTERM, stop_timeout: float = 30.0, **popen: Any
) -> Iterator[subprocess.Popen[Any]]:
    """``subprocess.Popen(argv, **popen)`` for the body of a ``with``; on leaving it (also by an exception or a failed
    assertion) the process is stopped with :func:`stop`, so no test leaves one running for the next to trip over."""
    proc: subprocess.Popen[Any] = subprocess.Popen(argv, **popen)
    try:
        yield proc
    finally:
        stop(proc, stop_signal, stop_timeout)
