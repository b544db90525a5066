"""What TACore knows of a symbol it trades: its market (calendar), asset class and quote asset."""

from __future__ import annotations

from dataclasses import dataclass

from tacore.markets import Market, MarketRegistry, MarketSource

#: Quote assets of Binance spot symbols, longest first (ETHBTC is quoted in BTC, BTCFDUSD in FDUSD).
BINANCE_QUOTES = ("FDUSD", "USDT", "USDC", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY")


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    market: Market
    asset_class: str  # Alpaca's names: "crypto" | "us_equity"
    quote_asset: str


class Instruments:
    def __init__(self, markets: MarketRegistry) -> None:
        self.markets = markets
        self._cache: dict[str, Instrument | None] = {}

    def resolve(self, symbol: str) -> Instrument | None:
        """The instrument for ``symbol``, or None when no market lists or matches it."""
        if symbol in self._cache:
            return self._cache[symbol]
        market = self.markets.market_of(symbol)
        found = None
        if market is not None:
            if market.source is MarketSource.BINANCE:
                quote = next((q for q in BINANCE_QUOTES if symbol.endswith(q) and len(symbol) > len(q)),
                             market.quote_currency)
                found = Instrument(symbol, market, "crypto", quote)
            else:
                found = Instrument(symbol, market, "us_equity", market.quote_currency)
        self._cache[symbol] = found
        return found
