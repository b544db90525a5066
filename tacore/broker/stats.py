"""Cumulative per-method counters and latency histograms the broker serves as ``broker.metrics``."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

#: Upper bounds in ms, roughly x1.6 apart from 50 us to 60 s; the implicit last bucket is +Inf.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 1.5, 2.5, 4.0, 6.0, 10.0, 15.0, 25.0, 40.0, 60.0, 100.0,
    150.0, 250.0, 400.0, 600.0, 1000.0, 1500.0, 2500.0, 4000.0, 6000.0, 10000.0, 15000.0, 30000.0, 60000.0,
)


@dataclass(slots=True)
class MethodStats:
    count: int = 0
    success: int = 0
    error: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_MS) + 1))
    latency_sum_ms: float = 0.0
    queue_sum_ms: float = 0.0

    def to_wire(self) -> dict[str, Any]:
        return {
            "count": self.count, "success": self.success, "error": self.error, "errors": dict(self.errors),
            "latency_counts": list(self.latency_counts), "latency_sum_ms": round(self.latency_sum_ms, 3),
            "queue_sum_ms": round(self.queue_sum_ms, 3),
        }


class BrokerStats:
    def __init__(self) -> None:
        self.methods: dict[str, MethodStats] = {}

    def observe(self, method: str, error_code: str | None, total_ms: float, queue_ms: float) -> None:
        stats = self.methods.get(method)
        if stats is None:
            stats = self.methods[method] = MethodStats()
        stats.count += 1
        if error_code is None:
            stats.success += 1
        else:
            stats.error += 1
            stats.errors[error_code] = stats.errors.get(error_code, 0) + 1
        stats.latency_counts[bisect_left(LATENCY_BUCKETS_MS, total_ms)] += 1
        stats.latency_sum_ms += total_ms
        stats.queue_sum_ms += queue_ms

    def to_wire(self) -> dict[str, Any]:
        return {name: stats.to_wire() for name, stats in sorted(self.methods.items())}
