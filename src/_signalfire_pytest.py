"""signalfire's pytest plugin entry point (``pytest11``): it costs nothing until a test asks for ``telemetry``.

pytest imports every installed plugin at start-up, in every project of the environment. Importing anything under
``signalfire`` runs ``signalfire/__init__.py`` (settings, OpenTelemetry SDK, exporters), so the entry point is this
top-level module: it defines the fixture and the marker, and imports :mod:`signalfire.testing` only when a test uses
the fixture. ``python -X importtime -c "import _signalfire_pytest"`` shows it imports nothing but pytest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def telemetry(request: pytest.FixtureRequest) -> Iterator[Any]:
    """signalfire started in memory for one test; shut down and reset afterwards (see :mod:`signalfire.testing`)."""
    from signalfire import testing

    yield from testing.capture(request)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "signalfire_settings(**overrides): Settings overrides for the telemetry fixture")
