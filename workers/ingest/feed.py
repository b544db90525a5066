"""The live feed: every kline message from every connection, and what keeps the set of candles whole.

For each message: normalise, hand the row to the writer, and on a closed candle publish
``DATA_READY`` (once per candle, whether it came live or from a backfill). Completeness rests on
three triggers for a backfill of ``[last closed + 1 interval, ...]``: a (re)subscription acknowledged
by the exchange, a stream found stalled, and a closed candle that does not follow the previous one.
The supervisor finds stalled streams (re-subscribed) and silent connections (pinged; replaced when
half-open or silent for long).

History before a stream's live start (``fetch_history``, planned by ``workers.ingest.history``) is
fetched by the same backfiller, stored but not announced, and its progress kept in ``progress``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from tacore.events import EventPublisher
from tacore.intervals import INTERVAL_MS
from tacore.store.klines import KlineRow, candle_dict
from workers.ingest.announced import AnnouncedCandles
from workers.ingest.backfill import Backfiller, JobKind
from workers.ingest.connections import ConnectionPool, ExchangeConnection
from workers.ingest.history import StreamPlan
from workers.ingest.limits import WeightBudget
from workers.ingest.normalise import PayloadError, kline_row, stream_name
from workers.ingest.progress import HistoryProgress
from workers.ingest.writer import BatchWriter

log = logging.getLogger("tacore.ingest.feed")

_PUBLISHED_MEMORY = 512  # closed open-times remembered per stream, to publish each candle once
_MAX_STALL_S = 120.0


@dataclass(slots=True)
class StreamState:
    symbol: str
    interval: str
    name: str
    step_ms: int
    stall_after_s: float
    added_at: float = field(default_factory=time.monotonic)
    last_closed_open: int | None = None
    last_message_at: float = 0.0
    subscribed_at: float = 0.0
    messages: int = 0
    stalls: int = 0
    _announced: AnnouncedCandles = field(default_factory=lambda: AnnouncedCandles(_PUBLISHED_MEMORY))

    def first_publish(self, open_time: int) -> bool:
        """True the first time a closed candle is seen (then remembered)."""
        return self._announced.first(open_time)


@dataclass(slots=True)
class FeedCounters:
    messages: int = 0
    bad_messages: int = 0
    closed_live: int = 0
    backfilled: int = 0
    history: int = 0  # candles fetched for history, stored without DATA_READY
    gaps: int = 0
    stalls: int = 0
    half_open: int = 0
    silent_replaced: int = 0
    disconnects: int = 0


class KlineFeed:
    """Implements the connections' listener; owns the per-stream state. Event loop thread only."""

    def __init__(self, pool_factory: Any, writer: BatchWriter, publisher: EventPublisher, *,
                 rest_url: str, stall_s: float, backfill_concurrency: int = 4,
                 budget: WeightBudget | None = None, progress: HistoryProgress | None = None) -> None:
        self.writer = writer
        self.publisher = publisher
        self.stall_s = stall_s
        self.counters = FeedCounters()
        self.exchange_now_ms = 0
        self.started_at = time.monotonic()
        self.streams_with_data = 0  # streams that received at least one message
        self.all_flowing_after_s: float | None = None  # start -> every stream had data (cold start)
        self.streams: dict[str, StreamState] = {}  # by stream name
        self.pool: ConnectionPool = pool_factory(self)
        self.progress = progress or HistoryProgress()
        self.backfiller = Backfiller(rest_url, self._backfilled, lambda: self.exchange_now_ms,
                                     history_sink=self._history_rows, on_done=self._job_done, budget=budget,
                                     concurrency=backfill_concurrency)
        self._probing: set[int] = set()
        self._refetch: dict[str, tuple[int, int]] = {}  # stream -> open-time range lost by the writer
        self._tasks: set[asyncio.Task[None]] = set()
        self._supervisor: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.backfiller.start()
        self._supervisor = asyncio.create_task(self._supervise(), name="feed-supervisor")

    async def close(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*([self._supervisor] if self._supervisor else []), *self._tasks,
                             return_exceptions=True)
        await self.pool.close()
        await self.backfiller.close()

    # -- the stream set --------------------------------------------------------------------------
    def add(self, pairs: list[tuple[str, str]], last_closed: dict[tuple[str, str], int] | None = None) -> list[str]:
        """Start streams (idempotent); returns the names that were new."""
        fresh: list[str] = []
        for symbol, interval in pairs:
            name = stream_name(symbol, interval)
            if name in self.streams:
                continue
            state = StreamState(symbol, interval, name, INTERVAL_MS[interval], self.stall_s)
            if last_closed is not None:
                state.last_closed_open = last_closed.get((symbol, interval))
            self.streams[name] = state
            fresh.append(name)
        self.pool.add(fresh)
        return fresh

    def remove(self, pairs: list[tuple[str, str]]) -> list[str]:
        gone = []
        for symbol, interval in pairs:
            name = stream_name(symbol, interval)
            state = self.streams.pop(name, None)
            if state is not None:
                self.streams_with_data -= 1 if state.messages else 0
                self.backfiller.cancel(symbol, interval)
                self.progress.forget(name)
                gone.append(name)
        for conn in self.pool.remove(gone):
            self._spawn(conn.close())
        return gone

    def is_flowing(self, name: str) -> bool:
        return self.pool.is_subscribed(name)

    def fetch_history(self, plans: list[StreamPlan]) -> None:
        """Queue each plan's ranges (streams already added with the plan's resume point)."""
        for plan in plans:
            name = stream_name(plan.symbol, plan.interval)
            state = self.streams.get(name)
            if state is None:
                continue
            self.progress.expect(name, plan.wanted, len(plan.fetch), state.last_closed_open is not None)
            if plan.fetch:
                self.backfiller.request_history(plan.symbol, plan.interval, list(plan.fetch))

    # -- ConnectionListener ----------------------------------------------------------------------
    def on_data(self, conn: ExchangeConnection, stream: str, data: dict[str, Any]) -> None:
        state = self.streams.get(stream)
        if state is None or data.get("e") != "kline":
            return
        try:
            row = kline_row(data)
        except PayloadError as exc:
            self.counters.bad_messages += 1
            log.warning("%s: %s", stream, exc)
            return
        state.last_message_at = conn.last_message_at
        if not state.messages:
            self._first_data()
        state.messages += 1
        self.counters.messages += 1
        if row.event_time > self.exchange_now_ms:
            self.exchange_now_ms = row.event_time
        self.writer.submit(row)
        if row.closed:
            self._closed_live(state, row)
        elif state.last_closed_open is None:
            state.last_closed_open = row.open_time - state.step_ms  # completeness starts here

    def _first_data(self) -> None:
        self.streams_with_data += 1
        if self.all_flowing_after_s is None and self.streams_with_data >= len(self.streams):
            self.all_flowing_after_s = round(time.monotonic() - self.started_at, 3)

    def on_subscribed(self, conn: ExchangeConnection, names: list[str]) -> None:
        now = time.monotonic()
        for name in names:
            state = self.streams.get(name)
            if state is None:
                continue
            state.subscribed_at = now
            if state.last_closed_open is not None:
                self.backfiller.request(state.symbol, state.interval, state.last_closed_open + state.step_ms)

    def on_disconnected(self, conn: ExchangeConnection, reason: str) -> None:
        self.counters.disconnects += 1
        log.warning("connection %d down (%s); %d streams wait for it", conn.conn_id, reason, len(conn.streams))

    # -- closed candles --------------------------------------------------------------------------
    def _closed_live(self, state: StreamState, row: KlineRow) -> None:
        if not state.first_publish(row.open_time):
            return
        last = state.last_closed_open
        if last is not None and row.open_time > last + state.step_ms:
            self.counters.gaps += 1
            self.backfiller.request(state.symbol, state.interval, last + state.step_ms, row.open_time - state.step_ms)
        if last is None or row.open_time > last:
            state.last_closed_open = row.open_time
        self.counters.closed_live += 1
        self.publisher.data_ready(row.symbol, row.interval, candle_dict(row), row.event_time)

    def _history_rows(self, rows: list[KlineRow]) -> None:
        """History sink: store (no DATA_READY: history is not news, and it would flood the published memory)."""
        if not rows:
            return
        name = stream_name(rows[0].symbol, rows[0].interval)
        if name not in self.streams:
            return
        self.writer.submit_backfill(rows)
        self.counters.history += len(rows)
        self.progress.stored_history(len(rows))
        self.progress.fetched_rows(name, len(rows))

    def _job_done(self, kind: JobKind, symbol: str, interval: str) -> None:
        name = stream_name(symbol, interval)
        if kind == "history":
            self.progress.range_done(name)
        else:
            self.progress.resume_done(name)

    def _backfilled(self, rows: list[KlineRow]) -> None:
        """Backfill sink: store and announce the closed candles not already seen live."""
        if not rows:
            return
        state = self.streams.get(stream_name(rows[0].symbol, rows[0].interval))
        if state is None:
            return
        refetch = self._refetch.get(state.name)
        fresh: list[KlineRow] = []
        lost: list[KlineRow] = []  # announced before, then dropped by the writer: store, do not re-announce
        for row in rows:
            if state.first_publish(row.open_time):
                fresh.append(row)
            elif refetch is not None and refetch[0] <= row.open_time <= refetch[1]:
                lost.append(row)
        if refetch is not None and rows[-1].open_time >= refetch[1]:
            del self._refetch[state.name]
        if lost:
            self.writer.submit_backfill(lost)
        if not fresh:
            return
        self.writer.submit_backfill(fresh)
        self.counters.backfilled += len(fresh)
        self.progress.fetched_rows(state.name, len(fresh))
        newest = max(row.open_time for row in fresh)
        if state.last_closed_open is None or newest > state.last_closed_open:
            state.last_closed_open = newest
        for row in fresh:
            self.publisher.data_ready(row.symbol, row.interval, candle_dict(row), row.event_time)

    # -- supervision -----------------------------------------------------------------------------
    async def _supervise(self) -> None:
        tick = max(0.05, min(1.0, self.stall_s / 4))
        while True:
            await asyncio.sleep(tick)
            try:
                self._check(time.monotonic())
                self._recover_dropped()
            except Exception:
                log.exception("feed supervisor check failed")

    def _check(self, now: float) -> None:
        by_conn: dict[int, list[StreamState]] = {}
        for state in self.streams.values():
            conn = self.pool.where.get(state.name)
            if conn is not None:
                by_conn.setdefault(conn.conn_id, []).append(state)
        for conn_id, states in by_conn.items():
            conn = self.pool.connections.get(conn_id)
            if conn is None or not conn.connected or now - (conn.connected_since_mono or now) < self.stall_s:
                continue
            silent = now - conn.last_message_at
            if silent > 3 * self.stall_s:
                self.counters.silent_replaced += 1
                conn.replace("silent")
                continue
            if silent > self.stall_s and conn_id not in self._probing:
                self._probing.add(conn_id)
                self._spawn(self._probe(conn))
                continue
            stalled = []
            for state in states:
                quiet = now - max(state.last_message_at, state.subscribed_at, state.added_at)
                if quiet > state.stall_after_s:
                    stalled.append(state)
                elif state.stall_after_s > self.stall_s and state.last_message_at > state.subscribed_at:
                    state.stall_after_s = self.stall_s
            if stalled:
                self._restart(conn, stalled, now)

    def _restart(self, conn: ExchangeConnection, stalled: list[StreamState], now: float) -> None:
        log.warning("connection %d: %d streams stalled, re-subscribing", conn.conn_id, len(stalled))
        for state in stalled:
            state.stalls += 1
            self.counters.stalls += 1
            state.subscribed_at = now
            state.stall_after_s = min(state.stall_after_s * 2, _MAX_STALL_S)
        # the SUBSCRIBE acknowledgement triggers each stream's backfill (on_subscribed)
        conn.resubscribe([state.name for state in stalled])

    async def _probe(self, conn: ExchangeConnection) -> None:
        try:
            if not await conn.probe(min(self.stall_s, 5.0)):
                self.counters.half_open += 1
                conn.replace("half-open")
        finally:
            self._probing.discard(conn.conn_id)

    def _recover_dropped(self) -> None:
        """Closed candles the writer had to drop (storage down too long) come back from the exchange."""
        if not self.writer.storage_up:
            return
        for (symbol, interval), open_time in self.writer.take_dropped_closed().items():
            state = self.streams.get(stream_name(symbol, interval))
            if state is not None:
                end = state.last_closed_open or open_time
                old = self._refetch.get(state.name, (open_time, end))
                self._refetch[state.name] = (min(open_time, old[0]), max(end, old[1]))
                self.backfiller.request(symbol, interval, open_time, end)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
