"""The instruments the generator tests run on."""

from __future__ import annotations

from collections.abc import Sequence

from signalfire._promql import InstrumentSpec
from tests.unit import standin_registry


def registry_instruments() -> Sequence[InstrumentSpec]:
    return standin_registry.instruments("tvl")
