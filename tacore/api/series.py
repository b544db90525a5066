"""The 15-minute ring of per-second samples behind the dashboard's charts and the last-minute rates.

Each broker poll yields one cumulative ``broker.metrics`` snapshot; the difference with the previous
one is that second's traffic: a request rate, an error rate and percentiles of that second's
latencies. Memory is bounded (one small sample per second, 900 of them).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tacore.api.stats import add_counts, diff_counts, histogram_quantile, rounded

RING_SECONDS = 15 * 60


@dataclass(frozen=True, slots=True)
class Sample:
    """One second of traffic; the rates and percentiles are None when the broker could not be read."""

    ts: float
    rps: float | None
    errors_ps: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    queue_depth: int | None
    inflight: int | None

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)


class Ring:
    """A fixed-size, time-ordered buffer of samples; the oldest falls off when it is full."""

    def __init__(self, capacity: int = RING_SECONDS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._items: deque[Sample] = deque(maxlen=capacity)

    @property
    def capacity(self) -> int:
        return self._items.maxlen or 0

    def append(self, sample: Sample) -> None:
        if self._items and sample.ts < self._items[-1].ts:
            self._items.clear()  # the wall clock went back: start a fresh history rather than unsort it
        self._items.append(sample)

    def since(self, ts: float | None) -> list[Sample]:
        """Samples strictly newer than ``ts`` (all of them when ``ts`` is None)."""
        items = list(self._items)
        if ts is None:
            return items
        start = bisect_right([s.ts for s in items], ts)
        return items[start:]

    def last(self) -> Sample | None:
        return self._items[-1] if self._items else None

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Sample]:
        return iter(list(self._items))


@dataclass(slots=True)
class _Point:
    ts: float
    uptime_s: float
    counts: dict[str, int]  # method -> requests answered so far
    errors: int
    latency: list[int]  # latency bucket counts, all methods


class SeriesBuilder:
    """Turns successive cumulative ``broker.metrics`` snapshots into per-second samples and rates."""

    def __init__(self, capacity: int = RING_SECONDS, window_s: float = 60.0) -> None:
        self.ring = Ring(capacity)
        self.window_s = window_s
        self._history: deque[_Point] = deque()

    def observe(self, ts: float, metrics: Mapping[str, Any]) -> Sample:
        bounds = list(metrics.get("latency_buckets_ms", []))
        methods: Mapping[str, Mapping[str, Any]] = metrics.get("methods", {})
        point = _Point(
            ts=ts,
            uptime_s=float(metrics.get("uptime_s", 0.0)),
            counts={name: int(m.get("count", 0)) for name, m in methods.items()},
            errors=sum(int(m.get("error", 0)) for m in methods.values()),
            latency=add_counts((m.get("latency_counts", []) for m in methods.values()), len(bounds) + 1),
        )
        previous = self._history[-1] if self._history else None
        if previous is not None and point.uptime_s < previous.uptime_s:
            self._history.clear()  # the broker restarted: its counters started again from zero
            previous = None
        rps = errors_ps = p50 = p95 = p99 = None
        if previous is not None and ts > previous.ts:
            span = ts - previous.ts
            delta = diff_counts(point.latency, previous.latency)
            rps = max(0, sum(point.counts.values()) - sum(previous.counts.values())) / span
            errors_ps = max(0, point.errors - previous.errors) / span
            p50 = histogram_quantile(0.50, bounds, delta)
            p95 = histogram_quantile(0.95, bounds, delta)
            p99 = histogram_quantile(0.99, bounds, delta)
        self._history.append(point)
        while len(self._history) > 2 and ts - self._history[1].ts >= self.window_s:
            self._history.popleft()
        sample = Sample(ts, rounded(rps), rounded(errors_ps), rounded(p50), rounded(p95), rounded(p99),
                        _int_or_none(metrics.get("queue_depth")), _int_or_none(metrics.get("inflight")))
        self.ring.append(sample)
        return sample

    def gap(self, ts: float) -> Sample:
        """Record a second in which the broker could not be read (a hole in the charts)."""
        sample = Sample(ts, None, None, None, None, None, None, None)
        self.ring.append(sample)
        return sample

    def rates(self) -> tuple[float | None, dict[str, float]]:
        """Requests per second over the last window: the total and per method."""
        if len(self._history) < 2:
            return None, {}
        first, last = self._history[0], self._history[-1]
        span = last.ts - first.ts
        if span <= 0:
            return None, {}
        per_method = {name: round(max(0, count - first.counts.get(name, 0)) / span, 3)
                      for name, count in last.counts.items()}
        total = max(0, sum(last.counts.values()) - sum(first.counts.values())) / span
        return round(total, 3), per_method


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
