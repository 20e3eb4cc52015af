"""Contract: gunicorn marks the handlers its own logging set-up installs (signalfire._compat.gunicorn)."""

from __future__ import annotations

import logging

import pytest

from signalfire._compat import gunicorn as compat

glogging = pytest.importorskip("gunicorn.glogging")
gconfig = pytest.importorskip("gunicorn.config")


def test_gunicorn_own_handlers_are_recognised_and_others_are_not():
    """gunicorn.glogging.Logger's error and access handlers carry the mark; a plain handler does not."""
    cfg = gconfig.Config()
    cfg.set("accesslog", "-")
    before = logging.getLogger("gunicorn.error").handlers + logging.getLogger("gunicorn.access").handlers
    log = glogging.Logger(cfg)
    try:
        handlers = [h for h in log.error_log.handlers + log.access_log.handlers if h not in before]
        assert len(handlers) == 2
        assert handlers
        assert all(compat.is_server_log_handler(h) for h in handlers)
        assert not compat.is_server_log_handler(logging.StreamHandler())
    finally:
        for logger in (log.error_log, log.access_log):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
