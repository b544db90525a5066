"""Progress of the history fetch, per stream and in total, for ``kline.status`` and one log line.

Feed-agnostic, and one record for all feeds (the agent's ``kline.status.history``): a feed registers
what each stream's plan expects (``expect``), then reports candles as they arrive (``fetched_rows``) and
jobs as they end (``range_done``, ``resume_done``); when every stream is done one line says so in the
log. A stream is done when every range of its plan and its resume backfill have finished, whatever they
returned (an exchange may hold less than the depth asked for: a symbol listed last month has no candles
from last year).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("tacore.ingest")


@dataclass(slots=True)
class StreamProgress:
    wanted: int
    ranges_left: int
    resume_left: bool
    fetched: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> bool:
        return self.ranges_left <= 0 and not self.resume_left


class HistoryProgress:
    """What the history fetch wanted, got and still waits for; totals since the agent started."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._streams: dict[str, StreamProgress] = {}
        self.wanted = 0
        self.fetched = 0
        self.history_rows = 0  # candles stored from history fetches (the resume backfills are announced)
        self.streams_done = 0
        self._wave_started: float | None = None  # first expect() since everything was last done
        self._wave_fetched = 0
        self.completed_s: float | None = None  # duration of the last wave that completed

    def expect(self, stream: str, wanted: int, ranges: int, resume: bool) -> None:
        """A stream's plan: ``ranges`` history jobs and (``resume``) one resume backfill to wait for. A
        feed that plans later (after loading a calendar) registers ``planning`` first, then the plan."""
        old = self._streams.get(stream)
        if not ranges and not resume:
            if old is not None and not old.done:  # planned to nothing: done
                self.wanted -= old.wanted
                old.ranges_left, old.resume_left, old.wanted = 0, False, 0
                self._stream_done(old)
            return
        if old is not None and not old.done:
            self.wanted -= old.wanted
        if self._wave_started is None:
            self._wave_started = self._clock()
            self._wave_fetched = 0
        self._streams[stream] = StreamProgress(wanted, ranges, resume, started=self._clock(),
                                               fetched=old.fetched if old is not None and not old.done else 0)
        self.wanted += wanted

    def planning(self, stream: str) -> None:
        """The stream waits for its plan (counted pending until ``expect`` gives it)."""
        if stream not in self._streams or self._streams[stream].done:
            self.expect(stream, 0, 1, False)

    def forget(self, stream: str) -> None:
        """The stream was removed: it no longer counts as pending."""
        state = self._streams.pop(stream, None)
        if state is not None and not state.done:
            self.wanted -= max(0, state.wanted - state.fetched)
            self._finish_wave_if_done()

    def stored_history(self, count: int) -> None:
        self.history_rows += count

    def fetched_rows(self, stream: str, count: int) -> None:
        state = self._streams.get(stream)
        if state is None or state.done or count <= 0:
            return
        state.fetched += count
        self.fetched += count
        self._wave_fetched += count

    def range_done(self, stream: str) -> bool:
        """One history job of the stream ended; True when that completed every stream's plan."""
        state = self._streams.get(stream)
        if state is None or state.done:
            return False
        state.ranges_left -= 1
        return self._stream_done(state)

    def resume_done(self, stream: str) -> bool:
        state = self._streams.get(stream)
        if state is None or state.done or not state.resume_left:
            return False
        state.resume_left = False
        return self._stream_done(state)

    def _stream_done(self, state: StreamProgress) -> bool:
        if not state.done:
            return False
        self.streams_done += 1
        return self._finish_wave_if_done()

    def _finish_wave_if_done(self) -> bool:
        if self._wave_started is None or self.pending_streams:
            return False
        self.completed_s = round(self._clock() - self._wave_started, 3)
        self._wave_started = None
        log.info("history complete: %d streams hold their depth, %d candles fetched in %.1f s",
                 self.streams_done, self.fetched, self.completed_s)
        return True

    @property
    def pending_streams(self) -> int:
        return sum(1 for state in self._streams.values() if not state.done)

    def snapshot(self, *, weight_used: int, weight_budget: int, max_streams: int = 50) -> dict[str, Any]:
        """Totals, an ETA from the rate so far, and the first ``max_streams`` pending streams."""
        now = self._clock()
        pending = [(name, s) for name, s in self._streams.items() if not s.done]
        remaining = sum(max(0, s.wanted - s.fetched) for _, s in pending)
        eta: float | None = None
        if pending and self._wave_started is not None and self._wave_fetched:
            rate = self._wave_fetched / max(now - self._wave_started, 1e-3)
            eta = round(remaining / rate, 1)
        return {
            "done": not pending, "candles_wanted": self.wanted, "candles_fetched": self.fetched,
            "candles_stored": self.history_rows,
            "candles_remaining": remaining, "pending_streams": len(pending), "streams_done": self.streams_done,
            "eta_s": 0.0 if not pending else eta, "last_completed_in_s": self.completed_s,
            "weight_used": weight_used, "weight_budget_per_min": weight_budget,
            "streams": [{"stream": name, "wanted": s.wanted, "fetched": s.fetched, "ranges_left": s.ranges_left,
                         "resume_pending": s.resume_left, "running_s": round(now - s.started, 1)}
                        for name, s in pending[:max_streams]],
        }
