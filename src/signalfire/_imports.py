"""Run a function when a module is first imported: how init_observability() configures libraries it does not import.

A library the service never imports (structlog for a service that logs through the standard library, SQLAlchemy for
one without a database) costs start-up nothing; the hook configures it the moment something imports it, before the
importer gets the module back. wrapt's post-import hooks do the same, but importing wrapt alone costs about as much as
this whole module does several times over, and signalfire needs only this.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

__all__ = ["when_imported"]

_log = logging.getLogger("signalfire")

Hook = Callable[[ModuleType], object]

# Process-wide: the import system is the process's; one finder on sys.meta_path and its hooks, which outlive instances.
_lock = threading.Lock()
_hooks: dict[str, list[Hook]] = {}
_finder: _Finder | None = None


def when_imported(name: str, hook: Hook) -> None:
    """Call ``hook(module)`` once ``name`` is imported: now if it already is, else right after its first import.

    A hook that raises is logged and does not break the import. Hooks cannot be removed; one that must stop acting
    checks its own state when it runs.
    """
    global _finder  # noqa: PLW0603 - the one finder of the process
    with _lock:
        module = sys.modules.get(name)
        if module is None:
            _hooks.setdefault(name, []).append(hook)
            if _finder is None:
                _finder = _Finder()
                sys.meta_path.insert(0, _finder)
            return
    _run(name, module, [hook])


def _run(name: str, module: ModuleType, hooks: Sequence[Hook]) -> None:
    for hook in hooks:
        try:
            hook(module)
        except Exception:
            _log.warning("signalfire: configuring %s after its import failed", name, exc_info=True)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds a watched module with the finders after it and wraps its loader so the hooks run after it executes."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _hooks:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: importlib.machinery.ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


class _Loader(importlib.abc.Loader):
    """The real loader, then the hooks; the module keeps the real loader as its ``__loader__``."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:  # get_data, get_source, is_package, ... of the real loader
        return getattr(self._loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        module: ModuleType | None = create(spec) if create is not None else None
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        with _lock:
            hooks = _hooks.pop(module.__name__, [])
        _run(module.__name__, module, hooks)
