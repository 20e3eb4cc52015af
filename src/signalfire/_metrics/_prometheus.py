"""The Prometheus backend: a prometheus-client registry signalfire owns, multiprocess files, and the exposition.

Single process: one ``CollectorRegistry`` per ``init_observability()`` (never prometheus-client's global REGISTRY),
holding the instruments, process and Python runtime collectors; re-initialising builds a new one, so no collector is
ever registered twice.

Multiprocess (PROMETHEUS_MULTIPROC_DIR): instruments write to the per-process files of prometheus-client's
multiprocess mode and a scrape of any worker reads every worker's files through ``MultiProcessCollector``. Gauges use
the mode their spec declares (``livesum`` for in-flight requests, ``livemax`` for a shared queue's depth); the files
of dead workers' live gauges are removed by the gunicorn ``child_exit`` hook and, for any server, at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import gzip
import logging
import os
import re
import threading
from typing import TYPE_CHECKING, Any

from signalfire._metrics._registry import InstrumentSpec, MetricsRegistry
from signalfire._settings import Settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

# prometheus-client is imported where it is used: a service exporting metrics over OTLP only never imports it.

__all__ = ["PrometheusBackend", "clear_multiprocess_dir", "mark_process_dead", "render"]

_log = logging.getLogger("signalfire")
_UNIT_SUFFIX = re.compile(r"_(seconds|bytes|ratio|percent|milliseconds)$")
# How often each worker refreshes callback gauges and its process metrics into the multiprocess files; a scrape
# also refreshes the worker that serves it.
MULTIPROCESS_REFRESH_S = 10.0

# The running instance's backend, which the exposition endpoints serve (set by _metrics.install(), cleared at close).
_current: PrometheusBackend | None = None
# Process-wide: prometheus-client's value class is the process's; a multiprocess one belongs to the pid that made it.
_value_class_pid: int | None = None
_multiprocess_value_class: Any = None


class _Refresh:
    """First collector of a registry: runs the gauge callbacks before the instruments are read."""

    def __init__(self, backend: PrometheusBackend) -> None:
        self._backend = backend

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        self._backend.refresh()
        return []


class PrometheusBackend:
    """The prometheus-client side of one ``init_observability()``."""

    def __init__(self, settings: Settings, registry: MetricsRegistry) -> None:
        self.metrics = registry
        self.multiprocess_dir = settings.prometheus_multiproc_dir
        self.path = settings.metrics_path
        self._runtime = settings.metrics_runtime
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._refresher_pid: int | None = None
        self._process: _ProcessMetrics | None = None
        from prometheus_client import CollectorRegistry

        self.exposition = CollectorRegistry()
        self.exposition.register(_Refresh(self))
        self._reserved: set[str] = set()
        _use_value_class(self.multiprocess_dir)
        if self.multiprocess_dir is None:
            # instruments are registered on the exposition registry itself
            self.registry: CollectorRegistry | None = self.exposition
            if self._runtime:
                from prometheus_client import GCCollector, PlatformCollector, ProcessCollector

                for collector in (
                    ProcessCollector(registry=self.exposition),
                    PlatformCollector(registry=self.exposition),
                    GCCollector(registry=self.exposition),
                ):
                    # these collectors do not describe themselves, so the registry cannot catch a clash for us
                    self._reserved.update(family.name for family in collector.collect())
        else:
            from prometheus_client.multiprocess import MultiProcessCollector

            self.registry = None  # values live in the multiprocess files
            _remove_dead_workers(self.multiprocess_dir)
            MultiProcessCollector(self.exposition, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            if self._runtime:
                from prometheus_client import PlatformCollector

                PlatformCollector(registry=self.exposition)  # the same in every worker
                self._process = _ProcessMetrics()
                self._reserved.update(("python_info", "process_resident_memory_bytes", "process_open_fds"))
                self._reserved.add("process_cpu_seconds")

    @property
    def multiprocess(self) -> bool:
        """True when observations go to PROMETHEUS_MULTIPROC_DIR."""
        return self.multiprocess_dir is not None

    def create(self, spec: InstrumentSpec) -> Any:
        """The prometheus-client metric of one instrument (its name already carries the unit and any prefix)."""
        from prometheus_client import Counter, Gauge, Histogram

        name = spec.prometheus_name
        if name.removesuffix("_total") in self._reserved:
            raise ValueError(f"{name} is already exposed by the process and runtime metrics")
        unit_match = _UNIT_SUFFIX.search(name.removesuffix("_total"))
        kwargs: dict[str, Any] = {
            "name": name.removesuffix("_total") if spec.kind == "counter" else name,
            "documentation": spec.description,
            "labelnames": spec.prometheus_labels,
            "registry": self.registry,
            "unit": unit_match.group(1) if unit_match else "",
        }
        if spec.kind == "counter":
            return Counter(**kwargs)
        if spec.kind == "histogram":
            return Histogram(**kwargs, buckets=spec.buckets or Histogram.DEFAULT_BUCKETS)
        return Gauge(**kwargs, multiprocess_mode=spec.multiprocess_mode)  # type: ignore[arg-type]

    def refresh(self) -> None:
        """Run gauge callbacks (and, with workers, this worker's process metrics) now; never raises."""
        try:
            self.metrics._refresh_gauges()
            if self._process is not None:
                self._process.refresh()
        except Exception:
            _log.warning("signalfire: refreshing gauges failed", exc_info=True)

    def render(self, accept: str) -> tuple[bytes, str]:
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept)
        return encoder(self.exposition), content_type

    # --- lifecycle -----------------------------------------------------------------------------------------------
    def start(self, host: str, port: int | None) -> None:
        """Start the standalone exposition server (when a port is set) and, with workers, the refresh thread."""
        if port is not None:
            self._start_server(host, port)
        if self.multiprocess:
            self.ensure_refresher()

    def _start_server(self, host: str, port: int) -> None:
        from prometheus_client import start_http_server

        try:
            self._server, self._server_thread = start_http_server(port, addr=host, registry=self.exposition)
        except OSError as exc:
            if self.multiprocess:
                # Workers share the port: the first binds it and serves every worker's metrics from the files.
                _log.info("signalfire: metrics port %s is served by another worker (%s)", port, exc)
                return
            _log.warning("signalfire: could not serve metrics on %s:%s: %s", host, port, exc)
            self.metrics.record_dropped("metrics", "server_failed")

    @property
    def server_port(self) -> int | None:
        """The port the standalone server listens on (useful with SIGNALFIRE_METRICS_PORT=0), else None."""
        return int(self._server.server_port) if self._server is not None else None

    def ensure_refresher(self) -> None:
        """Start this process's refresh thread (threads do not survive fork, so it is per worker)."""
        if self._refresher_pid == os.getpid():
            return
        self._refresher_pid = os.getpid()
        self._stop = threading.Event()
        stop = self._stop

        def loop() -> None:
            while not stop.wait(MULTIPROCESS_REFRESH_S):
                self.refresh()

        self.refresh()
        threading.Thread(target=loop, name="signalfire-metrics-refresh", daemon=True).start()

    def close(self, timeout: float = 1.0) -> None:
        """Stop the server and the refresh thread."""
        self._stop.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._server_thread is not None:
            self._server_thread.join(timeout)
            self._server_thread = None


class _ProcessMetrics:
    """Process metrics in multiprocess mode, where prometheus-client's ProcessCollector cannot be used: each worker
    writes its own, summed across live workers (CPU time is a counter, so a dead worker's CPU stays counted)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, ProcessCollector

        self._source = ProcessCollector(registry=None)
        self._memory = Gauge(
            "process_resident_memory", "Resident memory of the live workers.", unit="bytes",
            registry=None, multiprocess_mode="livesum",
        )  # fmt: skip
        self._fds = Gauge(
            "process_open_fds", "Open file descriptors of the live workers.", registry=None,
            multiprocess_mode="livesum",
        )  # fmt: skip
        self._cpu = Counter("process_cpu", "CPU time of all workers.", unit="seconds", registry=None)
        self._cpu_seen = 0.0

    def refresh(self) -> None:
        values = {s.name: s.value for family in self._source.collect() for s in family.samples}
        if "process_resident_memory_bytes" in values:
            self._memory.set(values["process_resident_memory_bytes"])
        if "process_open_fds" in values:
            self._fds.set(values["process_open_fds"])
        cpu = values.get("process_cpu_seconds_total")
        if cpu is not None and cpu > self._cpu_seen:
            self._cpu.inc(cpu - self._cpu_seen)
            self._cpu_seen = cpu


def _use_value_class(multiprocess_dir: str | None) -> None:
    """Point prometheus-client's process-wide value class at memory or at the multiprocess files.

    prometheus-client chooses it from PROMETHEUS_MULTIPROC_DIR when it is first imported; signalfire decides from
    its Settings instead, so a value passed to init_observability() and the environment cannot disagree.
    """
    global _multiprocess_value_class, _value_class_pid  # noqa: PLW0603
    from prometheus_client import values as prometheus_values

    if multiprocess_dir is None:
        prometheus_values.ValueClass = prometheus_values.MutexValue
        return
    # prometheus-client reads the directory from this variable when it opens a worker's file.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") != multiprocess_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiprocess_dir
    if _multiprocess_value_class is None or _value_class_pid != os.getpid():
        _multiprocess_value_class = prometheus_values.MultiProcessValue()  # type: ignore[no-untyped-call]
        _value_class_pid = os.getpid()
    prometheus_values.ValueClass = _multiprocess_value_class


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_dead_workers(directory: str) -> None:
    """Remove the live-gauge files of processes that no longer exist (uvicorn --workers has no child_exit hook)."""
    pids = set()
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        with contextlib.suppress(ValueError):
            pids.add(int(os.path.basename(path).rsplit("_", 1)[1].removesuffix(".db")))
    for pid in pids:
        if not _alive(pid):
            mark_process_dead(pid, directory)


def _resolve_dir(directory: str | None) -> str | None:
    if directory is not None:
        return directory
    if _current is not None and _current.multiprocess_dir is not None:
        return _current.multiprocess_dir
    # gunicorn's master usually never initialises signalfire: read the variable through Settings like everyone else
    return Settings.resolve().prometheus_multiproc_dir


def mark_process_dead(pid: int, directory: str | None = None) -> None:
    """Remove a dead worker's live-gauge files from PROMETHEUS_MULTIPROC_DIR (its counters stay counted)."""
    path = _resolve_dir(directory)
    if path is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def clear_multiprocess_dir(directory: str | None = None) -> None:
    """Delete every ``*.db`` file of PROMETHEUS_MULTIPROC_DIR; call it before workers start."""
    path = _resolve_dir(directory)
    if path is None:
        return
    for file in glob.glob(os.path.join(path, "*.db")):
        with contextlib.suppress(FileNotFoundError):
            os.remove(file)


def _after_fork_in_child() -> None:
    backend = _current
    if backend is not None and backend.multiprocess:
        backend.ensure_refresher()


os.register_at_fork(after_in_child=_after_fork_in_child)


def activate(backend: PrometheusBackend | None) -> None:
    """Make ``backend`` the one the exposition endpoints serve."""
    global _current  # noqa: PLW0603 - the one slot of the running instance's backend
    _current = backend


def current() -> PrometheusBackend | None:
    """The Prometheus backend of the running instance, or None."""
    return _current


def render(accept: str = "") -> tuple[bytes, str]:
    """The exposition of the running instance (empty when Prometheus is off)."""
    backend = _current
    if backend is None:
        return b"", "text/plain; version=0.0.4; charset=utf-8"
    return backend.render(accept)


async def asgi_endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI endpoint the middleware mounts at SIGNALFIRE_METRICS_PATH."""
    accept = ""
    accept_encoding = ""
    for key, value in scope.get("headers") or ():
        if key == b"accept":
            accept = value.decode("latin-1")
        elif key == b"accept-encoding":
            accept_encoding = value.decode("latin-1")
    backend = _current
    if backend is None:
        status, body, content_type = 404, b"metrics are not enabled\n", "text/plain; charset=utf-8"
    else:
        # Reading many workers' files can take milliseconds: keep it off the event loop.
        loop = asyncio.get_running_loop()
        body, content_type = await loop.run_in_executor(None, backend.render, accept)
        status = 200
    headers = [(b"content-type", content_type.encode("latin-1"))]
    if len(body) > 1024 and "gzip" in accept_encoding:
        body = gzip.compress(body, compresslevel=5)
        headers.append((b"content-encoding", b"gzip"))
    headers.append((b"content-length", str(len(body)).encode("ascii")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body if scope.get("method") != "HEAD" else b""})
