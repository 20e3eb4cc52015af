"""An application that called sentry_sdk.init() itself keeps its client; signalfire attaches to it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from sentry_sdk import logger as sentry_logger
from sentry_sdk.integrations.logging import LoggingIntegration

import signalfire
from signalfire import _errors
from signalfire.testing import MemorySentryTransport

SECRET = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
APP_DSN = "http://app-key@127.0.0.1:9/7"


@pytest.fixture
def app_client() -> Iterator[MemorySentryTransport]:
    """The application's own sentry_sdk.init(), before init_observability(); closed after the test."""
    transport = MemorySentryTransport()
    yield transport
    signalfire.shutdown()
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


def _app_init(transport: MemorySentryTransport, **options: Any) -> Any:
    sentry_sdk.init(
        dsn=APP_DSN,
        transport=transport,
        environment="prod-eu",
        default_integrations=False,
        integrations=[LoggingIntegration(event_level=None)],
        **options,
    )
    return sentry_sdk.get_client()


def _events(transport: MemorySentryTransport) -> list[dict[str, Any]]:
    return [
        item.payload.json
        for envelope in transport.snapshot()
        for item in envelope.items
        if item.type == "event" and item.payload.json is not None
    ]


def _sent_bytes(transport: MemorySentryTransport) -> str:
    return "\n".join(envelope.serialize().decode() for envelope in transport.snapshot())


def test_the_application_client_is_kept_with_its_options_and_integrations(app_client: MemorySentryTransport) -> None:
    """init_observability() keeps the client the app started (same object, environment, integrations), also when
    SENTRY_DSN is given to signalfire too."""
    client = _app_init(app_client)
    signalfire.init_observability(sentry_dsn="http://other@127.0.0.1:9/1", traces_exporter="none")
    assert sentry_sdk.get_client() is client
    assert client.dsn == APP_DSN
    assert client.get_integration("logging") is not None
    signalfire.capture_message("hello")
    assert [e["environment"] for e in _events(app_client)] == ["prod-eu"]


def test_the_application_before_send_runs_first_then_signalfire_scrubs_its_result(
    app_client: MemorySentryTransport,
) -> None:
    """The app's before_send sees the event as Sentry built it; what it returns (even a secret it added) is scrubbed."""
    seen: list[str] = []

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        seen.append(json.dumps(event, default=str))
        event.setdefault("tags", {})["team"] = "payments"
        event.setdefault("extra", {})["note"] = f"copied {SECRET}"
        return event

    _app_init(app_client, before_send=before_send)
    signalfire.init_observability(traces_exporter="none")
    sentry_sdk.capture_message("charge failed")
    assert seen
    (event,) = _events(app_client)
    assert event["tags"]["team"] == "payments"
    assert SECRET not in _sent_bytes(app_client)


def test_without_signalfire_dsn_the_application_events_are_scrubbed_and_linked(
    app_client: MemorySentryTransport,
) -> None:
    """No SENTRY_DSN in signalfire's settings: the app's own events still carry the OpenTelemetry trace, scrubbed."""
    _app_init(app_client)
    signalfire.init_observability(traces_exporter="none", traces_sampler_arg=1.0)
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        note = f"token {SECRET}"  # noqa: F841 - a local with an innocent name
        sentry_sdk.capture_message(f"failed with {SECRET}")
        context = span.get_span_context()
    (event,) = _events(app_client)
    assert event["contexts"]["trace"]["trace_id"] == format(context.trace_id, "032x")
    assert event["contexts"]["trace"]["span_id"] == format(context.span_id, "016x")
    assert SECRET not in _sent_bytes(app_client)


def test_a_secret_in_a_frame_local_with_an_innocent_name_is_redacted(app_client: MemorySentryTransport) -> None:
    """Frame locals are scrubbed by value shape too: a token in a variable called ``note`` never leaves."""
    _app_init(app_client, include_local_variables=True)
    signalfire.init_observability(traces_exporter="none")

    def charge() -> None:
        note = SECRET  # noqa: F841
        raise RuntimeError("declined")

    try:
        charge()
    except RuntimeError as exc:
        sentry_sdk.capture_exception(exc)
    (event,) = _events(app_client)
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert any("note" in (frame.get("vars") or {}) for frame in frames)
    assert SECRET not in _sent_bytes(app_client)


def test_tags_contexts_breadcrumbs_and_logentry_params_are_scrubbed(app_client: MemorySentryTransport) -> None:
    """Every part of the application's event goes through the one policy, whatever its key is called."""
    _app_init(app_client)
    signalfire.init_observability(traces_exporter="none")
    sentry_sdk.set_tag("ref", SECRET)
    sentry_sdk.set_context("order", {"memo": SECRET})
    sentry_sdk.add_breadcrumb(message=f"saw {SECRET}", data={"memo": SECRET})
    sentry_sdk.capture_event({"logentry": {"message": "token %s", "params": [SECRET]}, "level": "error"})
    assert len(_events(app_client)) == 1
    assert SECRET not in _sent_bytes(app_client)


def test_sentry_logs_of_the_application_are_scrubbed(app_client: MemorySentryTransport) -> None:
    """Sentry log items (enable_logs) are scrubbed at the wire: body and attribute values."""
    _app_init(app_client, enable_logs=True)
    signalfire.init_observability(traces_exporter="none")
    sentry_logger.info("login with {credential}", credential=SECRET)
    sentry_sdk.get_client().flush(timeout=5)
    logs = [
        item.payload.json
        for envelope in app_client.snapshot()
        for item in envelope.items
        if item.type == "log" and item.payload.json is not None
    ]
    assert logs, "no log item was sent"
    assert SECRET not in _sent_bytes(app_client)


def test_http_4xx_errors_of_the_application_client_are_not_sent(app_client: MemorySentryTransport) -> None:
    """The 4xx filter applies to the application's own client too."""
    from starlette.exceptions import HTTPException

    _app_init(app_client)
    signalfire.init_observability(traces_exporter="none")
    sentry_sdk.capture_exception(HTTPException(status_code=404))
    sentry_sdk.capture_exception(HTTPException(status_code=503))
    assert len(_events(app_client)) == 1


def test_shutdown_gives_the_client_back_unwrapped_and_still_running(app_client: MemorySentryTransport) -> None:
    """After shutdown() the application's client sends through its own transport again, and is not closed."""
    client = _app_init(app_client)
    signalfire.init_observability(traces_exporter="none")
    assert client.transport is not app_client
    signalfire.shutdown()
    assert client.transport is app_client
    assert sentry_sdk.get_client().is_active()
    sentry_sdk.capture_message("after")
    assert [e["message"] for e in _events(app_client)] == ["after"]


def test_the_owners_report_names_the_application_client(app_client: MemorySentryTransport) -> None:
    """The start-up owners list says signalfire found the app's client and kept it."""
    _app_init(app_client)
    obs = signalfire.init_observability(traces_exporter="none")
    owners = [owner for owner in obs.owners if owner.signal == "errors"]
    assert owners
    assert "application" in owners[0].found
    assert "kept" in owners[0].action


def test_a_replaced_transport_fails_closed(app_client: MemorySentryTransport) -> None:
    """If something swaps the transport signalfire scrubs at, events are dropped and counted, not sent raw."""
    client = _app_init(app_client)
    signalfire.init_observability(traces_exporter="none")
    other = MemorySentryTransport()
    client.transport = other
    before = _errors.dropped_events()
    sentry_sdk.capture_message(f"raw {SECRET}")
    assert other.snapshot() == []
    assert _errors.dropped_events() == before + 1


_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10)
_PLACED = st.recursive(
    st.just(SECRET) | st.just(f"see {SECRET} here") | st.integers() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_NAMES, children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tag=_NAMES, context=st.dictionaries(_NAMES, _PLACED, min_size=1, max_size=3), extra=_PLACED)
def test_a_secret_anywhere_in_an_application_event_never_leaves(
    app_client: MemorySentryTransport, tag: str, context: dict[str, Any], extra: Any
) -> None:
    """Whatever names and nesting hold the secret (tags, contexts, extra), the sent envelope never contains it."""
    if not sentry_sdk.get_client().is_active():
        _app_init(app_client)
        signalfire.init_observability(traces_exporter="none")
    app_client.clear()
    with sentry_sdk.new_scope() as scope:
        scope.set_tag(tag, SECRET)
        scope.set_context("ctx", context)
        scope.set_extra("value", extra)
        sentry_sdk.capture_message("hypothesis")
    assert len(_events(app_client)) == 1
    assert SECRET not in _sent_bytes(app_client)


def test_a_client_the_application_starts_after_init_is_attached_on_its_first_event(
    app_client: MemorySentryTransport,
) -> None:
    """sentry_sdk.init() after init_observability(): its events are scrubbed and linked too, and it is given back."""
    signalfire.init_observability(traces_exporter="none", traces_sampler_arg=1.0)
    client = _app_init(app_client)
    with trace.get_tracer("test").start_as_current_span("late") as span:
        sentry_sdk.capture_message(f"late {SECRET}")
    (event,) = _events(app_client)
    assert event["contexts"]["trace"]["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert SECRET not in _sent_bytes(app_client)
    signalfire.shutdown()
    assert client.transport is app_client
