"""A market: which symbols it holds, where their data comes from, when it trades, what it is quoted in."""

from __future__ import annotations

import re
from enum import StrEnum
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tacore.intervals import INTERVAL_MS
from tacore.markets.calendar import DAY_MS, TradingCalendar, calendar_named


class MarketSource(StrEnum):
    """The data feed a market's candles come from."""

    BINANCE = "binance"  # Binance spot WebSocket streams + /api/v3/klines
    ALPACA = "alpaca"  # Alpaca market-data API v2: /v2/stocks/bars + the bars stream


class Market(BaseModel):
    """One named universe (``CRYPTO``, ``US``) as declared in ``trading_config.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,15}$")
    source: MarketSource
    calendar_name: str = Field(alias="calendar")
    quote_currency: str = Field(pattern=r"^[A-Z]{2,10}$")
    #: symbols this market lists by name (the simulator's universe, the default scan set)
    universe: tuple[str, ...] = ()
    #: a symbol outside ``universe`` belongs to this market when it matches
    symbol_pattern: str
    description: str = ""

    @field_validator("symbol_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        re.compile(value)
        return value

    @field_validator("universe", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return tuple(str(v).strip().upper() for v in value)
        return value

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.symbol_pattern)

    @cached_property
    def calendar(self) -> TradingCalendar:
        return calendar_named(self.calendar_name)

    def matches(self, symbol: str) -> bool:
        return symbol in self.universe or self.pattern.fullmatch(symbol) is not None

    def bars_per_year(self, interval: str) -> float:
        """Candles of ``interval`` in a year of this market (annualising volatility and Sharpe)."""
        step = INTERVAL_MS[interval]
        cal = self.calendar
        if step >= DAY_MS:
            return cal.sessions_per_year * DAY_MS / step if cal.session_ms >= DAY_MS else cal.sessions_per_year
        return cal.sessions_per_year * max(1.0, cal.session_ms / step)
