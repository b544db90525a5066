"""Replies the broker already sent, by client request_id, so a client's retry never runs a request twice."""

from __future__ import annotations

import time
from collections import OrderedDict


class DedupeCache:
    """A bounded, time-limited map request_id -> reply frame (insertion order = expiry order)."""

    def __init__(self, max_entries: int, ttl_s: float) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, request_id: str, reply: bytes, now: float | None = None) -> None:
        if self.max_entries <= 0 or self.ttl_s <= 0:
            return
        now = time.monotonic() if now is None else now
        entries = self._entries
        if request_id in entries:
            del entries[request_id]
        entries[request_id] = (now + self.ttl_s, reply)
        if len(entries) > self.max_entries:
            entries.popitem(last=False)

    def get(self, request_id: str, now: float | None = None) -> bytes | None:
        entry = self._entries.get(request_id)
        if entry is None:
            return None
        now = time.monotonic() if now is None else now
        if entry[0] <= now:
            del self._entries[request_id]
            return None
        return entry[1]

    def prune(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        entries = self._entries
        removed = 0
        while entries:
            request_id, (expires, _) = next(iter(entries.items()))
            if expires > now:
                break
            del entries[request_id]
            removed += 1
        return removed
