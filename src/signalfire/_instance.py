"""The running instance of the process: the one slot the public entrypoints read.

A leaf module (it imports nothing of signalfire at run time), so that an entrypoint a user calls after start-up
(``instrument_fastapi(app)``, ``instrument_redis()``, ``health.router()``'s default settings, a library imported
after init) can find the running :class:`~signalfire.Observability` without importing the runtime that imports it.
Only ``_runtime`` writes the slot (under its lock, in ``start()`` and ``Observability.shutdown()``). Components never
read it: they get the instance, or what they need of it, in their ``install()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from signalfire._runtime import Observability

__all__ = ["current", "set_current"]

# Process-wide: one running signalfire per process (init_observability() refuses a second with other settings).
_running: Observability | None = None


def current() -> Observability | None:
    """The handle of the running instance, or None."""
    return _running


def set_current(running: Observability | None) -> None:
    """Make ``running`` the instance of the process (None: none runs); the runtime calls it with its lock held."""
    global _running  # noqa: PLW0603 - the one running instance of the process
    _running = running
