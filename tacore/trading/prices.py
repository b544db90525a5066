"""Latest prices for the paper venue: closes of ``DATA_READY`` candles as they come, and the data agent's
latest price (``get.market_data``, through the broker) when what is known is older than ``max_age_s``.

The newer of the two by exchange time wins. The last closed 1m candle's volume rides along, for the
volume cap of an order that fills on arrival.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from tacore.trading.model.market import Candle, Quote

log = logging.getLogger("tacore.orders")

#: ``fetch(symbols)``: the data agent's latest quote per symbol, None where it has none (or cannot be asked)
Fetch = Callable[[list[str]], dict[str, Quote | None]]


class PriceBook:
    def __init__(self, fetch: Fetch | None = None, *, max_age_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self.max_age_s = max_age_s
        self._clock = clock
        self._quotes: dict[str, Quote] = {}
        self._checked: dict[str, float] = {}  # symbol -> when we last asked (or heard), local monotonic
        self._lock = threading.Lock()
        self.fetches = 0

    def peek(self, symbol: str) -> Quote | None:
        """What is known, without asking anyone."""
        return self._quotes.get(symbol)

    def quote(self, symbol: str) -> Quote | None:
        """The latest price, asking the data agent first when what is known is older than ``max_age_s``."""
        return self.quotes([symbol])[symbol]

    def quotes(self, symbols: list[str]) -> dict[str, Quote | None]:
        """Latest prices, asking once for every symbol whose price is older than ``max_age_s``."""
        now = self._clock()
        stale = [s for s in symbols if now - self._checked.get(s, -1e18) > self.max_age_s]
        if self._fetch is not None and stale:
            for symbol in stale:
                self._checked[symbol] = now  # also after a failure: ask again only after max_age_s
            self.fetches += 1
            try:
                fetched = self._fetch(stale)
            except Exception as exc:  # a price source that fails leaves what we know
                log.warning("latest prices of %s: %s", ", ".join(stale), exc)
                fetched = {}
            for quote in fetched.values():
                if quote is not None:
                    self.update(quote)
        return {symbol: self._quotes.get(symbol) for symbol in symbols}

    def update(self, quote: Quote) -> None:
        """Keep ``quote`` unless a newer one is known; it keeps the known candle volume if it has none."""
        with self._lock:
            known = self._quotes.get(quote.symbol)
            if known is not None and known.ts_ms > quote.ts_ms:
                return
            if quote.volume is None and known is not None and known.volume is not None:
                quote = replace(quote, volume=known.volume, candle_open_ms=known.candle_open_ms)
            self._quotes[quote.symbol] = quote

    def on_candle(self, candle: Candle) -> None:
        """A closed candle: its close is a price, its volume the cap's reference."""
        if candle.interval != "1m":
            return
        with self._lock:
            known = self._quotes.get(candle.symbol)
            if known is not None and known.ts_ms > candle.close_ms:
                if known.candle_open_ms is None or known.candle_open_ms < candle.open_ms:
                    self._quotes[candle.symbol] = replace(known, volume=candle.volume, candle_open_ms=candle.open_ms)
                return
            self._quotes[candle.symbol] = Quote(candle.symbol, candle.close, candle.close_ms, candle.volume,
                                                candle.open_ms)
        self._checked[candle.symbol] = self._clock()
