"""The instruments the generator tests run on: signalfire's catalog plus one application instrument, prefixed."""

from __future__ import annotations

from collections.abc import Sequence

from signalfire._metrics import InstrumentSpec, Metrics

PREFIX = "tvl"


def registry_instruments() -> Sequence[InstrumentSpec]:
    """A fresh registry (the global one stays untouched) with the application's own ``bookings.cancelled``."""
    registry = Metrics()
    registry.declare(
        "bookings.cancelled", "counter", unit="{booking}", description="Bookings cancelled, by reason.",
        labels=("reason",),
    )  # fmt: skip
    return registry.instruments(prefix=PREFIX)
