"""A Binance-compatible exchange simulator: kline streams, REST klines, limits and fault injection.

Used by ``tacore exchange-sim``, ``tacore serve --demo``, every ingestion test and the ingest
benchmark, since the real exchange cannot be reached from here. See docs/exchange-sim.md.
"""

from __future__ import annotations

from tacore.exchange_sim.config import SimConfig
from tacore.exchange_sim.server import ExchangeSimulator, SimulatorError, main

__all__ = ["ExchangeSimulator", "SimConfig", "SimulatorError", "main"]
