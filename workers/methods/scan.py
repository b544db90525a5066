"""scan.market: which symbols of a market pass a chain of filters on their stored candles.

Served by the data agent, which owns the candle store; the scan itself (criteria, the one SQL
query, the reply) lives in ``tacore.analytics.scan``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tacore.analytics.scan import CandleQueries, scan_market
from tacore.analytics.scan_criteria import ScanParams
from tacore.markets import MarketRegistry, load_markets
from workers.registry import MethodRegistry


def build_registry(store: CandleQueries, markets: MarketRegistry | Path | None = None) -> MethodRegistry:
    """``markets``: a registry, or the ``trading_config.yaml`` to load one from (the packaged one if None)."""
    if not isinstance(markets, MarketRegistry):
        markets = load_markets(markets)
    registry = MethodRegistry()
    # Session calendars (exchange-calendars' XNYS) take seconds to build: load them now, off the worker's
    # path, so the first scan of such a market does not wait for it.
    known = markets
    threading.Thread(target=lambda: [market.calendar for market in known], name="calendars", daemon=True).start()

    @registry.method("scan.market", idempotent=True)
    def scan(params: ScanParams) -> dict[str, Any]:
        """Symbols of a market passing an ordered chain of filters, with per-filter drop counts, sorted and paged."""
        return scan_market(store, known, params)

    return registry
