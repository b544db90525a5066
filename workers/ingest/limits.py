"""The exchange's limits, kept on our side: frames per second per connection, connection attempts per
five minutes, and the reconnect backoff that keeps a mass reconnect from tripping either.

Binance closes a connection (1008) that sends more than 5 frames in a second (pings, pongs and
SUBSCRIBEs all count) and bans an IP past 300 connection attempts in 5 minutes. Both windows are
sliding, so both limiters are sliding windows too, set a little under the exchange's numbers.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable


class SlidingWindow:
    """At most ``limit`` events in any ``window_s``; ``acquire`` waits for room, then records one."""

    def __init__(self, limit: int, window_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.window_s = window_s
        self.waited_s = 0.0
        self._clock = clock
        self._times: deque[float] = deque()
        self._lock = asyncio.Lock()

    def delay(self) -> float:
        """Seconds until one more event fits (0 when it fits now)."""
        now = self._clock()
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()
        if len(self._times) < self.limit:
            return 0.0
        return self._times[0] + self.window_s - now

    def record(self) -> None:
        self._times.append(self._clock())

    async def acquire(self) -> None:
        async with self._lock:
            while (wait := self.delay()) > 0:
                self.waited_s += wait
                await asyncio.sleep(wait + 0.001)
            self.record()

    def count(self) -> int:
        self.delay()
        return len(self._times)


def frame_budget(frames_per_s: int = 4) -> SlidingWindow:
    """Outgoing frames of one connection: 4/s leaves 1/s of the exchange's 5 for automatic pongs."""
    return SlidingWindow(frames_per_s, 1.0)


def attempt_limiter(attempts: int = 250, window_s: float = 300.0) -> SlidingWindow:
    """Connection attempts of the whole agent: under the exchange's 300 per 5 minutes."""
    return SlidingWindow(attempts, window_s)


class Backoff:
    """Exponential backoff with jitter (half to full of the step), reset after a healthy session."""

    def __init__(self, initial_s: float = 0.5, max_s: float = 30.0, *,
                 rng: Callable[[float, float], float] = random.uniform) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.failures = 0
        self._rng = rng

    def next_delay(self) -> float:
        step = min(self.max_s, self.initial_s * (2 ** min(self.failures, 30)))
        self.failures += 1
        return self._rng(step / 2, step)

    def reset(self) -> None:
        self.failures = 0


class WeightBudget:
    """Request weight per clock minute, as Binance counts it (``X-MBX-USED-WEIGHT-1M``, 6,000 per IP).

    A request reserves its weight before it is sent, waiting for the next minute when it would not fit
    (a request alone in its minute always fits); the exchange's header, which also counts the IP's
    other clients, raises our count when it says more. ``total`` is every weight we spent.
    """

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self._sleep = sleep
        self.used = 0  # in the current minute, ours and what the exchange reported
        self.total = 0
        self.waits = 0
        self.waited_s = 0.0
        self._clock = clock
        self._minute = int(clock() // 60)
        self._lock = asyncio.Lock()

    def _roll(self) -> float:
        now = self._clock()
        minute = int(now // 60)
        if minute != self._minute:
            self._minute, self.used = minute, 0
        return now

    def delay(self, weight: int) -> float:
        """Seconds until ``weight`` fits (0 when it fits now)."""
        now = self._roll()
        if self.used == 0 or self.used + weight <= self.limit:
            return 0.0
        return (self._minute + 1) * 60.0 - now + 0.05

    async def acquire(self, weight: int) -> None:
        async with self._lock:
            while (wait := self.delay(weight)) > 0:
                self.waits += 1
                self.waited_s += wait
                await self._sleep(wait)
            self.used += weight
            self.total += weight

    def observe(self, used: str | int | None) -> None:
        """The exchange's count for this minute (the response header); never lowers ours."""
        if used is None:
            return
        try:
            value = int(used)
        except ValueError:
            return
        self._roll()
        if value > self.used:
            self.used = value

    def snapshot(self) -> dict[str, int | float]:
        self._roll()
        return {"limit_per_min": self.limit, "used_this_min": self.used, "total": self.total,
                "waits": self.waits, "waited_s": round(self.waited_s, 3)}
