"""A backfill page never stores the running candle as closed, even when the exchange's clock (the newest live event
seen) moves past that candle's close while the page is in flight: the page's rows predate that close. Against the
real exchange simulator's REST klines."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tacore.exchange_sim import ExchangeSimulator, SimConfig
from workers.ingest.backfill import Backfiller
from workers.ingest.normalise import KlineRow

MINUTE_MS = 60_000
START = 1_800_000_030_000  # half a minute into a 1m candle


@pytest.fixture(scope="module")
def sim() -> Iterator[ExchangeSimulator]:
    with ExchangeSimulator(SimConfig(alpaca=False, clock_speed=1.0, seed=7, start_time_ms=START)) as running:
        yield running


class _EventDuringRequest(Backfiller):
    """The agent's clock is the newest live event's time: one arrives, past the running candle's close, while the
    page is in flight."""

    def __init__(self, rest_url: str, sink: Any, clock: list[int], later_ms: int) -> None:
        super().__init__(rest_url, sink, lambda: clock[0], concurrency=1)
        self._clock = clock
        self._later_ms = later_ms

    async def _page(self, symbol: str, interval: str, start: int, end: int | None) -> list[list[Any]]:
        items = await super()._page(symbol, interval, start, end)
        self._clock[0] = self._later_ms
        return items


def test_the_running_candle_of_a_page_is_not_stored_closed_when_the_clock_moves_during_the_request(
        sim: ExchangeSimulator) -> None:
    now = sim.hub.clock.now_ms()
    running_open = now - now % MINUTE_MS
    stored: list[KlineRow] = []

    async def run() -> None:
        clock = [now]
        backfill = _EventDuringRequest(sim.rest_url, stored.extend, clock, running_open + MINUTE_MS + 5_000)
        backfill.start()
        try:
            backfill.request("BTCUSDT", "1m", running_open - 5 * MINUTE_MS)
            for _ in range(200):
                await asyncio.sleep(0.02)
                if backfill.pending == 0 and stored:
                    break
        finally:
            await backfill.close()

    asyncio.run(run())
    opens = [row.open_time for row in stored]
    assert opens == [running_open - n * MINUTE_MS for n in range(5, 0, -1)], opens  # the five closed ones
    assert all(row.closed for row in stored)
