"""signalfire.testing: the telemetry fixture and its helpers, as a user's test suite sees them."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

import signalfire

pytest_plugins = ["pytester"]

SRC = Path(__file__).resolve().parents[2] / "src"


def test_find_spans_by_name_and_dotted_attributes(telemetry):
    """find_spans filters on name and on every given attribute; span() insists on exactly one."""
    with signalfire.span("charge", **{"payment.provider": "stripe"}):
        pass
    with signalfire.span("charge", **{"payment.provider": "adyen"}):
        pass
    assert len(telemetry.find_spans("charge")) == 2
    assert telemetry.span("charge", **{"payment.provider": "adyen"}).attributes["payment.provider"] == "adyen"


def test_span_failure_shows_the_captured_tree(telemetry):
    """When the expected span is missing, the failure lists what was captured as a tree."""
    with signalfire.span("outer"), signalfire.span("inner"):
        pass
    with pytest.raises(pytest.fail.Exception) as failure:
        telemetry.span("missing")
    assert "expected one span 'missing'" in str(failure.value)
    assert "outer" in str(failure.value)
    assert "└─ inner" in str(failure.value)


def test_children_are_the_direct_children_in_start_order(telemetry):
    """children(span) returns the spans whose parent is that span, oldest first, not grandchildren."""
    with signalfire.span("parent"):
        with signalfire.span("first"), signalfire.span("grandchild"):
            pass
        with signalfire.span("second"):
            pass
    assert [s.name for s in telemetry.children(telemetry.span("parent"))] == ["first", "second"]


def test_metric_value_by_labels_for_counters_and_histograms(telemetry):
    """metric_value reads a counter's sum and a histogram's count for exactly the given labels."""
    meter = telemetry.obs.meter_provider.get_meter("shop")
    orders = meter.create_counter("orders")
    latency = meter.create_histogram("checkout.duration", unit="s")
    orders.add(2, {"outcome": "ok"})
    orders.add(1, {"outcome": "ok"})
    orders.add(5, {"outcome": "failed"})
    latency.record(0.25, {"http.route": "/checkout"})
    assert telemetry.metric_value("orders", outcome="ok") == 3
    assert telemetry.metric_value("orders", outcome="failed") == 5
    assert telemetry.metric_value("checkout.duration", **{"http.route": "/checkout"}) == 1
    assert telemetry.metric_point("checkout.duration", **{"http.route": "/checkout"}).sum == 0.25


def test_metric_value_failure_lists_the_label_sets_seen(telemetry):
    """Asking for labels that were never recorded fails with the label sets that were."""
    telemetry.obs.meter_provider.get_meter("shop").create_counter("orders").add(1, {"outcome": "ok"})
    with pytest.raises(pytest.fail.Exception, match=r"label sets seen: \[\{'outcome': 'ok'\}\]"):
        telemetry.metric_value("orders", outcome="nope")


def test_assert_no_secrets_finds_a_secret_in_a_span_attribute(telemetry):
    """A secret the scrubber cannot recognise (an innocent key, an innocent shape) fails the check, without
    printing the secret itself."""
    with signalfire.span("login", **{"note": "opensesame-8f3a9c"}):
        pass
    telemetry.assert_no_secrets(["another-secret"])
    with pytest.raises(pytest.fail.Exception) as failure:
        telemetry.assert_no_secrets("opensesame-8f3a9c")
    assert "opensesame-8f3a9c" not in str(failure.value)
    assert "ope..." in str(failure.value)


def test_assert_no_secrets_passes_for_what_the_scrubber_redacted_in_every_signal(telemetry):
    """A token under a sensitive key, in a span, a log line and a Sentry event, is nowhere in what was captured."""
    token = "tok_live_8f3a9c77"
    with signalfire.span("login", **{"user.token": token}):
        signalfire.get_logger("auth").info("login", token=token)
        signalfire.capture_message("login", level="warning")
    assert telemetry.logs
    assert telemetry.spans
    assert telemetry.sentry_events
    telemetry.assert_no_secrets(token)


def test_clear_forgets_spans_logs_and_sentry_events_captured_so_far(telemetry):
    """clear() drops what a test's setup emitted so assertions see only what follows."""
    log = signalfire.get_logger("setup")
    with signalfire.span("setup"):
        log.info("seeded")
    signalfire.capture_exception(ValueError("during setup"))
    telemetry.clear()
    with signalfire.span("act"):
        log.info("acted")
    assert [s.name for s in telemetry.spans] == ["act"]
    assert [line["event"] for line in telemetry.logs] == ["acted"]
    assert telemetry.sentry_events == []


@pytest.mark.signalfire_settings(service_name="billing")
def test_marker_passes_settings(telemetry):
    """The signalfire_settings marker's keyword arguments reach Settings."""
    assert telemetry.settings.service_name == "billing"


USER_TESTS = """
    import pytest
    import signalfire


    @signalfire.traced("checkout", attributes={"shop.cart": "c-1"})
    def checkout():
        return "ok"


    def test_checkout_is_traced(telemetry):
        assert checkout() == "ok"
        assert telemetry.span("checkout").attributes["shop.cart"] == "c-1"


    def test_state_does_not_leak_from_the_previous_test(telemetry):
        assert telemetry.spans == []


    def test_signalfire_is_shut_down_after_a_test_using_the_fixture():
        assert signalfire._runtime.current() is None


    @pytest.mark.signalfire_settings(service_name="billing")
    def test_marker(telemetry):
        assert telemetry.settings.service_name == "billing"
"""


def test_a_users_suite_gets_the_fixture_from_the_entry_point_without_conftest(pytester, monkeypatch):
    """A test file in a fresh project (no conftest) uses `telemetry`; the plugin comes from the pytest11 entry point."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    pytester.makepyfile(test_user=textwrap.dedent(USER_TESTS))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=4)
    assert not list(pytester.path.glob("conftest.py"))


def test_the_entry_point_imports_neither_signalfire_nor_opentelemetry():
    """The module pytest loads at start-up imports only pytest: -X importtime lists no signalfire or OpenTelemetry
    module (deterministic, unlike a timing)."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import _signalfire_pytest"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    imported = [
        line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")
    ]
    assert "_signalfire_pytest" in imported
    assert [name for name in imported if name.startswith(("signalfire", "opentelemetry", "sentry_sdk"))] == []


NO_FIXTURE_TESTS = """
    import sys


    def test_nothing_of_signalfire_was_imported():
        assert "signalfire" not in sys.modules


    def test_the_fixture_imports_it_on_first_use(telemetry):
        assert "signalfire.testing" in sys.modules
        assert telemetry.spans == []
"""


def test_a_suite_that_does_not_use_the_fixture_never_imports_signalfire(pytester, monkeypatch):
    """With signalfire installed, a test that does not ask for `telemetry` runs without signalfire imported; the
    first test that does gets the fixture."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    pytester.makepyfile(test_plain=textwrap.dedent(NO_FIXTURE_TESTS))
    # logfire's own pytest plugins import OpenTelemetry and pydantic; they are not what is measured here
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:logfire", "-p", "no:pytest_logfire", "-q"
    )
    result.assert_outcomes(passed=2)
