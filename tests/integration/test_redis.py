"""Redis against a real redis-server on loopback: sync and asyncio clients, spans, durations, cache hit/miss."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
import redis
import redis.asyncio

import signalfire
from signalfire.testing import Telemetry
from tests.servers import RedisServer

pytestmark = pytest.mark.integration


def _redis_spans(telemetry: Telemetry) -> list[Any]:
    return [s for s in telemetry.spans if (s.attributes or {}).get("db.system") == "redis"]


def _durations(telemetry: Telemetry) -> dict[str, int]:
    return {
        dict(p.attributes)["db.operation.name"]: p.count
        for p in telemetry.metric_points("db.client.operation.duration")
        if dict(p.attributes)["db.system.name"] == "redis"
    }


def test_sync_client_commands_are_traced_without_values(telemetry: Telemetry, redis_server: RedisServer) -> None:
    """SET and GET on a sync client: spans with db.system=redis and the command with ? for every argument."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.set("session:42", "token-s3cr3t")
        assert client.get("session:42") == b"token-s3cr3t"
    finally:
        client.close()
    statements = [s.attributes["db.statement"] for s in _redis_spans(telemetry)]
    assert statements == ["SET ? ?", "GET ?"]
    telemetry.assert_no_secrets(["token-s3cr3t", "session:42"])


def test_sync_client_command_durations_are_measured(telemetry: Telemetry, redis_server: RedisServer) -> None:
    """db.client.operation.duration counts each command under db.system.name=redis and its name."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.set("k", "v")
        client.get("k")
        client.get("missing")
    finally:
        client.close()
    assert _durations(telemetry) == {"SET": 1, "GET": 2}


def test_asyncio_client_is_traced_and_measured(telemetry: Telemetry, redis_server: RedisServer) -> None:
    """redis.asyncio: commands and a pipeline produce spans and durations."""

    async def work() -> None:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        try:
            await client.set("a", "1")
            await client.incr("a")
            async with client.pipeline() as pipe:
                pipe.get("a")
                pipe.delete("a")
                await pipe.execute()
        finally:
            await client.aclose()

    asyncio.run(work())
    names = [s.name for s in _redis_spans(telemetry)]
    assert names[:2] == ["SET", "INCRBY"]  # redis-py sends INCR as INCRBY
    assert len(names) == 3
    assert _durations(telemetry) == {"SET": 1, "INCRBY": 1, "PIPELINE": 1}


@pytest.mark.signalfire_settings(redis_capture_args=True)
def test_capture_args_records_the_key_never_the_value(telemetry: Telemetry, redis_server: RedisServer) -> None:
    """SIGNALFIRE_REDIS_CAPTURE_ARGS=true puts the command and its key in db.statement, never the value (issue 17)."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.set("user:7", "blue")
        client.hset("profile:7", mapping={"email": "ann@example.com"})
    finally:
        client.close()
    statements = [s.attributes["db.statement"] for s in _redis_spans(telemetry)]
    assert statements == ["SET user:7 ?", "HSET profile:7 ? ?"]


@pytest.mark.signalfire_settings(redis_capture_args=True)
@pytest.mark.parametrize(
    "command",
    [
        ("AUTH", "svc-user", "Pw-5ecret-Value-123"),
        ("AUTH", "Pw-5ecret-Value-123"),
        ("HELLO", "3", "AUTH", "svc-user", "Pw-5ecret-Value-123"),
        ("CONFIG", "SET", "requirepass", "Pw-5ecret-Value-123"),
        ("ACL", "SETUSER", "svc-user", ">Pw-5ecret-Value-123"),
    ],
)
def test_credential_commands_record_no_argument(
    telemetry: Telemetry, redis_server: RedisServer, command: tuple[str, ...]
) -> None:
    """AUTH, HELLO, CONFIG and ACL sent to a real redis-server record the command alone: no argument, no password."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        with contextlib.suppress(redis.RedisError):
            client.execute_command(*command)
    finally:
        with contextlib.suppress(redis.RedisError):
            client.execute_command("CONFIG", "SET", "requirepass", "")
            client.execute_command("ACL", "DELUSER", "svc-user")
        client.close()
    spans = [s for s in _redis_spans(telemetry) if s.name == command[0]]
    assert spans, "the command was traced"
    exported = repr([(s.name, dict(s.attributes), [e.attributes for e in s.events], s.status) for s in spans])
    assert "Pw-5ecret-Value-123" not in exported
    assert spans[0].attributes["db.statement"] == " ".join([command[0], *["?"] * (len(command) - 1)])


def test_cache_hit_and_miss_helpers_go_with_redis(telemetry: Telemetry, redis_server: RedisServer) -> None:
    """The cache helpers count a redis GET that found a value as a hit, and one that did not as a miss."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.set("user:1", "x")
        for key in ("user:1", "user:2", "user:1"):
            if client.get(key) is None:
                signalfire.metrics.record_cache_miss("user")
            else:
                signalfire.metrics.record_cache_hit("user")
    finally:
        client.close()
    assert telemetry.metric_value("cache.hits", key_type="user") == 2
    assert telemetry.metric_value("cache.misses", key_type="user") == 1


def test_uninstrument_redis_stops_tracing(telemetry: Telemetry, redis_server: RedisServer) -> None:
    """After uninstrument_redis() commands produce no spans and no durations."""
    signalfire.uninstrument_redis()
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.ping()
    finally:
        client.close()
    assert _redis_spans(telemetry) == []


def test_server_outage_gives_an_error_span_and_the_app_its_exception(
    telemetry: Telemetry, redis_server: RedisServer
) -> None:
    """With redis-server stopped, the command raises ConnectionError as usual and its span is an ERROR."""
    client = redis.Redis.from_url(redis_server.url, socket_connect_timeout=1)
    redis_server.stop()
    try:
        with pytest.raises(redis.ConnectionError):
            client.get("k")
    finally:
        client.close()
        redis_server.start()
    (span,) = _redis_spans(telemetry)
    assert span.status.status_code.name == "ERROR"
