"""Running measurements in fresh child processes and summarising them.

A child is ``python -m benchmarks.<module> ... --result FILE``: it writes one JSON object to FILE and nothing it prints
is measured (its stdout and stderr go to a log file, shown when it fails). The child imports the same signalfire as
the orchestrator (its directory leads PYTHONPATH), and its environment is stripped of any OTEL_/SENTRY_/SIGNALFIRE_
variable of the developer's shell before the variant's own are added.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
_CONFIG_PREFIXES = ("OTEL_", "SENTRY_", "SIGNALFIRE_", "LOGFIRE_", "PROMETHEUS_MULTIPROC_DIR", "BENCH_")
_CONFIG_NAMES = ("ENVIRONMENT", "DEPLOYMENT_ENVIRONMENT", "LOG_LEVEL", "APP_VERSION", "GIT_SHA")


class Pair(NamedTuple):
    """A micro-benchmark comparison: ``case`` against ``baseline`` (both names in the module's CASES).

    ``target`` is the issue's ceiling for case/baseline (None: reported only). ``same_process``: the two set-ups can
    live in one process (the same provider, say), so the child alternates loops of the two and the ratio is the median
    of per-loop ratios -- far steadier than a ratio of figures from two processes.
    """

    label: str
    case: str
    baseline: str
    target: float | None = None
    same_process: bool = False


class ChildFailed(RuntimeError):
    """A benchmark child process exited non-zero or wrote no result."""


def child_env(extra: Mapping[str, str] = ()) -> dict[str, str]:
    """A clean environment for a child: no configuration from the shell, this checkout's code first on the path."""
    import signalfire

    env = {k: v for k, v in os.environ.items() if not (k.startswith(_CONFIG_PREFIXES) or k in _CONFIG_NAMES)}
    src = str(Path(signalfire.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([src, str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["PYTHONHASHSEED"] = "0"
    # Installed packages run from bytecode (pip compiles it at install). A shell with PYTHONDONTWRITEBYTECODE set would
    # make every child compile this checkout's signalfire from source again, while the peers' site-packages have their
    # bytecode: children write it, so after a first (discarded) run every variant imports from bytecode alike.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # logfire registers a pydantic plugin that pydantic imports when the first model is built, so in an environment
    # holding logfire every pydantic user (signalfire's Settings, FastAPI) pays for importing logfire. Measure each
    # variant as if installed alone; the logfire variants switch it back on (variant_env).
    env["PYDANTIC_DISABLE_PLUGINS"] = "logfire-plugin"
    env.update(extra)
    return env


def run_child(
    module: str,
    args: Sequence[str],
    env: Mapping[str, str] = (),
    timeout: float = 600,
    prefix: Sequence[str] = (),
) -> dict[str, Any]:
    """Run ``python -m benchmarks.<module> *args --result FILE`` in a fresh process and return its JSON result.

    ``prefix`` runs the child under another program (valgrind); the result then also holds the child's combined
    output as ``output``, where that program reports.
    """
    with tempfile.TemporaryDirectory(prefix="sfbench-") as tmp:
        result = Path(tmp) / "result.json"
        log = Path(tmp) / "output.log"
        command = [*prefix, sys.executable, "-m", f"benchmarks.{module}", *args, "--result", str(result)]
        with log.open("wb") as out:
            proc = subprocess.run(
                command,
                env=child_env(env),
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        if proc.returncode != 0 or not result.exists():
            tail = log.read_text(errors="replace")[-3000:]
            raise ChildFailed(f"{' '.join(command)} exited {proc.returncode}:\n{tail}")
        data: dict[str, Any] = json.loads(result.read_text())
        if prefix:
            data["output"] = log.read_text(errors="replace")
        return data


def callgrind_total(output: str) -> int:
    """The instruction total ``valgrind --tool=callgrind`` printed (``Collected : N``) in a child's output; ChildFailed
    when there is none."""
    found = re.search(r"Collected : (\d+)", output)
    if found is None:
        raise ChildFailed(f"callgrind printed no total:\n{output[-2000:]}")
    return int(found.group(1))


def write_result(path: str, data: Mapping[str, Any]) -> None:
    """What a child calls last."""
    Path(path).write_text(json.dumps(data))


def median(values: Sequence[float]) -> float:
    """The median (0.0 for nothing)."""
    return statistics.median(values) if values else 0.0


def spread(values: Sequence[float]) -> float:
    """Half the range relative to the median: a rough noise figure for the report (0.05 is +/-5%)."""
    if len(values) < 2:
        return 0.0
    mid = median(values)
    return (max(values) - min(values)) / 2 / mid if mid else 0.0


def time_per_call(op: Callable[[], Any], number: int, repeat: int) -> list[float]:
    """CPU nanoseconds of the calling thread per call of ``op``, for each of ``repeat`` loops of ``number`` calls
    (after one warm-up loop). Thread CPU time, not wall time: on a shared machine the wall clock also counts the
    time spent waiting for a core, which has nothing to do with the operation."""
    timings = []
    for i in range(repeat + 1):
        start = time.thread_time_ns()
        for _ in range(number):
            op()
        elapsed = time.thread_time_ns() - start
        if i:
            timings.append(elapsed / number)
    return timings


async def time_per_call_async(op: Callable[[], Any], number: int, repeat: int) -> list[float]:
    """time_per_call for a coroutine function, awaited inside the running loop."""
    timings = []
    for i in range(repeat + 1):
        start = time.thread_time_ns()
        for _ in range(number):
            await op()
        elapsed = time.thread_time_ns() - start
        if i:
            timings.append(elapsed / number)
    return timings


def rss_bytes() -> int:
    """The resident set size of this process now."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """The peak resident set size of this process so far (VmHWM)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0
