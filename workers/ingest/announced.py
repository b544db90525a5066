"""Which closed candles a stream has announced already: each closed candle is published (DATA_READY) once,
however often the exchange repeats it (a reconnect's replay, a backfill meeting the live stream)."""

from __future__ import annotations

from collections import deque


class AnnouncedCandles:
    """The newest ``memory`` open times seen; older ones are forgotten (a candle that old is never repeated
    by the stream)."""

    __slots__ = ("_memory", "_order", "_seen")

    def __init__(self, memory: int) -> None:
        self._memory = memory
        self._order: deque[int] = deque()
        self._seen: set[int] = set()

    def first(self, open_time: int) -> bool:
        """True the first time ``open_time`` is seen (then remembered)."""
        if open_time in self._seen:
            return False
        self._seen.add(open_time)
        self._order.append(open_time)
        if len(self._order) > self._memory:
            self._seen.discard(self._order.popleft())
        return True
