"""Binance's request limits as the spot API enforces them: request weight per minute per IP, new
orders per 10 seconds and per day per account, and the auto-ban of a client that does not back off.

- Every request adds its weight to the current minute (``X-MBX-USED-WEIGHT-1M`` on every answer);
  past ``weight_limit`` the request is HTTP 429 ``-1003`` with ``Retry-After`` (seconds to the minute's
  end) and the IP is limited until then.
- A client that keeps sending while limited gets 429s, and after ``ban_after`` of them HTTP 418: the
  IP is banned for ``ban_s`` seconds, doubling with each ban (Binance: from 2 minutes to 3 days).
- Faults injected by the control API (``/_sim/rest_failures`` with ``"api": "spot"``) answer the next
  requests 429 / 418 with the ``Retry-After`` given (and limit or ban the IP for that long, so a client
  that ignores it meets the same rules), or 500 / 503.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer that stops a request before it is processed."""

    status: int
    code: int
    msg: str
    retry_after: int | None = None


_WEIGHT_MSG = ("Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
               "Please use WebSocket Streams for live updates to avoid polling the API.")
_BAN_MSG = ("Way too much request weight used; IP banned until {until}. "
            "Please use WebSocket Streams for live updates to avoid bans.")


class IpLimits:
    """The limits of one IP (the simulator serves loopback: one IP in practice)."""

    def __init__(self, weight_limit: int, *, ban_after: int = 3, ban_s: float = 120.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.weight_limit = weight_limit
        self.ban_after = ban_after
        self.ban_s = ban_s
        self._clock = clock
        self._minute = 0
        self.used = 0
        self.limited_until = 0.0
        self.banned_until = 0.0
        self._violations = 0
        self._bans = 0
        self.faults: deque[tuple[int, int]] = deque()  # (HTTP status, Retry-After seconds)
        self.counters = {"rate_limited": 0, "banned": 0, "faults_injected": 0}

    def _roll(self, now: float) -> None:
        minute = int(now // 60)
        if minute != self._minute:
            self._minute, self.used = minute, 0

    def admit(self, weight: int) -> Refusal | None:
        """Count a request of ``weight``; the refusal to answer it with, or None to serve it."""
        now = self._clock()
        self._roll(now)
        if self.banned_until > now:
            return self._banned(now)
        if self.limited_until > now:
            self._violations += 1
            if self._violations > self.ban_after:
                return self._ban(now, self.ban_s * 2 ** self._bans)
            return self._limited(now)
        if self.faults:
            status, retry_after = self.faults.popleft()
            self.counters["faults_injected"] += 1
            if status == 429:
                self.limited_until, self._violations = now + retry_after, 0
                return self._limited(now)
            if status == 418:
                return self._ban(now, float(retry_after))
            if status == 503:
                return Refusal(503, -1008, "Server is currently overloaded with other requests. "
                                           "Please try again in a few minutes.")
            return Refusal(500, -1000, "An unknown error occurred while processing the request.")
        self.used += weight
        if self.used > self.weight_limit:
            self.limited_until, self._violations = (self._minute + 1) * 60.0, 0
            return self._limited(now)
        return None

    def _limited(self, now: float) -> Refusal:
        self.counters["rate_limited"] += 1
        return Refusal(429, -1003, _WEIGHT_MSG.format(limit=self.weight_limit),
                       max(1, math.ceil(self.limited_until - now)))

    def _ban(self, now: float, seconds: float) -> Refusal:
        self._bans += 1
        self.banned_until = now + seconds
        self.limited_until = 0.0
        return self._banned(now)

    def _banned(self, now: float) -> Refusal:
        self.counters["banned"] += 1
        until = int(self.banned_until * 1000)
        return Refusal(418, -1003, _BAN_MSG.format(until=until), max(1, math.ceil(self.banned_until - now)))

    def headers(self) -> dict[str, str]:
        self._roll(self._clock())
        return {"X-MBX-USED-WEIGHT-1M": str(self.used)}

    def reset(self) -> None:
        self.used = 0
        self.limited_until = self.banned_until = 0.0
        self._violations = self._bans = 0
        self.faults.clear()


class OrderCounts:
    """New orders per account in the last 10 seconds and the current UTC day (Binance's ORDERS limits)."""

    def __init__(self, per_10s: int, per_day: int, *, clock: Callable[[], float] = time.time) -> None:
        self.per_10s = per_10s
        self.per_day = per_day
        self._clock = clock
        self._recent: dict[str, deque[float]] = {}
        self._day: dict[str, tuple[int, int]] = {}  # key -> (UTC day, orders)

    def take(self, key: str) -> Refusal | None:
        """Count one new order of account ``key``; a 429 -1015 when over a limit (not counted then)."""
        now = self._clock()
        recent = self._recent.setdefault(key, deque())
        while recent and now - recent[0] >= 10.0:
            recent.popleft()
        day, count = self._day.get(key, (0, 0))
        if day != int(now // 86_400):
            day, count = int(now // 86_400), 0
        if len(recent) >= self.per_10s:
            return Refusal(429, -1015, f"Too many new orders; current limit is {self.per_10s} orders per 10 SECOND.",
                           max(1, math.ceil(10.0 - (now - recent[0]))))
        if count >= self.per_day:
            return Refusal(429, -1015, f"Too many new orders; current limit is {self.per_day} orders per 1 DAY.",
                           max(1, math.ceil((day + 1) * 86_400 - now)))
        recent.append(now)
        self._day[key] = (day, count + 1)
        return None

    def headers(self, key: str) -> dict[str, str]:
        return {"X-MBX-ORDER-COUNT-10S": str(len(self._recent.get(key, ()))),
                "X-MBX-ORDER-COUNT-1D": str(self._day.get(key, (0, 0))[1])}
