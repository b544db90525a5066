"""Markets: named universes with a data source, a trading calendar and a quote currency.

``load_markets(settings)`` reads them from ``trading_config.yaml``; every part that needs to know which
market a symbol trades on, whether that market is open, or how many bars make a year asks here.
"""

from __future__ import annotations

from tacore.markets.calendar import AlwaysOpen, SessionCalendar, TradingCalendar, calendar_named
from tacore.markets.model import Market, MarketSource
from tacore.markets.registry import MarketRegistry, load_markets

__all__ = [
    "AlwaysOpen",
    "Market",
    "MarketRegistry",
    "MarketSource",
    "SessionCalendar",
    "TradingCalendar",
    "calendar_named",
    "load_markets",
]
