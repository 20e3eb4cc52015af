"""Contract: what signalfire._compat.sentry_sdk relies on in sentry-sdk still holds."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import sentry_sdk
from sentry_sdk import logger as sentry_logger
from sentry_sdk.integrations.logging import BreadcrumbHandler, EventHandler, LoggingIntegration

from signalfire._compat import sentry_sdk as compat
from signalfire.testing import MemorySentryTransport


@pytest.fixture
def client() -> Iterator[object]:
    sentry_sdk.init(dsn="http://key@127.0.0.1:9/1", transport=MemorySentryTransport(), default_integrations=False)
    yield sentry_sdk.get_client()
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


def test_an_active_client_exposes_its_transport(client: object) -> None:
    """An initialised client has the transport it was given in its ``transport`` attribute."""
    assert isinstance(compat.get_transport(client), MemorySentryTransport)


def test_the_client_reads_its_transport_at_every_send(client: object) -> None:
    """A transport put in place after init() receives the events captured from then on (errors and messages)."""
    replacement = MemorySentryTransport()
    assert compat.set_transport(client, replacement)
    sentry_sdk.capture_message("after")
    assert [item.type for envelope in replacement.snapshot() for item in envelope.items] == ["event"]


def test_logs_go_through_the_same_transport() -> None:
    """Sentry logs (enable_logs) leave through ``client.transport.capture_envelope`` too, read when they are sent."""
    sentry_sdk.init(
        dsn="http://key@127.0.0.1:9/1", transport=MemorySentryTransport(), default_integrations=False, enable_logs=True
    )
    try:
        replacement = MemorySentryTransport()
        compat.set_transport(sentry_sdk.get_client(), replacement)
        sentry_logger.info("hello")
        sentry_sdk.get_client().flush(timeout=5)
        assert "log" in [item.type for envelope in replacement.snapshot() for item in envelope.items]
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)


def test_a_client_without_a_transport_slot_is_refused() -> None:
    """set_transport() says False rather than inventing an attribute on an object that has none."""

    class NoSlot:
        __slots__ = ()

    assert not compat.set_transport(NoSlot(), MemorySentryTransport())


@pytest.fixture
def logging_client() -> Iterator[object]:
    sentry_sdk.init(
        dsn="http://key@127.0.0.1:9/1",
        transport=MemorySentryTransport(),
        default_integrations=False,
        integrations=[LoggingIntegration()],
    )
    yield sentry_sdk.get_client()
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


def _events(client: object) -> list[object]:
    transport = compat.get_transport(client)
    assert isinstance(transport, MemorySentryTransport)
    return [item for envelope in transport.snapshot() for item in envelope.items if item.type == "event"]


def test_the_logging_integration_makes_events_through_its_event_handler(logging_client: object) -> None:
    """The handler found is sentry-sdk's EventHandler, and an ERROR record with an exception is an event through it."""
    handler = compat.logging_event_handler(logging_client)
    assert isinstance(handler, EventHandler)
    seen: list[logging.LogRecord] = []
    handler.addFilter(lambda record: seen.append(record) or True)
    try:
        raise ValueError("contract")
    except ValueError:
        logging.getLogger("contract.app").error("failed", exc_info=True)
    assert len(seen) == 1
    assert len(_events(logging_client)) == 1


def test_its_filters_run_before_the_record_is_formatted_or_an_event_built(logging_client: object) -> None:
    """A filter refusing the record sees it unformatted (no message, no exc_text) and no event is made of it."""
    handler = compat.logging_event_handler(logging_client)
    assert handler is not None
    seen: list[tuple[bool, object]] = []

    def refuse(record: logging.LogRecord) -> bool:
        seen.append((hasattr(record, "message"), record.exc_text))
        return False

    handler.addFilter(refuse)
    quiet = logging.getLogger("contract.quiet")  # no handler of its own formats the record first (pytest's would)
    quiet.propagate = False
    null = logging.NullHandler()
    quiet.addHandler(null)
    try:
        raise ValueError("contract")
    except ValueError:
        quiet.error("failed", exc_info=True)
    finally:
        handler.removeFilter(refuse)
        quiet.removeHandler(null)
        quiet.propagate = True
    assert seen == [(False, None)]
    assert _events(logging_client) == []


def test_breadcrumbs_go_through_its_breadcrumb_handler_and_its_filters(logging_client: object) -> None:
    """The handler found is sentry-sdk's BreadcrumbHandler; a filter refusing a record keeps its crumb out."""
    handler = compat.logging_breadcrumb_handler(logging_client)
    assert isinstance(handler, BreadcrumbHandler)
    sentry_sdk.get_isolation_scope().clear_breadcrumbs()
    logging.getLogger("contract.app").warning("kept")
    handler.addFilter(lambda record: record.getMessage() != "refused")
    logging.getLogger("contract.app").warning("refused")
    sentry_sdk.capture_message("carrier")
    (event,) = _events(logging_client)
    crumbs = [crumb["message"] for crumb in event.payload.json["breadcrumbs"]["values"]]  # type: ignore[attr-defined]
    assert "kept" in crumbs
    assert "refused" not in crumbs


def test_no_handlers_without_the_logging_integration(client: object) -> None:
    """A client without LoggingIntegration, or with ``event_level=None``/``level=None``, has no handler to filter."""
    assert compat.logging_event_handler(client) is None
    assert compat.logging_breadcrumb_handler(client) is None
    sentry_sdk.init(
        dsn="http://key@127.0.0.1:9/1",
        transport=MemorySentryTransport(),
        default_integrations=False,
        integrations=[LoggingIntegration(event_level=None, level=None)],
    )
    assert compat.logging_event_handler(sentry_sdk.get_client()) is None
    assert compat.logging_breadcrumb_handler(sentry_sdk.get_client()) is None
