"""What signalfire relies on of uvicorn's signal handling (uvicorn.server.Server, 0.30 to 0.54 at least).

While it serves, uvicorn's ``Server.capture_signals()`` installs the bound method ``Server.handle_exit`` for SIGINT and
SIGTERM with ``signal.signal`` (in the main thread only), remembers the handlers it replaced, restores them when
serving ends and then re-raises the signals it caught. ``handle_exit`` only sets ``should_exit``: the server then
drains its connections and runs lifespan shutdown. Both names are public (no underscore), but the behaviour is not
documented, so tests/unit/test_compat_uvicorn.py pins it.

uvicorn (``uvicorn.run`` and gunicorn's uvicorn worker alike) imports the app, and so runs ``init_observability()``,
before it installs its handler; signalfire therefore looks at lifespan startup, and when uvicorn's handler holds
SIGTERM it puts its own in front (the signal starts the exit budget and a background flush; uvicorn then drains as
usual). After the signal, lifespan shutdown is the process's last moment: uvicorn exits right after it. signalfire
never patches uvicorn.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["is_server_exit_handler", "is_server_log_handler"]


def is_server_exit_handler(handler: Any) -> bool:
    """True when ``handler`` (what ``signal.getsignal`` returned) is a uvicorn server's ``handle_exit``.

    Without uvicorn imported the answer is False at no cost (uvicorn is never imported here).
    """
    module = sys.modules.get("uvicorn.server")
    server_class = getattr(module, "Server", None)
    if server_class is None:
        return False
    owner = getattr(handler, "__self__", None)
    return isinstance(owner, server_class) and getattr(handler, "__name__", None) == "handle_exit"


# The handler names of uvicorn.config.LOGGING_CONFIG (dictConfig gives each handler its name), for when that module
# is not imported: uvicorn's own configuration is the one that names them so.
_LOGGING_CONFIG_HANDLERS = ("default", "access")


def is_server_log_handler(handler: Any) -> bool:
    """True when ``handler`` is one of uvicorn's own console handlers (``uvicorn.config.LOGGING_CONFIG``): a plain
    ``logging.StreamHandler`` named as in that configuration (``default``, ``access``) whose formatter is a
    ``uvicorn.logging.ColourizedFormatter`` (DefaultFormatter, AccessFormatter). A handler of another class (a file,
    a socket) or of another name (the application's own console handler using uvicorn's formatter) is the
    application's. Without uvicorn.logging imported the answer is False (it is never imported here)."""
    import logging

    formatter_class = getattr(sys.modules.get("uvicorn.logging"), "ColourizedFormatter", None)
    if formatter_class is None or type(handler) is not logging.StreamHandler:
        return False
    config = getattr(sys.modules.get("uvicorn.config"), "LOGGING_CONFIG", None)
    names = config.get("handlers", _LOGGING_CONFIG_HANDLERS) if isinstance(config, dict) else _LOGGING_CONFIG_HANDLERS
    return handler.name in names and isinstance(handler.formatter, formatter_class)
