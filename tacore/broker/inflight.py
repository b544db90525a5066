"""Deadlines of the requests at workers, so a client is answered ``TIMEOUT`` at its deadline wherever its request is.

A heap of (deadline, seq, request) pushed at each dispatch, with lazy deletion: an entry whose
request is no longer at a worker (answered, handed back, re-dispatched) is skipped when it comes
up, and the heap is rebuilt once it holds more than twice the requests in flight plus 1,024, so
its size stays bounded under load while a push stays one ``heappush``.
"""

from __future__ import annotations

import heapq

from tacore.broker.queue import Pending

_SLACK = 1024


class InflightDeadlines:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Pending]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, item: Pending, inflight: int) -> None:
        heap = self._heap
        heapq.heappush(heap, (item.deadline, item.seq, item))
        if len(heap) > 2 * inflight + _SLACK:
            self._heap = [entry for entry in heap if _waiting(entry[2])]
            heapq.heapify(self._heap)

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and not _waiting(heap[0][2]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def expire(self, now: float) -> list[Pending]:
        """Every request still at a worker, its client not yet answered, whose deadline has passed."""
        expired: list[Pending] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            item = heapq.heappop(heap)[2]
            if _waiting(item):
                expired.append(item)
        return expired


def _waiting(item: Pending) -> bool:
    """At a worker with its client still waiting for the answer."""
    return item.worker is not None and not item.answered
