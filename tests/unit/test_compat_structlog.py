"""Contract of signalfire._compat.structlog: structlog's registry of bound context variables is where the log
pipeline looks, it grows when bind_contextvars() runs, and a missing one means "always merge" (never a lost field)."""

from __future__ import annotations

import pytest
import structlog
from structlog.contextvars import bind_contextvars, merge_contextvars, unbind_contextvars

from signalfire._compat import structlog as compat


def test_the_registry_is_a_dict_that_records_every_bound_name() -> None:
    registry = compat.bound_context_variables()
    assert isinstance(registry, dict), "structlog moved _CONTEXT_VARS: signalfire merges on every line until updated"
    bind_contextvars(compat_contract_probe="x")
    try:
        assert any("compat_contract_probe" in str(name) for name in registry)
        assert merge_contextvars(None, "info", {})["compat_contract_probe"] == "x"
    finally:
        unbind_contextvars("compat_contract_probe")


def test_without_the_registry_the_answer_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(structlog.contextvars, "_CONTEXT_VARS")
    assert compat.bound_context_variables() is None


def test_a_record_from_wrap_for_formatter_carries_the_event_dict_and_its_markers() -> None:
    """What ProcessorFormatter.format looks for (msg the event dict, _logger and _name) is what signalfire reads."""
    import logging

    args, kwargs = structlog.stdlib.ProcessorFormatter.wrap_for_formatter(
        logging.getLogger("x"), "info", {"event": "e"}
    )
    record = logging.makeLogRecord({"msg": args[0], "args": (), **kwargs["extra"]})
    assert compat.wrapped_event_dict(record) == {"event": "e"}
    assert compat.wrapped_event_dict(logging.makeLogRecord({"msg": {"event": "e"}})) is None
    assert compat.wrapped_event_dict(logging.makeLogRecord({"msg": "text", "_logger": 1, "_name": "info"})) is None
