"""Shared state of the simulator's Alpaca side: the market (loaded on first use), stream clients,
the rate window, queued REST faults and counters.

The REST app, the stream server, the minute feed and the control API meet here, in the simulator's
one asyncio loop. Loading the NYSE calendar takes about a second, so it happens off the loop, the
first time an Alpaca client needs data; a simulator whose tests never touch Alpaca never pays it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tacore.exchange_sim.alpaca.limits import KeyPair, MinuteWindow
from tacore.exchange_sim.alpaca.market import UsMarket
from tacore.exchange_sim.alpaca.payloads import CLIENT_CHANNELS
from tacore.exchange_sim.config import SimClock, SimConfig

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

#: stream endpoints: /v2/<feed>
STREAM_FEEDS = ("iex", "sip", "test")


@dataclass(eq=False)
class StreamClient:
    """One connection to ``/v2/{feed}``."""

    id: int
    conn: ServerConnection
    feed: str
    remote: str
    connected_at: float = field(default_factory=time.time)
    authenticated: bool = False
    #: channel -> subscribed symbols in the order they were added (``*`` = every symbol)
    subs: dict[str, dict[str, None]] = field(default_factory=lambda: {name: {} for name in CLIENT_CHANNELS})
    frames_received: int = 0
    messages_sent: int = 0
    bars_sent: int = 0
    closing: bool = False

    def wants(self, channel: str, symbol: str) -> bool:
        names = self.subs[channel]
        return symbol in names or "*" in names

    def snapshot(self) -> dict[str, Any]:
        return {"id": self.id, "feed": self.feed, "remote": self.remote, "connected_at": self.connected_at,
                "authenticated": self.authenticated,
                "subscriptions": {name: list(v) for name, v in self.subs.items() if v},
                "frames_received": self.frames_received, "messages_sent": self.messages_sent,
                "bars_sent": self.bars_sent}


class AlpacaHub:
    def __init__(self, config: SimConfig, clock: SimClock) -> None:
        self.config = config
        self.clock = clock
        self.keys = KeyPair(config.alpaca_key_id, config.alpaca_secret_key)
        self.rate = MinuteWindow(config.alpaca_rate_limit)
        self.rest_faults: deque[tuple[int, int]] = deque()  # (HTTP status, seconds until the quota resets)
        self.clients: dict[int, StreamClient] = {}
        self.counters: Counter[str] = Counter()
        self._market: UsMarket | None = None
        self._load_lock = threading.Lock()
        self._next_id = 1

    # -- the market ------------------------------------------------------------------------------------
    def market_now(self) -> UsMarket:
        """The market, loading the calendar in this thread if nobody did yet."""
        with self._load_lock:
            if self._market is None:
                from tacore.exchange_sim.alpaca.sessions import TradingMinutes
                from tacore.exchange_sim.alpaca.universe import default_universe, us_calendar_name
                from tacore.markets import calendar_named

                cal = calendar_named(us_calendar_name())
                listed = self.config.alpaca_symbols or default_universe()
                minutes = TradingMinutes(cal)  # type: ignore[arg-type]
                self._market = UsMarket(self.config.seed, frozenset(listed), minutes)
            return self._market

    async def market(self) -> UsMarket:
        """The market, loaded off the event loop the first time."""
        if self._market is not None:
            return self._market
        return await asyncio.to_thread(self.market_now)

    @property
    def loaded(self) -> bool:
        return self._market is not None

    # -- stream clients ----------------------------------------------------------------------------------
    def add_client(self, conn: ServerConnection, feed: str, remote: str) -> StreamClient:
        client = StreamClient(self._next_id, conn, feed, remote)
        self._next_id += 1
        self.clients[client.id] = client
        self.counters["stream_connections_accepted"] += 1
        return client

    def remove_client(self, client: StreamClient) -> None:
        self.clients.pop(client.id, None)

    def authenticated_elsewhere(self, client: StreamClient) -> int:
        """Other authenticated connections of the same key pair to the same endpoint."""
        return sum(1 for c in self.clients.values() if c is not client and c.authenticated and c.feed == client.feed)

    def stats(self) -> dict[str, Any]:
        c = self.counters
        return {
            "loaded": self.loaded, "live_connections": len(self.clients),
            "connections": [client.snapshot() for client in self.clients.values()],
            "stream_connections_accepted": c["stream_connections_accepted"], "auth_failures": c["auth_failures"],
            "bars_sent": c["bars_sent"], "messages_sent": c["messages_sent"],
            "rest_requests": c["rest_requests"], "rest_unauthorized": c["rest_unauthorized"],
            "rest_rate_limited": c["rest_rate_limited"], "rest_failures_injected": c["rest_failures_injected"],
            "rest_failures_pending": len(self.rest_faults),
        }
