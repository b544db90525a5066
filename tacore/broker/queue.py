"""The broker's pending queue: bounded, per method, priority 0 first, FIFO within a priority, with deadlines."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from tacore.protocol.envelope import MAX_PRIORITY

_LEVELS = MAX_PRIORITY + 1


@dataclass(slots=True, eq=False)
class Pending:
    """A request the broker accepted and owes an answer to."""

    seq: int  # the broker's number for it, sent to the worker and echoed in its REPLY
    request_id: str | None
    method: str
    priority: int
    raw: bytes
    envelopes: list[list[bytes]]  # return addresses; a retry of an in-flight request_id adds one
    received: float  # time.monotonic()
    received_wall: float  # time.time()
    deadline: float  # time.monotonic()
    internal: bool = False  # the service's own call: its stats and log row are marked so
    dispatched: float = 0.0
    attempts: int = 0
    slow: bool = False  # dispatched as a slow method (see workers.FAST_METHOD_MS)
    queued: bool = field(default=False)
    #: the WorkerRecord holding it (assigned, in its outbox or sent), None otherwise
    worker: Any = None
    #: its client was answered while a worker still held it (deadline, cancel): the worker's reply is dropped
    answered: bool = False


class PendingQueue:
    """Requests waiting for a worker that serves their method.

    One set of priority deques per method, so a request nobody can serve yet never blocks the
    requests behind it. Deadlines sit in a heap with lazy deletion, compacted so it stays within a
    small multiple of the queue's size (memory stays flat under a flood).
    """

    def __init__(self, limit: int, max_bytes: int = 1 << 62) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self.bytes = 0
        self._by_method: dict[str, list[deque[Pending]]] = {}
        self._counts: dict[str, int] = {}  # method -> queued requests, only methods with some
        self._size = 0
        self._deadlines: list[tuple[float, int, Pending]] = []

    def __len__(self) -> int:
        return self._size

    def full(self) -> bool:
        return self._size >= self.limit or self.bytes >= self.max_bytes

    def has(self, method: str) -> bool:
        return method in self._counts

    def depth_by_method(self) -> dict[str, int]:
        return dict(self._counts)

    def push(self, item: Pending, *, front: bool = False) -> None:
        levels = self._by_method.get(item.method)
        if levels is None:
            levels = self._by_method[item.method] = [deque() for _ in range(_LEVELS)]
        if front:
            levels[item.priority].appendleft(item)
        else:
            levels[item.priority].append(item)
        item.queued = True
        self._counts[item.method] = self._counts.get(item.method, 0) + 1
        self._size += 1
        self.bytes += len(item.raw)
        heapq.heappush(self._deadlines, (item.deadline, item.seq, item))
        if len(self._deadlines) > 2 * self._size + 1024:
            self._compact()

    def pop_for(self, methods: Container[str], only: Container[str] | None = None) -> Pending | None:
        """The most urgent request among ``methods`` (and ``only``): lowest priority number, then oldest.

        Walks the methods that have queued requests (few), not the worker's methods (many).
        """
        best: Pending | None = None
        best_levels: list[deque[Pending]] | None = None
        for method in self._counts:
            if method not in methods or (only is not None and method not in only):
                continue
            levels = self._by_method[method]
            for queue in levels:
                if queue:
                    head = queue[0]
                    if best is None or (head.priority, head.seq) < (best.priority, best.seq):
                        best, best_levels = head, levels
                    break
        if best is None or best_levels is None:
            return None
        best_levels[best.priority].popleft()
        self._taken(best)
        return best

    def pop_method(self, method: str) -> Pending | None:
        if method not in self._counts:
            return None
        for queue in self._by_method[method]:
            if queue:
                item = queue.popleft()
                self._taken(item)
                return item
        return None  # pragma: no cover - counts and deques agree

    def remove(self, item: Pending) -> None:
        """Take ``item`` out of the queue (a client cancelled it); its deadline entry goes lazily."""
        if item.queued:
            self._by_method[item.method][item.priority].remove(item)
            self._taken(item)

    def next_deadline(self) -> float | None:
        while self._deadlines and not self._deadlines[0][2].queued:
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None

    def expire(self, now: float) -> list[Pending]:
        """Remove and return every queued request whose deadline has passed."""
        expired: list[Pending] = []
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, _, item = heapq.heappop(heap)
            if item.queued:
                self._by_method[item.method][item.priority].remove(item)
                self._taken(item)
                expired.append(item)
        return expired

    def drain(self) -> list[Pending]:
        """Remove and return everything (shutdown)."""
        items = [item for levels in self._by_method.values() for queue in levels for item in queue]
        for levels in self._by_method.values():
            for queue in levels:
                queue.clear()
        for item in items:
            item.queued = False
        self._counts.clear()
        self._size = 0
        self.bytes = 0
        self._deadlines.clear()
        return items

    def _taken(self, item: Pending) -> None:
        item.queued = False
        left = self._counts[item.method] - 1
        if left:
            self._counts[item.method] = left
        else:
            del self._counts[item.method]
        self._size -= 1
        self.bytes -= len(item.raw)

    def _compact(self) -> None:
        self._deadlines = [entry for entry in self._deadlines if entry[2].queued]
        heapq.heapify(self._deadlines)
