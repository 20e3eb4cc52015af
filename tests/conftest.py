"""Shared fixtures: every test starts with signalfire shut down and an environment free of OTEL_/SENTRY_ variables."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator

import pytest

from signalfire import _runtime
from tests.receivers import GrpcOtlpServer, HttpOtlpServer
from tests.servers import PostgresServer, RedisServer, find_postgres_bin

# Variables that configure signalfire; a developer's shell must not change what the tests see.
_CONFIG_PREFIXES = ("OTEL_", "SENTRY_", "SIGNALFIRE_", "PROMETHEUS_MULTIPROC_DIR")
_CONFIG_NAMES = ("ENVIRONMENT", "DEPLOYMENT_ENVIRONMENT", "LOG_LEVEL", "APP_VERSION", "GIT_SHA")


@pytest.fixture(autouse=True)
def _clean_signalfire(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No configuration from the developer's shell; signalfire reset (shut down, warnings forgotten) before and after
    each test."""
    for name in list(os.environ):
        if name.startswith(_CONFIG_PREFIXES) or name in _CONFIG_NAMES:
            monkeypatch.delenv(name)
    _runtime.reset()
    yield
    _runtime.reset()


@pytest.fixture
def logging_module_as_it_was() -> Iterator[None]:
    """For tests that apply a server's logging configuration (dictConfig rewrites the root's and the server loggers'
    handlers, levels and propagation): put them back, so later tests see the logging module as the suite left it.
    pytest attaches its capture handlers to loggers that do not propagate, so a leftover config changes what later
    tests capture."""
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.error", "gunicorn.access"]
    saved = {
        n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level, logging.getLogger(n).propagate)
        for n in names
    }
    yield
    import signalfire

    signalfire.shutdown()
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if handler not in handlers:
                logger.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in logger.handlers:
                logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def require_binary(name: str, package: str) -> str:
    """The path of a server binary the test needs. Locally a missing one skips the test with what to install; in CI
    (CI=true) it fails the run, because a skipped integration test proves nothing."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed: apt-get install {package}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI must run every integration test)")
        pytest.skip(message)
    return path


@pytest.fixture(params=["grpc", "http/protobuf"])
def otlp_server(request: pytest.FixtureRequest) -> Iterator[GrpcOtlpServer | HttpOtlpServer]:
    """A real OTLP receiver on loopback, once over gRPC and once over HTTP/protobuf; ``.protocol`` says which."""
    server: GrpcOtlpServer | HttpOtlpServer = GrpcOtlpServer() if request.param == "grpc" else HttpOtlpServer()
    server.protocol = request.param  # type: ignore[union-attr]
    with server:
        yield server


@pytest.fixture(scope="session")
def _redis_session() -> Iterator[RedisServer]:
    with RedisServer(require_binary("redis-server", "redis-server")) as server:
        yield server


@pytest.fixture
def redis_server(_redis_session: RedisServer) -> RedisServer:
    """A real redis-server on 127.0.0.1 (one per test session), running and empty at the start of each test.

    ``.url``, ``.host``, ``.port``; ``.stop()``, ``.start()`` and ``.restart()`` simulate an outage on the same port.
    """
    _redis_session.start()
    _redis_session.flushall()
    return _redis_session


@pytest.fixture(scope="session")
def _postgres_session() -> Iterator[PostgresServer]:
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        require_binary("initdb", "postgresql")
        raise AssertionError("unreachable: require_binary skips or fails")  # pragma: no cover
    with PostgresServer(bin_dir) as server:
        yield server


@pytest.fixture
def postgres_server(_postgres_session: PostgresServer) -> PostgresServer:
    """A real PostgreSQL on 127.0.0.1 (one per test session), running at the start of each test.

    ``.dsn`` (psycopg/asyncpg), ``.sqlalchemy_url("psycopg" | "asyncpg")``, ``.psql(sql)`` as superuser; ``.stop()``,
    ``.start()`` and ``.restart()`` simulate an outage on the same port. Tests create their own tables.
    """
    _postgres_session.start()
    return _postgres_session
