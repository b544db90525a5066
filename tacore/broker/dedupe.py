"""Replies the broker already sent, by client request_id, so a client's retry never runs a request twice."""

from __future__ import annotations

import time
from collections import deque


class DedupeCache:
    """A bounded, time-limited map request_id -> reply frame.

    Under load it is full and every answered request stores one reply and evicts another, so a
    store is kept to a dict assignment and two appends: every entry lives ``ttl_s``, so insertion
    order is expiry order, kept in two parallel FIFOs (expiry, request_id). A request_id stored
    again while still held leaves a stale slot behind, counted in ``_stale`` and skipped when it
    comes up. The FIFOs' length bounds the memory.
    """

    def __init__(self, max_entries: int, ttl_s: float) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._replies: dict[str, bytes] = {}
        self._order_expiry: deque[float] = deque()
        self._order_id: deque[str] = deque()
        self._stale: dict[str, int] = {}  # request_id -> stale FIFO slots ahead of its live one

    def __len__(self) -> int:
        return len(self._replies)

    def __contains__(self, request_id: object) -> bool:
        """Held, possibly expired: ``get`` decides."""
        return request_id in self._replies

    def put(self, request_id: str, reply: bytes, now: float | None = None) -> None:
        if self.max_entries <= 0 or self.ttl_s <= 0:
            return
        expires = (time.monotonic() if now is None else now) + self.ttl_s
        replies = self._replies
        if request_id in replies:
            self._stale[request_id] = self._stale.get(request_id, 0) + 1
        replies[request_id] = reply
        self._order_expiry.append(expires)
        self._order_id.append(request_id)
        if len(self._order_id) > self.max_entries:
            self._order_expiry.popleft()
            self._drop(self._order_id.popleft())

    def get(self, request_id: str) -> bytes | None:
        """The stored reply; one kept past its TTL until the next ``prune`` is still returned."""
        return self._replies.get(request_id)

    def prune(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        expiries, ids = self._order_expiry, self._order_id
        before = len(self._replies)
        while expiries and expiries[0] <= now:
            expiries.popleft()
            self._drop(ids.popleft())
        return before - len(self._replies)

    def _drop(self, request_id: str) -> None:
        """The oldest FIFO slot, ``request_id``'s, leaves: its entry goes unless a newer slot holds it."""
        stale = self._stale.get(request_id)
        if stale:
            if stale == 1:
                del self._stale[request_id]
            else:
                self._stale[request_id] = stale - 1
            return
        self._replies.pop(request_id, None)
