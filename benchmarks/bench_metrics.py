"""Each metrics helper against the raw prometheus-client call(s) it wraps (target: at most 1.3x).

Run: PYTHONPATH=src python benchmarks/bench_metrics.py [--otlp]

Both sides record into a warm series (the steady state of a service). The raw side is what a team writes by hand:
``counter.labels(...).inc()`` on its own registry. With ``--otlp`` signalfire also records every measurement on the
OpenTelemetry MeterProvider (an OTLP endpoint is configured); the raw side then adds the raw OpenTelemetry call too.
"""

from __future__ import annotations

import argparse
import statistics
import timeit

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, Counter, Histogram

import signalfire
from signalfire import metrics
from signalfire._metrics._otel import InMemoryRegistryReader

N = 20_000
REPEAT = 15


def best_pair(ours, raw, number=N):
    """ns per call of each; runs are interleaved and the minimum kept, the least noisy estimate on a shared machine."""
    t_ours, t_raw = [], []
    for _ in range(REPEAT):
        t_ours.append(timeit.timeit(ours, number=number))
        t_raw.append(timeit.timeit(raw, number=number))
    return min(t_ours) / number * 1e9, min(t_raw) / number * 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--otlp", action="store_true", help="also push over OTLP (an in-memory reader stands in)")
    args = parser.parse_args()

    reg = CollectorRegistry()
    payments = Counter("payments_processed", "p", ["status", "currency"], registry=reg)
    amount = Histogram("payments_amount", "a", ["currency", "status"], registry=reg)
    hits = Counter("cache_hits", "h", ["key_type"], registry=reg)
    db = Histogram("db_client_operation_duration_seconds", "d", ["system", "op", "table"], registry=reg)
    jobs = Counter("jobs_processed", "j", ["job_type", "status"], registry=reg)
    jobs_d = Histogram("jobs_duration_seconds", "j", ["job_type", "status"], registry=reg)
    http = Histogram("http_server_request_duration_seconds", "h", ["m", "r", "s", "e"], registry=reg)
    llm = Histogram("gen_ai_client_operation_duration_seconds", "l", ["o", "p", "m", "e"], registry=reg)
    tokens = Histogram("gen_ai_client_token_usage", "t", ["o", "p", "m", "t"], registry=reg)

    otel_extra = {}
    if args.otlp:
        from signalfire import _runtime
        from signalfire._settings import Settings

        reader = InMemoryRegistryReader(signalfire.metrics)
        _runtime.start(
            Settings.resolve(traces_exporter="none", metrics_exporter="prometheus", handle_sigterm=False),
            metric_readers=[reader],
        )
        meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("raw")
        otel_extra = {
            "counter": meter.create_counter("c"),
            "histogram": meter.create_histogram("h"),
            "updown": meter.create_up_down_counter("u"),
        }
    else:
        signalfire.init_observability(traces_exporter="none", handle_sigterm=False)

    oc = otel_extra.get("counter")
    oh = otel_extra.get("histogram")
    ou = otel_extra.get("updown")
    a_pay = {"status": "succeeded", "currency": "USD"}
    a_hit = {"key_type": "user"}
    a_db = {"db.system.name": "postgresql", "db.operation.name": "SELECT", "db.collection.name": "bookings"}

    def raw_cache_hit():
        hits.labels("user").inc()
        if oc is not None:
            oc.add(1, a_hit)

    def raw_payment():
        payments.labels("succeeded", "USD").inc()
        amount.labels("USD", "succeeded").observe(49.0)
        if oc is not None:
            oc.add(1, a_pay)
            oh.record(49.0, a_pay)

    def raw_db():
        db.labels("postgresql", "SELECT", "bookings").observe(0.0042)
        if oh is not None:
            oh.record(0.0042, a_db)

    def raw_job():
        import time

        start = time.perf_counter()
        elapsed = time.perf_counter() - start
        jobs.labels("sync", "success").inc()
        jobs_d.labels("sync", "success").observe(elapsed)
        if oc is not None:
            oc.add(1, a_pay)
            oh.record(elapsed, a_pay)

    def raw_http():
        http.labels("GET", "/items/{item_id}", "200", "").observe(0.012)
        if oh is not None:
            oh.record(0.012, a_db)

    def raw_llm():
        llm.labels("chat", "openai", "gpt-4o", "").observe(1.8)
        tokens.labels("chat", "openai", "gpt-4o", "input").observe(812)
        tokens.labels("chat", "openai", "gpt-4o", "output").observe(95)
        if oh is not None:
            oh.record(1.8, a_db)
            oh.record(812, a_db)
            oh.record(95, a_db)

    def time_job():
        with metrics.time_job("sync"):
            pass

    cases = [
        ("record_cache_hit", lambda: metrics.record_cache_hit("user"), raw_cache_hit),
        (
            "record_payment",
            lambda: metrics.record_payment(amount=49.0, currency="USD", status="succeeded"),
            raw_payment,
        ),
        ("record_db_query", lambda: metrics.record_db_query("SELECT", "bookings", 0.0042, system="postgresql"), raw_db),
        ("time_job", time_job, raw_job),
        ("record_http_request", lambda: metrics.record_http_request("GET", "/items/{item_id}", 200, 0.012), raw_http),
        (
            "record_llm_call",
            lambda: metrics.record_llm_call("openai", "gpt-4o", 1.8, input_tokens=812, output_tokens=95),
            raw_llm,
        ),
        ("declared.add(**labels)", None, raw_cache_hit),
    ]
    # the per-request RED recording of the ASGI middleware: start() before the app, finish() after it
    from opentelemetry.trace import INVALID_SPAN
    from prometheus_client import Gauge

    from signalfire._metrics import http_server

    active = Gauge("http_server_active_requests", "a", ["m"], registry=reg)

    def ours_request():
        state = http_server.start("GET", "http")
        http_server.finish(state, "/items/{item_id}", 200, None, INVALID_SPAN)

    def raw_request():
        import time

        started = time.perf_counter()
        active.labels("GET").inc()
        active.labels("GET").dec()
        http.labels("GET", "/items/{item_id}", "200", "").observe(time.perf_counter() - started)
        if oh is not None:
            ou.add(1, a_hit)
            ou.add(-1, a_hit)
            oh.record(0.012, a_db)

    cases.insert(-1, ("middleware RED per request", ours_request, raw_request))
    custom = metrics.declare("bench.custom", "counter", labels=("key_type",))
    cases[-1] = ("declared.add(**labels)", lambda: custom.add(1, key_type="user"), raw_cache_hit)

    mode = "prometheus + OTLP" if args.otlp else "prometheus only"
    print(f"signalfire metrics helpers vs raw prometheus-client ({mode}); ns per call, best of {REPEAT} x {N}")
    print(f"{'helper':28} {'signalfire':>11} {'raw':>9} {'ratio':>7}")
    ratios = []
    for name, ours, raw in cases:
        ours()
        raw()
        t_ours, t_raw = best_pair(ours, raw)
        ratios.append(t_ours / t_raw)
        print(f"{name:28} {t_ours:11.0f} {t_raw:9.0f} {t_ours / t_raw:7.2f}x")
    print(f"{'geometric mean':28} {'':11} {'':9} {statistics.geometric_mean(ratios):7.2f}x")
    signalfire.shutdown()


if __name__ == "__main__":
    main()
