"""The catalog helpers, seen through the telemetry fixture (OpenTelemetry) and the Prometheus exposition."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

import signalfire
from signalfire import metrics


def prom_value(name: str, **labels: str) -> float | None:
    body, _ = metrics.render()
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_record_payment_counts_and_measures_the_amount(telemetry):
    """record_payment() counts by status and currency and records the amount."""
    metrics.record_payment(amount=49.0, currency="USD", status="succeeded")
    metrics.record_payment(amount=10.0, currency="USD", status="failed", reason="card_declined")
    assert telemetry.metric_value("payments.processed", status="succeeded", currency="USD") == 1
    assert telemetry.metric_value("payments_processed_total", currency="USD") == 2
    assert telemetry.metric_value("payments.failures", reason="card_declined") == 1
    [point] = [p for p in telemetry.metric_points("payments.amount") if p.attributes["status"] == "succeeded"]
    assert point.sum == 49.0


def test_time_job_records_success_with_duration(telemetry):
    """time_job() records the job as processed with status success and its duration in seconds."""
    with metrics.time_job("sync_availability"):
        pass
    assert telemetry.metric_value("jobs.processed", job_type="sync_availability", status="success") == 1
    [point] = telemetry.metric_points("jobs.duration")
    assert 0 <= point.sum < 1


def test_time_job_records_a_failure_and_reraises(telemetry):
    """A job that raises is counted as a failure with its exception class as reason; the exception propagates."""
    with pytest.raises(TimeoutError), metrics.time_job("send_email"):
        raise TimeoutError
    assert telemetry.metric_value("jobs.processed", job_type="send_email", status="failure") == 1
    assert telemetry.metric_value("jobs.failures", job_type="send_email", reason="TimeoutError") == 1


async def test_time_job_works_with_async_with(telemetry):
    """time_job() is also an async context manager."""
    async with metrics.time_job("nightly"):
        pass
    assert telemetry.metric_value("jobs.processed", job_type="nightly") == 1


def test_llm_calls_follow_the_genai_conventions(telemetry):
    """record_llm_call() uses the GenAI names, attributes and token types."""
    metrics.record_llm_call("openai", "gpt-4o", 1.8, input_tokens=812, output_tokens=95)
    [duration] = telemetry.metric_points("gen_ai.client.operation.duration")
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
    }
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in telemetry.metric_points("gen_ai.client.token.usage")}
    assert tokens == {"input": 812, "output": 95}


def test_time_llm_call_records_tokens_set_on_the_timer(telemetry):
    """Tokens set inside time_llm_call() are recorded when the block ends."""
    with metrics.time_llm_call("anthropic", "claude-sonnet-4") as call:
        call.input_tokens, call.output_tokens = 100, 20
    assert telemetry.metric_value("gen_ai.client.token.usage", **{"gen_ai.token.type": "output"}) == 1


def test_db_query_and_cache(telemetry):
    """record_db_query() and the cache helpers record under the semantic-convention database names."""
    metrics.record_db_query("SELECT", "bookings", 0.004, system="postgresql")
    metrics.record_cache_hit("availability")
    metrics.record_cache_miss("availability")
    assert (
        telemetry.metric_value(
            "db.client.operation.duration", **{"db.operation.name": "SELECT", "db.collection.name": "bookings"}
        )
        == 1
    )
    assert telemetry.metric_value("cache.hits", key_type="availability") == 1
    assert telemetry.metric_value("cache_misses_total", key_type="availability") == 1


def test_observe_db_pool_reads_the_callback_at_collection(telemetry):
    """observe_db_pool() reports used and idle connections from the callback; stopping removes the series."""
    pool = {"used": 3, "idle": 7}
    stop = metrics.observe_db_pool(lambda: pool, pool="main")
    try:
        assert telemetry.metric_value("db.client.connection.count", **{"db.client.connection.state": "idle"}) == 7
        pool["used"] = 5
        assert telemetry.metric_value("db_client_connection_count", db_client_connection_state="used") == 5
    finally:
        stop()


def test_set_db_pool_sets_the_gauge(telemetry):
    """set_db_pool() is the setter form for pools that push their numbers."""
    metrics.set_db_pool(used=2, idle=8, pool="replica")
    assert telemetry.metric_value("db.client.connection.count", **{"db.client.connection.state": "used"}) == 2


def test_a_failing_callback_is_counted_not_raised(telemetry):
    """A callback that raises costs its series, not the collection; it is counted as dropped."""

    def broken():
        raise RuntimeError("redis down")

    stop = metrics.observe_queue_depth(broken, queue="emails")
    try:
        assert telemetry.metric_value("jobs.queue.depth") == 0
        assert telemetry.metric_value("signalfire.telemetry.dropped", reason="callback_error") >= 1
    finally:
        stop()


def test_queue_depth_by_state(telemetry):
    """observe_queue_depth() reports waiting, active and failed jobs of a queue."""
    stop = metrics.observe_queue_depth(lambda: {"waiting": 12, "active": 2, "failed": 1}, queue="emails")
    try:
        assert telemetry.metric_value("jobs.queue.depth", queue="emails", state="waiting") == 12
        assert telemetry.metric_value("jobs.queue.depth", queue="emails") == 15
    finally:
        stop()


def test_users_orders_storage_and_external(telemetry):
    """The remaining helpers record under their catalog names."""
    metrics.record_login("google")
    metrics.record_login("password", success=False)
    metrics.record_signup("web")
    metrics.record_user_action("share", "document")
    metrics.session_started()
    metrics.session_started()
    metrics.session_ended()
    metrics.record_order("web", value=120.0, currency="EUR")
    metrics.set_storage_used(2048, store="uploads")
    metrics.record_upload("pdf", size_bytes=1000)
    metrics.record_download("pdf")
    with pytest.raises(ConnectionError), metrics.time_external_call("stripe", "/v1/charges"):
        raise ConnectionError
    assert telemetry.metric_value("users.logins", provider="password", status="failure") == 1
    assert telemetry.metric_value("users.signups", source="web") == 1
    assert telemetry.metric_value("users.actions", action="share", resource_type="document") == 1
    assert telemetry.metric_value("users.sessions.active") == 1
    assert telemetry.metric_value("orders.created", source="web", status="created") == 1
    assert telemetry.metric_value("storage.used", store="uploads") == 2048
    assert telemetry.metric_value("storage.uploaded", file_type="pdf") == 1000
    assert telemetry.metric_value("storage.downloads", file_type="pdf") == 1
    assert telemetry.metric_value("external.request.errors", service="stripe", **{"error.type": "ConnectionError"}) == 1
    assert telemetry.metric_value("external.request.duration", service="stripe") == 1


def test_metric_value_rejects_an_unknown_label(telemetry):
    """A label the instrument does not have fails the test instead of silently matching nothing."""
    with pytest.raises(pytest.fail.Exception, match="has no label 'currrency'"):
        telemetry.metric_value("payments.processed", currrency="USD")


def test_helpers_record_on_prometheus_too():
    """The same helper call is visible in the Prometheus exposition."""
    signalfire.init_observability(traces_exporter="none", handle_sigterm=False)
    metrics.record_upload("image", size_bytes=2048)
    assert prom_value("storage_uploaded_bytes_total", file_type="image") == 2048
    assert prom_value("storage_uploads_total", file_type="image") == 1


def test_a_stopped_callback_removes_its_series_but_not_set_values(telemetry):
    """Stopping a pool callback removes its series; a pool set with set_db_pool() stays."""
    metrics.set_db_pool(used=1, idle=1, pool="replica")
    stop = metrics.observe_db_pool(lambda: {"used": 3, "idle": 7}, pool="main")
    assert telemetry.metric_value("db.client.connection.count", **{"db.client.connection.pool.name": "main"}) == 10
    stop()
    assert telemetry.metric_value("db.client.connection.count", **{"db.client.connection.pool.name": "main"}) == 0
    assert telemetry.metric_value("db.client.connection.count", **{"db.client.connection.pool.name": "replica"}) == 2
