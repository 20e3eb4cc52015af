"""The e2e_instructions benchmark's pieces work against a real uvicorn: the bounded client gets exactly the requests it
was asked for (erroring ones included), and callgrind's totals of the server process are read (no speed is asserted)."""

from __future__ import annotations

import asyncio
import time

import pytest
from benchmarks import apps, bench_e2e, bench_e2e_instructions

from tests.conftest import require_binary

pytestmark = [pytest.mark.integration]


def test_bounded_client_gets_every_request_answered_despite_closed_connections() -> None:
    """After an unhandled error uvicorn closes the connection; the client reconnects and asks again, so the count is
    exact."""
    with bench_e2e.Server("bare", apps.variant_env("bare", "http://127.0.0.1:9", "http://127.0.0.1:9")) as server:
        answered = asyncio.run(
            bench_e2e_instructions._drive("127.0.0.1", server.port, 60, 4, 10, time.monotonic() + 120)
        )
    assert answered == 60


@pytest.mark.slow
def test_callgrind_totals_of_the_server_process_are_read() -> None:
    """A uvicorn worker under callgrind serves the requests, stops on SIGTERM, and reports all threads and the main."""
    require_binary("valgrind", "valgrind")
    env = apps.variant_env("bare", "http://127.0.0.1:9", "http://127.0.0.1:9")
    totals = bench_e2e_instructions.count("bare", env, 10, connections=2, boom_every=0, warmup=2, timeout=600)
    assert 0 < totals.main <= totals.total
