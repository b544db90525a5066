"""Replies the broker already sent, by client request_id, so a client's retry never runs a request twice."""

from __future__ import annotations

import time
from collections import deque


class DedupeCache:
    """A bounded, time-limited map request_id -> reply frame.

    A plain dict for lookups and a FIFO of (expiry, request_id) for expiry and eviction: every entry
    lives ``ttl_s``, so insertion order is expiry order. A request_id stored again leaves a stale
    FIFO slot, skipped when it comes up; the FIFO's length bounds both.
    """

    def __init__(self, max_entries: int, ttl_s: float) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, bytes]] = {}
        self._order: deque[tuple[float, str]] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, request_id: object) -> bool:
        """Held, possibly expired: ``get`` decides."""
        return request_id in self._entries

    def put(self, request_id: str, reply: bytes, now: float | None = None) -> None:
        if self.max_entries <= 0 or self.ttl_s <= 0:
            return
        expires = (time.monotonic() if now is None else now) + self.ttl_s
        self._entries[request_id] = (expires, reply)
        order = self._order
        order.append((expires, request_id))
        if len(order) > self.max_entries:
            self._drop(*order.popleft())

    def get(self, request_id: str, now: float | None = None) -> bytes | None:
        entry = self._entries.get(request_id)
        if entry is None:
            return None
        if entry[0] <= (time.monotonic() if now is None else now):
            return None  # expired; prune removes it
        return entry[1]

    def prune(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        order = self._order
        before = len(self._entries)
        while order and order[0][0] <= now:
            self._drop(*order.popleft())
        return before - len(self._entries)

    def _drop(self, expires: float, request_id: str) -> None:
        entry = self._entries.get(request_id)
        if entry is not None and entry[0] == expires:  # not a newer entry under the same id
            del self._entries[request_id]
