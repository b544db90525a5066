"""What the data agent does with its candle store besides writing the live stream: hold each stream's
history depth, keep the store honest against the exchange's clock, and start the 24 h tickers.

- ``prepare`` (start, before the feed): the clock check first (candles ahead of the exchange's clock
  moved aside, ``workers.ingest.clock``), then a plan per stream of what it still needs
  (``workers.ingest.history``), then the rolling tickers seeded from the stored candles;
- ``plan_new`` (``kline.add_*``): the same for streams being added;
- ``attach`` (once the feed exists): the exchange's time for the feed, and a clock check every
  ``clock_check_s``;
- ``status``: the ``history`` and ``clock`` sections of ``kline.status``.

The request-weight budget lives here too: every REST call of the Binance side (history, gaps, the
clock) spends from the same one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

from tacore.markets import MarketRegistry
from tacore.settings import Settings
from tacore.store.klines import KlineStore, StorageError
from tacore.store.market_rows import market_rows
from tacore.store.price_cache import PriceCache
from workers.ingest.backfill import server_time_ms
from workers.ingest.clock import StoreClock
from workers.ingest.config import IngestConfig
from workers.ingest.feed import KlineFeed
from workers.ingest.history import HistoryDepth, StreamPlan, plan_history, plan_summary
from workers.ingest.limits import WeightBudget
from workers.ingest.market_view import FUTURE_TOLERANCE_MS, MarketView
from workers.ingest.normalise import stream_name
from workers.ingest.progress import HistoryProgress
from workers.ingest.writer import BatchWriter

log = logging.getLogger("tacore.ingest")

Pair = tuple[str, str]


class StoreUpkeep:
    def __init__(self, settings: Settings, config: IngestConfig, store: KlineStore, cache: PriceCache,
                 writer: BatchWriter, markets: MarketRegistry) -> None:
        self.settings = settings
        self.config = config
        self.store = store
        self.cache = cache
        self.writer = writer
        self.depth = HistoryDepth(settings.history_depth, settings.history_depth_per_interval)
        self.budget = WeightBudget(config.rest_weight_per_min)
        self.progress = HistoryProgress()  # every feed's history fetch reports here
        self.clock = StoreClock(store, settings.data_dir / "data-agent")
        self.market = MarketView(store, cache, markets, settings.data_agent_max_symbol, self.source_now_ms,
                                 writer.note_cache_outcome)
        self.feed: KlineFeed | None = None
        self._source_ms: int | None = None  # the exchange's clock at the last reading
        self._http: httpx.AsyncClient | None = None
        self._watch: asyncio.Task[None] | None = None

    # -- the agent's calls (event loop) ------------------------------------------------------------
    async def prepare(self, pairs: list[Pair]) -> list[StreamPlan]:
        """At start, storage open: clock check, plans, tickers. Raises StorageError if storage fails."""
        await self.check_clock(move=True)  # before anything reads the store
        plans = await self._plan(pairs)
        await self._seed_tickers(None)
        if plans:
            log.info("history (depth %s): %s", self.depth.as_dict(), plan_summary(plans))
        return plans

    async def plan_new(self, feed: KlineFeed, pairs: list[Pair], new_symbols: list[str]) -> list[StreamPlan]:
        """Plans for the streams the feed does not have yet (at the exchange's time now), and the 24 h
        tickers of the new symbols (of any market: the writer keeps them for every feed)."""
        fresh = [pair for pair in dict.fromkeys(pairs) if stream_name(*pair) not in feed.streams]
        if not fresh and not new_symbols:
            return []
        await self._source_time()
        try:
            plans = await self._plan(fresh) if fresh else []
            if new_symbols:
                await self._seed_tickers(new_symbols)
        except StorageError as exc:
            log.error("history of %d new streams not planned, storage failed: %s", len(fresh), exc)
            return []
        return plans

    def attach(self, feed: KlineFeed) -> None:
        self.feed = feed
        feed.exchange_now_ms = max(feed.exchange_now_ms, self._source_ms or 0)
        self._watch = asyncio.create_task(self._watch_clock(), name="store-clock")

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()

    def status(self, feed: KlineFeed) -> dict[str, Any]:
        return {
            "history": {"depth": self.depth.as_dict(),
                        **self.progress.snapshot(weight_used=self.budget.total, weight_budget=self.budget.limit),
                        "weight": self.budget.snapshot()},
            "clock": {**self.clock.report.as_dict(), "cache_entries_refused": self.market.future_skipped},
        }

    def source_now_ms(self) -> int | None:
        """The newest time the exchange has shown: its clock at the last reading, or a later event."""
        feed_now = self.feed.exchange_now_ms if self.feed is not None else 0
        if self._source_ms is None and not feed_now:
            return None
        return max(feed_now, self._source_ms or 0)

    # -- the exchange's clock ------------------------------------------------------------------------
    async def _source_time(self) -> int | None:
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.settings.exchange_rest_url.rstrip("/"), timeout=5.0)
        try:
            source = await asyncio.wait_for(server_time_ms(self._http, self.budget), 10.0)
        except (httpx.HTTPError, TimeoutError, ValueError, KeyError) as exc:
            log.warning("cannot read the exchange's clock: %s", exc)
            return None
        self._source_ms = source
        if self.feed is not None and source > self.feed.exchange_now_ms:
            self.feed.exchange_now_ms = source
        return source

    async def check_clock(self, *, move: bool) -> None:
        try:
            ends = await asyncio.to_thread(self.clock.stream_ends)  # first: see StoreClock.stream_ends
        except StorageError as exc:
            self.clock.unknown(f"storage: {exc}")
            return
        source = await self._source_time()
        if source is None:
            self.clock.unknown("the exchange's clock could not be read")
            return
        report = await asyncio.to_thread(self.clock.check, source, ends, move=move)
        self.market.ahead_symbols = frozenset(a.symbol for a in report.ahead)
        moved = report.moved_aside
        if move and moved is not None and moved["at"] == report.checked_at:
            self.cache.forget(moved["symbols"])  # their cached prices came from the same clock
        feed = self.feed
        if report.state == "ahead" and feed is not None and feed.exchange_now_ms > source + FUTURE_TOLERANCE_MS:
            # the source's clock went back under us: what we took for its time is not; from here the
            # read guard refuses the cache entries of the old clock (reads fall back to the bounded store)
            feed.exchange_now_ms = source

    async def _watch_clock(self) -> None:
        while True:
            await asyncio.sleep(self.config.clock_check_s)
            try:
                await self.check_clock(move=False)
            except Exception:
                log.exception("store clock check failed")

    # -- the store ---------------------------------------------------------------------------------------
    async def _plan(self, pairs: list[Pair]) -> list[StreamPlan]:
        now = self._source_ms if self._source_ms is not None else int(time.time() * 1000)
        return await asyncio.to_thread(plan_history, self.store, pairs, self.depth, now)

    async def _seed_tickers(self, symbols: list[str] | None) -> None:
        """The rolling 24 h figures start from the stored candles (then the writer keeps them)."""
        _, rows = await asyncio.to_thread(market_rows, self.store, symbols, latest=(), not_after_ms=self._source_ms)
        self.writer.seed_tickers([row for group in rows.values() for row in group])
