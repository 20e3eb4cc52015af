"""Sentry errors: settings, scrubbing, noise control, the trace link and the helpers, with the in-memory transport."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sentry_sdk

import signalfire
from signalfire import _errors
from signalfire._settings import ConfigurationError, Settings
from signalfire.testing import Telemetry

SECRET_PASSWORD = "hunter2-correct-horse"
SECRET_TOKEN = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
SECRET_EMAIL = "jane.doe@example.com"


def _everything(telemetry: Telemetry) -> str:
    return "\n".join(telemetry.texts())


# --- settings --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dsn",
    [
        "not a url",
        "ftp://key@sentry.io/1",
        "https://sentry.io/1",  # no public key
        "https://key@sentry.io/project",  # project id must be a number
        "https://key@sentry.io/",
    ],
)
def test_malformed_dsn_is_rejected_naming_the_variable(monkeypatch: pytest.MonkeyPatch, dsn: str) -> None:
    """A malformed SENTRY_DSN fails init with the variable, its value and the accepted form."""
    monkeypatch.setenv("SENTRY_DSN", dsn)
    with pytest.raises(ConfigurationError) as raised:
        signalfire.init_observability(traces_exporter="none")
    message = str(raised.value)
    assert f"SENTRY_DSN={dsn!r}" in message
    assert "expected a Sentry DSN" in message


@pytest.mark.parametrize("variable", ["SENTRY_TRACES_SAMPLE_RATE", "SENTRY_PROFILES_SAMPLE_RATE"])
@pytest.mark.parametrize("value", ["1.5", "-0.1", "abc", "nan"])
def test_sample_rate_outside_0_1_is_rejected(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    """A Sentry sample rate outside [0, 1] or not a number fails init naming the variable and value."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        Settings.resolve()
    assert f"{variable}={value!r} is not accepted: expected a number from 0 to 1" in str(raised.value)


def test_ignore_errors_must_be_class_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGNALFIRE_SENTRY_IGNORE_ERRORS rejects something that is not a class name or dotted path."""
    monkeypatch.setenv("SIGNALFIRE_SENTRY_IGNORE_ERRORS", "KeyError, not a class")
    with pytest.raises(ConfigurationError, match="SIGNALFIRE_SENTRY_IGNORE_ERRORS='KeyError, not a class'"):
        Settings.resolve()


def test_environment_and_release_default_to_the_service_identity() -> None:
    """Without SENTRY_ENVIRONMENT/SENTRY_RELEASE, Sentry gets the service's environment and version."""
    settings = Settings.resolve(environment="staging", service_version="4.2.0", sentry_dsn="https://k@o1.ingest.io/7")
    options = _errors.sentry_options(settings)
    assert (options["environment"], options["release"]) == ("staging", "4.2.0")


def test_sentry_variables_win_over_the_service_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """SENTRY_ENVIRONMENT and SENTRY_RELEASE override the service environment and version."""
    monkeypatch.setenv("SENTRY_ENVIRONMENT", "prod-eu")
    monkeypatch.setenv("SENTRY_RELEASE", "checkout@9.9.9")
    monkeypatch.setenv("GIT_SHA", "abc123")
    options = _errors.sentry_options(Settings.resolve(environment="production"))
    assert (options["environment"], options["release"]) == ("prod-eu", "checkout@9.9.9")


def test_release_falls_back_to_git_sha(monkeypatch: pytest.MonkeyPatch) -> None:
    """GIT_SHA becomes the Sentry release when nothing more specific is set."""
    monkeypatch.setenv("GIT_SHA", "0f1e2d3c")
    assert _errors.sentry_options(Settings.resolve())["release"] == "0f1e2d3c"


def test_by_default_sentry_does_not_trace() -> None:
    """SENTRY_TRACES_SAMPLE_RATE=0 (the default): no Sentry tracing, no propagation, OpenTelemetry's instrumenter."""
    options = _errors.sentry_options(Settings.resolve(sentry_dsn="https://k@o1.ingest.io/7"))
    assert options["traces_sample_rate"] is None
    assert options["trace_propagation_targets"] == []
    assert options["instrumenter"] == "otel"
    assert "send_default_pii" not in options  # deprecated in sentry-sdk 2.x; its default (off) is what we want


# --- off without a DSN -----------------------------------------------------------------------------------------------
@pytest.mark.signalfire_settings(sentry_dsn=None)
def test_helpers_are_no_ops_without_a_dsn(telemetry: Telemetry) -> None:
    """Without SENTRY_DSN Sentry stays off and every helper does nothing."""
    assert not sentry_sdk.get_client().is_active()
    assert signalfire.capture_exception(ValueError("x")) is None
    assert signalfire.capture_message("hello") is None
    signalfire.set_user(1, email=SECRET_EMAIL)
    signalfire.set_context("order", {"id": 1})
    signalfire.add_breadcrumb("step")
    assert telemetry.sentry_events == []


def test_shutdown_turns_sentry_off(telemetry: Telemetry) -> None:
    """After shutdown() the Sentry client is inactive and helpers are no-ops again."""
    telemetry.obs.shutdown()
    assert not sentry_sdk.get_client().is_active()
    assert signalfire.capture_message("after shutdown") is None


# --- what an event carries -------------------------------------------------------------------------------------------
@pytest.mark.signalfire_settings(service_version="1.4.0", environment="test")
def test_captured_exception_carries_tags_context_level_environment_release(telemetry: Telemetry) -> None:
    """capture_exception sends the exception with its tags, context, level, environment and release."""
    try:
        raise RuntimeError("payment provider timed out")
    except RuntimeError as exc:
        event_id = signalfire.capture_exception(exc, tags={"provider": "acme"}, context={"order": "o-1"}, level="fatal")
    (event,) = telemetry.sentry_events
    assert event["event_id"] == event_id
    assert event["exception"]["values"][0]["value"] == "payment provider timed out"
    assert event["tags"]["provider"] == "acme"
    assert event["contexts"]["details"] == {"order": "o-1"}
    assert (event["level"], event["environment"], event["release"]) == ("fatal", "test", "1.4.0")


def test_capture_message_sends_a_message_event(telemetry: Telemetry) -> None:
    """capture_message sends a message event at the given level."""
    signalfire.capture_message("refund queue above 1000", level="warning", tags={"queue": "refunds"})
    (event,) = telemetry.sentry_events
    assert event["message"] == "refund queue above 1000"
    assert (event["level"], event["tags"]["queue"]) == ("warning", "refunds")


def test_event_carries_the_active_otel_trace_and_the_span_records_the_event_id(telemetry: Telemetry) -> None:
    """An event captured inside a span has that span's trace_id/span_id; the span records the Sentry event id."""
    with signalfire.span("charge"):
        event_id = signalfire.capture_message("declined")
    span = telemetry.span("charge")
    (event,) = telemetry.sentry_events
    assert event["contexts"]["trace"]["trace_id"] == f"{span.context.trace_id:032x}"
    assert event["contexts"]["trace"]["span_id"] == f"{span.context.span_id:016x}"
    assert span.attributes is not None
    assert span.attributes["sentry.event_id"] == event_id
    assert [e.attributes["sentry.event_id"] for e in span.events if e.attributes] == [event_id]


def test_traced_function_links_its_error(telemetry: Telemetry) -> None:
    """An exception reported from inside a @traced function carries that function's span."""

    @signalfire.traced
    def settle() -> None:
        try:
            raise ValueError("ledger mismatch")
        except ValueError as exc:
            signalfire.capture_exception(exc)

    settle()
    (event,) = telemetry.sentry_events
    assert event["contexts"]["trace"]["span_id"] == f"{telemetry.spans[0].context.span_id:016x}"


def test_set_context_and_breadcrumbs_reach_the_event(telemetry: Telemetry) -> None:
    """set_context and add_breadcrumb data arrive on later events."""
    signalfire.set_context("cart", {"items": 3})
    signalfire.add_breadcrumb("cart loaded", category="cart", data={"items": 3}, level="debug")
    signalfire.capture_message("checkout failed")
    (event,) = telemetry.sentry_events
    assert event["contexts"]["cart"] == {"items": 3}
    crumb = event["breadcrumbs"]["values"][-1]
    assert (crumb["message"], crumb["category"], crumb["data"], crumb["level"]) == (
        "cart loaded",
        "cart",
        {"items": 3},
        "debug",
    )


# --- scrubbing -------------------------------------------------------------------------------------------------------
def test_user_ip_is_dropped_and_email_redacted(telemetry: Telemetry) -> None:
    """set_user keeps the id and extras, drops any IP address and redacts the email."""
    signalfire.set_user(42, email=SECRET_EMAIL, plan="pro", ip_address="203.0.113.9")
    signalfire.capture_message("x")
    (event,) = telemetry.sentry_events
    assert event["user"]["id"] == "42"
    assert event["user"]["plan"] == "pro"
    assert "ip_address" not in event["user"]
    assert SECRET_EMAIL not in _everything(telemetry)
    assert "203.0.113.9" not in _everything(telemetry)


@pytest.mark.signalfire_settings(sentry_send_user_email=True)
def test_user_email_is_kept_when_allowed(telemetry: Telemetry) -> None:
    """SIGNALFIRE_SENTRY_SEND_USER_EMAIL=true keeps the user's email address."""
    signalfire.set_user(42, email=SECRET_EMAIL)
    signalfire.capture_message("x")
    assert telemetry.sentry_events[0]["user"]["email"] == SECRET_EMAIL


def test_frame_locals_exception_message_context_and_breadcrumbs_are_scrubbed(telemetry: Telemetry) -> None:
    """Secrets in frame locals, the exception message, extra/context, tags and breadcrumbs never leave the process."""

    def login(password: str, api_token: str) -> None:
        payload = {"user": "jane", "password": password}  # noqa: F841 - a local Sentry would capture
        raise PermissionError(f"login failed for {SECRET_EMAIL} with token {api_token}")

    signalfire.add_breadcrumb("auth", data={"password": SECRET_PASSWORD, "note": f"Bearer {SECRET_TOKEN}"})
    signalfire.set_context("session", {"secret": SECRET_PASSWORD})
    sentry_sdk.set_extra("debug", {"token": SECRET_TOKEN})
    sentry_sdk.set_tag("api_key", SECRET_TOKEN)
    try:
        login(SECRET_PASSWORD, SECRET_TOKEN)
    except PermissionError as exc:
        signalfire.capture_exception(exc)
    (event,) = telemetry.sentry_events
    text = _everything(telemetry)
    for secret in (SECRET_PASSWORD, SECRET_TOKEN, SECRET_EMAIL):
        assert secret not in text
    frame = event["exception"]["values"][0]["stacktrace"]["frames"][-1]
    assert frame["function"] == "login"
    assert set(frame["vars"]) >= {"password", "api_token", "payload"}  # locals still there, values scrubbed


def test_members_of_an_exception_group_and_chained_causes_carry_their_own_locals(telemetry: Telemetry) -> None:
    """Each exception of a group (and each cause) gets the locals of its own frames, not a sibling's."""

    def charge(order_id: str) -> None:
        amount = len(order_id)  # noqa: F841 - a local Sentry captures
        raise KeyError(order_id)

    def wrap(order_id: str) -> None:
        try:
            charge(order_id)
        except KeyError as exc:
            raise RuntimeError("charge failed") from exc

    errors = []
    for order_id in ("o-1", "o-22"):
        try:
            wrap(order_id)
        except RuntimeError as exc:
            errors.append(exc)
    try:
        raise ExceptionGroup("batch failed", errors)
    except ExceptionGroup as group:
        signalfire.capture_exception(group)
    (event,) = telemetry.sentry_events
    charged = [
        frame["vars"]["order_id"]
        for value in event["exception"]["values"]
        for frame in value["stacktrace"]["frames"]
        if frame["function"] == "charge"
    ]
    assert sorted(charged) == ["'o-1'", "'o-22'"]


def test_user_before_send_runs_after_scrubbing(telemetry: Telemetry) -> None:
    """A user-supplied before_send sees the already-scrubbed event and its changes are sent."""
    seen: list[str] = []

    def mine(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        seen.append(json.dumps(event))
        event.setdefault("tags", {})["team"] = "payments"
        return event

    signalfire.shutdown()
    obs = _start_with(telemetry, sentry_before_send=mine)
    signalfire.capture_message(f"contact {SECRET_EMAIL}")
    obs.force_flush()
    assert seen
    assert SECRET_EMAIL not in seen[0]
    assert telemetry.sentry_events[-1]["tags"]["team"] == "payments"


def test_user_before_send_can_drop_and_a_failing_one_is_contained(telemetry: Telemetry) -> None:
    """Returning None from the user's before_send drops the event; one that raises is logged and the event sent."""

    def mine(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        if event.get("message") == "drop me":
            return None
        raise RuntimeError("bug in the user's hook")

    signalfire.shutdown()
    _start_with(telemetry, sentry_before_send=mine)
    signalfire.capture_message("drop me")
    signalfire.capture_message("keep me")
    assert [e["message"] for e in telemetry.sentry_events] == ["keep me"]


def test_scrubber_failure_drops_the_event_instead_of_sending_it_raw(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If scrubbing raises, the event is dropped (fail closed) and counted; the caller sees no exception."""
    from signalfire._scrub import _policy as _scrub

    class Broken:
        def scrub(self, value: Any, **_: Any) -> Any:
            raise RuntimeError("scrubber bug")

    monkeypatch.setattr(_scrub, "active", Broken)
    before = _errors.dropped_events()
    signalfire.capture_message(f"secret {SECRET_TOKEN}")
    assert telemetry.sentry_events == []
    assert _errors.dropped_events() > before


# --- noise -----------------------------------------------------------------------------------------------------------
@pytest.mark.signalfire_settings(sentry_ignore_errors=("KeyError", "tests.unit.test_errors.Expected"))
def test_ignored_error_types_are_not_reported(telemetry: Telemetry) -> None:
    """Exceptions named in SIGNALFIRE_SENTRY_IGNORE_ERRORS (by class name or dotted path) send nothing."""
    for exc in (KeyError("k"), Expected("e"), ValueError("v")):
        signalfire.capture_exception(exc)
    assert [e["exception"]["values"][0]["type"] for e in telemetry.sentry_events] == ["ValueError"]


class Expected(Exception):
    pass


def test_http_4xx_and_validation_errors_are_noise_but_5xx_is_not() -> None:
    """HTTPException below 500 and FastAPI's validation errors are noise; a 5xx HTTPException is reported."""
    from fastapi import HTTPException
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    assert _errors.is_noise(HTTPException(404))
    assert _errors.is_noise(StarletteHTTPException(401))
    assert _errors.is_noise(RequestValidationError([]))
    assert not _errors.is_noise(HTTPException(503))
    assert not _errors.is_noise(ValueError("boom"))


def _start_with(telemetry: Telemetry, **overrides: Any) -> Any:
    """Restart signalfire with the fixture's settings plus ``overrides``, events still going to the fixture."""
    from signalfire import _runtime

    settings = Settings.resolve(**{**telemetry.settings.model_dump(), **overrides})
    obs = _runtime.start(settings, sentry_transport=telemetry._sentry)
    telemetry.obs = obs
    return obs


def test_sentry_integrations_add_no_spans_of_their_own(telemetry: Telemetry) -> None:
    """SQLAlchemy and httpx work inside a span yields no Sentry transaction or span, only OpenTelemetry's."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine("sqlite://")
    try:
        with signalfire.span("report"), engine.connect() as connection:
            connection.execute(sqlalchemy.text("select 1")).scalar()
            signalfire.capture_message("report done")
    finally:
        engine.dispose()
    (event,) = telemetry.sentry_events
    assert event.get("type", "event") == "event"
    assert "spans" not in event
    # "select" is signalfire's SQLAlchemy instrumentation: an OpenTelemetry span, not a Sentry one.
    assert [(s.name, s.instrumentation_scope.name) for s in telemetry.spans] == [
        ("select", "opentelemetry.instrumentation.sqlalchemy"),
        ("report", "signalfire"),
    ]


# --- current sentry-sdk options --------------------------------------------------------------------------------------
def test_no_deprecated_sentry_option_is_passed() -> None:
    """init under -W error::DeprecationWarning with tracing and profiling on: sentry-sdk warns about nothing."""
    import subprocess
    import sys

    code = (
        "import signalfire\n"
        "obs = signalfire.init_observability(sentry_dsn='http://key@127.0.0.1:9/1', traces_exporter='none',"
        " metrics_exporter='none', sentry_traces_sample_rate=0.5, sentry_profiles_sample_rate=0.5,"
        " handle_sigterm=False)\n"
        "import sentry_sdk\n"
        "assert sentry_sdk.get_client().is_active()\n"
        "signalfire.shutdown()\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_data_collection_replaces_send_default_pii_where_sentry_has_it() -> None:
    """With sentry-sdk 2.75+ signalfire passes data_collection (no PII, no frame locals of its own) and never
    send_default_pii; so sentry-sdk's own event_scrubber is off and signalfire's scrubbing is what protects."""
    from signalfire._errors import _init_parameters

    options = _errors.sentry_options(Settings.resolve(sentry_dsn="http://key@127.0.0.1:9/1"))
    assert "send_default_pii" not in options
    if "data_collection" in _init_parameters():
        assert options["data_collection"]["user_info"] is False
        assert options["data_collection"]["stack_frame_variables"] is False
    else:
        assert "data_collection" not in options


def test_scrubbing_does_not_depend_on_sentry_event_scrubber(telemetry: Telemetry) -> None:
    """A secret under a key sentry-sdk's denylist does not know is redacted by shape; its event_scrubber is off."""
    import sentry_sdk

    if "data_collection" in _errors._init_parameters():
        assert sentry_sdk.get_client().options["event_scrubber"] is None
    signalfire.set_context("order", {"memo": SECRET_TOKEN})
    signalfire.capture_message("checkout")
    assert telemetry.sentry_events
    assert SECRET_TOKEN not in _everything(telemetry)


def test_sentry_transactions_are_scrubbed_at_the_wire(telemetry: Telemetry) -> None:
    """With SENTRY_TRACES_SAMPLE_RATE > 0, a transaction's name, tags and span data are scrubbed before sending."""
    import sentry_sdk

    signalfire.shutdown()
    obs = _start_with(telemetry, sentry_traces_sample_rate=1.0)
    with sentry_sdk.start_transaction(name="reset", op="task") as transaction:
        transaction.set_tag("memo", SECRET_TOKEN)
        with transaction.start_child(op="db", name=f"UPDATE users SET key = '{SECRET_TOKEN}'") as child:
            child.set_data("note", SECRET_TOKEN)
    obs.force_flush()
    assert any(event.get("type") == "transaction" for event in telemetry.sentry_events)
    assert SECRET_TOKEN not in _everything(telemetry)
