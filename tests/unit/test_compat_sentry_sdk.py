"""Contract: what signalfire._compat.sentry_sdk relies on in sentry-sdk still holds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sentry_sdk
from sentry_sdk import logger as sentry_logger

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
