"""The US-equities feed: Alpaca's bars stream and REST API -> the same candle rows, price-cache updates
and ``DATA_READY`` events as the Binance feed.

- ``1m``: each stream minute bar is a closed candle at once (stored, announced); a minute bar that
  does not follow the previous session minute starts a REST fill of the hole.
- ``5m`` .. ``1d``: a running candle merged from the minute bars (stored as an open row, so the price
  cache and ``kline.history`` show it); when its interval or its session ends, Alpaca's own
  aggregate is fetched (one multi-symbol request per interval and bucket) and stored as the closed
  candle, exact by construction, then announced.
- history (``depth_of(interval)`` candles for a new stream) and gaps (restart, reconnect) come from
  REST; history is stored without events, fills are announced, each candle once. After a restart
  only the history the store lacks is fetched (``coverage``: what it holds in each window), and the
  fetch reports to the agent's ``HistoryProgress`` (``kline.status.history``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from tacore.events import EventPublisher
from tacore.intervals import INTERVAL_MS, INTERVALS
from tacore.markets.calendar import TradingCalendar
from tacore.store.coverage import WindowCoverage
from tacore.store.klines import KlineRow, candle_dict
from workers.ingest.alpaca.backfill import Fetched, Job, UsBackfiller
from workers.ingest.alpaca.bars import BarError, bar_row, parse_time_ms
from workers.ingest.alpaca.candles import Ended, RunningCandles
from workers.ingest.alpaca.config import MISSING_KEYS, AlpacaAccess, AlpacaTuning
from workers.ingest.alpaca.messages import BarPoint
from workers.ingest.alpaca.rest import AlpacaAuthError, AlpacaRest
from workers.ingest.alpaca.sessions import MINUTE_MS, UsCandleClock
from workers.ingest.alpaca.stream import AlpacaStream, StreamConfig
from workers.ingest.announced import AnnouncedCandles
from workers.ingest.history import bars_between
from workers.ingest.normalise import stream_name
from workers.ingest.progress import HistoryProgress
from workers.ingest.writer import BatchWriter

log = logging.getLogger("tacore.ingest.alpaca")

_PUBLISHED_MEMORY = 2048  # closed open-times remembered per stream, to announce each candle once
LONGER = INTERVALS[1:]
Pair = tuple[str, str]


@dataclass(slots=True)
class UsStream:
    symbol: str
    interval: str
    name: str
    last_closed_open: int | None = None
    candles: int = 0
    _announced: AnnouncedCandles = field(default_factory=lambda: AnnouncedCandles(_PUBLISHED_MEMORY))

    def first_publish(self, open_time: int) -> bool:
        """True the first time a closed candle is seen (then remembered)."""
        return self._announced.first(open_time)


@dataclass(slots=True)
class UsCounters:
    minute_bars: int = 0
    corrections: int = 0  # updatedBars
    bad_bars: int = 0
    closed_live: int = 0
    closed_fetched: int = 0  # closing aggregates fetched
    closed_from_minutes: int = 0  # closed from the merged minutes: Alpaca had no aggregate
    backfilled: int = 0  # candles announced from fills
    history: int = 0  # candles stored from history fetches
    gaps: int = 0
    disconnects: int = 0


class AlpacaFeed:
    """Implements the stream's listener; event loop thread only."""

    name = "alpaca"

    def __init__(self, access: AlpacaAccess | None, writer: BatchWriter, publisher: EventPublisher,
                 calendar: TradingCalendar | Callable[[], TradingCalendar], *, depth_of: Callable[[str], int],
                 tuning: AlpacaTuning | None = None, market: str = "US", progress: HistoryProgress | None = None,
                 coverage: Callable[[dict[Pair, int]], dict[Pair, WindowCoverage]] | None = None) -> None:
        self.access = access
        self.market = market
        self.writer = writer
        self.publisher = publisher
        self.clock = UsCandleClock(calendar)  # loaded when the first US stream is added
        self.depth_of = depth_of
        self.progress = progress or HistoryProgress()
        self._coverage = coverage  # the store's holdings per stream window (blocking: run off the loop)
        self.tuning = tuning = tuning or AlpacaTuning()
        self.streams: dict[str, UsStream] = {}
        self.counters = UsCounters()
        self.exchange_now_ms = 0  # the newest time the source has shown (bars, Date headers)
        self.auth_error: str | None = None
        self.running = RunningCandles(self.clock)
        self.rest: AlpacaRest | None = None
        self.stream: AlpacaStream | None = None
        self.backfiller: UsBackfiller | None = None
        if access is not None:
            self.rest = AlpacaRest(access.data_url, access.key_id, access.secret_key, feed=access.feed,
                                   requests_per_min=tuning.requests_per_min, page_limit=tuning.page_limit)
            self.stream = AlpacaStream(StreamConfig(
                access.stream_endpoint, access.key_id, access.secret_key, backoff_initial_s=tuning.backoff_initial_s,
                backoff_max_s=tuning.backoff_max_s, auth_retry_s=tuning.auth_retry_s,
                ping_interval_s=tuning.ping_interval_s), self)
            self.backfiller = UsBackfiller(self.rest, self.clock, self._fetched,
                                           concurrency=tuning.backfill_concurrency,
                                           close_delay_s=tuning.close_delay_s, on_auth_error=self._auth_failed,
                                           on_missing=self._no_aggregate, on_done=self._job_done)
        self._by_symbol: dict[str, set[str]] = {}  # symbol -> intervals
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing: dict[tuple[str, str, int], Ended] = {}  # candles whose aggregate is being fetched

    # -- lifecycle --------------------------------------------------------------------------------------
    @property
    def configured(self) -> bool:
        return self.access is not None

    def start(self) -> None:
        if self.stream is not None and self.backfiller is not None:
            self.stream.start()
            self.backfiller.start()
            # keys are set: US symbols will come, so load the calendar now, in the background
            self._spawn(self._load_calendar())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.stream is not None:
            await self.stream.close()
        if self.backfiller is not None:
            await self.backfiller.close()
        if self.rest is not None:
            await self.rest.close()

    # -- the stream set -----------------------------------------------------------------------------------
    def add(self, pairs: list[tuple[str, str]], last_closed: dict[tuple[str, str], int] | None = None) -> list[str]:
        """Start streams (idempotent): history or a fill over REST, the symbol on the stream."""
        fresh: list[UsStream] = []
        for symbol, interval in pairs:
            name = stream_name(symbol, interval)
            if name in self.streams:
                continue
            state = UsStream(symbol, interval, name, (last_closed or {}).get((symbol, interval)))
            self.streams[name] = state
            if self.backfiller is not None:
                self.progress.planning(name)  # its plan needs the calendar: pending until then
            self._by_symbol.setdefault(symbol, set()).add(interval)
            fresh.append(state)
        if self.backfiller is not None and fresh:
            self._spawn(self._start(fresh))
        return [s.name for s in fresh]

    async def _load_calendar(self) -> None:
        if not self.clock.loaded:
            await asyncio.to_thread(lambda: self.clock.calendar)

    async def _start(self, fresh: list[UsStream]) -> None:
        """New streams: the calendar first (loaded off the loop once), then the stream and the history."""
        await self._load_calendar()
        if self.stream is not None:
            self.stream.set_symbols(set(self._by_symbol))
        await self._fetch_history(fresh)

    async def _fetch_history(self, fresh: list[UsStream]) -> None:
        """Queue each new stream's history (``depth_of`` candles back from the source's clock, which is
        asked first when unknown) and, after a restart, what closed while the agent was away."""
        if self.backfiller is None:
            return
        if not self.exchange_now_ms and not (self.rest is not None and self.rest.stats.server_ms):
            try:  # any answer carries the server's clock in its Date header
                await self.unknown_symbols([fresh[0].symbol])
            except Exception as exc:
                log.warning("alpaca server clock unknown (%s); planning history on the local clock", exc)
        now = self.now_ms()
        firsts = {interval: (self.clock.window_start(interval, self.depth_of(interval), now)
                             if self.depth_of(interval) > 0 else self.clock.open_time(now, interval))
                  for interval in INTERVALS}
        restarted = [s for s in fresh if s.last_closed_open is not None and s.name in self.streams]
        held = await self._held(restarted, firsts)
        calendar = self.clock.calendar
        for interval in INTERVALS:
            first = firsts[interval]
            step = INTERVAL_MS[interval]
            history = {s.symbol for s in fresh if s.interval == interval and s.last_closed_open is None
                       and s.name in self.streams}
            self.backfiller.request(history, interval, first, kind="history")
            for symbol in history:
                wanted = bars_between(calendar, interval, first, self.clock.open_time(now, interval) - step)
                self.progress.expect(stream_name(symbol, interval), wanted, 1, False)
            for s in restarted:
                if s.interval != interval or s.last_closed_open is None:
                    continue
                # a restart: what closed meanwhile (announced), and the depth before what the store holds
                # (an earlier run may not have finished it); a window the store covers is not fetched again
                self.backfiller.request([s.symbol], interval, s.last_closed_open + step)
                last = min(s.last_closed_open, held[s.name] - step) if s.name in held else s.last_closed_open
                ranges = 0
                if first <= last:
                    self.backfiller.request([s.symbol], interval, first, last, kind="history")
                    ranges = 1
                wanted = bars_between(calendar, interval, s.last_closed_open + step, now)
                if ranges:
                    wanted += bars_between(calendar, interval, first, last)
                self.progress.expect(s.name, wanted, ranges, True)

    async def _held(self, restarted: list[UsStream], firsts: dict[str, int]) -> dict[str, int]:
        """Per restarted stream, the oldest closed candle the store holds in its window."""
        if self._coverage is None or not restarted:
            return {}
        starts = {(s.symbol, s.interval): firsts[s.interval] for s in restarted}
        try:
            coverage = await asyncio.to_thread(self._coverage, starts)
        except Exception as exc:  # storage down: fetch the whole window again, as if nothing were held
            log.warning("alpaca history: what the store holds is unknown (%s); fetching every window", exc)
            return {}
        return {stream_name(symbol, interval): cov.oldest for (symbol, interval), cov in coverage.items()}

    def _job_done(self, job: Job, symbols: list[str]) -> None:
        for symbol in symbols:
            name = stream_name(symbol, job.interval)
            if job.kind == "history":
                self.progress.range_done(name)
            elif job.kind == "fill":
                self.progress.resume_done(name)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def remove(self, pairs: list[tuple[str, str]]) -> list[str]:
        gone = []
        for symbol, interval in pairs:
            state = self.streams.pop(stream_name(symbol, interval), None)
            if state is None:
                continue
            gone.append(state.name)
            self.running.forget(symbol, interval)
            self._closing = {k: v for k, v in self._closing.items() if k[:2] != (symbol, interval)}
            intervals = self._by_symbol.get(symbol, set())
            intervals.discard(interval)
            if not intervals:
                self._by_symbol.pop(symbol, None)
                if self.backfiller is not None:
                    self.backfiller.cancel(symbol)
        if gone and self.stream is not None:
            self.stream.set_symbols(set(self._by_symbol))
        return gone

    def symbols(self) -> list[str]:
        return sorted(self._by_symbol)

    def is_flowing(self, name: str) -> bool:
        state = self.streams.get(name)
        stream = self.stream
        return (state is not None and stream is not None and stream.streaming
                and state.symbol in stream.confirmed)

    def now_ms(self) -> int:
        """The source's clock as best known (bars, Date headers), else the wall clock."""
        rest_ms = self.rest.stats.server_ms if self.rest is not None else 0
        known = max(self.exchange_now_ms, rest_ms)
        return known or int(time.time() * 1000)

    async def unknown_symbols(self, symbols: list[str]) -> list[str]:
        """The symbols Alpaca does not list (no latest bar). Raises AlpacaAuthError for a refused key pair."""
        if self.rest is None or not symbols:
            return []
        listed, server_ms = await self.rest.latest(symbols)
        self.exchange_now_ms = max(self.exchange_now_ms, server_ms)
        return [s for s in symbols if s not in listed]

    # -- the stream's listener ------------------------------------------------------------------------------
    def on_bar(self, point: BarPoint) -> None:
        intervals = self._by_symbol.get(point.symbol)
        if intervals is None or point.kind == "d":
            return
        try:
            minute = parse_time_ms(str(point.bar["t"]))
        except (BarError, KeyError):
            self.counters.bad_bars += 1
            return
        self.exchange_now_ms = max(self.exchange_now_ms, minute + MINUTE_MS)
        if point.kind == "u":
            self._correction(point, minute, intervals)
        else:
            self.counters.minute_bars += 1
            if "1m" in intervals:
                self._live_minute(point, minute)
            for interval in LONGER:
                if interval in intervals:
                    try:
                        row = self.running.add_minute(point.symbol, interval, minute, point.bar)
                    except (KeyError, TypeError, ValueError):
                        self.counters.bad_bars += 1
                        continue
                    if row is not None:
                        self.writer.submit(row)
        self._close_due()

    def _live_minute(self, point: BarPoint, minute: int) -> None:
        state = self.streams[stream_name(point.symbol, "1m")]
        try:
            row = bar_row(point.symbol, "1m", point.bar, closed=True, event_time=minute + MINUTE_MS)
        except BarError:
            self.counters.bad_bars += 1
            return
        last = state.last_closed_open
        previous = self.clock.previous_minute(minute)
        if last is not None and previous is not None and last < previous and self.backfiller is not None:
            self.counters.gaps += 1
            self.backfiller.request([point.symbol], "1m", last + MINUTE_MS, previous)
        self.writer.submit(row)
        if state.first_publish(minute):
            self.counters.closed_live += 1
            state.candles += 1
            self.publisher.data_ready(row.symbol, row.interval, candle_dict(row), row.event_time)
        if last is None or minute > last:
            state.last_closed_open = minute

    def _correction(self, point: BarPoint, minute: int, intervals: set[str]) -> None:
        """``updatedBars``: a late trade changed a minute already sent. Store the new 1m candle; longer
        candles holding it that already closed are fetched again (running ones are fixed at their close)."""
        self.counters.corrections += 1
        event_time = max(minute + MINUTE_MS + 1, self.exchange_now_ms + 1)
        if "1m" in intervals:
            try:
                self.writer.submit(bar_row(point.symbol, "1m", point.bar, closed=True, event_time=event_time))
            except BarError:
                self.counters.bad_bars += 1
        for interval in LONGER:
            state = self.streams.get(stream_name(point.symbol, interval))
            open_time = self.clock.open_time(minute, interval)
            if (state is not None and state.last_closed_open is not None and state.last_closed_open >= open_time
                    and self.backfiller is not None):
                self.backfiller.request([point.symbol], interval, open_time, open_time, kind="refresh")

    def _close_due(self) -> None:
        """Candles whose interval or session ended: fetch Alpaca's aggregate (batched across symbols)."""
        if self.backfiller is None:
            return
        for ended in self.running.due(self.exchange_now_ms):
            self._closing[(ended.symbol, ended.interval, ended.open_time)] = ended
            self.backfiller.request([ended.symbol], ended.interval, ended.open_time, ended.open_time, kind="close")

    def _no_aggregate(self, job: Job, symbols: set[str]) -> None:
        """Alpaca had no bar for a bucket we saw trade in (its buckets may be stamped otherwise): the merge
        of the minutes becomes the closed candle, and the miss is counted and logged."""
        for symbol in symbols:
            ended = self._closing.pop((symbol, job.interval, job.first), None)
            state = self.streams.get(stream_name(symbol, job.interval))
            if ended is None or state is None or not state.first_publish(job.first):
                continue
            self.counters.closed_from_minutes += 1
            log.warning("alpaca: no %s bar stamped %s for %s; closing the candle from its minutes", job.interval,
                        job.first, symbol)
            row = ended.closed_row()
            self.writer.submit_backfill([row])
            if state.last_closed_open is None or row.open_time > state.last_closed_open:
                state.last_closed_open = row.open_time
            self.publisher.data_ready(row.symbol, row.interval, candle_dict(row), row.event_time)

    def on_subscribed(self, symbols: list[str]) -> None:
        """The stream carries these symbols again: fill what closed while it did not."""
        if self.backfiller is None:
            return
        for symbol in symbols:
            for interval in self._by_symbol.get(symbol, ()):
                state = self.streams[stream_name(symbol, interval)]
                if state.last_closed_open is not None:
                    self.backfiller.request([symbol], interval, state.last_closed_open + INTERVAL_MS[interval])

    def on_disconnected(self, reason: str) -> None:
        self.counters.disconnects += 1
        log.warning("alpaca stream down (%s); %d symbols wait for it", reason, len(self._by_symbol))

    # -- REST results -------------------------------------------------------------------------------------
    def _fetched(self, page: Fetched) -> None:
        self.exchange_now_ms = max(self.exchange_now_ms, page.server_ms)
        self.auth_error = None
        store: list[KlineRow] = []
        for row in page.closed:
            state = self.streams.get(stream_name(row.symbol, row.interval))
            if state is None:
                continue
            store.append(row)
            if state.last_closed_open is None or row.open_time > state.last_closed_open:
                state.last_closed_open = row.open_time
            self.running.forget_if(row.symbol, row.interval, row.open_time)
            self._closing.pop((row.symbol, row.interval, row.open_time), None)
            if not state.first_publish(row.open_time):
                continue
            state.candles += 1
            if page.kind in ("history", "fill"):
                self.progress.fetched_rows(state.name, 1)
            if page.kind == "history":
                self.counters.history += 1
                self.progress.stored_history(1)
                continue
            if page.kind in ("close", "refresh"):
                self.counters.closed_fetched += 1
            else:
                self.counters.backfilled += 1
            self.publisher.data_ready(row.symbol, row.interval, candle_dict(row), row.event_time)
        if store:
            self.writer.submit_backfill(store)
        through = page.server_ms - page.server_ms % MINUTE_MS - MINUTE_MS  # the last minute the server counted
        for row in page.running:
            if stream_name(row.symbol, row.interval) in self.streams and row.interval != "1m":
                self.running.seed(row, through)
                self.writer.submit(row)
        self._close_due()

    def _auth_failed(self, message: str) -> None:
        self.auth_error = message

    # -- reporting -----------------------------------------------------------------------------------------
    def state(self) -> tuple[str, str | None]:
        """(state, why) of the feed as a whole."""
        if not self.configured:
            return "unconfigured", MISSING_KEYS
        if self.auth_error is not None:
            return "auth_failed", self.auth_error
        if self.stream is None or not self._by_symbol:
            return "idle", None
        if self.stream.state == "auth_failed":
            return "auth_failed", f"the stream refused the key pair: {self.stream.last_error}"
        return self.stream.state, self.stream.last_error if self.stream.state != "streaming" else None

    def status(self) -> dict[str, Any]:
        state, message = self.state()
        c = self.counters
        out: dict[str, Any] = {
            "source": "alpaca", "market": self.market, "state": state, "message": message,
            "symbols": self.symbols(), "stream_count": len(self.streams),
            "flowing_streams": sum(1 for name in self.streams if self.is_flowing(name)),
            "exchange_time": self.exchange_now_ms or None, "running_candles": len(self.running),
            "counters": {"minute_bars": c.minute_bars, "corrections": c.corrections, "bad_bars": c.bad_bars,
                         "closed_live": c.closed_live, "closed_fetched": c.closed_fetched,
                         "closed_from_minutes": c.closed_from_minutes,
                         "backfilled": c.backfilled, "history": c.history, "gaps": c.gaps,
                         "disconnects": c.disconnects},
        }
        if self.access is not None:
            out.update({"feed": self.access.feed, "data_url": self.access.data_url,
                        "stream_url": self.access.stream_endpoint})
        if self.rest is not None and self.backfiller is not None:
            r, b = self.rest.stats, self.backfiller.stats
            out["rest"] = {"requests": r.requests, "pages": r.pages, "bars": r.bars, "throttled": r.throttled,
                           "throttled_wait_s": round(r.throttled_wait_s, 3), "failures": r.failures,
                           "throttled_for_s": round(self.rest.throttled_for_s, 3), "last_error": r.last_error,
                           "jobs_done": b.jobs_done, "jobs_pending": self.backfiller.pending, "candles": b.candles}
        if self.stream is not None:
            out["connection"] = self.stream.info()
        return out

    def connection_info(self) -> dict[str, Any] | None:
        """The stream connection in ``kline.connections``' shape (None while the feed carries nothing)."""
        if self.stream is None or not self._by_symbol:
            return None
        info = self.stream.info()
        names = sorted(self.streams)
        return {"id": "alpaca", "market": self.market, "url": info["url"], "state": info["state"], "streams": names,
                "stream_count": len(names), "subscribed_count": sum(1 for n in names if self.is_flowing(n)),
                "connected_since": info["connected_since"], "last_message": info["last_message"],
                "messages_received": info["messages_received"], "reconnects": info["reconnects"],
                "replacements": {}, "last_close": info["last_close"], "last_error": info["last_error"]}


__all__ = ["AlpacaAuthError", "AlpacaFeed"]
