"""Shared state of a running simulator: live connections, their streams, pauses and counters.

The WS server, the feed and the control API all run in one asyncio loop and meet here; nothing in
this module does I/O, so it needs no locks.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tacore.exchange_sim.config import SimClock, SimConfig
from tacore.exchange_sim.intervals import StreamName, open_time_of, symbol_is_listed
from tacore.exchange_sim.market import Market

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection


@dataclass(eq=False)
class Client:
    """One WebSocket connection as the exchange sees it."""

    id: int
    conn: ServerConnection
    remote: str
    path: str
    combined: bool
    connected_at: float = field(default_factory=time.time)
    subs: dict[str, StreamName] = field(default_factory=dict)
    frame_tokens: float = -1.0  # token bucket for incoming frames; -1 = full on first use
    frame_tokens_at: float = 0.0
    frames_received: int = 0
    messages_sent: int = 0
    updates_skipped: int = 0
    half_open_until: float = 0.0  # monotonic; while in the future the connection is silent
    close_code: int | None = None  # code of a close the simulator initiated
    shutting_down: bool = False  # serverShutdown sent, close pending
    close_reason: str = ""

    def is_half_open(self, now: float | None = None) -> bool:
        """Whether the connection is in a simulated half-open (totally silent) spell."""
        return self.half_open_until > (time.monotonic() if now is None else now)

    def snapshot(self, now_mono: float) -> dict[str, Any]:
        """JSON-ready view for ``GET /_sim/stats``."""
        return {
            "id": self.id,
            "remote": self.remote,
            "path": self.path,
            "combined": self.combined,
            "connected_at": self.connected_at,
            "streams": list(self.subs),
            "frames_received": self.frames_received,
            "messages_sent": self.messages_sent,
            "updates_skipped": self.updates_skipped,
            "half_open": self.is_half_open(now_mono),
        }


@dataclass(eq=False)
class StreamFeed:
    """A kline stream with at least one subscriber; what the feed has already emitted for it."""

    stream: StreamName
    symbol: str
    interval: str
    last_open: int  # open time of the candle the feed last saw running
    subscribers: int = 0
    step: int = -1  # partial-step number of the cached body
    body: str = ""


class Hub:
    """Registry of clients and stream feeds, fault switches and counters."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.clock = SimClock(config.clock_speed, config.start_time_ms)
        self.market = Market(config.seed)
        self.clients: dict[int, Client] = {}
        self.feeds: dict[str, StreamFeed] = {}
        self.paused: dict[str, float] = {}  # stream name -> monotonic deadline
        self.pause_all_until = 0.0
        self.attempts: dict[str, deque[float]] = {}
        self.counters: Counter[str] = Counter()
        self.closes_by_code: Counter[str] = Counter()
        self.rest_faults: deque[tuple[int, int]] = deque()  # (HTTP status, Retry-After seconds)
        #: ``GET /api/v3/time`` leaves the clock's skew out (a resync cannot fix it)
        self.time_hides_skew = False
        self._next_id = 1

    # symbols -------------------------------------------------------------------------------
    def is_listed(self, symbol: str) -> bool:
        """Whether the simulated exchange lists ``symbol``."""
        return symbol_is_listed(symbol, self.config.symbols)

    # connections ---------------------------------------------------------------------------
    def admit(self, remote: str) -> bool:
        """Count a connection attempt from ``remote``; False when past the per-IP limit."""
        now = time.monotonic()
        window = self.attempts.setdefault(remote, deque())
        while window and now - window[0] > self.config.connection_window_s:
            window.popleft()
        window.append(now)
        self.counters["connection_attempts"] += 1
        if len(window) > self.config.max_connection_attempts:
            self.counters["handshakes_refused"] += 1
            return False
        return True

    def add_client(self, conn: ServerConnection, remote: str, path: str, combined: bool) -> Client:
        """Register an accepted connection."""
        client = Client(self._next_id, conn, remote, path, combined)
        self._next_id += 1
        self.clients[client.id] = client
        self.counters["connections_accepted"] += 1
        return client

    def remove_client(self, client: Client, code: int) -> None:
        """Forget a finished connection and record how it ended."""
        for name in list(client.subs):
            self.unsubscribe(client, name)
        self.clients.pop(client.id, None)
        self.closes_by_code[str(code)] += 1

    def count_frame(self, client: Client) -> bool:
        """Record one incoming frame; False when the connection is over its rate limit.

        A token bucket of ``max_frames_per_s`` refilled at that rate per second: a burst of 6 or a
        sustained 6 a second trips it, while a client pacing at exactly 5 a second is not punished
        for frames that the network or this loop's own latency delivered bunched together.
        """
        now = time.monotonic()
        client.frames_received += 1
        self.counters["frames_received"] += 1
        rate = float(self.config.max_frames_per_s)
        if client.frame_tokens < 0:
            client.frame_tokens = rate
        else:
            client.frame_tokens = min(rate, client.frame_tokens + (now - client.frame_tokens_at) * rate)
        client.frame_tokens_at = now
        if client.frame_tokens < 1.0:
            return False
        client.frame_tokens -= 1.0
        return True

    # subscriptions -------------------------------------------------------------------------
    def subscribe(self, client: Client, stream: StreamName) -> None:
        """Add a stream to a connection (idempotent)."""
        if stream.name in client.subs:
            return
        client.subs[stream.name] = stream
        if stream.interval is None or stream.symbol is None or not self.is_listed(stream.symbol):
            return
        feed = self.feeds.get(stream.name)
        if feed is None:
            now = self.clock.now_ms()
            feed = StreamFeed(stream, stream.symbol, stream.interval, open_time_of(now, stream.interval))
            self.feeds[stream.name] = feed
        feed.subscribers += 1

    def unsubscribe(self, client: Client, name: str) -> None:
        """Remove a stream from a connection (idempotent)."""
        if client.subs.pop(name, None) is None:
            return
        feed = self.feeds.get(name)
        if feed is not None:
            feed.subscribers -= 1
            if feed.subscribers <= 0:
                del self.feeds[name]

    # pauses ---------------------------------------------------------------------------------
    def pause(self, seconds: float, streams: list[str] | None) -> None:
        """Stop data on some streams (or all) for a while; pings still flow."""
        until = time.monotonic() + seconds
        if streams is None:
            self.pause_all_until = until
        else:
            for name in streams:
                self.paused[name] = until

    def is_paused(self, name: str, now: float) -> bool:
        """Whether data on ``name`` is currently held back."""
        if self.pause_all_until > now:
            return True
        until = self.paused.get(name)
        if until is None:
            return False
        if until <= now:
            del self.paused[name]
            return False
        return True

    # stats ----------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Everything ``GET /_sim/stats`` reports."""
        now = time.monotonic()
        return {
            "sim_time_ms": self.clock.now_ms(),
            "clock_speed": self.config.clock_speed,
            "live_connections": len(self.clients),
            "connections": [c.snapshot(now) for c in self.clients.values()],
            "active_streams": len(self.feeds),
            "connection_attempts": self.counters["connection_attempts"],
            "connections_accepted": self.counters["connections_accepted"],
            "handshakes_refused": self.counters["handshakes_refused"],
            "frames_received": self.counters["frames_received"],
            "messages_sent": self.counters["messages_sent"],
            "updates_skipped": self.counters["updates_skipped"],
            "slow_consumers_dropped": self.counters["slow_consumers_dropped"],
            "pings_sent": self.counters["pings_sent"],
            "rest_requests": self.counters["rest_requests"],
            "rest_failures_injected": self.counters["rest_failures_injected"],
            "rest_failures_pending": len(self.rest_faults),
            "rest_weight_refused": self.counters["rest_weight_refused"],
            "rest_weight_max_per_min": self.counters["rest_weight_max_per_min"],
            "closes_by_code": dict(self.closes_by_code),
        }
