"""100,000 distinct label values into one instrument: the series stay at the cap and memory stays bounded."""

from __future__ import annotations

import tracemalloc

import pytest
from prometheus_client.parser import text_string_to_metric_families

import signalfire
from signalfire import metrics

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _forget_test_instruments():
    """Instruments a test declares leave the process-wide registry afterwards (other suites list it)."""
    before = dict(metrics._instruments)
    yield
    metrics._instruments.clear()
    metrics._instruments.update(before)


def test_100k_distinct_values_stay_at_the_cap_with_bounded_memory():
    """Series stop at SIGNALFIRE_METRICS_MAX_SERIES (+1 overflow), overflow is counted, memory stops growing."""
    signalfire.init_observability(traces_exporter="none", handle_sigterm=False)  # the default cap: 2000
    counter = metrics.declare("card.requests", "counter", labels=("user_id",))
    for i in range(10_000):
        counter.add(1, user_id=f"u-{i}")
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(10_000, 100_000):
            counter.add(1, user_id=f"u-{i}")
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 90,000 more series would cost tens of megabytes; bounded means (almost) nothing new is kept
    assert after - before < 256 * 1024

    body, _ = metrics.render()
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    samples = [s for s in families["card_requests"].samples if s.name == "card_requests_total"]
    assert len(samples) == 2001
    by_user = {s.labels["user_id"]: s.value for s in samples}
    assert by_user["__overflow__"] == 98_000
    assert sum(by_user.values()) == 100_000
    [overflow] = [s for s in families["signalfire_metrics_series_overflow"].samples if s.name.endswith("_total")]
    assert overflow.labels == {"metric": "card.requests"}
    assert overflow.value == 98_000
