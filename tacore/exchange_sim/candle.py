"""The candle value type: prices and volumes as integers of 1e-8, so aggregation is exact.

Binance prints every price and quantity with 8 decimals; holding them as integer units means a 5m
candle built from five 1m candles, a streamed candle and a REST row can never differ by rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

UNITS = 100_000_000  # 1e8: one unit is 0.00000001


def fmt_units(value: int) -> str:
    """Format integer units as Binance does: '0.01000000' (always 8 decimals)."""
    if value < 0:
        return "-" + fmt_units(-value)
    return f"{value // UNITS}.{value % UNITS:08d}"


@dataclass(frozen=True, slots=True)
class Candle:
    """One kline. Prices/volumes are integer units of 1e-8; times are epoch milliseconds."""

    open_time: int
    close_time: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    quote_volume: int
    trades: int
    taker_base: int
    taker_quote: int
    first_trade_id: int
    last_trade_id: int

    def then(self, later: Candle) -> Candle:
        """This candle followed by ``later`` (adjacent, later in time) as one candle."""
        return Candle(
            open_time=self.open_time,
            close_time=later.close_time,
            open=self.open,
            high=max(self.high, later.high),
            low=min(self.low, later.low),
            close=later.close,
            volume=self.volume + later.volume,
            quote_volume=self.quote_volume + later.quote_volume,
            trades=self.trades + later.trades,
            taker_base=self.taker_base + later.taker_base,
            taker_quote=self.taker_quote + later.taker_quote,
            first_trade_id=self.first_trade_id,
            last_trade_id=later.last_trade_id,
        )

    def with_span(self, open_time: int, close_time: int) -> Candle:
        """The same figures re-labelled with the span of the enclosing interval."""
        return Candle(
            open_time,
            close_time,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.quote_volume,
            self.trades,
            self.taker_base,
            self.taker_quote,
            self.first_trade_id,
            self.last_trade_id,
        )
