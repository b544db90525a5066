"""The kline feed: one loop that pushes every active stream's update to every subscriber.

Each wake builds each stream's payload once (a string template, cached per partial step), frames
it once per payload shape (raw or combined), and writes all of a connection's frames with a single
``transport.write``: the per-message cost is a dict lookup and a bytes join, which is what lets
one core push well past 25,000 messages a second. Data frames bypass websockets' send path (the
server negotiates no compression, so a text frame is just a header and the payload); control
frames and replies still go through websockets, and nothing is written to a connection that is
closing.

The loop wakes on the update cadence (every ``update_interval_ms``, Binance: 2 s) and at each
candle close, so the final ``x: true`` update goes out as the candle closes, as on Binance.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from websockets.protocol import State

from tacore.exchange_sim.hub import Client, Hub, StreamFeed
from tacore.exchange_sim.intervals import INTERVAL_MS, open_time_of
from tacore.exchange_sim.payloads import combined, kline_body, kline_event

log = logging.getLogger(__name__)

_MAX_FINALS = 1000  # closes emitted for one stream in one wake (a stalled loop never floods)
_DROP_FACTOR = 8  # a connection this many write_buffer_limits behind is reset


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented WebSocket text frame (server to client)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65_536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


class _Batch:
    """One stream's messages for one wake, framed lazily per payload shape."""

    __slots__ = ("_raw", "_wrapped", "finals", "name", "partial")

    def __init__(self, name: str, finals: list[str], partial: str | None) -> None:
        self.name = name
        self.finals = finals
        self.partial = partial
        self._raw: tuple[bytes, bytes] | None = None
        self._wrapped: tuple[bytes, bytes] | None = None

    def frames(self, wrapped: bool) -> tuple[bytes, bytes]:
        """(frames of the closing updates, frame of the open-candle update)."""
        cached = self._wrapped if wrapped else self._raw
        if cached is None:
            if wrapped:
                fin = [combined(self.name, m) for m in self.finals]
                part = combined(self.name, self.partial) if self.partial is not None else None
            else:
                fin, part = self.finals, self.partial
            cached = (
                b"".join(text_frame(m.encode()) for m in fin),
                text_frame(part.encode()) if part is not None else b"",
            )
            if wrapped:
                self._wrapped = cached
            else:
                self._raw = cached
        return cached


class Feed:
    """Runs the update loop for a hub."""

    def __init__(self, hub: Hub, drop: Callable[[Client], None]) -> None:
        self.hub = hub
        self.drop = drop  # how to cut a hopelessly slow consumer (the WS server's abort)
        self.wakes = 0

    async def run(self) -> None:
        """Loop until cancelled."""
        cfg = self.hub.config
        loop = asyncio.get_running_loop()
        period = cfg.update_interval_ms / 1000.0
        next_update = loop.time() + period
        while True:
            now = loop.time()
            full = now >= next_update
            try:
                self.tick(self.hub.clock.now_ms(), full)
            except Exception:  # a bug in one wake must not stop the exchange
                log.exception("exchange-sim feed tick failed")
            if full:
                next_update = max(next_update + period, now)
            delay = next_update - loop.time()
            next_close = min((f.last_open + INTERVAL_MS[f.interval] for f in self.hub.feeds.values()), default=None)
            if next_close is not None:
                delay = min(delay, self.hub.clock.real_delay_s(next_close - self.hub.clock.now_ms()))
            await asyncio.sleep(max(0.0, delay))

    def tick(self, sim_now: int, full: bool) -> int:
        """Emit closes due by ``sim_now`` and, when ``full``, every open-candle update. Returns frames."""
        self.wakes += 1
        targets = self._targets()
        # Open-candle updates are only built when some connection can take them right now, so a
        # stalled consumer costs the simulator nothing but its closes.
        if full and not any(not behind for _, behind in targets):
            full = False
            for client, _ in targets:
                client.updates_skipped += len(client.subs)
                self.hub.counters["updates_skipped"] += len(client.subs)
        batches = self._build(sim_now, full)
        if not batches:
            return 0
        return self._write(batches, targets)

    def _targets(self) -> list[tuple[Client, bool]]:
        """Connections to write to this wake, each with whether it is too far behind for updates."""
        hub = self.hub
        limit = hub.config.write_buffer_limit
        mono = time.monotonic()
        out: list[tuple[Client, bool]] = []
        for client in list(hub.clients.values()):
            conn = client.conn
            if client.close_code is not None or conn.state is not State.OPEN or client.is_half_open(mono):
                continue
            if not client.subs or conn.transport.is_closing():
                continue
            backlog = conn.transport.get_write_buffer_size()
            if backlog > limit * _DROP_FACTOR:
                # A consumer this far behind would take the exchange's memory with it: drop it.
                hub.counters["slow_consumers_dropped"] += 1
                self.drop(client)
                continue
            out.append((client, backlog > limit))
        return out

    def _build(self, sim_now: int, full: bool) -> dict[str, _Batch]:
        hub = self.hub
        mono = time.monotonic()
        step_ms = hub.config.partial_step_ms
        batches: dict[str, _Batch] = {}
        for name, feed in hub.feeds.items():
            finals = self._closes(feed, sim_now)
            if hub.is_paused(name, mono):
                continue
            partial: str | None = None
            if full:
                step = sim_now // step_ms
                if step != feed.step:
                    candle = hub.market.open_candle(feed.symbol, feed.interval, sim_now)
                    feed.body = kline_body(feed.symbol, feed.interval, candle, False)
                    feed.step = step
                partial = kline_event(feed.symbol, sim_now, feed.body)
            if finals or partial is not None:
                batches[name] = _Batch(name, finals, partial)
        return batches

    def _closes(self, feed: StreamFeed, sim_now: int) -> list[str]:
        """Final updates for every candle of ``feed`` that closed since the last wake."""
        current = open_time_of(sim_now, feed.interval)
        if current <= feed.last_open:
            return []
        step = INTERVAL_MS[feed.interval]
        first = max(feed.last_open, current - _MAX_FINALS * step)
        market = self.hub.market
        out = []
        for open_time in range(first, current, step):
            candle = market.closed(feed.symbol, feed.interval, open_time)
            body = kline_body(feed.symbol, feed.interval, candle, True)
            out.append(kline_event(feed.symbol, sim_now, body))
        feed.last_open = current
        feed.step = -1
        return out

    def _write(self, batches: dict[str, _Batch], targets: list[tuple[Client, bool]]) -> int:
        hub = self.hub
        total = 0
        for client, behind in targets:
            parts: list[bytes] = []
            count = 0
            for name in client.subs:
                batch = batches.get(name)
                if batch is None:
                    continue
                fin, part = batch.frames(client.combined)
                if fin:
                    parts.append(fin)
                    count += len(batch.finals)
                if part:
                    if behind:
                        client.updates_skipped += 1
                        hub.counters["updates_skipped"] += 1
                    else:
                        parts.append(part)
                        count += 1
            if parts:
                client.conn.transport.write(b"".join(parts))
                client.messages_sent += count
                total += count
        hub.counters["messages_sent"] += total
        return total
