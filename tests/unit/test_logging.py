"""Logs: the rendered line, trace context, request id, exceptions, lazy loggers, stdlib bridge, levels, scrubbing."""

from __future__ import annotations

import json
import logging
import logging.config
import re
from pathlib import Path

import pytest

import signalfire
from signalfire import ConfigurationError
from signalfire._logging import bind_request_id, reset_request_id

CORPUS = json.loads((Path(__file__).parent.parent / "data" / "secrets.json").read_text())["secrets"]
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# Obtained and bound at import time, long before any init: must still log with the final configuration.
EARLY = signalfire.get_logger("tests.early").bind(bound_early=True)


def json_lines(text: str) -> list[dict]:
    """The JSON lines of ``text``, without signalfire's own start-up report (at info when it found another owner,
    e.g. FastAPI 0.142's exporter set-up, so present or not depending on the installed FastAPI)."""
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return without_start_up_report(lines)


def without_start_up_report(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line.get("event") != "signalfire: owners of each signal"]


def leaked(secret: str, text: str) -> list[str]:
    return [secret[i : i + 6] for i in range(len(secret) - 5) if secret[i : i + 6] in text]


@pytest.mark.signalfire_settings(log_format="json", service_name="checkout", service_version="2.1.0")
def test_json_line_carries_identity_and_iso_timestamp(telemetry, capsys):
    """A JSON line has an ISO-8601 UTC timestamp, level, event, logger, service, environment and version."""
    signalfire.get_logger("orders").info("order placed", order_id="o-1", amount=49.5)
    (line,) = json_lines(capsys.readouterr().out)
    assert ISO_UTC.match(line["timestamp"])
    assert line["level"] == "info"
    assert line["event"] == "order placed"
    assert line["logger"] == "orders"
    assert (line["service"], line["environment"], line["version"]) == ("checkout", "test", "2.1.0")
    assert (line["order_id"], line["amount"]) == ("o-1", 49.5)
    assert "trace_id" not in line
    assert "request_id" not in line


@pytest.mark.signalfire_settings(log_format="json")
def test_line_inside_a_span_carries_its_trace_context(telemetry, capsys):
    """Inside a span a line has the span's trace_id (32 hex), span_id (16 hex) and trace_flags."""
    with signalfire.span("work") as current:
        signalfire.get_logger("w").info("working")
    (line,) = json_lines(capsys.readouterr().out)
    context = current.get_span_context()
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"
    assert line["trace_flags"] == "01" or int(line["trace_flags"], 16) & 1


@pytest.mark.signalfire_settings(log_format="json")
def test_bound_request_id_is_on_every_line(telemetry):
    """A request id bound in the context is on every line logged in it, and gone after reset."""
    token = bind_request_id("req-42")
    signalfire.get_logger("a").info("inside")
    logging.getLogger("lib").warning("stdlib inside")
    reset_request_id(token)
    signalfire.get_logger("a").info("outside")
    inside, stdlib, outside = without_start_up_report(telemetry.logs)
    assert inside["request_id"] == stdlib["request_id"] == "req-42"
    assert "request_id" not in outside


@pytest.mark.signalfire_settings(log_format="json")
def test_a_line_after_the_requests_span_ended_carries_the_requests_trace(telemetry):
    """A line logged while the request id is still bound but its span is no longer current (the server's traceback
    line, after the middleware finished) carries the trace and span ids of the request's span."""
    with signalfire.span("GET /boom") as request_span:
        token = bind_request_id("req-500", request_span)
    logging.getLogger("uvicorn.error").error("Exception in ASGI application")
    reset_request_id(token)
    (line,) = telemetry.find_logs("Exception in ASGI application")
    context = request_span.get_span_context()
    assert (line["trace_id"], line["span_id"]) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert line["request_id"] == "req-500"


@pytest.mark.signalfire_settings(log_format="json")
def test_exception_renders_as_structured_fields(telemetry, capsys):
    """log.exception renders type, message and stack as fields of one JSON line."""
    try:
        raise KeyError("sku-9")
    except KeyError:
        signalfire.get_logger("a").exception("lookup failed")
    (line,) = json_lines(capsys.readouterr().out)
    assert line["level"] == "error"
    assert line["exception"]["type"] == "KeyError"
    assert line["exception"]["message"] == "'sku-9'"
    assert "Traceback (most recent call last)" in line["exception"]["stack"]
    assert "test_exception_renders_as_structured_fields" in line["exception"]["stack"]


def test_logger_bound_before_init_uses_the_final_configuration(capsys):
    """A logger obtained and bound before init (even at import time) logs JSON with the service after init."""
    late = signalfire.get_logger("tests.late").bind(request_kind="early")
    late.info("before init")
    assert "before init" in capsys.readouterr().out
    signalfire.init_observability(log_format="json", service_name="svc", traces_exporter="none")
    EARLY.info("early logger")
    late.info("late logger")
    first, second = json_lines(capsys.readouterr().out)
    assert (first["event"], first["bound_early"], first["service"]) == ("early logger", True, "svc")
    assert (second["event"], second["request_kind"], second["service"]) == ("late logger", "early", "svc")


def test_reinit_with_another_format_reaches_existing_loggers(capsys):
    """Re-initialising with another format changes the lines of loggers already in use."""
    signalfire.init_observability(log_format="json", traces_exporter="none")
    EARLY.info("as json")
    signalfire.shutdown()
    signalfire.init_observability(log_format="console", traces_exporter="none")
    EARLY.info("as console")
    out = capsys.readouterr().out
    assert json_lines(out)[0]["event"] == "as json"
    console = [line for line in out.splitlines() if "as console" in line]
    assert console
    assert not console[0].startswith("{")


@pytest.mark.signalfire_settings(log_format="console")
def test_console_format_is_readable(telemetry, capsys):
    """SIGNALFIRE_LOG_FORMAT=console writes a readable line with the event and key=value fields."""
    signalfire.get_logger("shop").info("order placed", order_id="o-7")
    out = capsys.readouterr().out
    assert "order placed" in out
    assert "order_id=o-7" in out
    assert not out.lstrip().startswith("{")


def test_log_format_defaults_follow_the_environment():
    """Development logs to the console, every other environment logs JSON."""
    assert signalfire.Settings.resolve(environment="development").log_format == "console"
    assert signalfire.Settings.resolve(environment="production").log_format == "json"
    assert signalfire.Settings.resolve(environment="staging").log_format == "json"


@pytest.mark.signalfire_settings(log_format="json")
def test_stdlib_records_share_the_pipeline_and_trace_context(telemetry):
    """A standard-library record is rendered by the same pipeline, with extra fields and the span's trace id."""
    with signalfire.span("query") as current:
        logging.getLogger("sqlalchemy.engine").warning("slow query %s", "q1", extra={"rows": 3})
    (line,) = telemetry.find_logs("slow query q1")
    assert line["logger"] == "sqlalchemy.engine"
    assert line["level"] == "warning"
    assert line["rows"] == 3
    assert line["trace_id"] == f"{current.get_span_context().trace_id:032x}"


@pytest.mark.usefixtures("logging_module_as_it_was")
def test_uvicorn_records_appear_once_in_our_format(capsys, monkeypatch):
    """With uvicorn's own logging config applied, its records are written once, as our JSON lines."""
    uvicorn_config = pytest.importorskip("uvicorn.config")
    logging.config.dictConfig(uvicorn_config.LOGGING_CONFIG)
    signalfire.init_observability(log_format="json", traces_exporter="none")
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    out = capsys.readouterr()
    assert out.err.count("Application startup complete.") == 0
    lines = [line for line in json_lines(out.out) if line["event"] == "Application startup complete."]
    assert len(lines) == 1
    assert lines[0]["logger"] == "uvicorn.error"


@pytest.mark.usefixtures("logging_module_as_it_was")
def test_uvicorn_records_after_shutdown_keep_our_format_and_reinit_writes_them_once(capsys):
    """uvicorn logs its last lines after signalfire's shutdown: they are still our JSON lines (not uvicorn's
    "INFO:" lines on stderr); a later init writes each of its records once."""
    uvicorn_config = pytest.importorskip("uvicorn.config")
    logging.config.dictConfig(uvicorn_config.LOGGING_CONFIG)
    signalfire.init_observability(log_format="json", traces_exporter="none")
    signalfire.shutdown()
    logging.getLogger("uvicorn.error").info("Application shutdown complete.")
    out = capsys.readouterr()
    assert "Application shutdown complete." not in out.err
    (line,) = [line for line in json_lines(out.out) if line["event"] == "Application shutdown complete."]
    assert line["logger"] == "uvicorn.error"
    signalfire.init_observability(log_format="json", traces_exporter="none")
    logging.getLogger("uvicorn.error").info("Started server process")
    signalfire.shutdown()
    logging.getLogger("uvicorn.error").info("Finished server process")
    events = [line["event"] for line in json_lines(capsys.readouterr().out)]
    assert events.count("Started server process") == 1
    assert events.count("Finished server process") == 1


@pytest.mark.signalfire_settings(log_format="console")
def test_a_stdlib_message_ending_in_a_newline_does_not_split_the_console_line(telemetry, capsys):
    """uvicorn's "Exception in ASGI application\\n": the message's trailing newline is dropped, so the logger name and
    the fields stay on the event's line."""
    logging.getLogger("uvicorn.error").error("Exception in ASGI application\n")
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "Exception in ASGI application" in line]
    assert "[uvicorn.error]" in line
    assert telemetry.find_logs("Exception in ASGI application")


def test_basic_config_handlers_are_replaced_when_asked(capsys):
    """SIGNALFIRE_LOG_ROOT_HANDLERS=replace: a console handler installed earlier (logging.basicConfig) does not write
    every record a second time, and is given back at shutdown."""
    root = logging.getLogger()
    handler = logging.StreamHandler()  # stderr, as basicConfig would
    root.addHandler(handler)
    try:
        signalfire.init_observability(log_format="json", traces_exporter="none", log_root_handlers="replace")
        logging.getLogger("lib").warning("only once")
        out = capsys.readouterr()
        assert "only once" not in out.err
        assert len([line for line in json_lines(out.out) if line["event"] == "only once"]) == 1
        signalfire.shutdown()
        assert handler in root.handlers  # given back at shutdown
    finally:
        root.removeHandler(handler)


def test_levels_come_from_log_level_and_per_logger_levels(capsys, monkeypatch):
    """LOG_LEVEL sets the floor; SIGNALFIRE_LOG_LEVELS raises or lowers named loggers, structlog or stdlib."""
    monkeypatch.setenv("LOG_LEVEL", "info")
    monkeypatch.setenv("SIGNALFIRE_LOG_LEVELS", "sqlalchemy.engine=WARNING,app.verbose=DEBUG")
    signalfire.init_observability(log_format="json", traces_exporter="none")
    signalfire.get_logger("app").debug("hidden debug")
    signalfire.get_logger("app").info("shown info")
    signalfire.get_logger("app.verbose.sub").debug("shown debug")
    logging.getLogger("sqlalchemy.engine.Engine").info("hidden sql")
    logging.getLogger("sqlalchemy.engine.Engine").warning("shown sql")
    events = [line["event"] for line in json_lines(capsys.readouterr().out)]
    assert events == ["shown info", "shown debug", "shown sql"]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SIGNALFIRE_LOG_FORMAT", "xml", "expected json or console"),
        ("SIGNALFIRE_LOG_LEVELS", "sqlalchemy=LOUD", "LEVEL one of"),
        ("SIGNALFIRE_LOG_LEVELS", "sqlalchemy", "expected comma-separated key=value pairs"),
        ("SIGNALFIRE_ACCESS_LOG_SAMPLE_RATE", "1.5", "expected a number from 0 to 1"),
        ("SIGNALFIRE_ACCESS_LOG_SLOW_MS", "-3", "expected a number of milliseconds"),
        ("SIGNALFIRE_REQUEST_ID_HEADER", "X Request", "expected an HTTP header name"),
    ],
)
def test_bad_logging_settings_name_the_variable(monkeypatch, variable, value, expected):
    """A bad logging variable is rejected at init with its name, its value and what is accepted."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=re.escape(f"{variable}={value!r}")) as failure:
        signalfire.init_observability()
    assert expected in str(failure.value)


# --- the scrubber on every event ----------------------------------------------------------------------------------
@pytest.mark.signalfire_settings(log_format="json")
def test_corpus_secrets_never_reach_a_log_line(telemetry, capsys):
    """Every corpus secret, in kwargs, nested dicts, the event, exception messages and stdlib records, is redacted."""
    log = signalfire.get_logger("leaks")
    for entry in CORPUS:
        text = entry["text"]
        log.info("kwargs", detail=text)
        log.info("nested", payload={"outer": [{"inner": text}], "again": (text,)})
        log.info(f"event text {text}")
        try:
            raise RuntimeError(f"upstream said: {text}")
        except RuntimeError:
            log.exception("failed")
        logging.getLogger("lib").error("stdlib %s", text, extra={"context": {"value": text}})
    out = capsys.readouterr().out
    assert len(json_lines(out)) == 5 * len(CORPUS)
    for entry in CORPUS:
        assert leaked(entry["secret"], out) == [], entry["kind"]


@pytest.mark.signalfire_settings(log_format="json")
def test_sensitive_keys_are_redacted_in_log_lines(telemetry):
    """Values logged under sensitive keys are replaced by a marker naming the kind."""
    signalfire.get_logger("a").info("login", user="ann", password="hunter2", headers={"Authorization": "t0k3n"})
    (line,) = without_start_up_report(telemetry.logs)
    assert line["password"] == "[REDACTED:password]"
    assert line["headers"] == {"Authorization": "[REDACTED:authorization]"}
    assert line["user"] == "ann"


@pytest.mark.signalfire_settings(log_format="json", scrub_emails=True)
def test_emails_in_logs_are_redacted_when_enabled(telemetry):
    """SIGNALFIRE_SCRUB_EMAILS=true redacts email addresses in log lines."""
    signalfire.get_logger("a").info("mail sent to ann@example.com")
    assert without_start_up_report(telemetry.logs)[0]["event"] == "mail sent to [REDACTED:email]"


@pytest.mark.signalfire_settings(log_format="json")
def test_unknown_objects_are_rendered_scrubbed(telemetry, capsys):
    """An object JSON cannot hold is logged as its repr, scrubbed."""

    class Conn:
        def __repr__(self) -> str:
            return "Conn(url='postgresql://app:pw123456@db/app')"

    signalfire.get_logger("a").info("connected", conn=Conn())
    (line,) = json_lines(capsys.readouterr().out)
    assert line["conn"] == "Conn(url='postgresql://app:[REDACTED:password]@db/app')"


@pytest.mark.signalfire_settings(log_format="json")
def test_telemetry_fixture_captures_logs_for_leak_checks(telemetry):
    """telemetry.logs holds the rendered fields and assert_no_secrets looks at log lines too."""
    signalfire.get_logger("a").info("charged", card="4111 1111 1111 1111", order_id="o-9")
    assert telemetry.find_logs("charged", order_id="o-9")
    telemetry.assert_no_secrets(["4111 1111 1111 1111"])
    assert any('"order_id":"o-9"' in line for line in telemetry.log_lines)


# --- spans --------------------------------------------------------------------------------------------------------
def test_corpus_secrets_never_reach_an_exported_span(telemetry):
    """Corpus secrets in span attributes, span names, exception events and status are redacted before export."""
    for entry in CORPUS:
        text = entry["text"]
        try:
            with signalfire.span("work", detail=text, nested=str({"k": text})) as current:
                current.set_attribute("http.request.header.authorization", text)
                current.add_event("note", {"message": text})
                raise ValueError(f"bad input {text}")
        except ValueError:
            pass
    # What the scrubber is responsible for: names, attributes, events and status. The random trace and span ids are
    # left out, since a 6-hex-character piece of a secret can occur in them by chance.
    exported = "\n".join(
        json.dumps(
            [
                span.name,
                dict(span.attributes),
                [[e.name, dict(e.attributes)] for e in span.events],
                span.status.description,
            ],
            default=str,
        )
        for span in telemetry.spans
    )
    assert len(telemetry.spans) == len(CORPUS)
    for entry in CORPUS:
        assert leaked(entry["secret"], exported) == [], entry["kind"]
    first = telemetry.spans[0]
    assert first.attributes["http.request.header.authorization"] == "[REDACTED:authorization]"
    assert first.events[0].attributes["message"] == "[REDACTED:jwt]"


def test_clean_spans_are_exported_untouched(telemetry):
    """A span with nothing to redact is exported as it was recorded."""
    with signalfire.span("clean", order_id="o-1", count=3):
        pass
    (span,) = telemetry.spans
    assert dict(span.attributes) == {"order_id": "o-1", "count": 3}


# --- coexistence with the application's own logging ------------------------------------------------------------------
def test_existing_root_handlers_keep_receiving_records(capsys):
    """By default a handler the application put on the root logger still gets every record (and signalfire's line
    is written too); the owners report says so."""
    root = logging.getLogger()
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler = Collect()
    root.addHandler(handler)
    try:
        obs = signalfire.init_observability(log_format="json", traces_exporter="none")
        logging.getLogger("lib").warning("both see this")
        assert seen.count("both see this") == 1
        assert [line["event"] for line in json_lines(capsys.readouterr().out)].count("both see this") == 1
        assert any("Collect" in owner.found and "kept" in owner.action for owner in obs.owners)
    finally:
        root.removeHandler(handler)


def test_structlog_configure_by_the_application_after_init_is_respected(capsys):
    """structlog.configure() after init_observability() stays in force: get_logger() does not re-apply signalfire's."""
    import structlog

    signalfire.init_observability(log_format="json", traces_exporter="none")
    lines: list[str] = []
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=structlog.ReturnLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    try:
        result = signalfire.get_logger("app").info("mine", n=1)
        lines.append(result)
        assert json.loads(lines[0]) == {"event": "mine", "n": 1}
        assert signalfire.get_logger("app").info("again") == '{"event": "again"}'
    finally:
        structlog.reset_defaults()


def test_structlog_configured_before_init_is_kept_and_reported():
    """An application that configured structlog first keeps its chain; the owners report names it."""
    import structlog

    structlog.configure(
        processors=[structlog.processors.JSONRenderer()], logger_factory=structlog.ReturnLoggerFactory()
    )
    try:
        obs = signalfire.init_observability(log_format="json", traces_exporter="none")
        assert structlog.get_config()["processors"][-1].__class__ is structlog.processors.JSONRenderer
        assert any(owner.found == "structlog configured by the application" for owner in obs.owners)
    finally:
        structlog.reset_defaults()


def test_an_application_chain_ending_in_wrap_for_formatter_renders_through_its_formatter_and_ours(capsys):
    """structlog -> ProcessorFormatter.wrap_for_formatter -> the app's ProcessorFormatter handler: the app's handler
    renders its line, scrubbed and with trace ids, and signalfire's line has the same fields, not the dict's str()."""
    import io

    import structlog

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(processor=structlog.processors.JSONRenderer()))
    root = logging.getLogger()
    root.addHandler(handler)
    structlog.configure(
        processors=[
            structlog.stdlib.add_log_level,
            *signalfire.logging_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    try:
        signalfire.init_observability(log_format="json", traces_exporter="none", traces_sampler_arg=1.0)
        with signalfire.span("work") as current:
            structlog.get_logger("shop").info("paid", password="hunter2", order={b"k": 1, 2: [3]})
        trace_id = format(current.get_span_context().trace_id, "032x")
        span_id = format(current.get_span_context().span_id, "016x")
        mine = [json.loads(line) for line in stream.getvalue().splitlines() if '"paid"' in line]
        ours = [line for line in json_lines(capsys.readouterr().out) if line.get("logger") == "shop"]
        assert len(mine) == 1
        assert len(ours) == 1
        for line in (mine[0], ours[0]):
            assert line["event"] == "paid"
            assert line["password"] != "hunter2"
            assert line["trace_id"] == trace_id
            assert line["span_id"] == span_id
        assert not {"_logger", "_name", "_record", "_from_structlog"} & set(ours[0])
        assert "hunter2" not in stream.getvalue()
    finally:
        root.removeHandler(handler)
        structlog.reset_defaults()


def test_logging_processors_compose_into_the_application_chain():
    """signalfire.logging_processors() before the app's renderer: scrubbed, with identity and trace ids."""
    import structlog

    signalfire.init_observability(
        log_format="json", traces_exporter="none", service_name="shop", traces_sampler_arg=1.0
    )
    structlog.configure(
        processors=[*signalfire.logging_processors(), structlog.processors.JSONRenderer()],
        logger_factory=structlog.ReturnLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    try:
        with signalfire.span("work") as current:
            line = json.loads(structlog.get_logger("shop").info("paid", password="hunter2", data={b"k": 1}))
        assert line["event"] == "paid"
        assert line["password"] != "hunter2"
        assert line["service"] == "shop"
        assert line["trace_id"] == format(current.get_span_context().trace_id, "032x")
    finally:
        structlog.reset_defaults()
