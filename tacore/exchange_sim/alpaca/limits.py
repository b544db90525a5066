"""Alpaca's gates on the simulator side: the API key pair, and the per-key request rate.

The rate limit is a window of ``limit`` requests per minute of real time (200 on Alpaca's basic plan)
that opens with the first request; past it every request is HTTP 429 until the window resets, and
every answer carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (epoch
seconds when the quota refills).
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeyPair:
    key_id: str
    secret_key: str

    def matches(self, key_id: str | None, secret_key: str | None) -> bool:
        """Constant-time comparison of both halves."""
        if key_id is None or secret_key is None:
            return False
        return hmac.compare_digest(key_id.encode(), self.key_id.encode()) & hmac.compare_digest(
            secret_key.encode(), self.secret_key.encode())


class MinuteWindow:
    """At most ``limit`` requests per 60 s window; ``take`` says whether this one is allowed."""

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self._clock = clock
        self._opened = 0.0
        self._used = 0

    def take(self) -> tuple[bool, dict[str, str]]:
        """Count one request; (allowed, the X-RateLimit headers to send)."""
        now = self._clock()
        if now - self._opened >= 60.0:
            self._opened, self._used = now, 0
        allowed = self._used < self.limit
        if allowed:
            self._used += 1
        return allowed, self.headers()

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(max(0, self.limit - self._used)),
                "X-RateLimit-Reset": str(math.ceil(self._opened + 60.0))}

    def reset(self) -> None:
        self._opened, self._used = 0.0, 0
