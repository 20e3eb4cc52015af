"""The metric registry: catalog, declare, introspection, the cardinality guard, exemplars and re-initialisation."""

from __future__ import annotations

import dataclasses
import logging
from types import SimpleNamespace

import prometheus_client
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

import signalfire
from signalfire import metrics
from signalfire._settings import ConfigurationError

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


@pytest.fixture(autouse=True)
def _forget_test_instruments():
    """Instruments a test declares leave the process-wide registry afterwards (other suites list it)."""
    before = dict(metrics._instruments)
    yield
    metrics._instruments.clear()
    metrics._instruments.update(before)


def start(**overrides):
    overrides.setdefault("traces_exporter", "none")
    overrides.setdefault("handle_sigterm", False)
    return signalfire.init_observability(**overrides)


def scrape() -> dict[str, list]:
    """Every sample of the Prometheus exposition, by sample name."""
    body, _ = metrics.render()
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(name: str, **labels: str) -> float | None:
    for sample in scrape().get(name, []):
        if all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return None


def test_catalog_lists_every_category_with_prometheus_names():
    """instruments() lists the catalog: HTTP, db, cache, jobs, payments, orders, users, AI, storage, external."""
    specs = {s.name: s for s in metrics.instruments()}
    assert {s.category for s in specs.values()} >= {
        "http", "db", "cache", "jobs", "payments", "orders", "users", "ai", "storage", "external",
    }  # fmt: skip
    http = specs["http.server.request.duration"]
    assert (http.prometheus_name, http.kind, http.unit, http.business) == (
        "http_server_request_duration_seconds", "histogram", "s", False,
    )  # fmt: skip
    assert http.labels == (
        "http.request.method", "http.route", "http.response.status_code", "error.type", "url.scheme",
        "network.protocol.version",
    )  # fmt: skip
    assert http.buckets == (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
    assert specs["payments.processed"].prometheus_name == "payments_processed_total"
    assert specs["gen_ai.client.token.usage"].prometheus_name == "gen_ai_client_token_usage"
    assert specs["signalfire.telemetry.dropped"].prometheus_name == "signalfire_telemetry_dropped_total"


def test_specs_are_frozen():
    """An InstrumentSpec cannot be changed by whoever lists it."""
    spec = metrics.instruments()[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]


def test_prefix_applies_to_business_instruments_only():
    """SIGNALFIRE_METRICS_PREFIX=tvl prefixes payments but not the HTTP semantic-convention metrics."""
    start(metrics_prefix="tvl")
    metrics.record_payment(amount=49.0, currency="USD", status="succeeded")
    metrics.record_http_request("GET", "/x", 200, 0.01)
    samples = scrape()
    assert samples["tvl_payments_processed_total"][0].labels == {"currency": "USD", "status": "succeeded"}
    assert "http_server_request_duration_seconds_count" in samples
    names = {s.name: s.prometheus_name for s in metrics.instruments()}
    assert names["payments.processed"] == "tvl_payments_processed_total"
    assert names["cache.hits"] == "cache_hits_total"
    assert {s.name: s.prometheus_name for s in metrics.instruments(prefix="")}["payments.processed"] == (
        "payments_processed_total"
    )


def test_the_prefix_leaves_with_the_instance_that_set_it():
    """After the instance with SIGNALFIRE_METRICS_PREFIX shuts down, no prefix is in force (it used to stay)."""
    start(metrics_prefix="tvl")
    signalfire.shutdown()
    assert {s.name: s.prometheus_name for s in metrics.instruments()}["payments.processed"] == (
        "payments_processed_total"
    )


def test_declared_instrument_is_exposed_with_unit_suffix():
    """declare() adds an application's instrument, exposed with its unit suffix and _total."""
    start()
    counter = metrics.declare("reg.bytes.sent", "counter", unit="By", labels=("peer",), description="Bytes sent.")
    counter.add(512, peer="a")
    assert value("reg_bytes_sent_bytes_total", peer="a") == 512
    assert metrics.instruments()[-1].name == "reg.bytes.sent"


def test_declaring_the_same_instrument_again_returns_it():
    """A second identical declare() returns the same instrument (module reloads, tests)."""
    first = metrics.declare("reg.twice", "counter", labels=("a",))
    assert metrics.declare("reg.twice", "counter", labels=("a",)) is first


def test_declaring_a_name_differently_raises():
    """A conflicting definition is a programming error, raised at declaration."""
    metrics.declare("reg.conflict", "counter", labels=("a",))
    with pytest.raises(ValueError, match="already declared differently"):
        metrics.declare("reg.conflict", "histogram", labels=("a",))


@pytest.mark.parametrize("name", ["", "9lives", "has space", "x" * 300])
def test_invalid_names_are_rejected_at_declaration(name):
    """Names that OpenTelemetry would reject are refused with the accepted form."""
    with pytest.raises(ValueError, match="expected letters"):
        metrics.declare(name, "counter")


def test_histogram_buckets_must_increase():
    """Unsorted buckets are refused at declaration."""
    with pytest.raises(ValueError, match="increasing"):
        metrics.declare("reg.bad_buckets", "histogram", unit="s", buckets=(1.0, 0.5))


def test_series_beyond_the_cap_go_to_one_overflow_series(caplog):
    """Past SIGNALFIRE_METRICS_MAX_SERIES label sets, values land in one __overflow__ series, counted, warned once."""
    start(metrics_max_series=5)
    counter = metrics.declare("reg.capped", "counter", labels=("user_id",))
    with caplog.at_level(logging.WARNING, logger="signalfire"):
        for i in range(50):
            counter.add(1, user_id=str(i))
    samples = scrape()["reg_capped_total"]
    assert len(samples) == 6
    assert value("reg_capped_total", user_id="__overflow__") == 45
    assert value("signalfire_metrics_series_overflow_total", metric="reg.capped") == 45
    assert len([r for r in caplog.records if "reg.capped" in r.getMessage()]) == 1


def test_undeclared_label_is_dropped_and_counted(caplog):
    """An undeclared label never raises: it is dropped, counted and warned about once."""
    start()
    counter = metrics.declare("reg.undeclared", "counter", labels=("kind",))
    with caplog.at_level(logging.WARNING, logger="signalfire"):
        counter.add(1, kind="a", user_id="u1")
        counter.add(1, kind="a", user_id="u2")
    assert value("reg_undeclared_total", kind="a") == 2
    assert value("signalfire_metrics_labels_rejected_total", metric="reg.undeclared", reason="undeclared_label") == 2
    assert len([r for r in caplog.records if "user_id" in r.getMessage()]) == 1


def test_disallowed_value_is_bucketed_as_other():
    """A value outside allowed_values is recorded as __other__ and counted."""
    start()
    counter = metrics.declare("reg.allowed", "counter", labels=("plan",), allowed_values={"plan": {"free", "pro"}})
    counter.add(1, plan="pro")
    counter.add(1, plan="enterprise-trial-42")
    assert value("reg_allowed_total", plan="pro") == 1
    assert value("reg_allowed_total", plan="__other__") == 1
    assert value("signalfire_metrics_labels_rejected_total", metric="reg.allowed", reason="disallowed_value") == 1


def test_negative_counter_increment_is_dropped():
    """A counter only goes up: a negative add is dropped and counted, never raised."""
    start()
    counter = metrics.declare("reg.negative", "counter")
    counter.add(3)
    counter.add(-1)
    assert value("reg_negative_total") == 3
    assert value("signalfire_metrics_labels_rejected_total", metric="reg.negative", reason="negative_or_nan") == 1


def test_recording_errors_never_reach_the_caller():
    """An unhashable label value or a wrong operation is counted as dropped, not raised."""
    start()
    metrics.record_cache_hit(["not", "hashable"])  # type: ignore[arg-type]
    metrics.get("cache.hits").record(1.0, key_type="user")
    assert value("signalfire_telemetry_dropped_total", signal="metrics", reason="error") == 1
    assert value("signalfire_metrics_labels_rejected_total", metric="cache.hits", reason="wrong_operation") == 1


def test_helpers_before_init_do_nothing():
    """Recording before init_observability() is a no-op, not an error, and does not leak into the next start."""
    metrics.record_payment(amount=10.0, currency="EUR")
    start()
    assert value("payments_processed_total", currency="EUR") is None


def test_record_dropped_counts_by_signal_and_reason():
    """record_dropped() feeds signalfire_telemetry_dropped_total{signal, reason}."""
    start()
    metrics.record_dropped("traces", "queue_full", count=12)
    assert value("signalfire_telemetry_dropped_total", signal="traces", reason="queue_full") == 12


def test_reinit_builds_a_fresh_registry_without_duplicates():
    """Re-initialising never raises "Duplicated timeseries" and never touches prometheus-client's global REGISTRY."""
    start()
    metrics.record_cache_hit("user")
    start(replace=True, service_name="other")
    metrics.record_cache_hit("user")
    assert value("cache_hits_total", key_type="user") == 1
    global_names = {m.name for m in prometheus_client.REGISTRY.collect()}
    assert not any(n.startswith(("cache_", "http_server", "payments")) for n in global_names)


def test_counters_and_histograms_carry_trace_exemplars_in_openmetrics():
    """Inside a sampled span, OpenMetrics scrapes show the trace_id as an exemplar; the classic format does not."""
    start()
    with signalfire.span("work") as current:
        metrics.record_cache_hit("user")
        metrics.record_db_query("SELECT", "bookings", 0.003, system="postgresql")
    trace_id = format(current.get_span_context().trace_id, "032x")
    body, content_type = metrics.render(OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    exemplars = [
        s.exemplar
        for family in parse_openmetrics(body.decode())
        for s in family.samples
        if s.exemplar is not None and s.name in ("cache_hits_total", "db_client_operation_duration_seconds_bucket")
    ]
    assert len(exemplars) == 2
    assert {e.labels["trace_id"] for e in exemplars} == {trace_id}
    assert b"trace_id" not in metrics.render("")[0]


def test_process_and_runtime_metrics_are_exposed():
    """The scrape includes process and Python runtime metrics."""
    start()
    samples = scrape()
    assert "process_resident_memory_bytes" in samples
    assert "python_info" in samples
    assert "python_gc_collections_total" in samples


def test_runtime_metrics_can_be_turned_off():
    """SIGNALFIRE_METRICS_RUNTIME=false leaves them out."""
    start(metrics_runtime=False)
    assert "python_info" not in scrape()


def test_prometheus_is_off_when_the_exporter_list_omits_it():
    """OTEL_METRICS_EXPORTER=console (without prometheus) means no exposition."""
    start(metrics_exporter="console", metric_export_interval_ms=600_000)
    metrics.record_cache_hit("user")
    assert metrics.render()[0] == b""


def test_settings_reject_a_bad_max_series(monkeypatch):
    """SIGNALFIRE_METRICS_MAX_SERIES=0 is refused with the variable, the value and what is accepted."""
    monkeypatch.setenv("SIGNALFIRE_METRICS_MAX_SERIES", "0")
    with pytest.raises(ConfigurationError, match="SIGNALFIRE_METRICS_MAX_SERIES='0' is not accepted: expected a whole"):
        start()


def test_settings_reject_a_missing_multiproc_dir(monkeypatch, tmp_path):
    """PROMETHEUS_MULTIPROC_DIR must exist before the server starts."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match=r"PROMETHEUS_MULTIPROC_DIR=.* expected an existing, writable"):
        start()


def test_settings_reject_a_relative_metrics_path(monkeypatch):
    """SIGNALFIRE_METRICS_PATH must be a path."""
    monkeypatch.setenv("SIGNALFIRE_METRICS_PATH", "metrics")
    with pytest.raises(ConfigurationError, match="SIGNALFIRE_METRICS_PATH='metrics' is not accepted"):
        start()


def test_gunicorn_child_exit_removes_only_the_dead_workers_live_gauges(monkeypatch, tmp_path):
    """child_exit deletes the dead worker's live-gauge files; its counters stay so totals keep its requests."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for name in ("gauge_livesum_41.db", "gauge_livemax_41.db", "counter_41.db", "gauge_livesum_42.db"):
        (tmp_path / name).write_bytes(b"")
    metrics.gunicorn_child_exit(None, SimpleNamespace(pid=41))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_41.db", "gauge_livesum_42.db"]


def test_gunicorn_on_starting_empties_the_directory(monkeypatch, tmp_path):
    """on_starting removes the files a previous run left, so a restart does not add old counts."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    (tmp_path / "counter_123.db").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not ours")
    metrics.gunicorn_on_starting(None)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_other_libraries_otel_metrics_appear_on_the_exposition():
    """Metrics that OpenTelemetry instrumentations record on the MeterProvider are scraped with Prometheus names."""
    obs = start()
    meter = obs.meter_provider.get_meter("opentelemetry.instrumentation.httpx")
    duration = meter.create_histogram(
        "http.client.request.duration", unit="s", explicit_bucket_boundaries_advisory=[0.1, 1]
    )
    duration.record(0.05, {"http.request.method": "GET", "server.address": "api.stripe.com"})
    duration.record(0.5, {"http.request.method": "GET", "server.address": "api.stripe.com"})
    meter.create_counter("redis.commands", unit="{command}").add(3, {"db.operation.name": "GET"})
    meter.create_up_down_counter("db.client.connections.usage", unit="{connection}").add(4, {"state": "used"})
    samples = scrape()
    buckets = {s.labels["le"]: s.value for s in samples["http_client_request_duration_seconds_bucket"]}
    assert buckets == {"0.1": 1.0, "1.0": 2.0, "+Inf": 2.0}
    assert samples["http_client_request_duration_seconds_count"][0].labels == {
        "http_request_method": "GET", "server_address": "api.stripe.com",
    }  # fmt: skip
    assert value("redis_commands_total", db_operation_name="GET") == 3
    assert value("db_client_connections_usage", state="used") == 4


def test_the_bridge_never_duplicates_a_registry_family():
    """An instrumentation metric named like a registry instrument is left to the registry (one family per name)."""
    obs = start()
    meter = obs.meter_provider.get_meter("opentelemetry.instrumentation.sqlalchemy")
    meter.create_histogram("db.client.operation.duration", unit="s").record(0.2, {"db.system.name": "sqlite"})
    metrics.record_db_query("SELECT", "t", 0.001, system="sqlite")
    body, _ = metrics.render()
    assert body.decode().count("# TYPE db_client_operation_duration_seconds histogram") == 1
    assert value("db_client_operation_duration_seconds_count", db_collection_name="t") == 1


def test_an_instrument_clashing_with_a_runtime_metric_does_not_break_init(caplog):
    """A declared name that the process collector already exposes is warned about; init and the scrape go on."""
    metrics.declare("process.open_fds", "gauge", category="runtime", business=False)
    with caplog.at_level(logging.WARNING, logger="signalfire"):
        start()
    assert any("process.open_fds cannot be exposed" in r.getMessage() for r in caplog.records)
    assert len(scrape()["process_open_fds"]) == 1


def test_specs_carry_the_names_each_backend_uses():
    """otel_name is what OTLP carries and prometheus_labels what a PromQL query uses."""
    spec = next(s for s in metrics.instruments(prefix="tvl") if s.name == "payments.processed")
    assert (spec.otel_name, spec.prometheus_name) == ("tvl.payments.processed", "tvl_payments_processed_total")
    http = next(s for s in metrics.instruments(prefix="tvl") if s.name == "http.server.request.duration")
    assert http.otel_name == "http.server.request.duration"
    assert http.prometheus_labels == (
        "http_request_method", "http_route", "http_response_status_code", "error_type", "url_scheme",
        "network_protocol_version",
    )  # fmt: skip


def test_label_value_holding_a_secret_is_scrubbed_and_counted():
    """A label value carrying a secret reaches /metrics redacted (one series for all of them), counted once each."""
    start()
    counter = metrics.declare("reg.scrubbed", "counter", labels=("customer",))
    counter.add(1, customer="sk_live_EG5yS5SyIc4oH7dkN32ffKN2ofDyNs7figUlqWQUuMKT")
    counter.add(1, customer="ghp_NYjqaLo57fTRpsOs5J6BOvPM5lh92U5p08sa")
    counter.add(1, customer="acme")
    body, _ = metrics.render()
    assert b"sk_live_" not in body
    assert b"ghp_" not in body
    assert value("reg_scrubbed_total", customer="acme") == 1
    assert value("signalfire_metrics_labels_rejected_total", metric="reg.scrubbed", reason="scrubbed_value") == 2
