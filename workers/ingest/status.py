"""What the data agent says about itself: the ``kline.status`` reply and the facts its heartbeat reports
carry to the broker, where ``tacore.health`` assesses them.

Apart from ``agent.py`` because it is a different job: the agent runs the feeds and changes their state;
this only reads their counters and decides which of them the service's health sees. Call it on the agent's
event loop, which owns the feeds' state (the agent's ``_call`` hops there).
"""

from __future__ import annotations

import time
from typing import Any

from tacore import health, reporting
from tacore.events import EventPublisher
from tacore.settings import Settings
from tacore.store.klines import KlineStore
from tacore.store.price_cache import PriceCache
from workers.ingest.alpaca.feed import AlpacaFeed
from workers.ingest.config import IngestConfig
from workers.ingest.feed import KlineFeed
from workers.ingest.routing import MarketRouter
from workers.ingest.upkeep import StoreUpkeep
from workers.ingest.writer import BatchWriter


class AgentReport:
    """Reads the agent's parts (given once) and its feeds (given per call: they exist only once it started)."""

    def __init__(self, settings: Settings, config: IngestConfig, store: KlineStore, cache: PriceCache,
                 writer: BatchWriter, upkeep: StoreUpkeep, router: MarketRouter, started_at: float) -> None:
        self.settings = settings
        self.config = config
        self.store = store
        self.cache = cache
        self.writer = writer
        self.upkeep = upkeep
        self.router = router
        self.started_at = started_at

    @property
    def source(self) -> str:
        """The name this agent reports under (``tacore.reporting``)."""
        return f"data-agent/{self.config.worker_id}"

    def facts(self, feed: KlineFeed | None, us: AlpacaFeed | None, disk_error: str | None,
              disk_error_at: float | None) -> reporting.Facts:
        """What this agent observes, for the broker. ``disk_error`` is the last subscription save the disk
        refused; while storage is down for want of disk, that error is reported in its place."""
        writer = self.writer
        conns = list(feed.pool.connections.values()) if feed is not None else []
        connections, connected = len(conns), sum(1 for c in conns if c.connected)
        us_status = us.status() if us is not None else None
        if us_status is not None and us_status["stream_count"]:  # the US feed: one connection, up while it streams
            connections += 1
            connected += 1 if us_status["state"] == "streaming" else 0
        disk = health.disk_facts(self.settings.data_dir)
        write_error, error_at = disk_error, disk_error_at
        if not writer.storage_up and writer.last_error and health.is_disk_error(writer.last_error):
            write_error, error_at = writer.last_error, writer.storage_since
        if write_error:
            disk.update(write_error=write_error, write_error_at=error_at)
        return {
            "candle_store": {"kind": self.store.kind, "ok": writer.storage_up, "error": writer.last_error
                             if not writer.storage_up else None, "since": writer.storage_since,
                             "buffered_rows": writer.buffered_rows, "dropped_rows": writer.dropped_rows},
            "cache": {"kind": self.cache.kind, "ok": writer.cache_ok, "error": writer.cache_error,
                      "since": writer.cache_since},
            "disk": disk,
            "feed": {"connections": connections, "connected": connected},
            "store_clock": self.upkeep.clock.report.as_dict(),
        }

    def local_health(self, facts: reporting.Facts) -> dict[str, health.State]:
        """The data-plane states as ``tacore.health`` assesses this agent's facts alone (what ``kline.status``
        shows when no broker heartbeat has brought the service-wide set)."""
        states = health.assess(health.Observations(
            now=time.time(), stale_after_s=60.0, data_agent_expected=True, data_agents=[self.config.worker_id],
            cache_configured=self.settings.redis_url is not None,
            embedded_candle_store=self.settings.clickhouse_url is None,
            min_free_bytes=self.settings.data_dir_min_free_mb << 20,
            reports=[health.Report(self.source, time.time(), facts)]))
        return {name: states[name] for name in health.DATA_PLANE}

    def status(self, feed: KlineFeed, us: AlpacaFeed | None, publisher: EventPublisher | None,
               disk_error: str | None, disk_error_at: float | None) -> dict[str, Any]:
        """The ``kline.status`` reply: both feeds, storage, cache, events, upkeep and the local health."""
        conns = list(feed.pool.connections.values())
        us_status = us.status() if us is not None else None
        us_connection = us.connection_info() if us is not None else None
        symbols = sorted({state.symbol for state in feed.streams.values()}
                         | set(us_status["symbols"] if us_status else []))
        storage = self.writer.snapshot()
        c = feed.counters
        b = feed.backfiller.stats
        binance_connected = sum(1 for conn in conns if conn.connected)
        connected = binance_connected + (1 if us_connection is not None and us_connection["connected_since"] else 0)
        dependencies = self.local_health(self.facts(feed, us, disk_error, disk_error_at))
        binance_flowing = sum(len(conn.subscribed) for conn in conns)
        binance = {"source": "binance", "state": "streaming" if binance_connected == len(conns) else "degraded",
                   "stream_count": len(feed.streams), "connections": len(conns), "connected": binance_connected,
                   "flowing_streams": binance_flowing}
        return {
            "status": health.data_plane_status(dependencies),
            "dependencies": dependencies,
            "connection_count": len(conns) + (0 if us_connection is None else 1), "connected": connected,
            "symbols": symbols, "symbol_count": len(symbols),
            "stream_count": len(feed.streams) + (us_status["stream_count"] if us_status else 0),
            "flowing_streams": binance_flowing + (us_status["flowing_streams"] if us_status else 0),
            "markets": self.router.by_market(symbols),
            "feeds": {"binance": binance, **({"alpaca": us_status} if us_status is not None else {})},
            "storage_state": storage["state"], "buffered_rows": storage["buffered_rows"],
            "dropped_rows": storage["dropped_rows"], "rows_written": storage["rows_written"],
            "messages_received": c.messages, "klines_ingested": c.messages,
            "streams_with_data": feed.streams_with_data, "all_streams_flowing_after_s": feed.all_flowing_after_s,
            "cache_hits": self.cache.hits, "cache_misses": self.cache.misses,
            "backfilled_candles": c.backfilled, "reconnects": sum(max(0, conn.sessions - 1) for conn in conns),
            "storage": storage,
            "feed": {"messages": c.messages, "bad_messages": c.bad_messages, "closed_live": c.closed_live,
                     "backfilled": c.backfilled, "gaps": c.gaps, "stalls": c.stalls, "half_open": c.half_open,
                     "silent_replaced": c.silent_replaced, "disconnects": c.disconnects,
                     "exchange_time": feed.exchange_now_ms or None},
            "backfill": {"requests": b.requests, "throttled": b.throttled, "throttled_wait_s": b.throttled_wait_s,
                         "pages_failed": b.pages_failed, "candles": b.candles, "jobs_done": b.jobs_done,
                         "pending": feed.backfiller.pending, "throttled_for_s": feed.backfiller.throttled_for_s},
            "cache": {"kind": self.cache.kind, "hits": self.cache.hits, "misses": self.cache.misses,
                      "errors": self.writer.cache_errors},
            "events": {"endpoint": self.settings.events_endpoint,
                       "published": publisher.published if publisher else 0,
                       "dropped": publisher.dropped if publisher else 0},
            "write_lag_ms": self.writer.lag_ms(),
            **self.upkeep.status(feed),
            "started_at": self.started_at, "uptime_s": round(time.time() - self.started_at, 3),
        }
