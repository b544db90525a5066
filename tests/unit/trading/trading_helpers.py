"""Builders for the trading unit tests: candles, quotes, accounts and a paper venue with a fixed price."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tacore.markets.registry import load_markets
from tacore.trading.accounts import Accounts, Costs
from tacore.trading.instruments import Instruments
from tacore.trading.model import Order, OrderType, Portfolio, Side, TimeInForce
from tacore.trading.model.market import Candle, Quote
from tacore.trading.venues.paper import PaperVenue

D = Decimal
T0 = 1_800_000_000_000 - 1_800_000_000_000 % 60_000  # a minute boundary (2027-01-15, a Friday)


def candle(open_: str, high: str, low: str, close: str, volume: str = "1000", *, minute: int = 1,
           symbol: str = "BTCUSDT") -> Candle:
    start = T0 + minute * 60_000
    return Candle(symbol, "1m", start, start + 59_999, D(open_), D(high), D(low), D(close), D(volume))


class FixedQuotes:
    """A quote source whose prices the test sets."""

    def __init__(self) -> None:
        self.quotes: dict[str, Quote] = {}

    def set(self, symbol: str, price: str, ts_ms: int = T0, volume: str | None = None,
            candle_open_ms: int | None = None) -> None:
        self.quotes[symbol] = Quote(symbol, D(price), ts_ms, None if volume is None else D(volume), candle_open_ms)

    def quote(self, symbol: str) -> Quote | None:
        return self.quotes.get(symbol)

    def peek(self, symbol: str) -> Quote | None:
        return self.quotes.get(symbol)

    def quotes_of(self, symbols: list[str]) -> dict[str, Quote | None]:
        return {s: self.quotes.get(s) for s in symbols}

    def on_candle(self, c: Candle) -> None:
        self.quotes[c.symbol] = Quote(c.symbol, c.close, c.close_ms, c.volume, c.open_ms)


def accounts(**costs: Any) -> Accounts:
    return Accounts.from_mapping({"default_account": "paper", "accounts": {
        "paper": {"venue": "paper", "balances": {"USDT": "10000", "USD": "10000"}, "costs": costs},
        "other": {"venue": "paper", "balances": {"USDT": "5000"}, "costs": costs},
    }})


def paper_venue(clock_ms: int = T0, **costs: Any) -> tuple[PaperVenue, Portfolio, FixedQuotes]:
    accts = accounts(**costs)
    portfolio = Portfolio()
    for account in accts:
        for asset, amount in account.balances.items():
            portfolio.deposit(account.name, asset, amount, 0)
    quotes = FixedQuotes()
    venue = PaperVenue(accts, Instruments(load_markets(None)), portfolio, quotes, clock=lambda: clock_ms)
    return venue, portfolio, quotes


def order(side: str = "buy", qty: str = "1", type: str = "market", tif: str = "gtc", limit: str | None = None,
          stop: str | None = None, symbol: str = "BTCUSDT", account: str = "paper", ts_ms: int = T0,
          quote_asset: str = "USDT") -> Order:
    made = Order.accept(account=account, client_order_id=f"c{id(object())}", venue="paper", symbol=symbol,
                        asset_class="crypto", quote_asset=quote_asset, side=Side(side), type=OrderType(type),
                        time_in_force=TimeInForce(tif), qty=D(qty), limit_price=None if limit is None else D(limit),
                        stop_price=None if stop is None else D(stop), payload_hash="h", request_id=None, ts_ms=ts_ms)
    made.market_ms = ts_ms
    return made


def costs(**values: Any) -> Costs:
    return Costs(**values)
