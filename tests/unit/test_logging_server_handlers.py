"""The server's own handlers on uvicorn's and gunicorn's loggers are replaced; the application's stay."""

from __future__ import annotations

import copy
import json
import logging
import logging.config

import pytest

import signalfire

uvicorn_config = pytest.importorskip("uvicorn.config")


pytestmark = pytest.mark.usefixtures("logging_module_as_it_was")


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


def test_a_handler_shared_by_the_root_and_a_non_propagating_server_logger_gets_each_record_once(tmp_path, capsys):
    """The usual dictConfig: one file on the root and on uvicorn.error with propagate False: the file gets each line
    once, as before, and signalfire's pipeline one line."""
    audit = tmp_path / "app.log"
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"app": {"format": "APP %(name)s %(message)s"}},
            "handlers": {"file": {"class": "logging.FileHandler", "filename": str(audit), "formatter": "app"}},
            "root": {"handlers": ["file"], "level": "INFO"},
            "loggers": {"uvicorn.error": {"handlers": ["file"], "level": "INFO", "propagate": False}},
        }
    )
    server = logging.getLogger("uvicorn.error")
    signalfire.init_observability(log_format="json", traces_exporter="none", metrics_exporter="none")
    server.info("started")
    for handler in logging.getLogger().handlers:
        handler.flush()
    server_lines = [line for line in audit.read_text().splitlines() if line.startswith("APP uvicorn.")]
    assert server_lines == ["APP uvicorn.error started"]
    assert len(_ours(capsys.readouterr().out, "started")) == 1
    signalfire.shutdown()
    assert [h for h in server.handlers if isinstance(h, logging.FileHandler)]
    assert server.propagate is False


def test_a_non_propagating_server_logger_stays_so_and_the_root_handlers_do_not_get_its_records(tmp_path, capsys):
    """The app's root file and its own file on a non-propagating uvicorn.error: the root file gets none of uvicorn's
    lines (as under the app's config), its own file and signalfire's pipeline one each; propagate is untouched."""
    root_file, own_file = tmp_path / "root.log", tmp_path / "uvicorn.log"
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"app": {"format": "APP %(name)s %(message)s"}},
            "handlers": {
                "root_file": {"class": "logging.FileHandler", "filename": str(root_file), "formatter": "app"},
                "own_file": {"class": "logging.FileHandler", "filename": str(own_file), "formatter": "app"},
            },
            "root": {"handlers": ["root_file"], "level": "INFO"},
            "loggers": {"uvicorn.error": {"handlers": ["own_file"], "level": "INFO", "propagate": False}},
        }
    )
    server = logging.getLogger("uvicorn.error")
    signalfire.init_observability(log_format="json", traces_exporter="none", metrics_exporter="none")
    server.info("started")
    logging.getLogger("app").info("hello")
    for handler in [*logging.getLogger().handlers, *server.handlers]:
        handler.flush()
    assert server.propagate is False
    root_lines = [line for line in root_file.read_text().splitlines() if not line.startswith("APP signalfire ")]
    assert root_lines == ["APP app hello"]
    assert own_file.read_text().splitlines() == ["APP uvicorn.error started"]
    assert len(_ours(capsys.readouterr().out, "started")) == 1
    signalfire.shutdown()
    assert server.propagate is False


def _access_record() -> None:
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/items/7", "1.1", 200)


def test_an_application_handler_on_uvicorn_access_keeps_getting_access_records(tmp_path, capsys):
    """With signalfire's access log on, the app's audit file on uvicorn.access still gets uvicorn's access lines,
    and stdout gets none of them (signalfire's own access line replaces uvicorn's there)."""
    audit = tmp_path / "audit.log"
    logging.config.dictConfig(_log_config(str(audit)))
    signalfire.init_observability(log_format="json", traces_exporter="none", metrics_exporter="none")
    _access_record()
    for handler in logging.getLogger("uvicorn.access").handlers:
        handler.flush()
    out = capsys.readouterr()
    assert audit.read_text().splitlines() == ['AUDIT uvicorn.access 127.0.0.1:5000 - "GET /items/7 HTTP/1.1" 200']
    assert not [
        line for line in map(json.loads, filter(None, out.out.splitlines())) if line["logger"] == "uvicorn.access"
    ]
    assert "GET /items/7" not in out.err


def test_uvicorn_access_without_an_application_handler_is_raised_to_warning_and_given_back(tmp_path, capsys):
    """With only uvicorn's own access handler, uvicorn.access goes to WARNING (no record is even built) and gets its
    level back at shutdown."""
    logging.config.dictConfig(copy.deepcopy(uvicorn_config.LOGGING_CONFIG))
    access = logging.getLogger("uvicorn.access")
    before = access.level
    signalfire.init_observability(log_format="json", traces_exporter="none", metrics_exporter="none")
    assert access.level == logging.WARNING
    _access_record()
    assert "GET /items/7" not in capsys.readouterr().out
    signalfire.shutdown()
    assert access.level == before


def test_a_handler_added_to_uvicorn_access_after_init_gets_records_once_the_server_serves(tmp_path, capsys):
    """A handler the app adds to uvicorn.access after init: the claim at lifespan start sees it, and gives
    uvicorn.access back the level signalfire found, so that handler gets the records."""
    signalfire.init_observability(log_format="json", traces_exporter="none", metrics_exporter="none")
    access = logging.getLogger("uvicorn.access")
    assert access.level == logging.WARNING, access.handlers
    audit = tmp_path / "audit.log"
    handler = logging.FileHandler(audit)
    handler.setFormatter(logging.Formatter("AUDIT %(name)s %(message)s"))
    access.addHandler(handler)
    from signalfire import _logging

    _logging.claim_server_loggers()  # what the middleware does at lifespan startup
    _access_record()
    for handler in access.handlers:
        handler.flush()
    assert audit.read_text().splitlines() == ['AUDIT uvicorn.access 127.0.0.1:5000 - "GET /items/7 HTTP/1.1" 200']
    assert "GET /items/7" not in capsys.readouterr().out


def test_gunicorn_log_files_the_operator_asked_for_keep_their_lines(tmp_path, capsys):
    """gunicorn --access-logfile FILE --error-logfile FILE with the uvicorn worker's wiring: both files keep getting
    gunicorn's lines in gunicorn's format; stdout has signalfire's line for the error record and no access line."""
    glogging = pytest.importorskip("gunicorn.glogging")
    gunicorn_config = pytest.importorskip("gunicorn.config")
    cfg = gunicorn_config.Config()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("errorlog", str(tmp_path / "error.log"))
    server_log = glogging.Logger(cfg)
    # what uvicorn.workers.UvicornWorker.__init__ does with gunicorn's loggers
    for name, source in (("uvicorn.error", server_log.error_log), ("uvicorn.access", server_log.access_log)):
        logger = logging.getLogger(name)
        logger.handlers = source.handlers
        logger.setLevel(source.level)
        logger.propagate = False
    signalfire.init_observability(log_format="json", traces_exporter="none", metrics_exporter="none")
    logging.getLogger("uvicorn.error").info("Booting worker")
    _access_record()
    for handler in server_log.error_log.handlers + server_log.access_log.handlers:
        handler.flush()
    out = capsys.readouterr()
    assert "Booting worker" in (tmp_path / "error.log").read_text()
    assert 'GET /items/7 HTTP/1.1" 200' in (tmp_path / "access.log").read_text()
    assert len(_ours(out.out, "Booting worker")) == 1
    assert "GET /items/7" not in out.out
    signalfire.shutdown()
