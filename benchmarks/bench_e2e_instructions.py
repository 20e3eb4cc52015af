"""Instructions per request of the *server process* under a real uvicorn (run from run.py, not a child itself).

``python -m benchmarks.run --only e2e_instructions`` runs, for each setup, one uvicorn worker (the same command as the
end-to-end section: ``benchmarks.apps:create_app``, access log off, log level warning, stdout and stderr to a file)
under ``valgrind --tool=callgrind``, sends it a fixed number of requests from a bounded asyncio client in the
orchestrating process (16 keep-alive connections, like wrk; one request in ``boom_every`` to ``/boom``, 0 for none),
stops it with SIGTERM (uvicorn drains, runs lifespan shutdown, signalfire flushes) and reads callgrind's total. Two
runs of N1 and N2 requests: (total2 - total1) / (N2 - N1) is what one request costs the server process, with
uvicorn's own parsing, the event loop, the socket system calls' user-space side, log writes and every background
thread (span export, Sentry's transport) included, and start-up, warm-up and shutdown cancelled out.

The exporters' timers are set beyond the run (``OTEL_BSP_SCHEDULE_DELAY``, ``OTEL_METRIC_EXPORT_INTERVAL``), as in the
in-process *instructions* section: under valgrind a run lasts tens of seconds, and a timer-driven export per five
seconds would add a cost that depends on how slow valgrind was, not on the requests. Spans then leave in full batches
of 512 and at shutdown, which is also how they leave under a real load of more than 100 requests/s.

``keep`` writes each run's callgrind file, so ``callgrind_annotate`` can show where the difference goes
(``python -m benchmarks.bench_e2e_instructions --diff small.out large.out N``: per-function self cost per request).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from benchmarks._harness import ROOT, ChildFailed, callgrind_total, child_env
from benchmarks.bench_e2e import _free_port, keep_alive_get

# Environment of every setup on top of its variant's: exports by batch size and at shutdown only (see the docstring).
QUIET_TIMERS = {"OTEL_BSP_SCHEDULE_DELAY": "3600000", "OTEL_METRIC_EXPORT_INTERVAL": "3600000"}


async def _drive(host: str, port: int, requests: int, connections: int, boom_every: int, deadline: float) -> int:
    """Send ``requests`` GETs over ``connections`` keep-alive connections; returns how many were answered.

    A connection the server closes (``connection: close``, or a reset after an unhandled error) is opened again and
    the unanswered request is sent again, so exactly ``requests`` requests are answered unless ``deadline`` passes.
    """
    issued = 0
    answered = 0

    def take() -> int | None:
        nonlocal issued
        if issued >= requests or time.monotonic() > deadline:
            return None
        issued += 1
        return issued

    async def connection() -> None:
        nonlocal answered, issued
        number = take()
        while number is not None:
            writer: asyncio.StreamWriter | None = None
            try:
                async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                    reader, writer = await asyncio.open_connection(host, port)
                    while number is not None:
                        path = "/boom" if boom_every and number % boom_every == 0 else "/items/42"
                        kept_open = await keep_alive_get(reader, writer, path, "user-agent: bench/1.0\r\n")
                        answered += 1
                        number = take()
                        if not kept_open:
                            break
            except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                # The server closed the connection before answering (after an unhandled error): ask again.
                issued -= 1
                number = take()
            except TimeoutError:
                return
            finally:
                if writer is not None:
                    writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return answered


class Totals(NamedTuple):
    """Callgrind's instruction totals of one server process: all threads, and the event loop's (the main) thread."""

    total: int
    main: int


def count(
    variant: str,
    env: Mapping[str, str],
    requests: int,
    *,
    connections: int = 16,
    boom_every: int = 100,
    warmup: int = 20,
    keep: str | None = None,
    timeout: float = 900,
) -> Totals:
    """Callgrind's instruction totals of one uvicorn process serving ``warmup`` then ``requests`` requests."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise ChildFailed("valgrind is not installed (apt-get install valgrind)")
    port = _free_port()
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="sfbench-callgrind-uvicorn-") as tmp:
        out_file = keep or str(Path(tmp) / "callgrind.out")
        log_path = Path(tmp) / "uvicorn.log"
        command = [
            valgrind, "--tool=callgrind", f"--callgrind-out-file={out_file}", "--separate-threads=yes",
            sys.executable, "-m", "uvicorn", "benchmarks.apps:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                command,
                env=child_env({**env, **QUIET_TIMERS, "BENCH_VARIANT": variant}),
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_ready(proc, f"http://127.0.0.1:{port}/items/1", deadline, log_path)
            for n in (warmup, requests):
                if n:
                    got = asyncio.run(_drive("127.0.0.1", port, n, connections, boom_every, deadline))
                    if got != n:
                        raise ChildFailed(f"{variant}: {got} of {n} requests answered before the deadline")
            proc.send_signal(signal.SIGTERM)
            proc.wait(max(30.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        output = log_path.read_text(errors="replace")
        if keep:
            Path(f"{keep}.log").write_text(output)
        main = _summary(Path(f"{out_file}-01"))
    if main is None:
        raise ChildFailed(f"{variant}: callgrind wrote no summary for the event-loop thread:\n{output[-3000:]}")
    return Totals(callgrind_total(output), main)


def _compile_sources() -> None:
    """Write the bytecode of signalfire's and the benchmarks' sources before the first server starts: in a fresh
    clone the first run would otherwise compile every module it imports (some 350M instructions counted as requests:
    the smaller run's total then exceeds the larger's)."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "src"), str(ROOT / "benchmarks")],
        check=True,
        timeout=300,
    )


def _summary(path: Path) -> int | None:
    try:
        found = re.search(r"^summary: (\d+)", path.read_text(errors="replace"), re.MULTILINE)
    except OSError:
        return None
    return int(found.group(1)) if found else None


def _wait_ready(proc: subprocess.Popen[bytes], url: str, deadline: float, log: Path) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ChildFailed(f"uvicorn exited {proc.returncode}: {log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise ChildFailed("uvicorn under callgrind did not answer before the deadline")


def per_request(
    variant: str, env: Mapping[str, str], small: int, large: int, *, boom_every: int = 100, keep: str | None = None
) -> Totals:
    """Instructions one request costs the server process (all threads, the event loop's thread): two runs, the
    difference over the difference."""
    _compile_sources()
    a, b = (count(variant, env, n, boom_every=boom_every, keep=f"{keep}.{n}" if keep else None) for n in (small, large))
    return Totals((b.total - a.total) // (large - small), (b.main - a.main) // (large - small))


def _self_costs(path: str) -> dict[str, int]:
    """Self cost per function (inclusive of nothing) from ``callgrind_annotate``."""
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no", path],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    costs: dict[str, int] = {}
    for line in out.splitlines():
        found = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(.+)$", line)
        if found and not found[2].startswith("PROGRAM TOTALS"):
            costs[found[2].strip()] = costs.get(found[2].strip(), 0) + int(found[1].replace(",", ""))
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description="per-function difference of two callgrind files, per request")
    parser.add_argument("--diff", nargs=3, metavar=("SMALL", "LARGE", "REQUESTS"), required=True)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    small, large, requests = args.diff[0], args.diff[1], int(args.diff[2])
    a, b = _self_costs(small), _self_costs(large)
    rows = sorted(((b.get(k, 0) - a.get(k, 0)) / requests, k) for k in set(a) | set(b))
    total = sum(cost for cost, _ in rows)
    print(f"total {total / 1000:.1f} k instructions/request")
    for cost, name in reversed(rows[-args.top :]):
        print(f"{cost / 1000:9.1f}k  {name}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
