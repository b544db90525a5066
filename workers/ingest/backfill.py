"""Backfill: fetch candles from ``GET /api/v3/klines`` (paged, up to 1000 a call), within the weight budget.

Two kinds of job, a few running at once:

- **fill** (``request``): a stream's missed candles, oldest first, after every (re)connect, stall, or
  gap seen in the live flow; requests for the same stream merge (earliest start wins). Closed rows
  go to ``sink``, which stores and announces them. A row is taken as closed when a later row follows
  it or its close time is behind the exchange's clock; the open candle at the end is left to the
  live stream.
- **history** (``request_history``): ranges of a stream's history before its live start, fetched
  newest page first (a restart mid-way leaves the stored candles contiguous). Every row of these
  ranges is closed. Rows go to ``history_sink``: stored, not announced (they are not news).

Every request first reserves its weight in the ``WeightBudget`` (Binance spot charges klines 2 whatever
the limit, so pages are always full: 1,000 candles per 2 weight); the exchange's
``X-MBX-USED-WEIGHT-1M`` header corrects the count. HTTP 429/418 close a gate for ``Retry-After`` seconds
for every fetch; other failures retry with backoff, forever, so a candle is never given up on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from tacore.intervals import INTERVAL_MS
from tacore.store.klines import KlineRow
from workers.ingest.limits import Backoff, WeightBudget
from workers.ingest.normalise import PayloadError, rest_row

log = logging.getLogger("tacore.ingest.backfill")

KLINES_PATH = "/api/v3/klines"
TIME_PATH = "/api/v3/time"
PAGE_LIMIT = 1000
TIME_WEIGHT = 1
#: the exchange's budget per IP and minute, and the share of it the agent spends by default
EXCHANGE_WEIGHT_PER_MIN = 6000
_DEFAULT_RETRY_AFTER_S = {429: 5.0, 418: 60.0}

StreamKey = tuple[str, str]
JobKind = Literal["fill", "history"]
Sink = Callable[[list[KlineRow]], None]


def klines_weight(limit: int) -> int:
    """Request weight of ``/api/v3/klines``: Binance spot charges 2 for any ``limit`` (1..1000); its
    futures API charges by limit (1/2/5/10), which is why the limit is an argument."""
    return 2


@dataclass(slots=True)
class _Burst:
    """Backfill jobs that ran back to back (a restart's or a reconnect's catch-up): logged as one line."""

    started: float
    candles_before: int
    requests_before: int
    throttled_before: int
    streams: set[StreamKey]


@dataclass(slots=True)
class BackfillStats:
    requests: int = 0
    pages_failed: int = 0
    throttled: int = 0  # 429/418 answers
    throttled_wait_s: float = 0.0
    candles: int = 0  # closed candles fetched by fill jobs
    history_candles: int = 0  # candles fetched by history jobs
    jobs_done: int = 0


class Backfiller:
    """Runs backfill jobs on the agent's loop."""

    def __init__(self, rest_url: str, sink: Sink, exchange_now_ms: Callable[[], int], *,
                 history_sink: Sink | None = None, on_done: Callable[[JobKind, str, str], None] | None = None,
                 budget: WeightBudget | None = None, concurrency: int = 4, page_limit: int = PAGE_LIMIT,
                 timeout_s: float = 10.0) -> None:
        self.rest_url = rest_url.rstrip("/")
        self.stats = BackfillStats()
        self.budget = budget or WeightBudget(EXCHANGE_WEIGHT_PER_MIN * 4 // 5)
        self._sink = sink
        self._history_sink = history_sink or sink
        self._on_done = on_done
        self._exchange_now_ms = exchange_now_ms
        self._concurrency = concurrency
        self._page_limit = page_limit
        self._timeout_s = timeout_s
        self._pending: dict[StreamKey, tuple[int, int | None]] = {}
        self._history: dict[StreamKey, list[tuple[int, int]]] = {}
        self._queue: asyncio.Queue[tuple[JobKind, StreamKey]] = asyncio.Queue()
        self._blocked_until = 0.0
        self._client: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0
        self._burst: _Burst | None = None

    # -- control -----------------------------------------------------------------------------------
    def start(self) -> None:
        self._client = httpx.AsyncClient(base_url=self.rest_url, timeout=self._timeout_s)
        self._tasks = [asyncio.create_task(self._work(), name=f"backfill-{n}") for n in range(self._concurrency)]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def request(self, symbol: str, interval: str, start_ms: int, end_ms: int | None = None) -> None:
        """Fill [start_ms, end_ms] (open times; None = up to now). Merges with a pending request."""
        key = (symbol, interval)
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = (start_ms, end_ms)
            self._queue.put_nowait(("fill", key))
            return
        old_start, old_end = pending
        end = None if old_end is None or end_ms is None else max(old_end, end_ms)
        self._pending[key] = (min(old_start, start_ms), end)

    def request_history(self, symbol: str, interval: str, ranges: list[tuple[int, int]]) -> None:
        """Fetch each ``(first, last)`` open-time range, newest page first; one job per range."""
        key = (symbol, interval)
        queued = self._history.setdefault(key, [])
        for first, last in ranges:
            if last >= first:
                queued.append((first, last))
                self._queue.put_nowait(("history", key))

    def cancel(self, symbol: str, interval: str) -> None:
        self._pending.pop((symbol, interval), None)
        self._history.pop((symbol, interval), None)

    @property
    def pending(self) -> int:
        return len(self._pending) + sum(len(r) for r in self._history.values()) + self._busy

    @property
    def throttled_for_s(self) -> float:
        return max(0.0, self._blocked_until - time.monotonic())

    # -- work ------------------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            kind, key = await self._queue.get()
            job: tuple[int, int | None]
            if kind == "fill":
                pending = self._pending.pop(key, None)
                if pending is None:
                    continue
                job = pending
                if self._burst is None:  # history has its own summary (HistoryProgress)
                    self._burst = _Burst(time.monotonic(), self.stats.candles, self.stats.requests,
                                         self.stats.throttled, set())
                self._burst.streams.add(key)
            else:
                ranges = self._history.get(key)
                if not ranges:
                    continue
                job = ranges.pop(0)
                if not ranges:
                    del self._history[key]
            self._busy += 1
            try:
                if kind == "fill":
                    await self._fill(key[0], key[1], job[0], job[1])
                else:
                    await self._fill_back(key[0], key[1], job[0], int(job[1] or 0))
                self.stats.jobs_done += 1
                if self._on_done is not None:
                    self._on_done(kind, *key)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("backfill of %s %s failed; requeued", *key)
                if kind == "fill":
                    self.request(key[0], key[1], job[0], job[1])
                else:
                    self.request_history(key[0], key[1], [(job[0], int(job[1] or 0))])
                await asyncio.sleep(1.0)
            finally:
                self._busy -= 1
                if self.pending == 0:
                    self._summarise()

    def _summarise(self) -> None:
        """One line for the burst that just ended, rather than one per stream or page."""
        burst, self._burst = self._burst, None
        if burst is None:
            return
        streams = len(burst.streams)
        symbols = len({symbol for symbol, _ in burst.streams})
        log.info("backfill caught up %d stream(s) of %d symbol(s): %d closed candles in %.1f s (%d requests, "
                 "%d throttled)", streams, symbols, self.stats.candles - burst.candles_before,
                 time.monotonic() - burst.started, self.stats.requests - burst.requests_before,
                 self.stats.throttled - burst.throttled_before)

    async def _fill(self, symbol: str, interval: str, start: int, end: int | None) -> None:
        step = INTERVAL_MS[interval]
        while end is None or start <= end:
            # the exchange's time read before asking: a candle that closed by then is final in the answer, where
            # one read after could have moved past a close the answer predates (a live event arriving meanwhile)
            now = self._exchange_now_ms()
            items = await self._page(symbol, interval, start, end)
            if not items:
                return
            rows: list[KlineRow] = []
            for index, item in enumerate(items):
                try:
                    closed = index + 1 < len(items) or int(item[6]) < now
                    if closed:
                        rows.append(rest_row(symbol, interval, item, closed=True))
                except (PayloadError, IndexError, TypeError, ValueError):
                    log.warning("backfill %s %s: unreadable row %r skipped", symbol, interval, item)
            if rows:
                self.stats.candles += len(rows)
                self._sink(rows)
            if len(items) < self._page_limit:
                return
            start = int(items[-1][0]) + step

    async def _fill_back(self, symbol: str, interval: str, first: int, last: int) -> None:
        """History: ``[first, last]`` a page at a time from the newest; stops early when the exchange has
        nothing older (the symbol was listed later)."""
        step = INTERVAL_MS[interval]
        high = last
        while high >= first:
            low = max(first, high - (self._page_limit - 1) * step)
            now = self._exchange_now_ms()  # before asking, as in _fill
            items = await self._page(symbol, interval, low, high)
            rows: list[KlineRow] = []
            for index, item in enumerate(items):
                try:
                    closed = not now or index + 1 < len(items) or int(item[6]) < now  # never the running one
                    if closed and low <= int(item[0]) <= high:
                        rows.append(rest_row(symbol, interval, item, closed=True))
                except (PayloadError, IndexError, TypeError, ValueError):
                    log.warning("history %s %s: unreadable row %r skipped", symbol, interval, item)
            if rows:
                self.stats.history_candles += len(rows)
                self._history_sink(rows)
            elif not items:
                return
            high = low - step

    async def _page(self, symbol: str, interval: str, start: int, end: int | None) -> list[list[Any]]:
        """One GET, retried until it succeeds (honouring Retry-After on 429/418)."""
        if self._client is None:
            raise RuntimeError("Backfiller.start() was not called")
        params: dict[str, Any] = {"symbol": symbol, "interval": interval, "startTime": start,
                                  "limit": self._page_limit}
        if end is not None:
            params["endTime"] = end
        backoff = Backoff(0.25, 10.0)
        while True:
            wait = self._blocked_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self.budget.acquire(klines_weight(self._page_limit))
            self.stats.requests += 1
            try:
                response = await self._client.get(KLINES_PATH, params=params)
            except httpx.HTTPError as exc:
                self.stats.pages_failed += 1
                log.warning("backfill %s %s: %s", symbol, interval, exc)
                await asyncio.sleep(backoff.next_delay())
                continue
            self.budget.observe(response.headers.get("X-MBX-USED-WEIGHT-1M"))
            if response.status_code in (429, 418):
                retry_after = _retry_after_s(response, _DEFAULT_RETRY_AFTER_S[response.status_code])
                self.stats.throttled += 1
                self.stats.throttled_wait_s += retry_after
                until = time.monotonic() + retry_after
                if until > self._blocked_until + 0.5:  # one line per gate closing, not per waiting request
                    log.warning("backfill throttled (%d): every request waits %.1f s", response.status_code,
                                retry_after)
                self._blocked_until = max(self._blocked_until, until)
                continue
            if response.status_code == 400:
                log.error("backfill %s %s refused: %s", symbol, interval, response.text[:200])
                return []
            if response.status_code != 200:
                self.stats.pages_failed += 1
                await asyncio.sleep(backoff.next_delay())
                continue
            data = response.json()
            return data if isinstance(data, list) else []


async def server_time_ms(client: httpx.AsyncClient, budget: WeightBudget) -> int:
    """The exchange's clock (``GET /api/v3/time``), within the budget; raises httpx.HTTPError."""
    await budget.acquire(TIME_WEIGHT)
    response = await client.get(TIME_PATH)
    budget.observe(response.headers.get("X-MBX-USED-WEIGHT-1M"))
    response.raise_for_status()
    return int(response.json()["serverTime"])


def _retry_after_s(response: httpx.Response, default: float) -> float:
    value = response.headers.get("Retry-After")
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        return default
