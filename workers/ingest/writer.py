"""The batch writer: rows from the WebSocket readers to ClickHouse, without ever blocking them.

Readers call ``submit`` (a deque append, O(1), from the event loop). A writer thread wakes every
``flush_s`` or as soon as ``batch_rows`` are waiting, and sends everything waiting in INSERTs of at
most ``batch_rows``. A failed INSERT puts its rows back, marks storage down and retries with backoff;
the readers keep appending. The buffer is bounded: at the bound it is first compacted (only the
newest version of each candle matters, so nothing observable is lost), and only if that frees too
little are the oldest rows dropped and counted. Closed candles dropped that way are remembered per stream
so the agent can backfill them from the exchange once storage is back.

The same thread pushes the latest candle of each stream to the price cache after each round, with
the symbol's rolling 24 h ticker figures (``tacore.markets.ticker``) when they changed: every closed
candle of the ticker interval that passes through here (live or fetched) and each round's newest open
one keep them current, so a cache hit answers the 24 h change without a store query.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from tacore.markets.ticker import TICKER_INTERVAL, Ticker24h, TickerBook
from tacore.store.klines import KlineRow, KlineStore
from tacore.store.price_cache import PriceCache

log = logging.getLogger("tacore.ingest.writer")

StreamKey = tuple[str, str]

#: upper bounds (ms) of the lag histogram's buckets; the last bucket is everything above
LAG_BUCKETS_MS: tuple[int, ...] = (*range(10, 101, 10), *range(125, 501, 25), 600, 700, 800, 900, 1000, 1500,
                                   2000, 3000, 5000, 10_000)


class BatchWriter:
    def __init__(self, store: KlineStore, cache: PriceCache | None, *, batch_rows: int = 10_000,
                 flush_s: float = 0.1, max_buffer: int = 1_000_000, lag_window: int = 50_000,
                 clock_ms: Callable[[], int] | None = None) -> None:
        self.store = store
        self.cache = cache
        self.batch_rows = batch_rows
        self.flush_s = flush_s
        self.max_buffer = max_buffer
        self.rows_written = 0
        self.batches = 0
        self.dropped_rows = 0
        self.compacted_rows = 0
        self.cache_errors = 0
        #: the price cache's last known state: None before the first write or ping, then whether it worked
        self.cache_ok: bool | None = None
        self.cache_error: str | None = None
        self.cache_since = time.time()
        self.cache_checked_at = 0.0  # time.monotonic() of the last write or ping
        self.storage_up = True
        self.storage_since = time.time()
        self.last_error: str | None = None
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._live: deque[KlineRow] = deque()
        self._backfill: deque[KlineRow] = deque()
        self._latest: dict[StreamKey, KlineRow] = {}
        self._pushed: dict[StreamKey, int] = {}
        self.tickers = TickerBook()  # the writer thread's own
        self._ticker_rows: deque[KlineRow] = deque()  # closed ticker-interval rows, from any thread
        self._tickers_pushed: dict[str, Ticker24h] = {}
        self._lags: deque[int] = deque(maxlen=lag_window)
        self._insert_ms: deque[float] = deque(maxlen=1000)
        self._lag_bounds = np.asarray(LAG_BUCKETS_MS, dtype=np.int64)
        self._lag_counts = np.zeros(len(LAG_BUCKETS_MS) + 1, dtype=np.int64)  # cumulative since start
        self._dropped_closed: dict[StreamKey, int] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._stop_deadline = 0.0
        self._thread: threading.Thread | None = None

    # -- reader side (event loop thread) ---------------------------------------------------------
    def submit(self, row: KlineRow) -> None:
        """Queue one live row; never blocks."""
        live = self._live
        live.append(row)
        key = (row.symbol, row.interval)
        current = self._latest.get(key)
        # the newest candle, then its newest version (a closed candle's version outranks the next open one's)
        if current is None or row.open_time > current.open_time or (
                row.open_time == current.open_time and row.version >= current.version):
            self._latest[key] = row
        if row.closed and row.interval == TICKER_INTERVAL:
            self._ticker_rows.append(row)
        if len(live) >= self.batch_rows:
            self._wake.set()
            if len(live) + len(self._backfill) > self.max_buffer:
                self._make_room()

    def submit_backfill(self, rows: list[KlineRow]) -> None:
        """Queue rows fetched from the REST API (kept apart so they do not count in the lag)."""
        self._backfill.extend(rows)
        self._ticker_rows.extend(row for row in rows if row.interval == TICKER_INTERVAL)
        self._wake.set()
        if len(self._live) + len(self._backfill) > self.max_buffer:
            self._make_room()

    def _make_room(self) -> None:
        """At the bound: compact (lossless), and only if that frees too little, drop the oldest rows."""
        for buffer in (self._live, self._backfill):
            self._compact(buffer)
        target = int(self.max_buffer * 0.9)
        for buffer in (self._live, self._backfill):
            while len(self._live) + len(self._backfill) > target and buffer:
                try:
                    row = buffer.popleft()
                except IndexError:
                    break
                self.dropped_rows += 1
                if row.closed:
                    key = (row.symbol, row.interval)
                    self._dropped_closed[key] = min(self._dropped_closed.get(key, row.open_time), row.open_time)

    def _compact(self, buffer: deque[KlineRow]) -> None:
        """Keep only the newest version of each candle (ClickHouse would keep no other)."""
        count = len(buffer)
        newest: dict[tuple[str, str, int], KlineRow] = {}
        for _ in range(count):
            try:
                row = buffer.popleft()
            except IndexError:
                break
            key = (row.symbol, row.interval, row.open_time)
            kept = newest.get(key)
            if kept is None or row.version >= kept.version:
                newest[key] = row
        self.compacted_rows += count - len(newest)
        buffer.extendleft(sorted(newest.values(), key=lambda r: r.version, reverse=True))

    def seed_tickers(self, rows: list[KlineRow]) -> None:
        """Stored candles of the ticker interval (``tacore.store.market_rows``), taken in the next round."""
        self._ticker_rows.extend(rows)
        self._wake.set()

    # -- state --------------------------------------------------------------------------------------
    @property
    def buffered_rows(self) -> int:
        return len(self._live) + len(self._backfill)

    def take_dropped_closed(self) -> dict[StreamKey, int]:
        """Streams that lost closed candles to the bound, with the oldest lost open time (then forgets)."""
        dropped, self._dropped_closed = self._dropped_closed, {}
        return dropped

    def lag_ms(self) -> dict[str, Any]:
        """Exchange event time -> row committed (readable): percentiles over the last live rows written,
        and a histogram counted since start (``counts[i]``: rows with a lag in (``buckets_ms[i-1]``,
        ``buckets_ms[i]``], the last count everything above) that a reader can difference between polls."""
        if not self._lags:
            return {"p50": None, "p99": None, "max": None, "samples": 0, "buckets_ms": list(LAG_BUCKETS_MS),
                    "counts": self._lag_counts.tolist()}
        values = np.fromiter(list(self._lags), dtype=np.int64)
        p50, p99 = np.percentile(values, [50, 99])
        return {"p50": float(p50), "p99": float(p99), "max": int(values.max()), "samples": int(values.size),
                "buckets_ms": list(LAG_BUCKETS_MS), "counts": self._lag_counts.tolist()}

    def reset_lag(self) -> None:
        self._lags.clear()

    def snapshot(self) -> dict[str, Any]:
        return {
            "state": "up" if self.storage_up else "down", "kind": self.store.kind,
            "since": self.storage_since, "last_error": self.last_error, "rows_written": self.rows_written,
            "batches": self.batches, "buffered_rows": self.buffered_rows, "buffer_limit": self.max_buffer,
            "dropped_rows": self.dropped_rows, "compacted_rows": self.compacted_rows,
            "insert_ms": self._insert_stats(),
        }

    def _insert_stats(self) -> dict[str, float | None]:
        """Duration of the last 1,000 INSERTs (how much of the lag is storage)."""
        if not self._insert_ms:
            return {"p50": None, "p99": None, "max": None}
        values = np.fromiter(list(self._insert_ms), dtype=np.float64)
        p50, p99 = np.percentile(values, [50, 99])
        return {"p50": round(float(p50), 3), "p99": round(float(p99), 3), "max": round(float(values.max()), 3)}

    # -- writer thread ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kline-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Flush what is buffered (for at most ``timeout_s``, 2 s if storage is down) and stop the thread."""
        if not self.storage_up:
            timeout_s = min(timeout_s, 2.0)
        self._stop_deadline = time.monotonic() + timeout_s
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s + 2.0)

    def _run(self) -> None:
        backoff = 0.0
        next_round = time.monotonic() + self.flush_s
        while True:
            # rounds every flush_s (not flush_s after the last INSERT ended), sooner when a batch is full
            self._wake.wait(backoff or max(0.0, next_round - time.monotonic()))
            self._wake.clear()
            next_round = time.monotonic() + self.flush_s
            stopping = self._stop.is_set()
            self._push_cache()
            if self._write_all():
                backoff = 0.0
            else:
                backoff = min(max(backoff * 2, 0.2), 2.0)
                if stopping and time.monotonic() >= self._stop_deadline:
                    log.error("writer stopping with storage down: %d rows not written", self.buffered_rows)
                    return
            if stopping and not self.buffered_rows:
                self._push_cache()
                return

    def _write_all(self) -> bool:
        """Write everything waiting; False when storage failed (the rows are back in the buffer)."""
        for buffer, live in ((self._live, True), (self._backfill, False)):
            while buffer:
                batch: list[KlineRow] = []
                take = buffer.popleft
                try:
                    for _ in range(min(self.batch_rows, len(buffer))):
                        batch.append(take())
                except IndexError:
                    pass
                if not batch:
                    break
                started = time.perf_counter()
                try:
                    self.store.insert(batch)
                except Exception as exc:
                    buffer.extendleft(reversed(batch))
                    self._storage_failed(exc)
                    return False
                self._insert_ms.append((time.perf_counter() - started) * 1000.0)
                self._storage_ok()
                if live:  # before the counters: a reader that sees the rows counted sees their lag too
                    self._record_lag(batch)
                self.rows_written += len(batch)
                self.batches += 1
        return True

    def _record_lag(self, batch: list[KlineRow]) -> None:
        now = self._clock_ms()
        lags = now - np.fromiter((row.event_time for row in batch), dtype=np.int64, count=len(batch))
        self._lags.extend(lags.tolist())
        self._lag_counts += np.bincount(np.searchsorted(self._lag_bounds, lags, side="left"),
                                        minlength=len(self._lag_counts))

    def _storage_failed(self, exc: Exception) -> None:
        self.last_error = str(exc)[:300]
        if self.storage_up:
            self.storage_up = False
            self.storage_since = time.time()
            log.error("storage down, buffering (%d rows): %s", self.buffered_rows, self.last_error)

    def _storage_ok(self) -> None:
        if not self.storage_up:
            self.storage_up = True
            self.storage_since = time.time()
            log.warning("storage back; catching up %d buffered rows", self.buffered_rows)

    def _push_cache(self) -> None:
        if self.cache is None:
            self._ticker_rows.clear()
            return
        latest = self._latest.copy()
        pushed = self._pushed
        changed = {key: row for key, row in latest.items() if pushed.get(key) != row.version}
        tickers = self._update_tickers(changed)
        if not changed:
            return
        try:
            self.cache.put_latest(changed, tickers)
        except Exception as exc:
            self.cache_errors += 1
            self.note_cache_outcome(exc)
            return
        self.note_cache_outcome(None)
        for key, row in changed.items():
            pushed[key] = row.version
        self._tickers_pushed.update(tickers)

    def _update_tickers(self, changed: dict[StreamKey, KlineRow]) -> dict[str, Ticker24h]:
        """Feed this round's ticker rows; figures of the symbols about to be pushed that changed."""
        rows = self._ticker_rows
        closed = [rows.popleft() for _ in range(len(rows))]
        self.tickers.add(closed)
        self.tickers.add(row for row in changed.values() if not row.closed)
        figures: dict[str, Ticker24h] = {}
        for symbol in {symbol for symbol, _ in changed}:
            current = self.tickers.figures(symbol)
            if current is not None and self._tickers_pushed.get(symbol) != current:
                figures[symbol] = current
        return figures

    def check_cache(self) -> None:
        """Ping the price cache (when nothing was written to it lately, its state would go stale)."""
        if self.cache is None:
            return
        try:
            self.cache.ping()
        except Exception as exc:
            self.note_cache_outcome(exc)
        else:
            self.note_cache_outcome(None)

    def note_cache_outcome(self, exc: Exception | None) -> None:
        """A write, ping or read of the price cache worked (None) or failed: its state for the health reports."""
        self.cache_checked_at = time.monotonic()
        ok = exc is None
        if ok != self.cache_ok:
            self.cache_since = time.time()
            if not ok:
                log.warning("price cache unavailable: %s", exc)
            elif self.cache_ok is False:
                log.warning("price cache back")
        self.cache_ok = ok
        self.cache_error = None if exc is None else f"{type(exc).__name__}: {exc}"[:300]
