"""The server's own handlers on uvicorn's and gunicorn's loggers are replaced; the application's stay."""

from __future__ import annotations

import copy
import json
import logging
import logging.config

import pytest

import signalfire

uvicorn_config = pytest.importorskip("uvicorn.config")


def _log_config(path: str) -> dict:
    """What an application passes as uvicorn's --log-config: uvicorn's defaults plus its own audit file."""
    config = copy.deepcopy(uvicorn_config.LOGGING_CONFIG)
    config["formatters"]["audit"] = {"format": "AUDIT %(name)s %(message)s"}
    config["handlers"]["audit"] = {"class": "logging.FileHandler", "filename": path, "formatter": "audit"}
    config["loggers"]["uvicorn.error"]["handlers"] = ["audit"]
    config["loggers"]["uvicorn.access"]["handlers"] = ["access", "audit"]
    return config


def _ours(text: str, event: str) -> list[dict]:
    return [line for line in map(json.loads, filter(None, text.splitlines())) if line.get("event") == event]


def test_an_application_file_handler_on_uvicorn_loggers_keeps_its_lines_in_its_format(tmp_path, capsys):
    """--log-config with a file handler: the file gets its own format, stdout one signalfire line, stderr nothing."""
    audit = tmp_path / "audit.log"
    logging.config.dictConfig(_log_config(str(audit)))
    signalfire.init_observability(log_format="json", traces_exporter="none", metrics_exporter="none")
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    for handler in logging.getLogger("uvicorn.error").handlers:
        handler.flush()
    out = capsys.readouterr()
    assert len(_ours(out.out, "Application startup complete.")) == 1
    assert "Application startup complete." not in out.err
    assert audit.read_text().splitlines() == ["AUDIT uvicorn.error Application startup complete."]
    signalfire.shutdown()


def test_uvicorn_console_handlers_are_removed_and_given_back_at_shutdown(tmp_path):
    """Only uvicorn's own StreamHandlers are set aside; the app's file handler never leaves the logger."""
    logging.config.dictConfig(_log_config(str(tmp_path / "audit.log")))
    access = logging.getLogger("uvicorn.access")
    before = list(access.handlers)
    signalfire.init_observability(log_format="json", traces_exporter="none", metrics_exporter="none")
    kept = [h for h in access.handlers if isinstance(h, logging.FileHandler)]
    assert len(kept) == 1
    assert not [h for h in access.handlers if type(h) is logging.StreamHandler]
    signalfire.shutdown()
    assert kept[0] in access.handlers
    assert all(h in access.handlers or type(h) is logging.StreamHandler for h in before)


def test_gunicorn_marked_handlers_are_replaced_and_others_kept(tmp_path, capsys):
    """A handler gunicorn installed (marked by gunicorn) is replaced; the app's handler on gunicorn.error stays."""
    error = logging.getLogger("gunicorn.error")
    server = logging.StreamHandler()
    server._gunicorn = True  # what gunicorn.glogging.Logger._set_handler sets
    server.setFormatter(logging.Formatter("GUNICORN %(message)s"))
    own = logging.FileHandler(tmp_path / "own.log")
    own.setFormatter(logging.Formatter("OWN %(message)s"))
    error.addHandler(server)
    error.addHandler(own)
    error.propagate = False
    try:
        signalfire.init_observability(log_format="json", traces_exporter="none", metrics_exporter="none")
        error.info("Booting worker")
        own.flush()
        out = capsys.readouterr()
        assert len(_ours(out.out, "Booting worker")) == 1
        assert "GUNICORN" not in out.out + out.err
        assert (tmp_path / "own.log").read_text() == "OWN Booting worker\n"
        signalfire.shutdown()
    finally:
        for handler in list(error.handlers):
            error.removeHandler(handler)
        own.close()
