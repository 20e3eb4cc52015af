"""What signalfire relies on of gunicorn's logging (gunicorn.glogging.Logger, 25 to 27 at least).

gunicorn marks every handler it installs itself (``Logger._set_handler``: the error and access logs;
``_set_syslog_handler``) with the private attribute ``_gunicorn = True``, and uses that mark to find its own handlers
again on reload. signalfire reads the mark, and only reads it, to tell gunicorn's handlers from the application's;
tests/unit/test_compat_gunicorn.py pins it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["is_server_log_handler"]


def is_server_log_handler(handler: Any) -> bool:
    """True when ``handler`` was installed by gunicorn's own logging setup (not by the application)."""
    return getattr(handler, "_gunicorn", False) is True
