"""The minute feed: as each simulated minute closes inside a session, every authenticated stream
client gets its subscribed symbols' bars in one array frame.

A client subscribed to ``bars`` gets ``{"T": "b", ...}`` for that minute, one on ``dailyBars`` the
session's bar so far (``"T": "d"``, stamped New York midnight) right after. ``updatedBars`` (``"u"``,
Alpaca's correction of a bar by a late trade) goes out when a test reports a late trade through the
control API (``correct``). The ``test`` endpoint sends ``FAKEPACA`` every minute, sessions or not. If
the loop wakes late (a stalled host, a fast clock), it sends every minute it missed, in order.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from tacore.exchange_sim.alpaca.hub import AlpacaHub, StreamClient
from tacore.exchange_sim.alpaca.market import UsMarket
from tacore.exchange_sim.alpaca.payloads import stream_bars
from tacore.exchange_sim.alpaca.sessions import MINUTE_MS
from tacore.exchange_sim.alpaca.stream import AlpacaStreamServer
from tacore.exchange_sim.alpaca.universe import TEST_SYMBOL

log = logging.getLogger(__name__)

_MAX_CATCH_UP = 1000  # minutes sent in one wake at most


class AlpacaMinuteFeed:
    def __init__(self, hub: AlpacaHub, server: AlpacaStreamServer) -> None:
        self.hub = hub
        self.server = server

    async def run(self) -> None:
        clock = self.hub.clock
        last = clock.now_ms() // MINUTE_MS  # the running minute; earlier ones are history, never streamed
        while True:
            current = clock.now_ms() // MINUTE_MS
            if current > last:
                try:
                    await self.emit(list(range(max(last, current - _MAX_CATCH_UP), current)))
                except Exception:  # one bad wake must not stop the stream
                    log.exception("alpaca minute feed failed")
                last = current
            await asyncio.sleep(max(0.001, clock.real_delay_s((current + 1) * MINUTE_MS - clock.now_ms())))

    def _targets(self) -> list[StreamClient]:
        return [c for c in self.hub.clients.values()
                if c.authenticated and not c.closing and (c.subs["bars"] or c.subs["dailyBars"])]

    async def emit(self, minutes: list[int]) -> None:
        """Send the bars of ``minutes`` (just closed) to every subscribed client."""
        if not self._targets():
            return
        market = await self.hub.market()
        for minute in minutes:
            cache: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
            for client in self._targets():
                points = self._points(market, client, minute, cache)
                if points:
                    await self.server.send(client, orjson.dumps(points).decode())
                    bars = sum(1 for p in points if p["T"] == "b")
                    client.bars_sent += bars
                    self.hub.counters["bars_sent"] += bars

    async def correct(self, symbol: str, minute: int) -> int:
        """Send the corrected bar of ``minute`` (``"T": "u"``) to clients on ``updatedBars``; how many got it."""
        market = await self.hub.market()
        sent = 0
        for client in list(self.hub.clients.values()):
            if client.authenticated and not client.closing and client.feed in ("sip", "iex") \
                    and client.wants("updatedBars", symbol):
                points = stream_bars("u", symbol, market.minute_bar(symbol, client.feed, minute))
                await self.server.send(client, orjson.dumps(points).decode())
                sent += 1
        return sent

    def _points(self, market: UsMarket, client: StreamClient, minute: int,
                cache: dict[tuple[str, str, str], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        if client.feed == "test":
            if client.wants("bars", TEST_SYMBOL):
                return stream_bars("b", TEST_SYMBOL, market.test_minute(minute))
            return []
        if market.minutes.session_of_minute(minute) < 0:
            return []
        points: list[dict[str, Any]] = []
        for channel, kind in (("bars", "b"), ("dailyBars", "d")):
            wanted = client.subs[channel]
            symbols = sorted(market.listed) if "*" in wanted else [s for s in wanted if market.is_listed(s)]
            for symbol in symbols:
                key = (kind, client.feed, symbol)
                if key not in cache:
                    cols = (market.minute_bar(symbol, client.feed, minute) if kind == "b"
                            else market.day_so_far(symbol, client.feed, minute))
                    cache[key] = stream_bars(kind, symbol, cols)
                points.extend(cache[key])
        return points
