"""gunicorn configuration for a signalfire service (FastAPI or any ASGI app, through uvicorn workers).

    gunicorn -c examples/gunicorn.conf.py 'service.app:app'

Every worker starts signalfire itself, once it is set up (``post_worker_init``): nothing that owns a thread or a
connection (the batch span processor, the metric reader, gRPC channels) is created in the master, so
``preload_app = True`` is safe and each worker exports with its own ``service.instance.id``.

Why ``post_worker_init`` and not ``post_fork``: between the two, the uvicorn worker resets the SIGTERM handler to the
default. Started after that, signalfire's SIGTERM handler is the one uvicorn restores and re-raises once it has
drained the requests, so the worker flushes what it holds before it exits. Started in ``post_fork``, the worker
would be killed by the re-raised signal with its last batch of spans unsent.

The environment configures everything (``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``ENVIRONMENT``...);
``GUNICORN_BIND`` and ``WEB_CONCURRENCY`` are read here only because they are gunicorn's to choose.
"""

import os

import signalfire

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "uvicorn_worker.UvicornWorker"
# The app is imported once in the master and shared copy-on-write; signalfire starts in each worker.
preload_app = True
# Leave the workers time to flush what they hold (SIGNALFIRE_SHUTDOWN_TIMEOUT, 5 s by default) before SIGKILL.
graceful_timeout = 10


def post_worker_init(worker):
    """In each worker, after gunicorn set it up: start signalfire and instrument the app the master loaded."""
    signalfire.init_observability(worker.app.wsgi())


def worker_exit(server, worker):
    """In a worker leaving through gunicorn's own exit path (sync workers, max_requests): flush before it ends."""
    signalfire.shutdown()
