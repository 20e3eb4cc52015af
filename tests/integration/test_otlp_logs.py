"""Log lines reach a real OTLP receiver on loopback (OTEL_LOGS_EXPORTER=otlp), scrubbed and with trace context."""

from __future__ import annotations

import logging

import pytest

import signalfire

pytestmark = pytest.mark.integration


def test_log_records_arrive_with_trace_context_and_scrubbed_attributes(otlp_server):
    """A structlog line and a stdlib record are exported with severity, body, trace ids and redacted attributes."""
    obs = signalfire.init_observability(
        service_name="checkout",
        environment="staging",
        logs_exporter="otlp",
        traces_exporter="none",
        otlp_endpoint=otlp_server.endpoint,
        otlp_protocol=otlp_server.protocol,
        traces_sampler_arg=1.0,
        bsp_schedule_delay_ms=60_000,  # nothing leaves before shutdown: shutdown() must deliver the queue
    )
    with signalfire.span("charge") as current:
        signalfire.get_logger("payments").warning("card declined", order_id="o-1", password="hunter2hunter2")
        logging.getLogger("httpx").error("upstream said token=abcdef123456")
    assert obs.shutdown(timeout=10)

    records = {
        record.body.string_value: (resource, record)
        for resource, record in otlp_server.receiver.logs()
        if record.body.string_value != "signalfire: owners of each signal"  # init's own line
    }
    assert set(records) == {"card declined", "upstream said token=[REDACTED:token]"}
    resource, declined = records["card declined"]
    assert resource["service.name"] == "checkout"
    assert declined.severity_text == "WARNING"
    assert declined.trace_id.hex() == f"{current.get_span_context().trace_id:032x}"
    assert declined.span_id.hex() == f"{current.get_span_context().span_id:016x}"
    attributes = {kv.key: kv.value.string_value for kv in declined.attributes}
    assert attributes["order_id"] == "o-1"
    assert attributes["password"] == "[REDACTED:password]"
    assert attributes["logger"] == "payments"
    _, upstream = records["upstream said token=[REDACTED:token]"]
    assert upstream.severity_text == "ERROR"
