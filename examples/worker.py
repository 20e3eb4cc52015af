"""A background worker with traced jobs, no web framework: ``python examples/worker.py --jobs 20``.

Configuration is the environment's, as for a web service (``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_ENDPOINT``,
``ENVIRONMENT``...). What it shows:

- ``init_observability()`` without an app, once, at the top of ``main()``;
- one trace per job: the producer injects its trace context into the job's headers, the worker extracts it, so the
  job's span continues the trace of whatever enqueued it (a web request, a cron tick);
- ``@signalfire.traced`` and ``signalfire.span()`` for the steps of a job;
- a failing job is recorded on its span (status ERROR, the exception as an event) and the worker goes on;
- SIGTERM stops the loop after the current job; ``shutdown()`` flushes before exit (it also runs at exit by itself).
"""

from __future__ import annotations

import argparse
import logging
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import propagate, trace

import signalfire

log = logging.getLogger("worker")
stopping = threading.Event()


@dataclass
class Job:
    """A unit of work as it would travel through a queue (Redis, SQS, a database table): data plus headers."""

    id: str
    kind: str
    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def enqueue(jobs: queue.Queue[Job], job: Job) -> None:
    """The producer side: record the enqueue as a span and carry its context in the job's headers."""
    with signalfire.span("enqueue", **{"messaging.destination.name": "jobs", "job.id": job.id}):
        propagate.inject(job.headers)
    jobs.put(job)


@signalfire.traced("resize", capture_args=["width"])
def resize(image: str, width: int) -> str:
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    time.sleep(0.001)  # stands in for the real work
    return f"{image}@{width}"


@signalfire.traced
def store(result: str) -> None:
    with signalfire.span("upload", **{"server.address": "objects.internal"}):
        time.sleep(0.001)


def handle(job: Job) -> None:
    """Run one job as the continuation of the trace that enqueued it; a failure is recorded, not raised."""
    parent = propagate.extract(job.headers)
    tracer = trace.get_tracer("worker")
    with tracer.start_as_current_span(
        f"process {job.kind}",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes={"job.id": job.id, "job.kind": job.kind, "messaging.destination.name": "jobs"},
        record_exception=True,
        set_status_on_exception=True,
    ) as current:
        try:
            store(resize(job.payload["image"], job.payload["width"]))
        except ValueError as exc:
            current.record_exception(exc)
            current.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
            log.warning("job %s failed: %s", job.id, exc)


def work(jobs: queue.Queue[Job]) -> int:
    """Consume until the queue is empty or SIGTERM arrives; returns the number of jobs handled."""
    handled = 0
    while not stopping.is_set():
        try:
            job = jobs.get(timeout=0.1)
        except queue.Empty:
            break
        handle(job)
        handled += 1
    return handled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10, help="how many jobs to enqueue and process")
    parser.add_argument("--fail-every", type=int, default=5, help="every Nth job has a bad width and fails")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    signalfire.init_observability()  # OTEL_SERVICE_NAME and the rest come from the environment
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())  # finish the current job, then stop

    jobs: queue.Queue[Job] = queue.Queue()
    for number in range(args.jobs):
        width = 0 if args.fail_every and (number + 1) % args.fail_every == 0 else 640
        enqueue(jobs, Job(id=f"job-{number}", kind="thumbnail", payload={"image": f"img-{number}.png", "width": width}))
    handled = work(jobs)
    log.info("handled %d jobs", handled)
    signalfire.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
