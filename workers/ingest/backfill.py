"""Backfill: fetch the candles a stream missed from ``GET /api/v3/klines`` (paged, up to 1000 a call).

The agent asks for a range per stream after every (re)connect, stall, or gap seen in the live flow;
requests for the same stream merge (earliest start wins) and a few run at once. A row is taken as
closed when a later row follows it or its close time is behind the exchange's clock (the newest event
time seen); the open candle at the end is left to the live stream. HTTP 429/418 close a gate for
``Retry-After`` seconds for every fetch; other failures retry with backoff, forever, so a closed
candle is never given up on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tacore.intervals import INTERVAL_MS
from tacore.store.klines import KlineRow
from workers.ingest.limits import Backoff
from workers.ingest.normalise import PayloadError, rest_row

log = logging.getLogger("tacore.ingest.backfill")

KLINES_PATH = "/api/v3/klines"
PAGE_LIMIT = 1000
_DEFAULT_RETRY_AFTER_S = {429: 5.0, 418: 60.0}

StreamKey = tuple[str, str]


@dataclass(slots=True)
class BackfillStats:
    requests: int = 0
    pages_failed: int = 0
    throttled: int = 0  # 429/418 answers
    throttled_wait_s: float = 0.0
    candles: int = 0  # closed candles fetched
    jobs_done: int = 0


class Backfiller:
    """Runs backfill jobs on the agent's loop; ``sink`` receives the closed rows of each page."""

    def __init__(self, rest_url: str, sink: Callable[[list[KlineRow]], None],
                 exchange_now_ms: Callable[[], int], *, concurrency: int = 4, page_limit: int = PAGE_LIMIT,
                 timeout_s: float = 10.0) -> None:
        self.rest_url = rest_url.rstrip("/")
        self.stats = BackfillStats()
        self._sink = sink
        self._exchange_now_ms = exchange_now_ms
        self._concurrency = concurrency
        self._page_limit = page_limit
        self._timeout_s = timeout_s
        self._pending: dict[StreamKey, tuple[int, int | None]] = {}
        self._queue: asyncio.Queue[StreamKey] = asyncio.Queue()
        self._blocked_until = 0.0
        self._client: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0

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
            self._queue.put_nowait(key)
            return
        old_start, old_end = pending
        end = None if old_end is None or end_ms is None else max(old_end, end_ms)
        self._pending[key] = (min(old_start, start_ms), end)

    def cancel(self, symbol: str, interval: str) -> None:
        self._pending.pop((symbol, interval), None)

    @property
    def pending(self) -> int:
        return len(self._pending) + self._busy

    @property
    def throttled_for_s(self) -> float:
        return max(0.0, self._blocked_until - time.monotonic())

    # -- work ------------------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            job = self._pending.pop(key, None)
            if job is None:
                continue
            self._busy += 1
            try:
                await self._fill(key[0], key[1], job[0], job[1])
                self.stats.jobs_done += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("backfill of %s %s failed; requeued", *key)
                self.request(key[0], key[1], job[0], job[1])
                await asyncio.sleep(1.0)
            finally:
                self._busy -= 1

    async def _fill(self, symbol: str, interval: str, start: int, end: int | None) -> None:
        step = INTERVAL_MS[interval]
        while end is None or start <= end:
            items = await self._page(symbol, interval, start, end)
            if not items:
                return
            now = self._exchange_now_ms()
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
            self.stats.requests += 1
            try:
                response = await self._client.get(KLINES_PATH, params=params)
            except httpx.HTTPError as exc:
                self.stats.pages_failed += 1
                log.warning("backfill %s %s: %s", symbol, interval, exc)
                await asyncio.sleep(backoff.next_delay())
                continue
            if response.status_code in (429, 418):
                retry_after = _retry_after_s(response, _DEFAULT_RETRY_AFTER_S[response.status_code])
                self.stats.throttled += 1
                self.stats.throttled_wait_s += retry_after
                self._blocked_until = max(self._blocked_until, time.monotonic() + retry_after)
                log.warning("backfill throttled (%d): waiting %.1f s", response.status_code, retry_after)
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


def _retry_after_s(response: httpx.Response, default: float) -> float:
    value = response.headers.get("Retry-After")
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        return default
