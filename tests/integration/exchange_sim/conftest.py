"""Fixtures: a real simulator on free loopback ports, always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tacore.exchange_sim import ExchangeSimulator, SimConfig

# Fast enough that 1m candles close every 100 ms, slow enough that updates stay readable.
FAST = {"clock_speed": 600.0, "update_interval_ms": 50.0, "seed": 7}


@pytest.fixture
def make_sim() -> Iterator[Callable[..., ExchangeSimulator]]:
    """Start simulators with SimConfig overrides; every one is stopped at teardown."""
    started: list[ExchangeSimulator] = []

    def start(**overrides: Any) -> ExchangeSimulator:
        sim = ExchangeSimulator(SimConfig(**{**FAST, **overrides})).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(make_sim: Callable[..., ExchangeSimulator]) -> ExchangeSimulator:
    """One simulator with the fast defaults."""
    return make_sim()
