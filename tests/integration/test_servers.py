"""The real-server fixtures themselves: they start, answer, survive a stop/start and are reachable with a password."""

from __future__ import annotations

import socket

import psycopg
import pytest

from tests.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.integration


def test_redis_server_answers_ping(redis_server: RedisServer) -> None:
    """The redis fixture is a running redis-server on loopback."""
    assert redis_server.command(b"PING") == b"+PONG"


def test_redis_server_stops_and_restarts_on_the_same_port(redis_server: RedisServer) -> None:
    """After stop() connections are refused; after start() the same port answers again."""
    redis_server.stop()
    address = (redis_server.host, redis_server.port)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(address, timeout=1):
        pass
    redis_server.start()
    assert redis_server.command(b"PING") == b"+PONG"


def test_redis_server_is_empty_for_each_test(redis_server: RedisServer) -> None:
    """Every test sees an empty database."""
    assert redis_server.command(b"DBSIZE") == b":0"
    redis_server.command(b"SET", b"k", b"v")


def test_postgres_server_accepts_the_password_user(postgres_server: PostgresServer) -> None:
    """psycopg connects over TCP with the DSN and runs a query."""
    with psycopg.connect(postgres_server.dsn) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("signalfire", "signalfire")


def test_postgres_server_stops_and_restarts(postgres_server: PostgresServer) -> None:
    """After stop() connecting fails; after start() it works again on the same port."""
    postgres_server.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres_server.dsn, connect_timeout=2)
    postgres_server.start()
    with psycopg.connect(postgres_server.dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
