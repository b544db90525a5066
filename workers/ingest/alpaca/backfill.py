"""US candles over REST: history, gaps and each bucket's closing aggregate, as multi-symbol requests.

A job is (interval, first open time, last open time or "now", kind) and a set of symbols; requests
for the same job merge their symbols, so the 100 symbols whose 5m candle just closed are fetched in
one call (``/v2/stocks/bars`` takes many symbols and pages across them). Kinds:

- ``history``: a new stream's depth of history; stored, not announced;
- ``fill``: what a stream missed (restart, reconnect, a gap); stored and announced;
- ``close``: the aggregate of a bucket that just ended (a ``close`` job waits ``close_delay_s`` so
  every symbol's last minute is in); stored and announced;
- ``refresh``: a closed bucket again, after a late trade changed one of its minutes (``updatedBars``);
  stored with a newer version than the first copy, not announced again.

A bar counts as closed when its candle's interval or session ended by the server's clock (the
``Date`` of that very answer); the running bar at the end of a fetch is passed on as an open row.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from tacore.markets.calendar import DAY_MS
from tacore.store.klines import KlineRow
from workers.ingest.alpaca.bars import BarError, bar_row, open_time_of, parse_time_ms
from workers.ingest.alpaca.rest import AlpacaAuthError, AlpacaRequestError, AlpacaRest
from workers.ingest.alpaca.sessions import UsCandleClock

log = logging.getLogger("tacore.ingest.alpaca.backfill")

Kind = Literal["history", "fill", "close", "refresh"]
TIMEFRAMES = {"1m": "1Min", "5m": "5Min", "15m": "15Min", "30m": "30Min", "1h": "1Hour", "4h": "4Hour", "1d": "1Day"}


@dataclass(frozen=True, slots=True)
class Job:
    interval: str
    first: int  # open time of the first candle wanted
    last: int | None  # open time of the last (None: up to now)
    kind: Kind


@dataclass(frozen=True, slots=True)
class Fetched:
    """One page's rows for the sink."""

    kind: Kind
    closed: list[KlineRow]
    running: list[KlineRow]
    server_ms: int


@dataclass(slots=True)
class BackfillStats:
    jobs_done: int = 0
    candles: int = 0  # closed candles fetched
    auth_failures: int = 0
    refused: int = 0  # requests Alpaca refused as malformed


def rfc3339(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{millis:03d}Z" if millis else f"{stamp}Z"


class UsBackfiller:
    def __init__(self, rest: AlpacaRest, clock: UsCandleClock, sink: Callable[[Fetched], None], *,
                 concurrency: int = 2, close_delay_s: float = 0.2,
                 on_auth_error: Callable[[str], None] | None = None,
                 on_missing: Callable[[Job, set[str]], None] | None = None,
                 on_done: Callable[[Job, list[str]], None] | None = None) -> None:
        self.rest = rest
        self.clock = clock
        self.stats = BackfillStats()
        self._sink = sink
        self._on_auth_error = on_auth_error
        self._on_missing = on_missing
        self._on_done = on_done
        self._concurrency = concurrency
        self._close_delay_s = close_delay_s
        self._pending: dict[Job, set[str]] = {}
        self._queue: asyncio.Queue[tuple[float, Job]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work(), name=f"alpaca-backfill-{n}")
                       for n in range(self._concurrency)]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def pending(self) -> int:
        return len(self._pending) + self._busy

    def request(self, symbols: list[str] | set[str], interval: str, first: int, last: int | None = None,
                kind: Kind = "fill") -> None:
        """Fetch [first, last] (open times) of ``interval`` for ``symbols``; merges with an equal job."""
        if not symbols or (last is not None and last < first):
            return
        job = Job(interval, first, last, kind)
        waiting = self._pending.get(job)
        if waiting is not None:
            waiting.update(symbols)
            return
        self._pending[job] = set(symbols)
        not_before = time.monotonic() + (self._close_delay_s if kind == "close" else 0.0)
        self._queue.put_nowait((not_before, job))

    def cancel(self, symbol: str) -> None:
        for symbols in self._pending.values():
            symbols.discard(symbol)

    async def _work(self) -> None:
        while True:
            not_before, job = await self._queue.get()
            wait = not_before - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            symbols = self._pending.pop(job, set())
            if not symbols:
                continue
            self._busy += 1
            try:
                await self._run(job, sorted(symbols))
                self.stats.jobs_done += 1
                if self._on_done is not None:
                    self._on_done(job, sorted(symbols))
            except asyncio.CancelledError:
                raise
            except AlpacaAuthError as exc:
                self.stats.auth_failures += 1
                log.error("alpaca backfill stopped: %s", exc)
                if self._on_auth_error is not None:
                    self._on_auth_error(str(exc))
            except AlpacaRequestError as exc:
                self.stats.refused += 1
                log.error("alpaca refused %s %s for %s: %s", job.kind, job.interval, ",".join(symbols)[:80], exc)
            except Exception:
                log.exception("alpaca backfill of %s %s failed; requeued", job.kind, job.interval)
                await asyncio.sleep(1.0)
                self.request(symbols, job.interval, job.first, job.last, job.kind)
            finally:
                self._busy -= 1

    async def _run(self, job: Job, symbols: list[str]) -> None:
        interval = job.interval
        # a daily bar is stamped New York midnight, 4-5 h after the candle's open time (UTC midnight)
        end = None if job.last is None else rfc3339(job.last + (DAY_MS - 1 if interval == "1d" else 0))
        answered: set[str] = set()
        async for page in self.rest.bars(symbols, TIMEFRAMES[interval], rfc3339(job.first), end):
            answered.update(s for s, bars in page.bars.items() if bars)
            closed: list[KlineRow] = []
            running: list[KlineRow] = []
            for symbol, bars in page.bars.items():
                for bar in bars if isinstance(bars, list) else []:
                    try:
                        open_time = open_time_of(parse_time_ms(str(bar["t"])), interval)
                        close_ms = self.clock.close_ms(open_time, interval)
                        if page.server_ms and close_ms > page.server_ms:
                            running.append(bar_row(symbol, interval, bar, closed=False, event_time=page.server_ms))
                        else:
                            stamp = max(close_ms, page.server_ms) if job.kind == "refresh" else close_ms
                            closed.append(bar_row(symbol, interval, bar, closed=True, event_time=stamp))
                    except (BarError, KeyError, TypeError):
                        log.warning("alpaca %s %s: unreadable bar %r skipped", symbol, interval, bar)
            self.stats.candles += len(closed)
            if job.kind == "close" and running:  # not final yet by the server's clock: ask again shortly
                self.request({row.symbol for row in running}, interval, job.first, job.last, "close")
            self._sink(Fetched(job.kind, closed, running, page.server_ms))
        missing = set(symbols) - answered
        if job.kind == "close" and missing and self._on_missing is not None:
            self._on_missing(job, missing)

