"""What ``get.market_data`` reads, for the data agent's worker thread: price-cache entries (one round trip
for all symbols) and, on a miss, snapshots built from the candle store (one read for all of them).

Neither ever presents a candle later than the source's clock as live: a cache entry whose event time
is ahead of the newest time the sources have shown (a Redis entry left by a run on a faster clock)
is treated as a miss, and store reads stop at that time. While the store holds candles ahead of the
source's clock (its clock went back under a running agent), the symbols concerned are always read from
the store that way: the agent's own memory of them carries the old clock until it restarts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tacore.errors import Unavailable
from tacore.markets import MarketRegistry
from tacore.markets.ticker import ticker_of
from tacore.store.klines import KlineStore, StorageError, candle_dict
from tacore.store.market_rows import market_rows
from tacore.store.price_cache import PriceCache, PriceSnapshot

log = logging.getLogger("tacore.ingest.market")

#: how far past the newest source time seen an event may be before it counts as "from the future"
#: (the sources' own jitter between streams is far below it)
FUTURE_TOLERANCE_MS = 60_000
#: the candles a get.market_data reply carries (the cache is asked for no others)
_REPLY_INTERVALS = ("1m", "1d")
#: after a failed cache read the cache is skipped this long: a frozen Redis costs one read timeout, not one a call
CACHE_RETRY_S = 5.0


class MarketView:
    """Implements ``workers.methods.market.MarketService`` over the agent's cache and store."""

    def __init__(self, store: KlineStore, cache: PriceCache, markets: MarketRegistry, max_symbols: int,
                 source_now_ms: Callable[[], int | None],
                 on_cache_error: Callable[[Exception], None] | None = None) -> None:
        self.store = store
        self.cache = cache
        self.markets = markets
        self.max_symbols = max_symbols
        self._source_now_ms = source_now_ms
        self.future_skipped = 0  # cache entries refused as later than the source's clock
        self.ahead_symbols: frozenset[str] = frozenset()  # the last clock check found candles ahead for these
        self._cache_down_until = 0.0
        self._on_cache_error = on_cache_error  # the cache's state for the health reports

    def _limit(self) -> int | None:
        now = self._source_now_ms()
        return None if now is None else now + FUTURE_TOLERANCE_MS

    def cached_snapshots(self, symbols: list[str]) -> dict[str, PriceSnapshot | None]:
        if time.monotonic() < self._cache_down_until:
            return dict.fromkeys(symbols)
        try:
            snaps = self.cache.get_many(symbols, _REPLY_INTERVALS)
        except Exception as exc:
            self._cache_down_until = time.monotonic() + CACHE_RETRY_S
            if self._on_cache_error is not None:
                self._on_cache_error(exc)
            log.warning("price cache read failed (%s); reading the candle store for %.0f s", exc, CACHE_RETRY_S)
            return dict.fromkeys(symbols)
        limit, ahead = self._limit(), self.ahead_symbols
        for symbol, snap in snaps.items():
            if snap is not None and (symbol in ahead or (limit is not None and snap.event_time > limit)):
                self.future_skipped += 1
                snaps[symbol] = None
        return snaps

    def stored_snapshots(self, symbols: list[str]) -> dict[str, PriceSnapshot]:
        try:
            newest, ticker_rows = market_rows(self.store, symbols, not_after_ms=self._limit())
        except StorageError as exc:
            raise Unavailable(f"candle storage is down: {exc}") from None
        out = {}
        for symbol in symbols:
            candles = {interval: row for (s, interval), row in newest.items() if s == symbol}
            rows = ticker_rows.get(symbol, [])
            latest = max([*candles.values(), *rows[-1:]], key=lambda r: r.event_time, default=None)
            if latest is None:
                continue
            out[symbol] = PriceSnapshot(symbol, latest.close, latest.event_time,
                                        {interval: candle_dict(row) for interval, row in candles.items()},
                                        ticker_of(rows) if rows else None)
        return out
