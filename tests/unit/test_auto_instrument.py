"""Automatic instrumentation at init: libraries imported later are instrumented at import, and not imported early."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SIGNALFIRE_", "SENTRY_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_libraries_not_yet_imported_are_instrumented_when_imported() -> None:
    """init does not import httpx/redis/sqlalchemy itself; importing one afterwards instruments it."""
    result = _run(
        """
        import sys
        import signalfire
        signalfire.init_observability(traces_exporter="none", metrics_exporter="none", handle_sigterm=False)
        assert not {"httpx", "redis", "sqlalchemy"} & set(sys.modules), sorted(sys.modules)
        import httpx
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        assert HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
        signalfire.shutdown()
        assert not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "ok"  # after init's owners line


def test_a_library_imported_after_shutdown_is_left_alone() -> None:
    """The import hook outlives the instance but does nothing once signalfire is shut down."""
    result = _run(
        """
        import signalfire
        signalfire.init_observability(traces_exporter="none", metrics_exporter="none", handle_sigterm=False)
        signalfire.shutdown()
        import redis
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        assert not RedisInstrumentor().is_instrumented_by_opentelemetry
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "ok"  # after init's owners line
