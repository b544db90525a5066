"""What the venues see of the market: a quote (the latest price) and closed candles, in Decimal."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tacore.trading.model.money import to_decimal


@dataclass(frozen=True, slots=True)
class Quote:
    """The latest traded price of a symbol and when the market printed it (exchange time, epoch ms)."""

    symbol: str
    price: Decimal
    ts_ms: int
    #: the last closed 1m candle's volume when known (the volume cap of an immediate fill)
    volume: Decimal | None = None
    #: that candle's open time: volume taken from it is not available to another order
    candle_open_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Candle:
    """A closed candle (``DATA_READY`` or ``kline.history``), prices and volume exact."""

    symbol: str
    interval: str
    open_ms: int
    close_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Candle:
        """From the data agent's candle dict (floats, read by their shortest repr)."""
        return cls(symbol=str(raw["symbol"]), interval=str(raw["interval"]), open_ms=int(raw["open_time"]),
                   close_ms=int(raw["close_time"]), open=to_decimal(raw["open"]), high=to_decimal(raw["high"]),
                   low=to_decimal(raw["low"]), close=to_decimal(raw["close"]), volume=to_decimal(raw["volume"]))
