"""gunicorn configuration for a signalfire service (FastAPI or any ASGI app, through uvicorn workers).

    gunicorn -c examples/gunicorn.conf.py examples.service.app:app

The app calls ``init_observability(app)`` when it is imported, as ``examples/service/app.py`` does. With
``preload_app`` off (gunicorn's default) that import, and so signalfire's start, happens in each worker after gunicorn
has set the worker up: no exporter thread or gRPC channel is ever created in the master, each worker exports as its
own ``service.instance.id``, and signalfire's SIGTERM handler is the one uvicorn restores and re-raises once it has
drained the requests, so every worker flushes before it exits.

With several workers, set ``PROMETHEUS_MULTIPROC_DIR`` to a directory that exists before gunicorn starts: every worker
writes its metrics there and a scrape of ``/metrics`` on any worker returns the sum over all of them. The two metrics
hooks below keep that directory honest across restarts and dead workers.

The environment configures signalfire (``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``ENVIRONMENT``...);
``GUNICORN_BIND`` and ``WEB_CONCURRENCY`` are read here only because they are gunicorn's to choose.
"""

import os

import signalfire
from signalfire import metrics

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "uvicorn_worker.UvicornWorker"
# Each worker imports the app itself (see above); preloading in the master would start signalfire before the fork.
preload_app = False
# Leave the workers time to flush what they hold (SIGNALFIRE_SHUTDOWN_TIMEOUT, 5 s by default) before SIGKILL.
graceful_timeout = 10


# In the master: empty PROMETHEUS_MULTIPROC_DIR when the server starts, so a restart does not add up old counts ...
on_starting = metrics.gunicorn_on_starting
# ... and drop a dead worker's live gauges (in-flight requests, pool connections); its counters stay counted.
child_exit = metrics.gunicorn_child_exit


def worker_exit(server, worker):
    """In a worker leaving through gunicorn's own exit path (sync workers, max_requests): flush before it ends."""
    signalfire.shutdown()
