"""Loopback endpoints the benchmarked processes talk to: an OTLP/HTTP sink, a Sentry ingest sink and a black hole.

They run on threads of the orchestrating process, so the CPU they burn is not charged to the process being measured
(it still competes for the machine's cores, the same for every variant). The OTLP sink answers 200 with an empty
body without decoding the protobuf: the exporters only look at the status, and decoding would only add noise.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class _SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counts: dict[str, int]

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        server = self.server
        with server.lock:  # type: ignore[attr-defined]
            server.counts[self.path] = server.counts.get(self.path, 0) + 1  # type: ignore[attr-defined]
        body = b"{}" if "/api/" in self.path else b""
        self.send_response(200)
        self.send_header("content-type", "application/json" if body else "application/x-protobuf")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class HttpSink:
    """An HTTP server on 127.0.0.1 accepting OTLP/HTTP exports (``/v1/<signal>``) and Sentry envelopes (``/api/``)."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _SinkHandler)
        self.server.daemon_threads = True
        self.server.lock = threading.Lock()  # type: ignore[attr-defined]
        self.server.counts = {}  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="bench-sink", daemon=True)

    @property
    def counts(self) -> dict[str, int]:
        """Requests received per path."""
        with self.server.lock:  # type: ignore[attr-defined]
            return dict(self.server.counts)  # type: ignore[attr-defined]

    def __enter__(self) -> HttpSink:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


class BlackHole:
    """A TCP listener that accepts connections and never answers (nor reads): a hung backend."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="bench-blackhole", daemon=True)

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)

    def __enter__(self) -> BlackHole:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self.sock.close()
