"""The data agent process: exchange feeds -> ClickHouse, price cache and DATA_READY events, served to
the broker as the ``kline.*``, ``get.market_data`` and analytics methods (it owns the candle store).

Two feeds: Binance for the ``CRYPTO`` market (``feed.py``) and Alpaca for ``US`` equities
(``alpaca/``); each symbol goes to its market's feed (``routing.py``).

Threads: the main thread runs the asyncio loop that owns the feed (connections, backfill, events);
a writer thread owns the INSERTs; a worker thread runs the broker ``Worker``, whose handlers call the
thread-safe methods below; a second one serves ``analyze.stock``, whose ``ai`` calls wait seconds on an
LLM endpoint and must not hold up the others. Those that touch the feed's state hop onto the loop
(``run_coroutine_threadsafe``); reads of stored candles go to the store directly (it has its lock).

This module wires the parts and changes the subscriptions; what the agent reports about itself
(``kline.status``, heartbeat facts) is ``status.py``, the check that new symbols exist ``listing.py``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, TypeVar

from tacore import health, reporting
from tacore.errors import InvalidParams, Unavailable
from tacore.events import EventPublisher
from tacore.intervals import INTERVALS
from tacore.markets import MarketSource, load_markets
from tacore.settings import Settings
from tacore.store.coverage import window_coverage
from tacore.store.klines import KlineStore, StorageError
from tacore.store.price_cache import PriceCache, open_price_cache
from workers.context import bound_timeout
from workers.ingest.alpaca.config import MISSING_KEYS, AlpacaTuning, alpaca_access, history_depth_of
from workers.ingest.alpaca.feed import AlpacaFeed
from workers.ingest.config import IngestConfig
from workers.ingest.connections import ConnectionConfig, ConnectionListener, ConnectionPool
from workers.ingest.data_dir import EXIT_DATA_DIR_UNUSABLE, DataDirUnusable, check_writable
from workers.ingest.feed import KlineFeed
from workers.ingest.history import StreamPlan, resume_after, resume_points
from workers.ingest.limits import attempt_limiter
from workers.ingest.listing import BinanceListing, verify_us
from workers.ingest.normalise import SYMBOL_RE, stream_name
from workers.ingest.routing import MarketRouter
from workers.ingest.status import AgentReport
from workers.ingest.subscriptions import Entry, SubscriptionFile, SubscriptionsNotSaved, persist_then_apply
from workers.ingest.upkeep import StoreUpkeep
from workers.ingest.writer import BatchWriter
from workers.methods import klines as kline_methods
from workers.methods import market as market_methods
from workers.methods import risk as risk_methods
from workers.methods import scan as scan_methods
from workers.registry import MethodRegistry

log = logging.getLogger("tacore.ingest")

T = TypeVar("T")
Pair = tuple[str, str]
_CALL_TIMEOUT_S = 15.0
_CACHE_PING_AFTER_S = 5.0  # a cache nobody wrote to for this long is pinged, so its state stays current


class DataAgent:
    def __init__(self, settings: Settings, config: IngestConfig | None = None, *, store: KlineStore | None = None,
                 cache: PriceCache | None = None) -> None:
        self.settings = settings
        self.config = config = config or IngestConfig()
        self.max_symbols = settings.data_agent_max_symbol
        self.store = store or KlineStore(settings.clickhouse_dsn)
        self.cache = cache or open_price_cache(settings.redis_url, settings.price_ttl_s, prefix=config.cache_prefix)
        self.writer = BatchWriter(self.store, self.cache, batch_rows=config.batch_rows, flush_s=config.flush_ms / 1000,
                                  max_buffer=config.buffer_rows)
        self.subscription_file = SubscriptionFile(settings.data_dir / "data-agent" / "subscriptions.json")
        self.markets = load_markets(settings.trading_config)
        self.router = MarketRouter(self.markets, self.subscription_file.markets())
        self.us: AlpacaFeed | None = None
        self.upkeep = StoreUpkeep(settings, config, self.store, self.cache, self.writer, self.markets)
        self.started_at = time.time()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.feed: KlineFeed | None = None
        self.publisher: EventPublisher | None = None
        self._lock = asyncio.Lock()
        self.listing = BinanceListing(settings.exchange_rest_url)
        self.report = AgentReport(settings, config, self.store, self.cache, self.writer, self.upkeep, self.router,
                                  self.started_at)
        self._reports: reporting.ReportLoop | None = None
        self.disk_error: str | None = None  # the last write to DATA_DIR the disk refused, and when
        self.disk_error_at: float | None = None

    # -- lifecycle (event loop) --------------------------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        await asyncio.to_thread(check_writable, self.settings.data_dir)  # DataDirUnusable names the path
        self.publisher = EventPublisher(self.settings.events_endpoint)
        last_closed: dict[Pair, int] = {}
        plans: list[StreamPlan] = []
        pairs = self._initial_pairs()
        routed = self._route_initial(pairs)
        try:
            await asyncio.to_thread(self.store.open)
            plans = await self.upkeep.prepare(routed[MarketSource.BINANCE])  # depth, the exchange's clock, tickers
            last_closed = resume_points(await asyncio.to_thread(self.store.newest_open_times))
            last_closed.update(resume_after(plans))
        except StorageError as exc:
            log.error("storage unavailable at start (%s); buffering until it is back", exc)
        self.writer.start()
        cfg = self.config
        conn_config = ConnectionConfig(
            ws_url=self.settings.exchange_ws_url, max_streams=cfg.streams_per_connection,
            names_per_frame=cfg.names_per_frame, frames_per_s=cfg.frames_per_s, max_age_s=cfg.max_conn_age_s,
            backoff_initial_s=cfg.backoff_initial_s, backoff_max_s=cfg.backoff_max_s)
        attempts = attempt_limiter(cfg.connect_attempts_per_5min)

        def pool_factory(listener: ConnectionListener) -> ConnectionPool:
            return ConnectionPool(conn_config, listener, attempts)

        self.feed = KlineFeed(pool_factory, self.writer, self.publisher, rest_url=self.settings.exchange_rest_url,
                              stall_s=cfg.stall_s, backfill_concurrency=cfg.backfill_concurrency,
                              budget=self.upkeep.budget, progress=self.upkeep.progress)
        self.feed.start()
        self.upkeep.attach(self.feed)
        self.listing.open()
        self.us = self._us_feed()
        self.us.start()
        self.feed.add(routed[MarketSource.BINANCE], last_closed)
        self.feed.fetch_history(plans)
        self.us.add(routed[MarketSource.ALPACA], last_closed)
        if routed[MarketSource.ALPACA] and not self.us.configured:
            log.error("%d US streams are stored or configured but not served: %s",
                      len(routed[MarketSource.ALPACA]), MISSING_KEYS)
        if set(self._entries()) != set(self.subscription_file.load_entries()):
            try:
                self._save(self._entries())
            except SubscriptionsNotSaved as exc:  # a full disk: stream anyway, say so (and in the health states)
                log.error("%s", exc.message)
        log.info("data agent started: %d streams of %d symbols, storage %s, cache %s, events on %s",
                 len(pairs), len({s for s, _ in pairs}), self.store.kind, self.cache.kind,
                 self.settings.events_endpoint)

    def _us_feed(self) -> AlpacaFeed:
        if self.publisher is None:
            raise RuntimeError("the event publisher starts before the feeds")
        us_market = next((m for m in self.markets if m.source is MarketSource.ALPACA), None)
        if us_market is None:
            raise RuntimeError("trading_config.yaml declares no market with source alpaca")
        return AlpacaFeed(alpaca_access(self.settings), self.writer, self.publisher, lambda: us_market.calendar,
                          depth_of=history_depth_of(self.settings), tuning=AlpacaTuning.load(),
                          market=us_market.name, progress=self.upkeep.progress,
                          coverage=partial(window_coverage, self.store))

    def _route_initial(self, pairs: list[Pair]) -> dict[MarketSource, list[Pair]]:
        """Stored and configured streams by feed; a symbol of no market is logged and left out."""
        routed: dict[MarketSource, list[Pair]] = {source: [] for source in MarketSource}
        for symbol, interval in pairs:
            market = self.router.name_of(symbol)
            if market is None:
                log.error("%s belongs to no market (%s); not subscribed", symbol, ", ".join(self.markets.names()))
                continue
            routed[self.markets.get(market).source].append((symbol, interval))
        return routed

    def _initial_pairs(self) -> list[Pair]:
        configured: list[Pair] = []
        for raw in self.settings.data_agent_symbols:
            if SYMBOL_RE.match(raw.strip().upper()):
                configured.extend((raw.strip().upper(), i) for i in INTERVALS)
            else:
                log.error("DATA_AGENT_SYMBOLS: %r is not a symbol; skipped", raw)
        pairs = list(dict.fromkeys([*self.subscription_file.load(), *configured]))
        symbols = list(dict.fromkeys(s for s, _ in pairs))
        if len(symbols) > self.max_symbols:
            log.error("%d symbols stored/configured, over DATA_AGENT_MAX_SYMBOL=%d: keeping the first %d",
                      len(symbols), self.max_symbols, self.max_symbols)
            keep = set(symbols[:self.max_symbols])
            pairs = [p for p in pairs if p[0] in keep]
        return pairs

    async def stop(self) -> None:
        if self._reports is not None:
            await asyncio.to_thread(self._reports.stop)
        await self.upkeep.close()
        if self.feed is not None:
            await self.feed.close()
        if self.us is not None:
            await self.us.close()
        await self.listing.close()
        await asyncio.to_thread(self.writer.stop, 10.0)
        if self.publisher is not None:
            self.publisher.close()
        self.store.close()
        self.cache.close()

    async def serve(self, stop: asyncio.Event, *, worker: bool = True) -> None:
        """Start, serve the broker methods from a thread until ``stop``, then clean up."""
        await self.start()
        stop_worker = threading.Event()
        threads = []
        if worker:
            self._reports = reporting.ReportLoop(self.settings.report_endpoint, self.report_source,
                                                 self.report_facts, self.settings.heartbeat_interval_ms / 1000.0,
                                                 reporting.reporter_keys(self.settings, self.report_source))
            self._reports.start()
            for suffix, registry in (("", self.registry), ("-analysis", self.analysis_registry)):
                thread = threading.Thread(target=self._run_worker, args=(stop_worker, registry, suffix),
                                          name=f"data-agent-worker{suffix}", daemon=True)
                thread.start()
                threads.append(thread)
        try:
            await stop.wait()
        finally:
            stop_worker.set()
            for thread in threads:
                await asyncio.to_thread(thread.join, 5.0)
            await self.stop()

    def _run_worker(self, stop: threading.Event, registry: Callable[[], MethodRegistry], suffix: str = "") -> None:
        """Build the registry in this thread (the analysis one imports TA-Lib and openai, seconds that must
        not delay the kline methods), then serve it."""
        from tacore.auth.credentials import worker_keys
        from workers.runtime import Worker

        s = self.settings
        Worker(s.worker_endpoint, registry(), worker_id=self.config.worker_id + suffix, kind="data-agent", credit=4,
               heartbeat_interval_ms=s.heartbeat_interval_ms, liveness=s.heartbeat_liveness,
               reconnect_initial_ms=s.reconnect_initial_ms, reconnect_max_ms=s.reconnect_max_ms,
               curve=worker_keys(s)).run(stop)

    def registry(self) -> MethodRegistry:
        registry = MethodRegistry()
        registry.include(kline_methods.build_registry(self))
        registry.include(market_methods.build_registry(self.upkeep.market))
        registry.include(scan_methods.build_registry(self.store, self.markets))
        registry.include(risk_methods.build_registry(self.store, self.settings))
        return registry

    def analysis_registry(self) -> MethodRegistry:
        """Methods that may wait on a remote service, served by a worker of their own."""
        from workers.methods import analysis as analysis_methods

        return analysis_methods.build_registry(self.store, self.settings)

    # -- bridge ------------------------------------------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, T], timeout_s: float = _CALL_TIMEOUT_S) -> T:
        if self.loop is None:
            coro.close()
            raise Unavailable("data agent is starting")
        timeout_s = bound_timeout(timeout_s)  # never past the deadline of the request being served
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout_s)
        except TimeoutError:
            future.cancel()
            raise Unavailable(f"data agent did not answer within {timeout_s:.1f} s") from None

    async def _feed(self) -> KlineFeed:
        if self.feed is None:
            raise Unavailable("data agent is starting")
        return self.feed

    # -- KlineService (any thread) -------------------------------------------------------------------
    def add_streams(self, pairs: list[Pair], market: str | None = None) -> dict[str, bool]:
        return self._call(self._add(pairs, market), self.config.subscribe_wait_s + _CALL_TIMEOUT_S)

    def remove_streams(self, pairs: list[Pair]) -> list[str]:
        return self._call(self._remove(pairs))

    def subscriptions(self) -> dict[str, list[str]]:
        return self._call(self._subscriptions())

    def connections(self) -> list[dict[str, Any]]:
        return self._call(self._connections())

    def status(self) -> dict[str, Any]:
        return self._call(self._status())

    def history(self, symbol: str, interval: str, start: int | None, end: int | None,
                limit: int) -> list[dict[str, Any]]:
        try:
            return self.store.history(symbol, interval, start=start, end=end, limit=limit)
        except StorageError as exc:
            raise Unavailable(f"candle storage is down: {exc}") from None

    # -- loop side ------------------------------------------------------------------------------------
    async def _add(self, pairs: list[Pair], market: str | None = None) -> dict[str, bool]:
        feed = await self._feed()
        us = self.us
        if us is None:
            raise Unavailable("data agent is starting")
        async with self._lock:
            remembered = dict(self.router.remembered)
            try:
                await self._add_locked(feed, us, pairs, market)
            except BaseException:
                self.router.remembered = remembered  # a market forced by a call that changed nothing is forgotten
                raise
        names = {stream_name(s, i): (s, i) for s, i in pairs}

        def flowing(name: str) -> bool:
            return feed.is_flowing(name) or us.is_flowing(name)

        deadline = time.monotonic() + self.config.subscribe_wait_s
        while time.monotonic() < deadline and not all(flowing(n) for n in names):
            await asyncio.sleep(0.05)
        return {name: flowing(name) for name in names}

    async def _add_locked(self, feed: KlineFeed, us: AlpacaFeed, pairs: list[Pair],
                          market: str | None) -> None:
        """Check, plan and apply an add (under the lock): all or nothing."""
        routed = self.router.split(pairs, market)
        us_pairs = routed[MarketSource.ALPACA]
        if us_pairs and not us.configured:
            raise Unavailable(MISSING_KEYS)
        current = {state.symbol for state in feed.streams.values()} | set(us.symbols())
        new_symbols = sorted({s for s, _ in pairs} - current)
        if len(current) + len(new_symbols) > self.max_symbols:
            raise InvalidParams(
                f"{len(current)} symbols subscribed + {len(new_symbols)} new is over DATA_AGENT_MAX_SYMBOL "
                f"({self.max_symbols}); nothing added",
                details=[{"field": "symbols", "message": f"at most {self.max_symbols} symbols in all",
                          "subscribed": len(current), "new": new_symbols}])
        if self.config.verify_symbols:
            us_symbols = {s for s, _ in us_pairs}
            await self.listing.verify([s for s in new_symbols if s not in us_symbols])
            await verify_us(us, [s for s in new_symbols if s in us_symbols], _CALL_TIMEOUT_S)
        plans = await self.upkeep.plan_new(feed, routed[MarketSource.BINANCE], new_symbols)
        before = self._entries()
        after = list(dict.fromkeys([*before, *((s, i, self.router.name_of(s)) for s, i in pairs)]))

        def apply() -> None:
            feed.add(routed[MarketSource.BINANCE], resume_after(plans))
            feed.fetch_history(plans)
            us.add(us_pairs)

        self._change(before, after, apply)

    async def _remove(self, pairs: list[Pair]) -> list[str]:
        feed = await self._feed()
        async with self._lock:
            current = self._entries()
            dropping = set(pairs)
            if not any((s, i) in dropping for s, i, _ in current):
                return []
            us = self.us
            return self._change(current, [e for e in current if (e[0], e[1]) not in dropping],
                                lambda: feed.remove(pairs) + (us.remove(pairs) if us is not None else []))

    def _entries(self) -> list[Entry]:
        """The streams running now, each with its market (what the subscription file holds)."""
        states = [*(self.feed.streams.values() if self.feed is not None else ()),
                  *(self.us.streams.values() if self.us is not None else ())]
        return [(s.symbol, s.interval, self.router.name_of(s.symbol)) for s in states]

    def _change(self, before: list[Entry], after: list[Entry], apply: Callable[[], T]) -> T:
        """All or nothing: save the new set, then apply it (``persist_then_apply``); a disk that refuses is a
        retryable UNAVAILABLE and changes nothing."""
        try:
            result = persist_then_apply(self.subscription_file, before, after, apply)
        except SubscriptionsNotSaved as exc:
            self._disk_refused(exc)
            raise
        self.disk_error = None
        return result

    def _save(self, entries: list[Entry]) -> None:
        try:
            self.subscription_file.save(entries)
        except SubscriptionsNotSaved as exc:
            self._disk_refused(exc)
            raise
        self.disk_error = None

    def _disk_refused(self, exc: SubscriptionsNotSaved) -> None:
        self.disk_error, self.disk_error_at = exc.message, time.time()

    async def _subscriptions(self) -> dict[str, list[str]]:
        feed = await self._feed()
        subs: dict[str, list[str]] = {}
        for state in [*feed.streams.values(), *(self.us.streams.values() if self.us is not None else ())]:
            subs.setdefault(state.symbol, []).append(state.interval)
        order = {interval: n for n, interval in enumerate(INTERVALS)}
        return {symbol: sorted(ivs, key=order.__getitem__) for symbol, ivs in sorted(subs.items())}

    async def _connections(self) -> list[dict[str, Any]]:
        feed = await self._feed()
        crypto = next((m.name for m in self.markets if m.source is MarketSource.BINANCE), "CRYPTO")
        conns = [{**conn.info(), "market": crypto} for conn in feed.pool.connections.values()]
        us = self.us.connection_info() if self.us is not None else None
        return conns if us is None else [*conns, us]

    def markets_of(self, symbols: list[str]) -> dict[str, list[str]]:
        """Symbols by market name (for replies)."""
        return self.router.by_market(symbols)

    async def _status(self) -> dict[str, Any]:
        feed = await self._feed()
        return self.report.status(feed, self.us, self.publisher, self.disk_error, self.disk_error_at)

    # -- health (tacore.health; facts and states in ``status.py``) -----------------------------------
    @property
    def report_source(self) -> str:
        return self.report.source

    def report_facts(self) -> reporting.Facts:
        """What this agent observes, for the broker (called by the report thread once a heartbeat)."""
        writer = self.writer
        if time.monotonic() - writer.cache_checked_at > _CACHE_PING_AFTER_S:
            writer.check_cache()  # blocking (Redis), so here and not on the event loop
        return self._call(self._health_facts(), 2.0)

    async def _health_facts(self) -> reporting.Facts:
        return self.report.facts(self.feed, self.us, self.disk_error, self.disk_error_at)

    def local_health(self, facts: reporting.Facts) -> dict[str, health.State]:
        """The data-plane states of this agent's facts alone (``AgentReport.local_health``)."""
        return self.report.local_health(facts)


def run(settings: Settings, config: IngestConfig | None = None) -> None:
    """Process entry point: serve until SIGTERM/SIGINT, then clean up and return."""
    from tacore.logconfig import configure_logging

    configure_logging(settings, "data-agent")
    config = config or IngestConfig.load()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await DataAgent(settings, config).serve(stop)

    try:
        asyncio.run(main())
    except DataDirUnusable as exc:
        log.error("data agent cannot start: %s", exc)
        source = f"data-agent/{config.worker_id}"
        reporting.send_once(settings.report_endpoint, source, {"fatal": str(exc)},
                            curve=reporting.reporter_keys(settings, source))
        raise SystemExit(EXIT_DATA_DIR_UNUSABLE) from None
    log.info("data agent stopped")
