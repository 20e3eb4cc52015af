"""Developer sessions: tests, lint, typecheck, docs, demo, bench.

`python3 -m nox -s tests` is the one command that sets up and runs the whole test suite (README.md); CI runs exactly it.
"""

from __future__ import annotations

import glob
import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "typecheck"]
# the tested OpenTelemetry release set (see constraints.txt)
CONSTRAINTS = ("-c", "constraints.txt")

PYTHON = os.environ.get("SIGNALFIRE_NOX_PYTHON", "python3")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Install signalfire with every extra and run the whole test suite with branch coverage."""
    # The bench extra holds the peers the benchmark smoke test drives (tests/integration/test_bench_smoke.py).
    session.install("-e", ".[all,test,bench]", *CONSTRAINTS)
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "report", "--fail-under=80")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "examples", "benchmarks", "docs/gen_config.py", "noxfile.py")
    session.run(
        "ruff", "format", "--check", "src", "tests", "examples", "benchmarks", "docs/gen_config.py", "noxfile.py"
    )


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/."""
    session.install("-e", ".[all,test]", "mypy", *CONSTRAINTS)
    session.run("mypy")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site with mkdocs --strict; fail if the configuration reference is stale."""
    session.install("-e", ".[all,docs]", *CONSTRAINTS)
    session.run("python", "docs/gen_config.py", "--check")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Run the example service on loopback, send it a burst of traffic including an error, show what it emitted."""
    session.install("-e", ".[all]", "uvicorn", *CONSTRAINTS)
    session.run("python", "examples/demo.py")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks against the peers: prints the table and rewrites docs/performance.md (about 15 minutes).

    Not a default session: figures need a quiet machine. Arguments go to benchmarks/run.py, e.g.
    ``nox -s bench -- --only request,micro --rounds 3`` or ``nox -s bench -- --profile``.
    """
    session.install("-e", ".[all,bench]", *CONSTRAINTS)
    session.run("python", "-m", "benchmarks.run", *session.posargs)


# The FastAPI releases the FastAPI tests run against: the oldest supported, which is the first with native telemetry
# (pyproject: fastapi>=0.142.2; 0.142.0 and 0.142.1 fail start-up when their exporter set-up is refused), the first
# where that set-up is opt-in (0.143), and the newest.
FASTAPI_VERSIONS = ("0.142.2", "0.143.0", "newest")
FASTAPI_TESTS = (
    "tests/unit/test_fastapi_single_owner.py",
    "tests/unit/test_http_middleware.py",
    "tests/unit/test_health.py",
    "tests/unit/test_metrics_http.py",
    "tests/integration/test_fastapi_owners.py",
)


@nox.session(python=PYTHON)
@nox.parametrize("fastapi", FASTAPI_VERSIONS)
def fastapi_versions(session: nox.Session, fastapi: str) -> None:
    """The FastAPI tests against the oldest supported FastAPI (0.142.2), 0.143 and the newest (a few minutes)."""
    session.install("-e", ".[all,test,bench]", *CONSTRAINTS)
    if fastapi == "newest":
        session.install("--upgrade", "fastapi", "starlette", *CONSTRAINTS)
    else:
        # pip moves Starlette to the range this FastAPI release accepts
        session.install(f"fastapi=={fastapi}", *CONSTRAINTS)
    session.run(
        "python", "-c", "import fastapi, starlette; print('fastapi', fastapi.__version__, starlette.__version__)"
    )
    session.run("python", "-m", "pytest", *FASTAPI_TESTS, "-q", "-p", "no:cacheprovider", *session.posargs)


# The tests that exercise third-party contracts, for the compat sessions below: every contract test of signalfire's
# _compat layer, and the unit tests of each seam where signalfire meets another library (OpenTelemetry's SDK and
# exporters, sentry-sdk, structlog, prometheus-client, Starlette/FastAPI, the SQLAlchemy/Redis/httpx instrumentations,
# uvicorn, pydantic). A couple of minutes; the whole suite runs in `tests`.
CONTRACT_TESTS = (
    "tests/unit/test_drops.py",  # the SDK's batch processors and sentry-sdk's transport hook
    "tests/unit/test_tracing.py",  # span processors and exporters, ReadableSpan
    "tests/unit/test_otlp_encode.py",  # the OTLP encoding against opentelemetry-proto
    "tests/unit/test_metrics_otel.py",  # MetricReader, meters and instruments
    "tests/unit/test_metrics_registry.py",  # prometheus-client
    "tests/unit/test_errors.py",  # sentry-sdk
    "tests/unit/test_logging.py",  # structlog and the standard library's logging
    "tests/unit/test_http_middleware.py",  # Starlette and FastAPI
    "tests/unit/test_fastapi_single_owner.py",  # FastAPI's native telemetry
    "tests/unit/test_integrations.py",  # the SQLAlchemy, Redis and httpx instrumentations
    "tests/unit/test_lifespan_flush.py",  # uvicorn
    "tests/unit/test_settings.py",  # pydantic
    "tests/unit/test_public_api.py",
)


def _contract_tests() -> list[str]:
    return sorted(glob.glob("tests/unit/test_compat_*.py")) + [t for t in CONTRACT_TESTS if os.path.exists(t)]


@nox.session(python=PYTHON)
def tests_newest(session: nox.Session) -> None:
    """The contract tests against the newest release of every dependency: no constraints file, everything upgraded.

    A failure here names a contract that the next release of a dependency breaks (the fix is in signalfire/_compat/,
    or an upper bound in pyproject.toml).
    """
    session.install("-U", "--upgrade-strategy", "eager", "-e", ".[all,test]")
    session.run("python", "-m", "pip", "list", "--format", "freeze", silent=False)
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *_contract_tests(), *session.posargs)


@nox.session(python=PYTHON)
def tests_oldest(session: nox.Session) -> None:
    """The contract tests against the oldest supported releases: pyproject.toml's floors, pinned in
    constraints-oldest.txt (keep the two in step)."""
    # Every extra but `config`: opentelemetry-configuration pins the SDK exactly (0.66b1 needs 1.45.1), so it cannot
    # sit beside the SDK's floor (1.45.0); the main suite tests it at the constraints.txt set.
    session.install("-e", ".[fastapi,sqlalchemy,redis,httpx,dashboards,test]", "-c", "constraints-oldest.txt")
    session.run("python", "-m", "pip", "list", "--format", "freeze", silent=False)
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *_contract_tests(), *session.posargs)
