"""Real servers on loopback for integration tests: redis-server and PostgreSQL, each in its own temporary directory.

Both bind 127.0.0.1 on a free port, keep nothing on disk after the test run, and can be stopped and started again in
the middle of a test (on the same port), so that health checks and reconnect logic are tested against a real outage.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PostgresServer", "RedisServer", "find_postgres_bin", "free_port"]

_START_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def find_postgres_bin() -> str | None:
    """The directory holding initdb/pg_ctl: on PATH, or Debian's /usr/lib/postgresql/<major>/bin (newest first)."""
    on_path = shutil.which("initdb")
    if on_path is not None:
        return str(Path(on_path).resolve().parent)  # /usr/local/bin symlinks lead to the full set
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
        reverse=True,
    )
    return str(Path(candidates[0]).parent) if candidates else None


class RedisServer:
    """A redis-server on 127.0.0.1 without persistence; ``stop()`` and ``start()`` simulate an outage mid-test.

    ``url`` is ``redis://127.0.0.1:<port>/0``; ``host`` and ``port`` are there for clients that want them apart.
    """

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = free_port()
        self._dir = tempfile.mkdtemp(prefix="signalfire-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it answers PING."""
        if self.running:
            return
        argv = [
            self.binary, "--bind", self.host, "--port", str(self.port), "--save", "", "--appendonly", "no",
            "--dir", self._dir, "--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning",
        ]  # fmt: skip
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode} on port {self.port}")
            with contextlib.suppress(OSError):
                if self.command(b"PING") == b"+PONG":
                    return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {_START_TIMEOUT_S}s")

    def stop(self) -> None:
        """Stop the server; connections to it fail until ``start()``."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def restart(self) -> None:
        """Stop, then start again on the same port."""
        self.stop()
        self.start()

    def command(self, *parts: bytes) -> bytes:
        """Send one command over a fresh connection and return the first reply line (``+OK``, ``+PONG``, ``:1``...)."""
        payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        with socket.create_connection((self.host, self.port), timeout=2) as sock:
            sock.sendall(payload)
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return reply.split(b"\r\n", 1)[0]

    def flushall(self) -> None:
        """Empty every database, so each test starts from nothing."""
        self.command(b"FLUSHALL")

    def close(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1: one database and one user with a password.

    initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` system user (``runuser``); as any
    other user it belongs to that user. fsync is off: the data is thrown away anyway.
    """

    database = "signalfire"
    user = "signalfire"
    password = "s1gnalfire-test"

    def __init__(self, bin_dir: str) -> None:
        self.bin_dir = bin_dir
        self.host = "127.0.0.1"
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="signalfire-pg-"))
        self.data_dir = self._dir / "data"
        self.socket_dir = self._dir / "sock"
        self.log_file = self._dir / "postgres.log"
        self._as_root = os.geteuid() == 0
        self._initialised = False

    # DSNs -----------------------------------------------------------------------------------------------------------
    @property
    def dsn(self) -> str:
        """A libpq URL (psycopg, asyncpg): ``postgresql://user:password@127.0.0.1:port/database``."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def sqlalchemy_url(self, driver: str = "psycopg") -> str:
        """The SQLAlchemy URL for a driver: ``psycopg`` (sync or async) or ``asyncpg``."""
        return f"postgresql+{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    # lifecycle ------------------------------------------------------------------------------------------------------
    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=self._dir)
        if result.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}{log}")
        return result

    def _init(self) -> None:
        self.socket_dir.mkdir()
        if self._as_root:
            shutil.chown(self._dir, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
        self._run(
            f"{self.bin_dir}/initdb", "-D", str(self.data_dir), "-U", "postgres",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-sync",
        )  # fmt: skip
        self._initialised = True

    def start(self) -> None:
        """Start the server (initialising the cluster, database and user the first time) and wait until it accepts."""
        if self.running:
            return
        first = not self._initialised
        if first:
            self._init()
        options = f"-h {self.host} -p {self.port} -k {self.socket_dir} -F -c max_connections=50"
        self._run(
            f"{self.bin_dir}/pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options,
            "-w", "-t", str(int(_START_TIMEOUT_S)), "start",
        )  # fmt: skip
        if first:
            self.psql(f"CREATE USER {self.user} WITH PASSWORD '{self.password}'")
            self.psql(f"CREATE DATABASE {self.database} OWNER {self.user}")

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser over the unix socket; returns psql's unaligned output."""
        return self._run(
            f"{self.bin_dir}/psql", "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
            "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql,
        ).stdout  # fmt: skip

    @property
    def running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists() and _port_open(self.port)

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are closed); ``start()`` brings it back on the same port."""
        if self._initialised and (self.data_dir / "postmaster.pid").exists():
            self._run(f"{self.bin_dir}/pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        """Stop, then start again on the same port."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and delete the cluster."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
